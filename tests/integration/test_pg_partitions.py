"""Plain PostgreSQL: daily partitions created ahead and dropped by the retention policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.store.postgres.migrate import migrate
from gateway.store.postgres.policy import RetentionPolicy
from gateway.store.postgres.retention import ensure_partitions, maintain
from tests.support.pg import *  # noqa: F403  (fixtures)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


async def partitions(conn) -> list[str]:
    return [r[0] for r in await conn.fetch(
        """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'process_data'::regclass ORDER BY c.relname""")]


async def test_maintenance_creates_todays_partition_and_the_days_ahead(pg_migrated):
    report = await maintain(pg_migrated, NOW)
    assert report.partitions_created == 3
    assert await partitions(pg_migrated) == ["process_data_20260310", "process_data_20260311",
                                             "process_data_20260312"]


async def test_maintenance_is_idempotent(pg_migrated):
    await maintain(pg_migrated, NOW)
    again = await maintain(pg_migrated, NOW)
    assert (again.partitions_created, again.partitions_dropped) == (0, 0)


async def test_partitions_are_utc_days(pg_migrated):
    await ensure_partitions(pg_migrated, NOW, NOW)
    bound = await pg_migrated.fetchval(
        "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'process_data_20260310'")
    assert "2026-03-10 00:00:00+00" in bound and "2026-03-11 00:00:00+00" in bound


async def test_retention_drops_partitions_wholly_older_than_raw_retention(pg_conn):
    await migrate(pg_conn, timescale=False, retention=RetentionPolicy(
        raw_hot=timedelta(days=2), raw_retention=timedelta(days=5), rollup_retention=timedelta(days=30)))
    await ensure_partitions(pg_conn, NOW - timedelta(days=8), NOW)
    report = await maintain(pg_conn, NOW)
    # Cutoff 2026-03-05T12:00Z: days 02, 03, 04 end before it; day 05 straddles it and stays.
    assert report.partitions_dropped == 3
    remaining = await partitions(pg_conn)
    assert remaining[0] == "process_data_20260305" and remaining[-1] == "process_data_20260312"


async def test_retention_deletes_rollups_older_than_rollup_retention(pg_conn):
    await migrate(pg_conn, timescale=False, retention=RetentionPolicy(
        raw_hot=timedelta(days=1), raw_retention=timedelta(days=2), rollup_retention=timedelta(days=10)))
    await pg_conn.execute("INSERT INTO gateways (gateway_id) VALUES ('gw')")
    await pg_conn.execute("INSERT INTO process_tags (gateway_id, tag_id, tag_name, min_val, max_val) "
                          "VALUES ('gw', 'T', 'T', 0, 1)")
    for age_days in (11, 9):
        await pg_conn.execute(
            """INSERT INTO process_data_hourly (bucket, gateway_id, tag_id, value_min, value_max,
                                                value_sum, value_last, last_time, samples)
               VALUES ($1, 'gw', 'T', 1, 1, 1, 1, $1, 1)""", NOW - timedelta(days=age_days))
    report = await maintain(pg_conn, NOW)
    assert report.rollup_rows_deleted == 1
    assert await pg_conn.fetchval("SELECT count(*) FROM process_data_hourly") == 1


async def test_data_written_lands_in_its_days_partition(pg_migrated):
    await ensure_partitions(pg_migrated, NOW, NOW)
    await pg_migrated.execute("INSERT INTO gateways (gateway_id) VALUES ('gw')")
    await pg_migrated.execute("INSERT INTO process_tags (gateway_id, tag_id, tag_name, min_val, max_val) "
                          "VALUES ('gw', 'T', 'T', 0, 1)")
    await pg_migrated.execute("INSERT INTO process_data (time, gateway_id, tag_id, value, quality) "
                              "VALUES ($1, 'gw', 'T', 1, 192)", NOW)
    assert await pg_migrated.fetchval("SELECT count(*) FROM process_data_20260310") == 1
