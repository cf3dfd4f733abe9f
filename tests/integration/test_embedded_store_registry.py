"""Stored history keeps meaning the same tags when the catalog is edited (tags added/removed)."""

from __future__ import annotations

import numpy as np

from drivers.batch import Batch
from drivers.quality import Quality, Reason
from gateway.store.embedded import EmbeddedStore


def _batch(tag_index, values, t=1000.0):
    n = len(values)
    return Batch.build("g", "dev", t, t, np.array(tag_index), np.array(values, dtype=float),
                       np.full(n, Quality.GOOD, np.uint8), np.full(n, Reason.NONE, np.uint8))


async def _open(path, tag_ids):
    store = EmbeddedStore(path, retention_s=1e9, max_bytes=10**9, forwarding=True, tag_ids=tag_ids)
    await store.open()
    return store


async def test_values_follow_their_tag_after_the_catalog_is_reordered(tmp_path):
    path = tmp_path / "history.sqlite"
    store = await _open(path, ["TI-101", "FI-102", "PI-103"])
    await store.append(_batch([0, 1, 2], [350.0, 10000.0, 20.0]))
    await store.close()

    # A tag inserted at the front, one removed: every catalog index changes.
    store = await _open(path, ["NEW-1", "PI-103", "TI-101"])
    try:
        latest = await store.latest()
        by_index = dict(zip(latest.tag_index.tolist(), latest.values.tolist(), strict=True))
        assert by_index == {1: 20.0, 2: 350.0}
        history = await store.history(2, 0, 2000)
        assert history.values.tolist() == [350.0]
        [stored] = await store.pending(0, 100)
        assert dict(zip(stored.batch.tag_index.tolist(), stored.batch.values.tolist(), strict=True)) == {
            1: 20.0, 2: 350.0}
    finally:
        await store.close()


async def test_new_appends_use_the_new_numbering(tmp_path):
    path = tmp_path / "history.sqlite"
    store = await _open(path, ["A", "B"])
    await store.append(_batch([0, 1], [1.0, 2.0], t=1000))
    await store.close()
    store = await _open(path, ["B", "A"])
    try:
        await store.append(_batch([0, 1], [20.0, 10.0], t=1001))
        history_a = await store.history(1, 0, 2000)
        assert history_a.values.tolist() == [1.0, 10.0]
    finally:
        await store.close()


async def test_recent_returns_the_newest_samples_of_the_asked_tags_newest_first(tmp_path):
    store = await _open(tmp_path / "history.sqlite", ["A", "B", "C"])
    try:
        for k in range(5):
            await store.append(_batch([0, 1, 2], [k, 10 + k, 20 + k], t=1000.0 + k))
        recent = await store.recent(3, np.array([0, 2]))
        assert recent.tag_index.tolist() == [0, 2, 0] or recent.tag_index.tolist() == [2, 0, 2]
        assert recent.source_ts.tolist() == [1004.0, 1004.0, 1003.0]
        assert sorted(recent.values.tolist()[:2]) == [4.0, 24.0]
    finally:
        await store.close()
