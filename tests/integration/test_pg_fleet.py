"""Many gateways, one historian: identity on every row, migration 0007 from an older schema,
and N gateways starting (migrating, syncing their catalog, adopting their cursor) at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np
import pytest

from gateway.store.embedded import EmbeddedStore
from gateway.store.postgres import cursor as fwd
from gateway.store.postgres.catalog_sync import GatewayIdentityError, register_gateway, sync_catalog
from gateway.store.postgres.connection import connect
from gateway.store.postgres.derived import fold_new_chunks
from gateway.store.postgres.migrate import MigrationError, load_migrations, migrate, timescale_available
from gateway.store.postgres.policy import Backend, RetentionPolicy
from gateway.store.postgres.reads import DatabaseReads, fleet_latest
from gateway.store.postgres.retention import ensure_partitions, maintain
from tests.support.pg import *  # noqa: F403  (fixtures)
from tests.support.pg import TEST_DATABASE_URL, drain, ramp_scans, scan

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
TAGS = np.array([0, 1, 2], dtype=np.int32)
CATALOG_TABLES = ("process_units", "equipment", "process_tags", "tanks", "inventory")
VERSIONS = [m.version for m in load_migrations(Backend.PLAIN)]


async def open_store(path) -> EmbeddedStore:
    store = EmbeddedStore(path, retention_s=86_400 * 365, max_bytes=1_000_000_000, forwarding=True)
    await store.open()
    return store


async def separate_connections(schema: str, n: int) -> list[asyncpg.Connection]:
    return list(await asyncio.gather(*(connect(TEST_DATABASE_URL, schema=schema) for _ in range(n))))


# -- identity ---------------------------------------------------------------------------------

async def test_two_gateways_with_the_same_tag_ids_keep_and_read_their_own_rows(catalog, pg_schema,
                                                                               pg_conn, tmp_path):
    gateways = {"cardon-gw1": ("cardon", 0.0), "amuay-gw1": ("amuay", 500.0)}
    for gateway_id, (site, offset) in gateways.items():
        store = await open_store(tmp_path / f"{gateway_id}.sqlite")
        try:
            for j in range(4):
                await store.append(scan(TAGS, START + 60.0 * j, 1000.0 * TAGS + j + offset))
            await drain(store, catalog, pg_schema, batch_rows=6, gateway_id=gateway_id, site=site)
        finally:
            await store.close()
    await fold_new_chunks(pg_conn, Backend.PLAIN)

    per_gateway = dict(await pg_conn.fetch(
        "SELECT gateway_id, count(*) FROM process_tags GROUP BY 1"))
    assert per_gateway == {"cardon-gw1": len(catalog), "amuay-gw1": len(catalog)}
    assert await pg_conn.fetchval("SELECT count(DISTINCT tag_id) FROM process_tags") == len(catalog)
    for gateway_id, (_, offset) in gateways.items():
        reads = DatabaseReads(pg_conn, catalog, gateway_id)
        latest = await reads.latest(TAGS)
        assert latest.values.tolist() == [3.0 + offset, 1003.0 + offset, 2003.0 + offset]
        history = await reads.history(1, START, START + 3600)
        assert history.values.tolist() == [1000.0 + j + offset for j in range(4)]
    sites = dict(await pg_conn.fetch("SELECT gateway_id, site FROM process_data_latest_enriched "
                                     "WHERE tag_id = $1", catalog.tags[0].id))
    assert sites == {"cardon-gw1": "cardon", "amuay-gw1": "amuay"}


async def test_fleet_latest_filters_by_site_and_gateway(catalog, pg_schema, pg_conn, tmp_path):
    for gateway_id, site in (("a-1", "a"), ("a-2", "a"), ("b-1", "b")):
        store = await open_store(tmp_path / f"{gateway_id}.sqlite")
        try:
            for b in ramp_scans(TAGS[:1], START, 2):
                await store.append(b)
            await drain(store, catalog, pg_schema, gateway_id=gateway_id, site=site)
        finally:
            await store.close()
    await fold_new_chunks(pg_conn, Backend.PLAIN)
    tag = catalog.tags[0].id
    everyone = await fleet_latest(pg_conn, [tag])
    assert [(r.site, r.gateway_id) for r in everyone] == [("a", "a-1"), ("a", "a-2"), ("b", "b-1")]
    assert [r.gateway_id for r in await fleet_latest(pg_conn, [tag], site="a")] == ["a-1", "a-2"]
    assert [r.gateway_id for r in await fleet_latest(pg_conn, [tag], gateway_id="b-1")] == ["b-1"]
    assert await fleet_latest(pg_conn, [tag], site="b", gateway_id="a-1") == []


async def test_a_gateway_id_registered_for_another_site_is_refused(pg_migrated):
    await register_gateway(pg_migrated, "gw-1", "cardon")
    with pytest.raises(GatewayIdentityError, match="registered in the historian for site 'cardon'"):
        await register_gateway(pg_migrated, "gw-1", "amuay")
    await register_gateway(pg_migrated, "gw-2", "")
    await register_gateway(pg_migrated, "gw-2", "amuay")  # a site for a gateway that had none
    assert await pg_migrated.fetchval("SELECT site FROM gateways WHERE gateway_id = 'gw-2'") == "amuay"


# -- migration 0007 from a populated 0006 schema -------------------------------------------------

async def populate_0006(conn: asyncpg.Connection, gateways: list[str]) -> None:
    """Rows as a 0006 schema held them: the catalog without gateway_id, time-series rows with."""
    for g in gateways:
        await conn.execute("INSERT INTO gateways (gateway_id, site) VALUES ($1, 'old-site')", g)
    await conn.execute("""INSERT INTO process_units (unit_id, name, type) VALUES ('U1', 'Unit', 'CDU')""")
    await conn.execute("""INSERT INTO equipment (equipment_id, equipment_name, equipment_type, unit_id)
                          VALUES ('P-1', 'Pump', 'PUMP', 'U1')""")
    await conn.execute("""INSERT INTO process_tags (tag_id, tag_name, unit_id, equipment_id, min_val, max_val)
                          VALUES ('TI-101', 'T', 'U1', 'P-1', 0, 10), ('LI-1', 'L', 'U1', NULL, 0, 100)""")
    await conn.execute("""INSERT INTO tanks (tank_id, name, product, capacity, level_tag, unit_id)
                          VALUES ('TK-1', 'Tank 1', 'crude', 1000, 'LI-1', 'U1')""")
    await conn.execute("""INSERT INTO inventory (sku, item, quantity, unit) VALUES ('SKU-1', 'x', 3, 'kg')""")
    if not gateways:
        return
    g = gateways[0]
    await conn.execute("SELECT process_data_ensure_partitions($1::timestamptz, $1::timestamptz)",
                       _ts(START))
    await conn.execute("""INSERT INTO process_data (time, gateway_id, tag_id, value, quality)
                          VALUES ($1, $2, 'TI-101', 5, 192)""", _ts(START), g)
    await conn.execute("""INSERT INTO process_data_latest (tag_id, gateway_id, time, value, quality)
                          VALUES ('TI-101', $2, $1, 5, 192)""", _ts(START), g)
    await conn.execute("""INSERT INTO process_data_hourly (bucket, gateway_id, tag_id, value_min,
                              value_max, value_sum, value_last, last_time, samples)
                          VALUES ($1, $2, 'TI-101', 5, 5, 5, 5, $1, 1)""", _ts(START), g)
    await conn.execute("INSERT INTO kpis (time, gateway_id, unit_id, oee) VALUES ($1, $2, 'U1', 0.8)",
                       _ts(START), g)
    await conn.execute("""INSERT INTO maintenance_predictions (time, gateway_id, equipment_id,
                              failure_probability, prediction) VALUES ($1, $2, 'P-1', 10, 'ok')""",
                       _ts(START), g)
    alert = await conn.fetchval(
        """INSERT INTO alerts (time, gateway_id, unit_id, tag_id, alarm_type, severity, message, state)
           VALUES ($1, $2, 'U1', 'TI-101', 'HI', 'HIGH', 'm', 'ACTIVE') RETURNING id""", _ts(START), g)
    await conn.execute("""INSERT INTO alarm_journal (time, gateway_id, alert_id, tag_id, event, to_state)
                          VALUES ($1, $2, $3, 'TI-101', 'ACTIVATE', 'ACTIVE')""", _ts(START), g, alert)


def _ts(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


ROW_TABLES = CATALOG_TABLES + ("process_data", "process_data_latest", "process_data_hourly", "kpis",
                               "maintenance_predictions", "alerts", "alarm_journal", "gateways")


async def row_counts(conn) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in ROW_TABLES}


async def owners(conn) -> dict[str, set[str]]:
    return {t: {r[0] for r in await conn.fetch(f"SELECT DISTINCT gateway_id FROM {t}")}
            for t in CATALOG_TABLES}


async def test_0007_keeps_every_row_of_a_single_gateway_schema_and_assigns_it(pg_conn, catalog):
    assert await migrate(pg_conn, timescale=False, upto=6) == VERSIONS[:6]
    await populate_0006(pg_conn, ["edge-01"])
    before = await row_counts(pg_conn)
    assert await migrate(pg_conn, timescale=False, gateway_id="another-gw") == [7, 8]
    assert await row_counts(pg_conn) == before
    assert await owners(pg_conn) == {t: {"edge-01"} for t in CATALOG_TABLES}
    # The old gateway's next start syncs into its own rows; a new gateway gets its own.
    await sync_catalog(pg_conn, catalog, gateway_id="edge-01", site="old-site")
    await sync_catalog(pg_conn, catalog, gateway_id="edge-02", site="new-site")
    assert await pg_conn.fetchval("SELECT count(*) FROM process_tags WHERE gateway_id = 'edge-02'") == len(catalog)
    assert await pg_conn.fetchval("SELECT value FROM process_data_latest WHERE gateway_id = 'edge-01'") == 5.0


async def test_0007_gives_rows_without_a_registered_gateway_to_the_migrating_one(pg_conn):
    await migrate(pg_conn, timescale=False, upto=6)
    await populate_0006(pg_conn, [])
    with pytest.raises(MigrationError, match="no gateway is registered"):
        await migrate(pg_conn, timescale=False)
    assert await migrate(pg_conn, timescale=False, gateway_id="edge-07", site="cardon") == [7, 8]
    assert await owners(pg_conn) == {t: {"edge-07"} for t in CATALOG_TABLES}
    assert tuple(await pg_conn.fetchrow("SELECT gateway_id, site FROM gateways")) == ("edge-07", "cardon")


async def test_0007_with_several_gateways_needs_a_catalog_owner_and_loses_nothing(pg_conn):
    await migrate(pg_conn, timescale=False, upto=6)
    await populate_0006(pg_conn, ["gw-a", "gw-b"])
    before = await row_counts(pg_conn)
    with pytest.raises(MigrationError, match="catalog-owner"):
        await migrate(pg_conn, timescale=False, gateway_id="gw-a")
    assert await pg_conn.fetchval("SELECT max(version) FROM schema_migrations") == 6
    with pytest.raises(MigrationError, match="not a registered gateway"):
        await migrate(pg_conn, timescale=False, catalog_owner="gw-z")
    assert await migrate(pg_conn, timescale=False, catalog_owner="gw-a") == [7, 8]
    after = await row_counts(pg_conn)
    copied = {t: before[t] for t in ("process_units", "equipment", "process_tags", "tanks")}
    assert after == {**before, **{t: 2 * n for t, n in copied.items()}}
    assert await owners(pg_conn) == {**{t: {"gw-a", "gw-b"} for t in copied}, "inventory": {"gw-a"}}


async def test_catalog_rows_of_another_gateway_cannot_be_referenced(pg_migrated, catalog):
    await sync_catalog(pg_migrated, catalog, gateway_id="gw-a")
    await register_gateway(pg_migrated, "gw-b")
    tag = catalog.tags[0].id
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await pg_migrated.execute("""INSERT INTO process_data_latest (tag_id, gateway_id, time, value, quality)
                                     VALUES ($1, 'gw-b', now(), 1, 192)""", tag)


# -- N gateways at once ---------------------------------------------------------------------------

async def test_concurrent_migrations_of_a_fresh_schema_apply_each_version_once(pg_schema):
    conns = await separate_connections(pg_schema, 4)  # each also creates the schema if missing
    try:
        results = await asyncio.gather(*(migrate(c, timescale=False, gateway_id=f"gw-{k}")
                                         for k, c in enumerate(conns)))
        recorded = [r[0] for r in await conns[0].fetch(
            "SELECT version FROM schema_migrations ORDER BY version")]
    finally:
        await asyncio.gather(*(c.close() for c in conns))
    assert sorted(v for r in results for v in r) == VERSIONS
    assert recorded == VERSIONS


async def test_catalog_syncs_of_several_gateways_at_once_give_one_row_set_each(pg_migrated, pg_schema,
                                                                               catalog):
    gateways = ["gw-a", "gw-b", "gw-a", "gw-b"]  # each twice: an overlapping restart
    conns = await separate_connections(pg_schema, len(gateways))
    try:
        await asyncio.gather(*(sync_catalog(c, catalog, gateway_id=g, site=g)
                               for c, g in zip(conns, gateways, strict=True)))
    finally:
        await asyncio.gather(*(c.close() for c in conns))
    for table, per_gateway in (("process_tags", len(catalog)), ("process_units", len(catalog.plant.units)),
                               ("inventory", len(catalog.plant.inventory))):
        counts = dict(await pg_migrated.fetch(f"SELECT gateway_id, count(*) FROM {table} GROUP BY 1"))
        assert counts == {"gw-a": per_gateway, "gw-b": per_gateway}, table


async def test_cursors_adopted_at_once_are_one_row_per_gateway(pg_migrated, pg_schema):
    gateways = ["gw-a", "gw-a", "gw-b", "gw-c"]
    conns = await separate_connections(pg_schema, len(gateways))
    try:
        cursors = await asyncio.gather(*(fwd.adopt(c, g, f"store-{g}", 0)
                                         for c, g in zip(conns, gateways, strict=True)))
    finally:
        await asyncio.gather(*(c.close() for c in conns))
    assert sorted(c.adoption.value for c in cursors) == ["new", "new", "new", "resumed"]
    rows = await pg_migrated.fetch("SELECT gateway_id, store_id FROM forwarding_cursor ORDER BY 1")
    assert [tuple(r) for r in rows] == [("gw-a", "store-gw-a"), ("gw-b", "store-gw-b"),
                                        ("gw-c", "store-gw-c")]


async def test_maintenance_passes_of_several_gateways_at_once_drop_each_partition_once(pg_conn, pg_schema):
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    await migrate(pg_conn, timescale=False, retention=RetentionPolicy(
        raw_hot=timedelta(days=2), raw_retention=timedelta(days=5), rollup_retention=timedelta(days=30)))
    await ensure_partitions(pg_conn, now - timedelta(days=8), now)
    conns = await separate_connections(pg_schema, 3)
    try:
        reports = await asyncio.gather(*(maintain(c, now) for c in conns))
    finally:
        await asyncio.gather(*(c.close() for c in conns))
    assert sorted(r.partitions_dropped for r in reports) == [0, 0, 3]


# -- TimescaleDB -----------------------------------------------------------------------------------

@pytest.mark.timescale
async def test_timescale_0007_keys_hypertable_rows_by_gateway(pg_conn, catalog):
    if not await timescale_available(pg_conn):
        pytest.skip("timescaledb is not in pg_available_extensions on this PostgreSQL server")
    await migrate(pg_conn, timescale=True, upto=6)
    await pg_conn.execute("INSERT INTO gateways (gateway_id) VALUES ('edge-01')")
    await pg_conn.execute("INSERT INTO process_units (unit_id, name, type) VALUES ('U1', 'Unit', 'CDU')")
    await pg_conn.execute("INSERT INTO kpis (time, gateway_id, unit_id, oee) VALUES (now(), 'edge-01', 'U1', 0.8)")
    assert await migrate(pg_conn, timescale=True) == [7, 8]
    fks = {r[0] for r in await pg_conn.fetch(
        """SELECT pg_get_constraintdef(oid) FROM pg_constraint
           WHERE conrelid = 'kpis'::regclass AND contype = 'f'""")}
    assert "FOREIGN KEY (gateway_id, unit_id) REFERENCES process_units(gateway_id, unit_id) ON UPDATE CASCADE" in fks
    await sync_catalog(pg_conn, catalog, gateway_id="edge-02")
    assert await pg_conn.fetchval("SELECT count(*) FROM kpis") == 1


@pytest.mark.timescale
async def test_timescale_schemas_set_up_and_torn_down_concurrently(pg_conn):
    if not await timescale_available(pg_conn):
        pytest.skip("timescaledb is not in pg_available_extensions on this PostgreSQL server")
    from tests.support.pg import temporary_schema

    async def one() -> None:
        async with temporary_schema("ts_fleet") as schema:
            conn = await connect(TEST_DATABASE_URL, schema=schema)
            try:
                await migrate(conn, timescale=True)
            finally:
                await conn.close()
    await asyncio.gather(*(one() for _ in range(3)))
