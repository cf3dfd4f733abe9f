"""The plant catalog is upserted at writer start; operators' inventory edits are kept."""

from __future__ import annotations

from gateway.store.postgres.catalog_sync import sync_catalog
from tests.support.pg import *  # noqa: F403  (fixtures)


async def test_catalog_rows_appear_in_the_database(pg_migrated, catalog):
    report = await sync_catalog(pg_migrated, catalog, gateway_id="edge-01", site="paraguana")
    counts = {t: await pg_migrated.fetchval(f"SELECT count(*) FROM {t}")
              for t in ("process_units", "equipment", "process_tags", "tanks", "inventory")}
    assert counts == {"process_units": 4, "equipment": 9, "process_tags": len(catalog), "tanks": 5,
                      "inventory": 6}
    assert report.inventory_inserted == 6


async def test_seed_ids_and_names_are_kept(pg_migrated, catalog):
    await sync_catalog(pg_migrated, catalog, gateway_id="edge-01")
    row = await pg_migrated.fetchrow("SELECT tag_name, unit_id, min_val, max_val FROM process_tags WHERE tag_id = 'TI-101'")
    assert tuple(row) == ("Temp. Salida Horno CDU-101", "CDU-101", 340.0, 360.0)


async def test_operator_inventory_edits_survive_a_resync(pg_migrated, catalog):
    await sync_catalog(pg_migrated, catalog, gateway_id="edge-01")
    await pg_migrated.execute("UPDATE inventory SET quantity = 7, location = 'Patio' WHERE sku = 'CAT-ZSM5'")
    report = await sync_catalog(pg_migrated, catalog, gateway_id="edge-01")
    row = await pg_migrated.fetchrow("SELECT quantity, location FROM inventory WHERE sku = 'CAT-ZSM5'")
    assert (row["quantity"], row["location"], report.inventory_inserted) == (7.0, "Patio", 0)


async def test_runtime_status_columns_survive_a_resync(pg_migrated, catalog):
    await sync_catalog(pg_migrated, catalog, gateway_id="edge-01")
    await pg_migrated.execute("UPDATE equipment SET status = 'MAINTENANCE' WHERE equipment_id = 'PUMP-101'")
    await pg_migrated.execute("UPDATE tanks SET current_level = 100, status = 'FILLING' WHERE tank_id = 'TK-101'")
    await sync_catalog(pg_migrated, catalog, gateway_id="edge-01")
    assert await pg_migrated.fetchval("SELECT status FROM equipment WHERE equipment_id = 'PUMP-101'") == "MAINTENANCE"
    assert await pg_migrated.fetchval("SELECT status FROM tanks WHERE tank_id = 'TK-101'") == "FILLING"


async def test_catalog_changes_are_applied_on_resync(pg_migrated, catalog):
    await sync_catalog(pg_migrated, catalog, gateway_id="edge-01")
    await pg_migrated.execute("UPDATE process_tags SET max_val = 355 WHERE tag_id = 'TI-101'")
    await sync_catalog(pg_migrated, catalog, gateway_id="edge-01")
    assert await pg_migrated.fetchval("SELECT max_val FROM process_tags WHERE tag_id = 'TI-101'") == 360.0
