"""The embedded store's pure parts: row codec, latest-value table, history downsampling."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.batch import Batch
from drivers.quality import Quality, Reason
from gateway.store.batch_codec import decode_tag_index, pack, tag_set_digest, unpack
from gateway.store.history import TagHistory, downsample
from gateway.store.latest import LatestTable

GOOD, DOUBTFUL, BAD = Quality.GOOD, Quality.DOUBTFUL, Quality.BAD


def make_batch(tags: list[int], values: list[float], scan_start: float = 100.0,
               quality: list[int] | None = None, reason: list[int] | None = None,
               source_ts: list[float] | None = None) -> Batch:
    n = len(tags)
    return Batch.build("fast", "plc-1", scan_start, scan_start + 0.1, np.array(tags), np.array(values),
                       np.array(quality or [GOOD] * n), np.array(reason or [Reason.NONE] * n),
                       None if source_ts is None else np.array(source_ts))


def roundtrip(batch: Batch) -> Batch:
    packed = pack(batch)
    return unpack(batch.group, batch.device, batch.scan_start, batch.receive_ts,
                  decode_tag_index(packed.tag_index_blob), packed.source_ts_uniform,
                  packed.source_ts_blob, packed.value_blob, packed.quality_blob, packed.reason_blob)


def assert_same_batch(a: Batch, b: Batch) -> None:
    for column in ("tag_index", "source_ts", "values", "quality", "reason"):
        np.testing.assert_array_equal(getattr(a, column), getattr(b, column))
        assert getattr(a, column).dtype == getattr(b, column).dtype


# -- codec --------------------------------------------------------------------------------

def test_codec_roundtrips_every_column_with_its_dtype():
    batch = make_batch([3, 1, 2], [1.5, np.nan, -2.0], quality=[GOOD, BAD, DOUBTFUL],
                       reason=[Reason.NONE, Reason.TIMEOUT, Reason.DEVICE_UNCERTAIN],
                       source_ts=[10.0, 11.0, 12.5])
    assert_same_batch(roundtrip(batch), batch)


def test_codec_stores_equal_source_timestamps_as_one_scalar():
    packed = pack(make_batch([1, 2, 3], [1.0, 2.0, 3.0]))
    assert packed.source_ts_blob is None
    assert packed.source_ts_uniform == pytest.approx(100.1)


def test_codec_keeps_distinct_source_timestamps_as_a_blob():
    packed = pack(make_batch([1, 2], [1.0, 2.0], source_ts=[5.0, 6.0]))
    assert packed.source_ts_uniform is None
    assert len(packed.source_ts_blob) == 16


def test_codec_roundtrips_an_empty_batch():
    assert_same_batch(roundtrip(make_batch([], [])), make_batch([], []))


def test_equal_tag_lists_share_one_digest():
    a = pack(make_batch([1, 2, 3], [0.0, 0.0, 0.0]))
    b = pack(make_batch([1, 2, 3], [9.0, 9.0, 9.0], scan_start=200.0))
    c = pack(make_batch([1, 2, 4], [0.0, 0.0, 0.0]))
    assert tag_set_digest(a.tag_index_blob) == tag_set_digest(b.tag_index_blob)
    assert tag_set_digest(a.tag_index_blob) != tag_set_digest(c.tag_index_blob)


# -- latest table -------------------------------------------------------------------------

def test_latest_takes_the_last_appended_value_of_each_tag():
    table = LatestTable()
    table.update(make_batch([1, 2], [10.0, 20.0], scan_start=1.0))
    table.update(make_batch([2], [21.0], scan_start=2.0, quality=[BAD], reason=[Reason.TIMEOUT]))
    latest = table.snapshot(np.array([1, 2]))
    np.testing.assert_array_equal(latest.values, [10.0, 21.0])
    np.testing.assert_array_equal(latest.quality, [GOOD, BAD])
    np.testing.assert_array_equal(latest.reason, [Reason.NONE, Reason.TIMEOUT])


def test_latest_reports_unseen_tags_as_bad_not_read():
    table = LatestTable()
    table.update(make_batch([1], [10.0]))
    latest = table.snapshot(np.array([0, 1, 5000]))
    np.testing.assert_array_equal(latest.quality, [BAD, GOOD, BAD])
    np.testing.assert_array_equal(latest.reason, [Reason.NOT_READ, Reason.NONE, Reason.NOT_READ])
    assert np.isnan(latest.values[0]) and np.isnan(latest.values[2])


def test_latest_without_tag_list_returns_every_known_tag():
    table = LatestTable()
    table.update(make_batch([7, 3], [1.0, 2.0]))
    np.testing.assert_array_equal(table.snapshot().tag_index, [3, 7])


def test_fill_missing_never_overwrites_a_known_value():
    table = LatestTable()
    table.update(make_batch([1], [10.0]))
    gained = table.fill_missing(make_batch([1, 2], [99.0, 20.0]))
    assert gained == 1
    np.testing.assert_array_equal(table.snapshot(np.array([1, 2])).values, [10.0, 20.0])


# -- downsampling -------------------------------------------------------------------------

def history(ts: list[float], values: list[float], quality: list[int] | None = None,
            reason: list[int] | None = None) -> TagHistory:
    n = len(ts)
    return TagHistory(7, np.array(ts, dtype=float), np.array(values, dtype=float),
                      np.array(quality or [GOOD] * n, dtype=np.uint8),
                      np.array(reason or [Reason.NONE] * n, dtype=np.uint8))


def test_downsample_leaves_short_history_untouched():
    raw = history([1.0, 2.0], [1.0, 2.0])
    assert downsample(raw, 0.0, 10.0, max_points=5) is raw


def test_downsample_returns_at_most_max_points_buckets():
    raw = history(list(np.arange(1000.0)), list(np.arange(1000.0)))
    reduced = downsample(raw, 0.0, 1000.0, max_points=10)
    assert reduced.downsampled and len(reduced) == 10
    assert reduced.count.sum() == 1000


def test_downsample_keeps_last_min_mean_max_per_bucket():
    raw = history([0.0, 1.0, 2.0, 5.0, 6.0], [4.0, 9.0, 2.0, 7.0, 1.0])
    reduced = downsample(raw, 0.0, 10.0, max_points=2)
    np.testing.assert_array_equal(reduced.source_ts, [2.0, 6.0])
    np.testing.assert_array_equal(reduced.values, [2.0, 1.0])
    np.testing.assert_array_equal(reduced.minimum, [2.0, 1.0])
    np.testing.assert_array_equal(reduced.maximum, [9.0, 7.0])
    np.testing.assert_allclose(reduced.mean, [5.0, 4.0])


def test_downsample_bucket_carries_its_worst_quality_and_reason():
    raw = history([0.0, 1.0, 2.0, 6.0], [1.0, 2.0, 3.0, 4.0],
                  quality=[GOOD, BAD, GOOD, GOOD],
                  reason=[Reason.NONE, Reason.TIMEOUT, Reason.NONE, Reason.NONE])
    reduced = downsample(raw, 0.0, 10.0, max_points=2)
    np.testing.assert_array_equal(reduced.quality, [BAD, GOOD])
    np.testing.assert_array_equal(reduced.reason, [Reason.TIMEOUT, Reason.NONE])


def test_downsample_statistics_ignore_bad_values():
    raw = history([0.0, 1.0, 6.0, 7.0], [1.0, 1000.0, 5.0, 6.0], quality=[GOOD, BAD, BAD, BAD])
    reduced = downsample(raw, 0.0, 10.0, max_points=2)
    assert reduced.maximum[0] == 1.0
    assert np.isnan(reduced.mean[1]) and np.isnan(reduced.minimum[1])


def test_downsample_rejects_zero_points():
    with pytest.raises(ValueError, match="max_points"):
        downsample(history([1.0], [1.0]), 0.0, 1.0, max_points=0)


def test_latest_snapshot_unpacks_as_its_five_columns():
    table = LatestTable()
    table.update(make_batch([4], [40.0]))
    tag_index, source_ts, values, quality, reason = table.snapshot()
    assert (tag_index[0], values[0], quality[0], reason[0]) == (4, 40.0, GOOD, Reason.NONE)
