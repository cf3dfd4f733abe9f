"""TimescaleDB back-end: hypertables, compression, retention and continuous aggregates.

Runs only where the server offers the timescaledb extension; elsewhere every test skips
with the reason shown in the pytest summary.
"""

from __future__ import annotations

import numpy as np
import pytest

from drivers.quality import Quality
from gateway.store.postgres.migrate import migrate, timescale_available
from tests.support.pg import *  # noqa: F403  (fixtures)
from tests.support.pg import drain, scan

pytestmark = pytest.mark.timescale
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.fixture
async def ts_conn(pg_conn):
    if not await timescale_available(pg_conn):
        pytest.skip("timescaledb is not in pg_available_extensions on this PostgreSQL server")
    await migrate(pg_conn, timescale=True)
    return pg_conn


async def test_time_series_tables_are_hypertables(ts_conn):
    names = {r[0] for r in await ts_conn.fetch(
        """SELECT hypertable_name FROM timescaledb_information.hypertables
           WHERE hypertable_schema = current_schema()""")}
    assert {"process_data", "kpis", "energy_analysis"} <= names


async def test_process_data_compresses_segmented_by_tag(ts_conn):
    segment_by = {r[0] for r in await ts_conn.fetch(
        """SELECT attname FROM timescaledb_information.compression_settings
           WHERE hypertable_schema = current_schema() AND hypertable_name = 'process_data'
             AND segmentby_column_index IS NOT NULL""")}
    assert "tag_id" in segment_by


async def test_hourly_and_daily_continuous_aggregates_exist(ts_conn):
    views = {r[0] for r in await ts_conn.fetch(
        """SELECT view_name FROM timescaledb_information.continuous_aggregates
           WHERE view_schema = current_schema()""")}
    assert views == {"process_data_hourly", "process_data_daily"}


async def jobs(conn) -> list[tuple[str, str]]:
    return sorted((r[0], r[1]) for r in await conn.fetch(
        """SELECT proc_name, hypertable_name FROM timescaledb_information.jobs
           WHERE hypertable_schema = current_schema() OR hypertable_name IN
                 (SELECT materialization_hypertable_name FROM timescaledb_information.continuous_aggregates
                  WHERE view_schema = current_schema())"""))


async def test_compression_retention_and_refresh_policies_are_scheduled(ts_conn):
    procs = {p for p, _ in await jobs(ts_conn)}
    assert {"policy_compression", "policy_retention", "policy_refresh_continuous_aggregate"} <= procs


async def test_rerunning_migrate_keeps_one_job_per_policy(ts_conn):
    before = await jobs(ts_conn)
    assert await migrate(ts_conn, timescale=True) == []
    assert await jobs(ts_conn) == before


async def test_hourly_aggregate_matches_a_hand_computation(ts_conn, store, catalog, pg_schema):
    for offset, value, quality in [(0, 10.0, Quality.GOOD), (600, 30.0, Quality.GOOD),
                                   (1200, 999.0, Quality.BAD), (1800, 20.0, Quality.GOOD)]:
        await store.append(scan(np.array([0]), START + offset, np.array([value]),
                                np.array([quality], dtype=np.uint8)))
    await drain(store, catalog, pg_schema, batch_rows=10, timescale=True)
    await ts_conn.execute("CALL refresh_continuous_aggregate('process_data_hourly', NULL, NULL)")
    row = await ts_conn.fetchrow("SELECT value_min, value_max, value_avg, value_last, samples "
                                 "FROM process_data_hourly")
    assert tuple(row) == (10.0, 30.0, 20.0, 20.0, 3)
