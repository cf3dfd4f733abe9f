"""The embedded store on a real SQLite file: append, latest, history, counts, state."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from drivers.batch import Batch
from drivers.quality import Quality, Reason
from gateway.store.embedded import EmbeddedStore

GOOD, DOUBTFUL, BAD = Quality.GOOD, Quality.DOUBTFUL, Quality.BAD
DAY = 86_400.0


def make_batch(tags: list[int], values: list[float], scan_start: float, group: str = "fast",
               quality: list[int] | None = None, reason: list[int] | None = None,
               source_ts: list[float] | None = None) -> Batch:
    n = len(tags)
    return Batch.build(group, "plc-1", scan_start, scan_start, np.array(tags), np.array(values),
                       np.array(quality or [GOOD] * n), np.array(reason or [Reason.NONE] * n),
                       None if source_ts is None else np.array(source_ts))


@pytest.fixture
async def store(tmp_path: Path):
    store = EmbeddedStore(tmp_path / "store.db", retention_s=DAY, max_bytes=10**9)
    await store.open()
    yield store
    await store.close()


async def reopen(store: EmbeddedStore) -> EmbeddedStore:
    await store.close()
    again = EmbeddedStore(store.path, store.retention_s, store.max_bytes, store.forwarding)
    await again.open()
    return again


async def test_append_returns_increasing_ids_in_append_order(store):
    ids = [await store.append(make_batch([1, 2], [1.0, 2.0], scan_start=100.0 + i))
           for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5


async def test_append_many_commits_several_batches_with_consecutive_ids(store):
    ids = await store.append_many([make_batch([1], [float(i)], scan_start=100.0 + i)
                                   for i in range(3)])
    assert ids == list(range(ids[0], ids[0] + 3))
    assert (await store.latest(np.array([1]))).values[0] == 2.0


async def test_concurrent_appends_each_get_their_own_id(store):
    batches = [make_batch([i], [float(i)], scan_start=100.0 + i) for i in range(20)]
    ids = await asyncio.gather(*(store.append(b) for b in batches))
    assert len(set(ids)) == 20
    stored = await store.pending(after_id=0, max_values=1000)
    assert {s.id: s.batch.values[0] for s in stored} == {i: b.values[0] for i, b in zip(ids, batches, strict=True)}


async def test_stored_batch_roundtrips_values_quality_and_reasons(store):
    batch = make_batch([4, 2, 9], [1.5, np.nan, 7.0], scan_start=100.0,
                       quality=[GOOD, BAD, DOUBTFUL],
                       reason=[Reason.NONE, Reason.MODBUS_EXCEPTION, Reason.DEVICE_UNCERTAIN],
                       source_ts=[99.0, 99.5, 99.75])
    batch_id = await store.append(batch)
    [stored] = await store.pending(after_id=0, max_values=100)
    assert stored.id == batch_id
    assert (stored.batch.group, stored.batch.device, stored.batch.scan_start) == ("fast", "plc-1", 100.0)
    for column in ("tag_index", "source_ts", "values", "quality", "reason"):
        np.testing.assert_array_equal(getattr(stored.batch, column), getattr(batch, column))


async def test_latest_answers_the_last_value_with_quality_and_reason(store):
    await store.append(make_batch([1, 2], [10.0, 20.0], scan_start=100.0))
    await store.append(make_batch([2], [np.nan], scan_start=101.0, quality=[BAD],
                                  reason=[Reason.TIMEOUT]))
    latest = await store.latest(np.array([1, 2]))
    np.testing.assert_array_equal(latest.values[:1], [10.0])
    np.testing.assert_array_equal(latest.quality, [GOOD, BAD])
    np.testing.assert_array_equal(latest.reason, [Reason.NONE, Reason.TIMEOUT])
    np.testing.assert_array_equal(latest.source_ts, [100.0, 101.0])


async def test_latest_is_rebuilt_from_the_file_at_open(store):
    await store.append(make_batch([1, 2], [10.0, 20.0], scan_start=100.0, group="fast"))
    await store.append(make_batch([5], [50.0], scan_start=100.5, group="slow"))
    await store.append(make_batch([1, 2], [11.0, 21.0], scan_start=101.0, group="fast"))
    store = await reopen(store)
    try:
        latest = await store.latest()
        np.testing.assert_array_equal(latest.tag_index, [1, 2, 5])
        np.testing.assert_array_equal(latest.values, [11.0, 21.0, 50.0])
    finally:
        await store.close()


async def test_history_returns_one_tags_samples_in_time_order(store):
    for i in range(10):
        await store.append(make_batch([1, 2, 3], [i, 10.0 + i, 20.0 + i], scan_start=1000.0 + i))
    history = await store.history(2, 1000.0, 1010.0)
    np.testing.assert_array_equal(history.source_ts, 1000.0 + np.arange(10))
    np.testing.assert_array_equal(history.values, 10.0 + np.arange(10))
    assert not history.downsampled


async def test_history_window_is_half_open_on_source_time(store):
    for i in range(10):
        await store.append(make_batch([1], [float(i)], scan_start=1000.0 + i))
    history = await store.history(1, 1002.0, 1005.0)
    np.testing.assert_array_equal(history.values, [2.0, 3.0, 4.0])


async def test_history_keeps_quality_and_reason_of_each_sample(store):
    await store.append(make_batch([1], [1.0], scan_start=1000.0))
    await store.append(make_batch([1], [np.nan], scan_start=1001.0, quality=[BAD],
                                  reason=[Reason.DISCONNECTED]))
    history = await store.history(1, 0.0, 2000.0)
    np.testing.assert_array_equal(history.quality, [GOOD, BAD])
    np.testing.assert_array_equal(history.reason, [Reason.NONE, Reason.DISCONNECTED])


async def test_history_follows_a_tag_across_changed_group_tag_lists(store):
    await store.append(make_batch([1, 2], [1.0, 2.0], scan_start=1000.0))
    await store.append(make_batch([3, 2, 4], [3.0, 2.5, 4.0], scan_start=1001.0))
    await store.append(make_batch([7], [7.0], scan_start=1002.0, group="slow"))
    history = await store.history(2, 0.0, 2000.0)
    np.testing.assert_array_equal(history.values, [2.0, 2.5])


async def test_history_orders_by_source_timestamp_not_scan_start(store):
    await store.append(make_batch([1, 2], [1.0, 2.0], scan_start=1000.0, source_ts=[999.0, 990.0]))
    await store.append(make_batch([2], [3.0], scan_start=1001.0, source_ts=[995.0]))
    history = await store.history(2, 980.0, 1000.0)
    np.testing.assert_array_equal(history.source_ts, [990.0, 995.0])


async def test_history_of_an_unknown_tag_is_empty(store):
    await store.append(make_batch([1], [1.0], scan_start=1000.0))
    assert len(await store.history(99, 0.0, 2000.0)) == 0


async def test_history_is_downsampled_to_max_points(store):
    for i in range(100):
        await store.append(make_batch([1], [float(i)], scan_start=1000.0 + i))
    history = await store.history(1, 1000.0, 1100.0, max_points=10)
    assert history.downsampled and len(history) == 10
    np.testing.assert_array_equal(history.maximum, 9.0 + 10 * np.arange(10))
    np.testing.assert_array_equal(history.minimum, 10 * np.arange(10))


async def test_count_values_sums_the_scans_in_a_window(store):
    for i in range(5):
        await store.append(make_batch([1, 2, 3], [0.0, 0.0, 0.0], scan_start=1000.0 + i))
    assert await store.count_values(1001.0, 1003.0) == 6
    assert await store.count_values(0.0, 1.0) == 0


async def test_stats_report_rows_values_span_and_size(store):
    await store.append(make_batch([1, 2], [0.0, 0.0], scan_start=1000.0))
    await store.append(make_batch([1, 2], [0.0, 0.0], scan_start=1005.0))
    stats = await store.stats()
    assert (stats["rows"], stats["values"]) == (2, 4)
    assert (stats["oldest_ts"], stats["newest_ts"]) == (1000.0, 1005.0)
    assert stats["bytes_on_disk"] > 0
    assert stats["dropped_unforwarded_values"] == 0


async def test_state_keeps_text_and_bytes_across_reopen(store):
    await store.put_state("alarms", b"\x00\x01")
    await store.put_state("cursor", "42")
    await store.put_state("cursor", "43")
    store = await reopen(store)
    try:
        assert await store.get_state("alarms") == b"\x00\x01"
        assert await store.get_state("cursor") == "43"
        assert await store.get_state("missing") is None
    finally:
        await store.close()


async def test_an_append_rolled_back_leaves_no_dangling_tag_set(tmp_path: Path):
    # A failed transaction (here a trigger; on a full disk, the COMMIT) rolls back the tag set
    # it created: the next batch with the same tags must get a tag set that exists.
    path = tmp_path / "store.db"
    store = EmbeddedStore(path, retention_s=DAY, max_bytes=10**9)
    await store.open()
    try:
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON batch WHEN NEW.device = 'boom' "
                         "BEGIN SELECT RAISE(ABORT, 'refused'); END")
        new_tags = make_batch([7, 8, 9], [1.0, 2.0, 3.0], 100.0)
        refused = Batch.build("fast", "boom", 100.0, 100.0, np.array([1]), np.array([0.0]),
                              np.array([GOOD]), np.array([Reason.NONE]))
        with pytest.raises(sqlite3.IntegrityError):
            await store.append_many([new_tags, refused])
        stored_id = await store.append(make_batch([7, 8, 9], [4.0, 5.0, 6.0], 101.0))
        [pending] = await store.pending(0, 10**6)
        assert pending.id == stored_id
        assert pending.batch.tag_index.tolist() == [7, 8, 9]
        assert pending.batch.values.tolist() == [4.0, 5.0, 6.0]
    finally:
        await store.close()
    reopened = EmbeddedStore(path, retention_s=DAY, max_bytes=10**9)
    await reopened.open()  # rebuilding the latest values reads every batch's tag set
    await reopened.close()


async def test_a_store_with_a_batch_whose_tag_set_is_missing_still_opens(tmp_path: Path):
    # A file damaged by an earlier version: the batch cannot be decoded, the rest is kept.
    path = tmp_path / "store.db"
    store = EmbeddedStore(path, retention_s=DAY, max_bytes=10**9, forwarding=True)
    await store.open()
    kept = await store.append(make_batch([1, 2], [1.0, 2.0], 100.0))
    await store.append(make_batch([3], [3.0], 101.0))
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM tag_set WHERE n_tags = 1")
    reopened = EmbeddedStore(path, retention_s=DAY, max_bytes=10**9, forwarding=True)
    await reopened.open()
    try:
        assert [p.id for p in await reopened.pending(0, 10**6)] == [kept]
        stats = await reopened.stats()
        assert stats["dropped_unforwarded_values"] == 1 and stats["backlog_batches"] == 1
    finally:
        await reopened.close()
