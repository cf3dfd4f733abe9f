"""The embedded store as store-and-forward buffer: the database writer's cursor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drivers.batch import Batch
from drivers.quality import Quality, Reason
from gateway.store.embedded import Backlog, EmbeddedStore

DAY = 86_400.0


def make_batch(n_values: int, scan_start: float) -> Batch:
    return Batch.build("fast", "plc-1", scan_start, scan_start, np.arange(n_values),
                       np.full(n_values, scan_start), np.full(n_values, Quality.GOOD),
                       np.full(n_values, Reason.NONE))


@pytest.fixture
async def store(tmp_path: Path):
    store = EmbeddedStore(tmp_path / "store.db", retention_s=DAY, max_bytes=10**9, forwarding=True)
    await store.open()
    yield store
    await store.close()


async def reopen(store: EmbeddedStore) -> EmbeddedStore:
    await store.close()
    again = EmbeddedStore(store.path, store.retention_s, store.max_bytes, forwarding=True)
    await again.open()
    return again


async def test_pending_returns_batches_after_the_cursor_oldest_first(store):
    ids = [await store.append(make_batch(10, 100.0 + i)) for i in range(5)]
    pending = await store.pending(after_id=ids[1], max_values=1000)
    assert [p.id for p in pending] == ids[2:]
    assert [p.batch.scan_start for p in pending] == [102.0, 103.0, 104.0]


async def test_pending_stops_at_max_values(store):
    ids = [await store.append(make_batch(10, 100.0 + i)) for i in range(5)]
    pending = await store.pending(after_id=0, max_values=25)
    assert [p.id for p in pending] == ids[:2]


async def test_pending_returns_one_batch_even_when_it_exceeds_max_values(store):
    batch_id = await store.append(make_batch(500, 100.0))
    assert [p.id for p in await store.pending(after_id=0, max_values=10)] == [batch_id]


async def test_pending_is_empty_when_everything_is_forwarded(store):
    batch_id = await store.append(make_batch(10, 100.0))
    assert await store.pending(after_id=batch_id, max_values=10) == []


async def test_backlog_counts_what_is_not_yet_forwarded(store):
    ids = [await store.append(make_batch(10, 100.0 + i)) for i in range(4)]
    assert store.backlog == Backlog(batches=4, values=40)
    await store.set_forwarded(ids[2])
    assert store.backlog == Backlog(batches=1, values=10)
    assert store.forwarded_id == ids[2]


async def test_forwarded_cursor_and_backlog_survive_reopen(store):
    ids = [await store.append(make_batch(10, 100.0 + i)) for i in range(4)]
    await store.set_forwarded(ids[1])
    store = await reopen(store)
    try:
        assert store.forwarded_id == ids[1]
        assert store.backlog == Backlog(batches=2, values=20)
        assert [p.id for p in await store.pending(store.forwarded_id, 1000)] == ids[2:]
    finally:
        await store.close()


async def test_forwarded_cursor_never_moves_back(store):
    ids = [await store.append(make_batch(10, 100.0 + i)) for i in range(3)]
    await store.set_forwarded(ids[2])
    await store.set_forwarded(ids[0])
    assert store.forwarded_id == ids[2]
    assert store.backlog == Backlog()


async def test_forwarded_cursor_cannot_pass_the_last_appended_id(store):
    batch_id = await store.append(make_batch(10, 100.0))
    await store.set_forwarded(batch_id + 100)
    later = await store.append(make_batch(10, 101.0))
    assert store.forwarded_id == batch_id
    assert [p.id for p in await store.pending(store.forwarded_id, 1000)] == [later]


async def test_backlog_is_zero_when_forwarding_is_off(tmp_path):
    store = EmbeddedStore(tmp_path / "local.db", retention_s=DAY, max_bytes=10**9)
    await store.open()
    try:
        await store.append(make_batch(10, 100.0))
        assert store.backlog == Backlog()
    finally:
        await store.close()
