"""One tag's history as columns, and its reduction to at most N time buckets for charts.

A trend chart cannot show more points than it has pixels; reducing on the gateway keeps the
answer small. Each bucket keeps its last sample (what a step chart draws), the minimum, mean
and maximum of its usable values (so spikes survive the reduction), and its worst quality
(so a bad reading inside a bucket is never hidden by good ones around it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drivers.quality import usable_mask

_POSITION_BITS = 32
_POSITION_MASK = (1 << _POSITION_BITS) - 1


@dataclass(frozen=True, slots=True)
class TagHistory:
    """Samples of one tag ordered by source time.

    Raw (``downsampled`` False): one entry per stored sample. Downsampled: one entry per
    non-empty time bucket; ``source_ts``/``values`` are the bucket's last sample, ``quality``
    and ``reason`` its worst sample's, and ``minimum``/``mean``/``maximum`` summarise its
    usable (good or doubtful, finite) values (NaN when it has none); ``count`` is the number
    of raw samples in the bucket.
    """

    tag_index: int
    source_ts: np.ndarray
    values: np.ndarray
    quality: np.ndarray
    reason: np.ndarray
    downsampled: bool = False
    minimum: np.ndarray | None = None
    mean: np.ndarray | None = None
    maximum: np.ndarray | None = None
    count: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.source_ts)


def downsample(history: TagHistory, start: float, end: float, max_points: int) -> TagHistory:
    """Reduce ``history`` to at most ``max_points`` equal time buckets over ``[start, end)``.

    Returned unchanged when it already has no more than ``max_points`` samples.
    """
    if max_points < 1:
        raise ValueError(f"max_points must be at least 1, got {max_points}")
    n = len(history)
    if n <= max_points:
        return history
    ts = history.source_ts
    width = (end - start) / max_points if end > start else 1.0
    bucket = np.clip(np.floor((ts - start) / width), 0, max_points - 1).astype(np.int64)
    first = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    last = np.r_[first[1:], n] - 1

    # Worst quality wins; among equals the latest sample's reason is kept.
    position = np.arange(n, dtype=np.int64)
    key = (history.quality.astype(np.int64) << _POSITION_BITS) | (_POSITION_MASK - position)
    worst = _POSITION_MASK - (np.minimum.reduceat(key, first) & _POSITION_MASK)

    values = history.values
    with np.errstate(invalid="ignore"):
        usable = usable_mask(history.quality) & np.isfinite(values)
    used = np.add.reduceat(usable.astype(np.int64), first)
    minimum = np.minimum.reduceat(np.where(usable, values, np.inf), first)
    maximum = np.maximum.reduceat(np.where(usable, values, -np.inf), first)
    total = np.add.reduceat(np.where(usable, values, 0.0), first)
    empty = used == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / used
    minimum[empty] = np.nan
    maximum[empty] = np.nan
    mean[empty] = np.nan
    return TagHistory(
        tag_index=history.tag_index,
        source_ts=ts[last],
        values=values[last],
        quality=history.quality[worst],
        reason=history.reason[worst],
        downsampled=True,
        minimum=minimum,
        mean=mean,
        maximum=maximum,
        count=(last - first + 1),
    )
