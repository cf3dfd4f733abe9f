"""Reads from the historian: latest values and history at the resolution the span calls for."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.quality import Quality, Reason
from gateway.store.postgres.derived import fold_new_chunks
from gateway.store.postgres.policy import Backend
from gateway.store.postgres.reads import DatabaseReads, Resolution, ResolutionPolicy
from tests.support.pg import *  # noqa: F403  (fixtures)
from tests.support.pg import GATEWAY_ID, drain, ramp_scans

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
HOUR = 3600.0


def test_span_chooses_raw_hourly_or_daily():
    policy = ResolutionPolicy()
    assert policy.choose(0, 3 * HOUR) is Resolution.RAW
    assert policy.choose(0, 7 * 24 * HOUR) is Resolution.HOURLY
    assert policy.choose(0, 90 * 24 * HOUR) is Resolution.DAILY


@pytest.fixture
async def written(store, catalog, pg_schema, pg_conn):
    tags = np.array([0, 1], dtype=np.int32)
    for b in ramp_scans(tags, START, 10, period_s=600.0):  # 10 scans, 10 minutes apart
        await store.append(b)
    await drain(store, catalog, pg_schema, batch_rows=4)
    await fold_new_chunks(pg_conn, Backend.PLAIN)  # latest values and rollups


async def test_latest_returns_the_newest_sample_per_tag(written, catalog, pg_conn):
    latest = await DatabaseReads(pg_conn, catalog, GATEWAY_ID).latest(np.array([0, 1, 2], dtype=np.int32))
    assert latest.values[:2].tolist() == [9.0, 1009.0]
    assert latest.source_ts[:2].tolist() == [START + 5400.0] * 2
    assert (latest.quality[2], latest.reason[2]) == (Quality.BAD, Reason.NOT_READ)


async def test_short_spans_read_raw_rows(written, catalog, pg_conn):
    history = await DatabaseReads(pg_conn, catalog, GATEWAY_ID).history(1, START, START + HOUR)
    assert not history.downsampled
    assert history.values.tolist() == [1000.0 + j for j in range(6)]


async def test_long_spans_read_the_hourly_rollup(written, catalog, pg_conn):
    history = await DatabaseReads(pg_conn, catalog, GATEWAY_ID).history(0, START, START + 2 * 24 * HOUR)
    assert history.downsampled
    assert history.mean.tolist() == [2.5, 7.5]
    assert history.values.tolist() == [5.0, 9.0]
    assert history.count.tolist() == [6, 4]


async def test_very_long_spans_read_the_daily_rollup(written, catalog, pg_conn):
    history = await DatabaseReads(pg_conn, catalog, GATEWAY_ID).history(0, START, START + 90 * 24 * HOUR)
    assert (history.minimum.tolist(), history.maximum.tolist(), history.count.tolist()) == ([0.0], [9.0], [10])


async def test_raw_history_is_reduced_to_max_points(written, catalog, pg_conn):
    history = await DatabaseReads(pg_conn, catalog, GATEWAY_ID).history(0, START, START + 2 * HOUR, max_points=2)
    assert len(history) == 2 and history.downsampled
