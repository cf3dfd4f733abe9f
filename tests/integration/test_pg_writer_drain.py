"""The writer after a stalled COPY: what the store gathered meanwhile is forwarded as soon as
the COPY commits, not after an idle poll."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import numpy as np
import pytest

from gateway.store.postgres.connection import connect
from gateway.store.postgres.writer import DatabaseWriter
from tests.support.pg import *  # noqa: F403  (fixtures)
from tests.support.pg import TEST_DATABASE_URL, scan

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
TAGS = np.array([0, 1, 2], dtype=np.int32)
GATEWAY = "edge-stall"

pytestmark = pytest.mark.timeout(60)


async def wait_until(predicate: Callable[[], Awaitable[bool]]) -> None:
    while not await predicate():
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(writer: DatabaseWriter):
    task = asyncio.create_task(writer.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_backlog_gathered_during_a_stalled_copy_is_forwarded_without_an_idle_poll(
        catalog, store, pg_schema, pg_conn):
    async def forwarded(batch_id: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return store.forwarded_id >= batch_id
        return check

    # First session: migrates, creates the day's partition, forwards one batch.
    first = await store.append(scan(TAGS, START, TAGS * 1.0))
    async with running(DatabaseWriter(TEST_DATABASE_URL, store, catalog, GATEWAY, 1_000,
                                      schema=pg_schema, timescale=False)):
        await wait_until(await forwarded(first))

    # Second session, with an idle poll that would outlast the test's timeout: only a read
    # of the store straight after the stalled COPY's commit forwards the batch appended
    # while it waited.
    second = await store.append(scan(TAGS, START + 1.0, TAGS * 1.0 + 1))
    lock = await connect(TEST_DATABASE_URL, schema=pg_schema)
    try:
        tr = lock.transaction()
        await tr.start()
        await lock.execute("LOCK TABLE process_data IN SHARE MODE")
        writer = DatabaseWriter(TEST_DATABASE_URL, store, catalog, GATEWAY, 1_000,
                                schema=pg_schema, timescale=False, migrate_on_start=False,
                                idle_poll_s=3600.0)
        async with running(writer):
            async def copy_waits() -> bool:
                return bool(await pg_conn.fetchval(
                    """SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                       JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE NOT l.granted AND n.nspname = $1""", pg_schema))
            await wait_until(copy_waits)
            third = await store.append(scan(TAGS, START + 2.0, TAGS * 1.0 + 2))
            await tr.commit()
            await wait_until(await forwarded(third))
        assert first < second < third
        assert writer.stats.chunks_written == 2  # the stalled chunk, then the one after it
    finally:
        await lock.close()
    rows = await pg_conn.fetch("SELECT value FROM process_data WHERE gateway_id = $1 "
                               "ORDER BY time, value", GATEWAY)
    assert [r["value"] for r in rows] == [0.0, 1.0, 2.0, 1.0, 2.0, 3.0, 2.0, 3.0, 4.0]
