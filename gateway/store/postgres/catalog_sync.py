"""Bring the database's master data in line with the plant catalog at writer start.

Units, equipment, tags and tanks are upserted: the catalog file is their source of truth, so
names, limits and address-independent attributes follow it. Operational columns that the
plant changes at runtime (unit_status, equipment status, tank level/status) are never
touched. Inventory seed items are inserted only when absent: once a SKU exists, its
quantity and location belong to the operators.

Every catalog row belongs to one gateway (the key is gateway_id plus the row's own id, see
migration 0007), so two plants that both have TI-101 each keep their own; N gateways syncing
at once write disjoint rows and never wait on each other's. The same gateway syncing twice at
once (an overlapping restart) upserts the same keys: no duplicate rows. A gateway id
registered for another site is refused: gateway ids must be unique across the fleet.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from plant.catalog import Catalog
from plant.schema import InventoryItem

_TAG_COLUMNS = ("gateway_id", "tag_id", "tag_name", "unit_id", "equipment_id", "engineering_units", "tag_type",
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


class GatewayIdentityError(Exception):
    """The gateway id is registered in the historian for another site."""


async def register_gateway(conn: asyncpg.Connection, gateway_id: str, site: str = "") -> None:
    """Insert the gateway row, or refresh its last_seen (and its site if it had none).

    Raises GatewayIdentityError if the row names another, non-empty site: two plants
    configured with the same gateway id would otherwise mix their rows under one identity.
    A gateway that really moved site is re-registered by hand
    (``UPDATE gateways SET site = ... WHERE gateway_id = ...``)."""
    registered = await conn.fetchval(
        """INSERT INTO gateways AS g (gateway_id, site) VALUES ($1, $2)
           ON CONFLICT (gateway_id) DO UPDATE SET last_seen = now(),
               site = CASE WHEN g.site = '' THEN EXCLUDED.site ELSE g.site END
           RETURNING site""", gateway_id, site)
    if site and registered != site:
        raise GatewayIdentityError(
            f"gateway_id {gateway_id!r} is registered in the historian for site {registered!r}, "
            f"not {site!r}: each gateway of the fleet needs its own gateway_id (or, if this "
            f"gateway moved, UPDATE gateways SET site = '{site}' WHERE gateway_id = "
            f"'{gateway_id}')")


async def _sync_tags(conn: asyncpg.Connection, catalog: Catalog, gateway_id: str) -> int:
    # COPY through a temporary table: a catalog with thousands of synthetic tags would take
    # seconds as row-by-row upserts.
    await conn.execute("""CREATE TEMP TABLE catalog_tags_sync
                          (LIKE process_tags INCLUDING DEFAULTS) ON COMMIT DROP""")
    records = [(gateway_id, t.id, t.name, t.unit_id, t.equipment_id, t.engineering_units, t.tag_type.value,
                t.normal_min, t.normal_max, t.ll, t.hh, t.instrument_min, t.instrument_max,
                t.deadband, t.description, t.is_critical) for t in catalog.tags]
    await conn.copy_records_to_table("catalog_tags_sync", records=records, columns=_TAG_COLUMNS)
    columns = ", ".join(_TAG_COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _TAG_COLUMNS[2:])
    changed = ' OR '.join(f"p.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in _TAG_COLUMNS[2:])
    await conn.execute(
        f"""INSERT INTO process_tags AS p ({columns}) SELECT {columns} FROM catalog_tags_sync
            ORDER BY tag_id
            ON CONFLICT (gateway_id, tag_id) DO UPDATE SET {updates}, updated_at = now()
            WHERE {changed}""")
    return len(records)


async def sync_catalog(conn: asyncpg.Connection, catalog: Catalog, *, gateway_id: str,
                       site: str = "") -> SyncReport:
    """Register the gateway and upsert its plant catalog rows, in one transaction."""
    plant = catalog.plant
    async with conn.transaction():
        await register_gateway(conn, gateway_id, site)
        await conn.executemany(
            """INSERT INTO process_units (gateway_id, unit_id, name, type, description, capacity,
                                          energy_benchmark_kwh_bbl, energy_target_kwh_bbl)
               VALUES ($8, $1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (gateway_id, unit_id) DO UPDATE SET name = EXCLUDED.name, type = EXCLUDED.type,
                   description = EXCLUDED.description, capacity = EXCLUDED.capacity,
                   energy_benchmark_kwh_bbl = EXCLUDED.energy_benchmark_kwh_bbl,
                   energy_target_kwh_bbl = EXCLUDED.energy_target_kwh_bbl, updated_at = now()""",
            [(u.id, u.name, u.type, u.description, u.capacity_bpd, u.energy_benchmark_kwh_bbl,
              u.energy_target_kwh_bbl, gateway_id) for u in plant.units])
        await conn.executemany(
            """INSERT INTO equipment (gateway_id, equipment_id, equipment_name, equipment_type,
                                      unit_id, manufacturer, installation_date)
               VALUES ($7, $1, $2, $3, $4, $5, $6)
               ON CONFLICT (gateway_id, equipment_id) DO UPDATE SET
                   equipment_name = EXCLUDED.equipment_name,
                   equipment_type = EXCLUDED.equipment_type, unit_id = EXCLUDED.unit_id,
                   manufacturer = EXCLUDED.manufacturer,
                   installation_date = EXCLUDED.installation_date, updated_at = now()""",
            [(e.id, e.name, e.type, e.unit_id, e.manufacturer, e.installation_date, gateway_id)
             for e in plant.equipment])
        tags = await _sync_tags(conn, catalog, gateway_id)
        await conn.executemany(
            """INSERT INTO tanks (gateway_id, tank_id, name, product, capacity, level_tag,
                                  unit_id, low_level_pct, high_level_pct)
               VALUES ($9, $1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (gateway_id, tank_id) DO UPDATE SET name = EXCLUDED.name,
                   product = EXCLUDED.product, capacity = EXCLUDED.capacity,
                   level_tag = EXCLUDED.level_tag, unit_id = EXCLUDED.unit_id,
                   low_level_pct = EXCLUDED.low_level_pct,
                   high_level_pct = EXCLUDED.high_level_pct""",
            [(t.id, t.name, t.product, t.capacity_l, t.level_tag, t.unit_id, t.low_level_pct,
              t.high_level_pct, gateway_id) for t in plant.tanks])
        inserted = 0
        for item in plant.inventory:
            status = await conn.execute(
                """INSERT INTO inventory (gateway_id, sku, item, quantity, unit, status, location,
                                          reorder_level, critical_level)
                   VALUES ($9, $1, $2, $3, $4, $5, coalesce(nullif($6, ''), 'Almacén Central'),
                           $7, $8)
                   ON CONFLICT (gateway_id, sku) DO NOTHING""",
                item.sku, item.item, item.quantity, item.unit, inventory_status(item),
                item.location, item.reorder_level, item.critical_level, gateway_id)
            inserted += int(status.rsplit(" ", 1)[-1])
    return SyncReport(len(plant.units), len(plant.equipment), tags, len(plant.tanks), inserted)
