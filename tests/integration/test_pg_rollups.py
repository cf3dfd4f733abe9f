"""Plain PostgreSQL rollups folded from raw rows match a hand computation, whatever the
chunking, however often the fold runs, and after a crash of the writer."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from drivers.quality import Quality
from gateway.store.postgres.derived import fold_new_chunks
from gateway.store.postgres.policy import Backend
from gateway.store.postgres.writer import DatabaseWriter
from tests.support.pg import *  # noqa: F403  (fixtures)
from tests.support.pg import TEST_DATABASE_URL, drain, scan

HOUR = 3600.0
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
TAG = 0


# (time offset s, value, quality): two hours of day 1 and one sample on day 2.
SAMPLES = [
    (0.0, 10.0, Quality.GOOD), (600.0, 30.0, Quality.GOOD), (1200.0, 999.0, Quality.BAD),
    (1800.0, 20.0, Quality.GOOD), (HOUR + 60, 5.0, Quality.GOOD), (HOUR + 120, 7.0, Quality.DOUBTFUL),
    (24 * HOUR + 1, 42.0, Quality.GOOD),
]


async def write_samples(store, samples) -> None:
    for offset, value, quality in samples:
        await store.append(scan(np.array([TAG]), START + offset, np.array([value]),
                                np.array([quality], dtype=np.uint8)))


async def drain_and_fold(store, catalog, schema, conn, batch_rows: int = 2):
    writer = await drain(store, catalog, schema, batch_rows)
    await fold_new_chunks(conn, Backend.PLAIN)
    return writer


async def rollup(conn, table):
    return [tuple(r) for r in await conn.fetch(
        f"""SELECT extract(epoch FROM bucket)::float8 - $1, value_min, value_max, value_avg,
                   value_last, extract(epoch FROM last_time)::float8 - $1, samples
            FROM process_data_{table} ORDER BY bucket""", START)]


async def test_hourly_rollup_matches_a_hand_computation_over_good_values(store, catalog, pg_schema, pg_conn):
    await write_samples(store, SAMPLES)
    await drain_and_fold(store, catalog, pg_schema, pg_conn)
    assert await rollup(pg_conn, "hourly") == [
        (0.0, 10.0, 30.0, 20.0, 20.0, 1800.0, 3),
        (HOUR, 5.0, 5.0, 5.0, 5.0, HOUR + 60, 1),
        (24 * HOUR, 42.0, 42.0, 42.0, 42.0, 24 * HOUR + 1, 1),
    ]


async def test_daily_rollup_matches_a_hand_computation_over_good_values(store, catalog, pg_schema, pg_conn):
    await write_samples(store, SAMPLES)
    await drain_and_fold(store, catalog, pg_schema, pg_conn)
    assert await rollup(pg_conn, "daily") == [
        (0.0, 5.0, 30.0, pytest.approx(65.0 / 4), 5.0, HOUR + 60, 4),
        (24 * HOUR, 42.0, 42.0, 42.0, 42.0, 24 * HOUR + 1, 1),
    ]


async def test_late_values_merge_into_their_bucket_keeping_the_newest_as_last(store, catalog, pg_schema, pg_conn):
    await write_samples(store, [(1800.0, 20.0, Quality.GOOD)])
    await drain_and_fold(store, catalog, pg_schema, pg_conn)
    await write_samples(store, [(0.0, 10.0, Quality.GOOD)])
    await drain_and_fold(store, catalog, pg_schema, pg_conn)
    assert await rollup(pg_conn, "hourly") == [(0.0, 10.0, 20.0, 15.0, 20.0, 1800.0, 2)]


async def test_folding_again_changes_nothing(store, catalog, pg_schema, pg_conn):
    await write_samples(store, SAMPLES)
    await drain_and_fold(store, catalog, pg_schema, pg_conn)
    before = await rollup(pg_conn, "hourly")
    assert await fold_new_chunks(pg_conn, Backend.PLAIN) == []
    assert await rollup(pg_conn, "hourly") == before


class CrashAfterCommit(DatabaseWriter):
    """Dies (as a SIGKILL would) after its first commit, before set_forwarded."""

    async def _mark_forwarded(self, upto_id: int) -> None:
        raise asyncio.CancelledError


async def test_a_chunk_committed_before_a_crash_is_counted_once(store, catalog, pg_schema, pg_conn):
    await write_samples(store, SAMPLES)
    crashing = CrashAfterCommit(TEST_DATABASE_URL, store, catalog, "edge-test", 100,
                                schema=pg_schema, timescale=False)
    with pytest.raises(asyncio.CancelledError):
        await crashing.run()
    assert store.forwarded_id == 0  # the store still holds every sample as unforwarded
    writer = await drain_and_fold(store, catalog, pg_schema, pg_conn, batch_rows=100)
    assert writer.stats.rows_duplicate == len(SAMPLES)
    assert [r[-1] for r in await rollup(pg_conn, "hourly")] == [3, 1, 1]
