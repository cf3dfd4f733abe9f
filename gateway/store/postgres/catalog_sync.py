"""Bring the database's master data in line with the plant catalog at writer start.

Units, equipment, tags and tanks are upserted: the catalog file is their source of truth, so
names, limits and address-independent attributes follow it. Operational columns that the
plant changes at runtime (unit_status, equipment status, tank level/status) are never
touched. Inventory seed items are inserted only when absent: once a SKU exists, its
quantity and location belong to the operators.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from plant.catalog import Catalog
from plant.schema import InventoryItem

_TAG_COLUMNS = ("tag_id", "tag_name", "unit_id", "equipment_id", "engineering_units", "tag_type",
                "min_val", "max_val", "ll", "hh", "instrument_min", "instrument_max", "deadband",
                "description", "is_critical")


@dataclass(frozen=True)
class SyncReport:
    """Rows written per table (inventory: newly inserted seed items only)."""

    units: int
    equipment: int
    tags: int
    tanks: int
    inventory_inserted: int


def inventory_status(item: InventoryItem) -> str:
    """The seed's stock status word for a quantity against its reorder/critical levels."""
    if item.quantity <= item.critical_level:
        return "CRITICAL"
    if item.quantity <= item.reorder_level:
        return "LOW"
    return "OK"


async def register_gateway(conn: asyncpg.Connection, gateway_id: str, site: str = "") -> None:
    """Insert the gateway row, or refresh its site and last_seen."""
    await conn.execute(
        """INSERT INTO gateways (gateway_id, site) VALUES ($1, $2)
           ON CONFLICT (gateway_id) DO UPDATE SET site = EXCLUDED.site, last_seen = now()""",
        gateway_id, site)


async def _sync_tags(conn: asyncpg.Connection, catalog: Catalog) -> int:
    # COPY through a temporary table: a catalog with thousands of synthetic tags would take
    # seconds as row-by-row upserts.
    await conn.execute("""CREATE TEMP TABLE catalog_tags_sync
                          (LIKE process_tags INCLUDING DEFAULTS) ON COMMIT DROP""")
    records = [(t.id, t.name, t.unit_id, t.equipment_id, t.engineering_units, t.tag_type.value,
                t.normal_min, t.normal_max, t.ll, t.hh, t.instrument_min, t.instrument_max,
                t.deadband, t.description, t.is_critical) for t in catalog.tags]
    await conn.copy_records_to_table("catalog_tags_sync", records=records, columns=_TAG_COLUMNS)
    columns = ", ".join(_TAG_COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _TAG_COLUMNS[1:])
    changed = ' OR '.join(f"p.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in _TAG_COLUMNS[1:])
    await conn.execute(
        f"""INSERT INTO process_tags AS p ({columns}) SELECT {columns} FROM catalog_tags_sync
            ON CONFLICT (tag_id) DO UPDATE SET {updates}, updated_at = now() WHERE {changed}""")
    return len(records)


async def sync_catalog(conn: asyncpg.Connection, catalog: Catalog, *, gateway_id: str,
                       site: str = "") -> SyncReport:
    """Register the gateway and upsert the plant catalog, in one transaction."""
    plant = catalog.plant
    async with conn.transaction():
        await register_gateway(conn, gateway_id, site)
        await conn.executemany(
            """INSERT INTO process_units (unit_id, name, type, description, capacity,
                                          energy_benchmark_kwh_bbl, energy_target_kwh_bbl)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (unit_id) DO UPDATE SET name = EXCLUDED.name, type = EXCLUDED.type,
                   description = EXCLUDED.description, capacity = EXCLUDED.capacity,
                   energy_benchmark_kwh_bbl = EXCLUDED.energy_benchmark_kwh_bbl,
                   energy_target_kwh_bbl = EXCLUDED.energy_target_kwh_bbl, updated_at = now()""",
            [(u.id, u.name, u.type, u.description, u.capacity_bpd, u.energy_benchmark_kwh_bbl,
              u.energy_target_kwh_bbl) for u in plant.units])
        await conn.executemany(
            """INSERT INTO equipment (equipment_id, equipment_name, equipment_type, unit_id,
                                      manufacturer, installation_date)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (equipment_id) DO UPDATE SET
                   equipment_name = EXCLUDED.equipment_name,
                   equipment_type = EXCLUDED.equipment_type, unit_id = EXCLUDED.unit_id,
                   manufacturer = EXCLUDED.manufacturer,
                   installation_date = EXCLUDED.installation_date, updated_at = now()""",
            [(e.id, e.name, e.type, e.unit_id, e.manufacturer, e.installation_date)
             for e in plant.equipment])
        tags = await _sync_tags(conn, catalog)
        await conn.executemany(
            """INSERT INTO tanks (tank_id, name, product, capacity, level_tag, unit_id,
                                  low_level_pct, high_level_pct)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (tank_id) DO UPDATE SET name = EXCLUDED.name,
                   product = EXCLUDED.product, capacity = EXCLUDED.capacity,
                   level_tag = EXCLUDED.level_tag, unit_id = EXCLUDED.unit_id,
                   low_level_pct = EXCLUDED.low_level_pct,
                   high_level_pct = EXCLUDED.high_level_pct""",
            [(t.id, t.name, t.product, t.capacity_l, t.level_tag, t.unit_id, t.low_level_pct,
              t.high_level_pct) for t in plant.tanks])
        inserted = 0
        for item in plant.inventory:
            status = await conn.execute(
                """INSERT INTO inventory (sku, item, quantity, unit, status, location,
                                          reorder_level, critical_level)
                   VALUES ($1, $2, $3, $4, $5, coalesce(nullif($6, ''), 'Almacén Central'), $7, $8)
                   ON CONFLICT (sku) DO NOTHING""",
                item.sku, item.item, item.quantity, item.unit, inventory_status(item),
                item.location, item.reorder_level, item.critical_level)
            inserted += int(status.rsplit(" ", 1)[-1])
    return SyncReport(len(plant.units), len(plant.equipment), tags, len(plant.tanks), inserted)
