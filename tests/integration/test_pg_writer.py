"""The historian writer drains the embedded store into PostgreSQL exactly once, in order."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import numpy as np
import pytest

from drivers.quality import Quality
from gateway.store.postgres.derived import fold_new_chunks
from gateway.store.postgres.policy import Backend
from gateway.store.postgres.writer import DatabaseWriter, WriterState
from tests.support.pg import *  # noqa: F403  (fixtures)
from tests.support.pg import TEST_DATABASE_URL, ramp_scans, scan
from tests.support.tcp_proxy import TcpProxy

GATEWAY = "edge-test"
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def writer_for(store, catalog, schema, url=TEST_DATABASE_URL, batch_rows=500, **kwargs) -> DatabaseWriter:
    return DatabaseWriter(url, store, catalog, GATEWAY, batch_rows, schema=schema, timescale=False,
                          idle_poll_s=0.02, retry_initial_s=0.05, retry_max_s=0.2, **kwargs)


async def wait_until(predicate, timeout_s: float = 20.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout_s)


@contextlib.asynccontextmanager
async def running(writer: DatabaseWriter):
    task = asyncio.create_task(writer.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def rows(conn: asyncpg.Connection) -> list[tuple]:
    return [tuple(r) for r in await conn.fetch(
        "SELECT tag_id, extract(epoch FROM time)::float8, value, quality FROM process_data "
        "ORDER BY tag_id, time")]


def expected_rows(catalog, batches) -> list[tuple]:
    out = []
    for b in batches:
        for i, ts, v, q in zip(b.tag_index.tolist(), b.source_ts.tolist(), b.values.tolist(),
                               b.quality.tolist(), strict=True):
            out.append((catalog.tags[i].id, ts, None if not np.isfinite(v) else v, q))
    return sorted(out)


async def test_writer_drains_the_backlog_row_for_row(store, catalog, pg_schema, pg_conn):
    tags = np.arange(len(catalog), dtype=np.int32)
    batches = ramp_scans(tags, START, 20)
    for b in batches:
        last_id = await store.append(b)
    writer = writer_for(store, catalog, pg_schema)
    async with running(writer):
        await wait_until(lambda: store.forwarded_id == last_id)
    assert await rows(pg_conn) == expected_rows(catalog, batches)
    assert writer.stats.rows_written == len(tags) * 20
    assert writer.stats.backlog_values == 0


async def test_non_finite_values_are_stored_as_null_with_their_quality(store, catalog, pg_schema, pg_conn):
    tags = np.array([0, 1, 2], dtype=np.int32)
    batch = scan(tags, START, np.array([1.5, np.nan, np.inf]),
                 np.array([Quality.GOOD, Quality.BAD, Quality.BAD], dtype=np.uint8))
    batch_id = await store.append(batch)
    async with running(writer_for(store, catalog, pg_schema)):
        await wait_until(lambda: store.forwarded_id == batch_id)
    stored = {r[0]: (r[2], r[3]) for r in await rows(pg_conn)}
    assert stored == {catalog.tags[0].id: (1.5, 192), catalog.tags[1].id: (None, 64),
                      catalog.tags[2].id: (None, 64)}


async def test_latest_table_holds_the_newest_value_of_each_tag_after_a_fold(store, catalog, pg_schema, pg_conn):
    tags = np.arange(5, dtype=np.int32)
    for b in ramp_scans(tags, START, 3):
        last = await store.append(b)
    async with running(writer_for(store, catalog, pg_schema, batch_rows=5)):
        await wait_until(lambda: store.forwarded_id == last)
    await fold_new_chunks(pg_conn, Backend.PLAIN)
    latest = await pg_conn.fetch("SELECT tag_id, value FROM process_data_latest ORDER BY tag_id")
    assert sorted((r["tag_id"], r["value"]) for r in latest) == sorted(
        (catalog.tags[k].id, 1000.0 * k + 2) for k in range(5))


async def test_outage_loses_nothing_duplicates_nothing_and_keeps_order(store, catalog, pg_schema, pg_conn):
    proxy = await TcpProxy("127.0.0.1", 5432).start()
    url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test"
    tags = np.arange(len(catalog), dtype=np.int32)
    writer = writer_for(store, catalog, pg_schema, url=url, batch_rows=len(tags) * 3)
    written = []
    try:
        async with running(writer):
            await wait_until(lambda: writer.stats.state is WriterState.CONNECTED)
            for j, b in enumerate(ramp_scans(tags, START, 120)):
                written.append(b)
                last = await store.append(b)
                if j == 30:
                    await wait_until(lambda: store.forwarded_id > 0)  # forwarding under load
                    proxy.cut()
                    forwarded_at_cut = store.forwarded_id
                    await wait_until(lambda: writer.stats.state is WriterState.DISCONNECTED)
                if j == 80:
                    proxy.restore()
                await asyncio.sleep(0.005)
            await wait_until(lambda: store.forwarded_id == last)
    finally:
        await proxy.close()
    assert writer.stats.connects >= 2
    assert 0 < forwarded_at_cut < last
    stored = await rows(pg_conn)
    assert stored == expected_rows(catalog, written)
    # Values of every tag were generated increasing with time: order per tag is kept.
    for k in (0, len(tags) - 1):
        values = [r[2] for r in stored if r[0] == catalog.tags[k].id]
        assert values == sorted(values)


async def test_stats_report_backlog_and_lag_while_the_database_is_unreachable(store, catalog, pg_schema):
    proxy = await TcpProxy("127.0.0.1", 5432).start()
    proxy.cut()
    url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test"
    clock_now = START + 90.0
    writer = writer_for(store, catalog, pg_schema, url=url, clock=lambda: clock_now)
    tags = np.arange(10, dtype=np.int32)
    for b in ramp_scans(tags, START, 5):
        await store.append(b)
    try:
        async with running(writer):
            await wait_until(lambda: writer.stats.last_error is not None and writer.stats.backlog_values)
    finally:
        await proxy.close()
    assert writer.stats.state in (WriterState.DISCONNECTED, WriterState.STOPPED)
    assert writer.stats.backlog_values == 50
    assert writer.stats.lag_s == pytest.approx(90.0)


class CrashAfterCommit(DatabaseWriter):
    """Dies (as a SIGKILL would) after its first commit, before set_forwarded."""

    async def _mark_forwarded(self, upto_id: int) -> None:
        raise asyncio.CancelledError


async def test_crash_between_commit_and_forward_writes_no_duplicates(store, catalog, pg_schema, pg_conn):
    tags = np.arange(len(catalog), dtype=np.int32)
    batches = ramp_scans(tags, START, 10)
    for b in batches:
        last = await store.append(b)
    crashing = CrashAfterCommit(TEST_DATABASE_URL, store, catalog, GATEWAY, len(tags) * 4,
                                schema=pg_schema, timescale=False)
    with pytest.raises(asyncio.CancelledError):
        await crashing.run()
    assert crashing.stats.rows_written == len(tags) * 4
    assert store.forwarded_id == 0

    restarted = writer_for(store, catalog, pg_schema, batch_rows=len(tags) * 4)
    async with running(restarted):
        await wait_until(lambda: store.forwarded_id == last)
    assert await rows(pg_conn) == expected_rows(catalog, batches)
    assert restarted.stats.rows_duplicate == len(tags) * 4
