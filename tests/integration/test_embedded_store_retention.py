"""Retention of the embedded store: by age, by file size, and the unforwarded-loss count."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from drivers.batch import Batch
from drivers.quality import Quality, Reason
from gateway.store.embedded import EmbeddedStore

HOUR = 3600.0
MB = 1024 * 1024


def make_batch(n_values: int, scan_start: float, first_tag: int = 0) -> Batch:
    # Distinct values per scan, so SQLite cannot share or shrink anything.
    values = scan_start + np.arange(n_values) / 7.0
    return Batch.build("fast", "plc-1", scan_start, scan_start,
                       np.arange(first_tag, first_tag + n_values), values,
                       np.full(n_values, Quality.GOOD), np.full(n_values, Reason.NONE))


async def open_store(path: Path, retention_s: float = HOUR, max_bytes: int = 10**9,
                     forwarding: bool = False) -> EmbeddedStore:
    store = EmbeddedStore(path, retention_s=retention_s, max_bytes=max_bytes, forwarding=forwarding)
    await store.open()
    return store


def file_bytes(path: Path) -> int:
    return sum(os.stat(p).st_size for p in (path, Path(f"{path}-wal")) if p.exists())


async def test_age_retention_deletes_batches_older_than_retention(tmp_path):
    store = await open_store(tmp_path / "s.db", retention_s=HOUR)
    try:
        for i in range(10):
            await store.append(make_batch(10, 1000.0 + i * 600))
        deleted = await store.enforce_retention(now=2400.0 + HOUR)
        assert deleted.batches == 3
        stats = await store.stats()
        assert stats["rows"] == 7 and stats["oldest_ts"] == 1000.0 + 3 * 600
    finally:
        await store.close()


async def test_age_retention_keeps_unforwarded_batches(tmp_path):
    store = await open_store(tmp_path / "s.db", retention_s=HOUR, forwarding=True)
    try:
        ids = [await store.append(make_batch(10, 1000.0 + i * 600)) for i in range(10)]
        await store.set_forwarded(ids[1])
        deleted = await store.enforce_retention(now=1000.0 + 9 * 600 + 1)
        assert deleted.batches == 2
        assert [p.id for p in await store.pending(0, 10**6)] == ids[2:]
        assert (await store.stats())["dropped_unforwarded_values"] == 0
    finally:
        await store.close()


async def test_size_retention_deletes_oldest_batches_until_under_the_limit(tmp_path):
    store = await open_store(tmp_path / "s.db", retention_s=1e9, max_bytes=1 * MB)
    try:
        ids = [await store.append(make_batch(10_000, 1000.0 + i)) for i in range(30)]  # ~3 MB
        deleted = await store.enforce_retention(now=2000.0)
        remaining = [p.id for p in await store.pending(0, 10**9)]
        assert deleted.batches > 0
        assert remaining == ids[deleted.batches:]
        assert file_bytes(store.path) <= 1.2 * MB
    finally:
        await store.close()


async def test_size_retention_counts_dropped_unforwarded_values(tmp_path):
    store = await open_store(tmp_path / "s.db", retention_s=1e9, max_bytes=1 * MB, forwarding=True)
    try:
        ids = [await store.append(make_batch(10_000, 1000.0 + i)) for i in range(30)]
        await store.set_forwarded(ids[4])
        deleted = await store.enforce_retention(now=2000.0)
        stats = await store.stats()
        assert deleted.unforwarded_batches == deleted.batches - 5
        assert stats["dropped_unforwarded_values"] == deleted.unforwarded_values
        assert stats["dropped_unforwarded_values"] == 10_000 * deleted.unforwarded_batches
        assert stats["backlog_batches"] == 30 - deleted.batches
    finally:
        await store.close()


async def test_dropped_unforwarded_count_survives_reopen(tmp_path):
    path = tmp_path / "s.db"
    store = await open_store(path, retention_s=1e9, max_bytes=1 * MB, forwarding=True)
    for i in range(30):
        await store.append(make_batch(10_000, 1000.0 + i))
    deleted = await store.enforce_retention(now=2000.0)
    await store.close()
    store = await open_store(path, retention_s=1e9, max_bytes=1 * MB, forwarding=True)
    try:
        assert (await store.stats())["dropped_unforwarded_values"] == deleted.unforwarded_values > 0
    finally:
        await store.close()


async def test_file_does_not_grow_unbounded_under_periodic_retention(tmp_path):
    store = await open_store(tmp_path / "s.db", retention_s=1e9, max_bytes=1 * MB)
    try:
        sizes = []
        for round_ in range(10):
            for i in range(10):
                await store.append(make_batch(5_000, 1000.0 + round_ * 10 + i))
            await store.enforce_retention(now=2000.0)
            sizes.append(file_bytes(store.path))
        assert max(sizes) <= 1.2 * MB
        assert (await store.stats())["rows"] > 0
    finally:
        await store.close()


async def test_ids_keep_increasing_after_retention_empties_the_store(tmp_path):
    store = await open_store(tmp_path / "s.db", retention_s=HOUR)
    try:
        first = await store.append(make_batch(10, 1000.0))
        await store.enforce_retention(now=1000.0 + 2 * HOUR)
        assert (await store.stats())["rows"] == 0
        assert await store.append(make_batch(10, 1000.0 + 2 * HOUR)) > first
    finally:
        await store.close()


async def test_retention_then_append_with_a_previously_deleted_tag_list(tmp_path):
    store = await open_store(tmp_path / "s.db", retention_s=HOUR)
    try:
        await store.append(make_batch(10, 1000.0, first_tag=100))
        await store.enforce_retention(now=1000.0 + 2 * HOUR)
        await store.append(make_batch(10, 1000.0 + 2 * HOUR, first_tag=100))
        history = await store.history(105, 0.0, 1e9)
        assert len(history) == 1
    finally:
        await store.close()


async def test_size_retention_that_drops_a_tag_set_lets_the_same_tags_be_stored_again(tmp_path):
    # The size step drops tag sets no batch uses any more; the writer must not keep their ids.
    store = await open_store(tmp_path / "s.db", retention_s=1e9, max_bytes=1 * MB)
    try:
        for i in range(5):
            await store.append(make_batch(10_000, 1000.0 + i, first_tag=0))
        for i in range(5, 30):
            await store.append(make_batch(10_000, 1000.0 + i, first_tag=1))
        deleted = await store.enforce_retention(now=2000.0)
        assert deleted.batches > 5  # every batch of the first tag list is gone, so is its tag set
        again = await store.append(make_batch(10_000, 2000.0, first_tag=0))
        stored = {p.id: p.batch for p in await store.pending(0, 10**9)}
        assert stored[again].tag_index[0] == 0 and len(stored[again]) == 10_000
    finally:
        await store.close()
