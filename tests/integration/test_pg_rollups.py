"""Plain PostgreSQL rollups kept by the writer match a hand computation, even after replays."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.quality import Quality
from gateway.store.embedded import EmbeddedStore
from tests.support.pg import *  # noqa: F403  (fixtures)
from tests.support.pg import drain, scan

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


async def rollup(conn, table):
    return [tuple(r) for r in await conn.fetch(
        f"""SELECT extract(epoch FROM bucket)::float8 - $1, value_min, value_max, value_avg,
                   value_last, extract(epoch FROM last_time)::float8 - $1, samples
            FROM process_data_{table} ORDER BY bucket""", START)]


async def test_hourly_rollup_matches_a_hand_computation_over_good_values(store, catalog, pg_schema, pg_conn):
    await write_samples(store, SAMPLES)
    await drain(store, catalog, pg_schema)
    assert await rollup(pg_conn, "hourly") == [
        (0.0, 10.0, 30.0, 20.0, 20.0, 1800.0, 3),
        (HOUR, 5.0, 5.0, 5.0, 5.0, HOUR + 60, 1),
        (24 * HOUR, 42.0, 42.0, 42.0, 42.0, 24 * HOUR + 1, 1),
    ]


async def test_daily_rollup_matches_a_hand_computation_over_good_values(store, catalog, pg_schema, pg_conn):
    await write_samples(store, SAMPLES)
    await drain(store, catalog, pg_schema)
    assert await rollup(pg_conn, "daily") == [
        (0.0, 5.0, 30.0, pytest.approx(65.0 / 4), 5.0, HOUR + 60, 4),
        (24 * HOUR, 42.0, 42.0, 42.0, 42.0, 24 * HOUR + 1, 1),
    ]


async def test_late_values_merge_into_their_bucket_keeping_the_newest_as_last(store, catalog, pg_schema, pg_conn):
    await write_samples(store, [(1800.0, 20.0, Quality.GOOD)])
    await drain(store, catalog, pg_schema)
    await write_samples(store, [(0.0, 10.0, Quality.GOOD)])
    await drain(store, catalog, pg_schema)
    assert await rollup(pg_conn, "hourly") == [(0.0, 10.0, 20.0, 15.0, 20.0, 1800.0, 2)]


async def test_a_replayed_chunk_is_not_counted_twice(store, catalog, pg_schema, pg_conn):
    await write_samples(store, SAMPLES)
    await drain(store, catalog, pg_schema)
    # The same batches again, as a writer restarted after a crash before set_forwarded sees
    # them (the store's cursor never moves back, so replay through a second store).
    second = EmbeddedStore(store.path.with_name("replay.sqlite"), 86_400 * 365, 1_000_000_000,
                           forwarding=True)
    await second.open()
    try:
        await write_samples(second, SAMPLES)
        writer = await drain(second, catalog, pg_schema, batch_rows=100)
    finally:
        await second.close()
    assert writer.stats.rows_duplicate == len(SAMPLES)
    assert [r[-1] for r in await rollup(pg_conn, "hourly")] == [3, 1, 1]
