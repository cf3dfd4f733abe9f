"""The forwarding cursor: exactly-once without a unique key, across store replacements and
against a second writer using the same gateway id."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.store.embedded import EmbeddedStore
from gateway.store.postgres import cursor as fwd
from tests.support.pg import *  # noqa: F403  (fixtures)
from tests.support.pg import drain, ramp_scans

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
TAGS = np.arange(5, dtype=np.int32)


async def count(conn) -> int:
    return await conn.fetchval("SELECT count(*) FROM process_data")


async def test_cursor_row_records_the_last_committed_batch(store, catalog, pg_schema, pg_conn):
    for b in ramp_scans(TAGS, START, 4):
        last = await store.append(b)
    await drain(store, catalog, pg_schema, batch_rows=10)
    row = await pg_conn.fetchrow("SELECT batch_id, chunk_seq FROM forwarding_cursor WHERE gateway_id = 'edge-test'")
    assert (row["batch_id"], row["chunk_seq"]) == (last, 2)


async def test_rows_carry_their_chunk_number(store, catalog, pg_schema, pg_conn):
    for b in ramp_scans(TAGS, START, 4):
        await store.append(b)
    await drain(store, catalog, pg_schema, batch_rows=10)
    per_chunk = await pg_conn.fetch("SELECT chunk_seq, count(*) FROM process_data GROUP BY 1 ORDER BY 1")
    assert [tuple(r) for r in per_chunk] == [(1, 10), (2, 10)]


async def test_a_replaced_embedded_store_is_forwarded_from_its_own_start(store, catalog, pg_schema, pg_conn, tmp_path):
    for b in ramp_scans(TAGS, START, 3):
        await store.append(b)
    await drain(store, catalog, pg_schema)
    # A new state directory: its batch ids restart at 1, below the database's cursor.
    fresh = EmbeddedStore(tmp_path / "fresh.sqlite", 86_400 * 365, 1_000_000_000, forwarding=True)
    await fresh.open()
    try:
        for b in ramp_scans(TAGS, START + 100, 2):
            await fresh.append(b)
        writer = await drain(fresh, catalog, pg_schema)
    finally:
        await fresh.close()
    assert writer.stats.rows_duplicate == 0
    assert await count(pg_conn) == 5 * 3 + 5 * 2


async def test_a_second_writer_for_the_same_gateway_cannot_interleave(store, catalog, pg_schema, pg_conn):
    for b in ramp_scans(TAGS, START, 2):
        await store.append(b)
    await drain(store, catalog, pg_schema)
    row = await pg_conn.fetchrow("SELECT batch_id, chunk_seq FROM forwarding_cursor")
    stale = fwd.Cursor(row["batch_id"] - 1, row["chunk_seq"] - 1, fwd.Adoption.RESUMED)
    store_id = await pg_conn.fetchval("SELECT store_id FROM forwarding_cursor")
    with pytest.raises(fwd.CursorConflictError, match="same gateway_id"):
        async with pg_conn.transaction():
            await fwd.advance(pg_conn, "edge-test", store_id, stale, row["batch_id"] + 1)
