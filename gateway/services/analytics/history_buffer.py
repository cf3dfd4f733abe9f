"""The rolling tag history the analytics read: fed by the pipeline, backfilled from the store.

Why a buffer and not the embedded store's ``history`` on every run: the daily mass balance
and the hourly energy rows need a day of the flow and power tags, and reading a day of
them back from SQLite (one row per scan, per tag) every minute costs seconds of the store's
read thread. The buffer costs one small copy per accepted scan on the loop and a merge of
the new samples per run in the executor. At start it is filled once from the store, so a
restart loses nothing the store kept.

Each tracked tag keeps its own horizon: flow and power tags a day and more, the other plant
tags only what the KPI and health windows need. ``max_samples_per_tag`` bounds memory when
scans are fast; dropping beyond it shows up as lower coverage, never as made-up values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from analytics.window import TagSeries
from drivers.batch import Batch
from drivers.quality import QUALITY_DTYPE


@dataclass(frozen=True, slots=True)
class Chunk:
    """New samples of tracked tags, not yet merged (catalog index, source ts, value, quality)."""

    tag_index: np.ndarray
    ts: np.ndarray
    values: np.ndarray
    quality: np.ndarray


class TagBuffer:
    """Per-tag history of the tracked tags over each tag's horizon ``keep_s``.

    ``add`` runs on the event loop (cheap: a masked copy per scan); ``merge`` is pure and
    meant for an executor; ``replace`` installs its result back on the loop.
    """

    def __init__(self, tag_ids: Sequence[str], tag_index: Sequence[int],
                 keep_s: Sequence[float], catalog_size: int, max_samples_per_tag: int):
        self.tag_ids = tuple(tag_ids)
        self.keep_s = dict(zip(self.tag_ids, keep_s, strict=True))
        self.max_samples_per_tag = max_samples_per_tag
        self._tracked = np.zeros(catalog_size, dtype=bool)
        self._tracked[np.asarray(tag_index, dtype=np.int64)] = True
        self._id_of = {int(i): t for i, t in zip(tag_index, self.tag_ids, strict=True)}
        self._pending: list[Chunk] = []
        self.series: Mapping[str, TagSeries] = {}
        self.dropped_samples = 0

    def add(self, batches: Sequence[Batch]) -> None:
        """Keep the tracked tags' samples of accepted scans until the next merge."""
        for batch in batches:
            if not len(batch):
                continue
            keep = self._tracked[batch.tag_index]
            if keep.any():
                self._pending.append(Chunk(batch.tag_index[keep], batch.source_ts[keep],
                                           batch.values[keep], batch.quality[keep]))

    def add_history(self, tag_index: int, ts: np.ndarray, values: np.ndarray,
                    quality: np.ndarray) -> None:
        """Add samples read back from the store (start-up backfill)."""
        n = len(ts)
        if n:
            self._pending.append(Chunk(np.full(n, tag_index, dtype=np.int32), ts, values,
                                       quality))

    def take_pending(self) -> list[Chunk]:
        """The chunks added since the last call (ownership passes to the caller)."""
        pending, self._pending = self._pending, []
        return pending

    def give_back(self, pending: list[Chunk]) -> None:
        """Return chunks taken by a run that failed, ahead of those added since."""
        self._pending[:0] = pending

    def merge(self, pending: Sequence[Chunk], now: float) -> tuple[dict[str, TagSeries], int]:
        """The current series plus ``pending``, ordered, de-duplicated and trimmed to each
        tag's horizon before ``now``; also returns how many samples the size bound dropped.
        Pure (reads ``self.series`` only): safe to run in an executor."""
        merged = dict(self.series)
        dropped = 0
        for tag_id, (ts, values, quality) in _split(pending, self._id_of).items():
            old = merged.get(tag_id)
            if old is not None and len(old):
                ts = np.concatenate([old.ts, ts])
                values = np.concatenate([old.values, values])
                quality = np.concatenate([old.quality, quality])
            merged[tag_id], n_dropped = _tidy(ts, values, quality, self.max_samples_per_tag)
            dropped += n_dropped
        for tag_id, series in merged.items():
            first = np.searchsorted(series.ts, now - self.keep_s[tag_id], side="left")
            if first > 0:
                merged[tag_id] = TagSeries(series.ts[first:], series.values[first:],
                                           series.quality[first:])
        return merged, dropped

    def replace(self, series: dict[str, TagSeries], dropped: int = 0) -> None:
        """Install a merge result (on the event loop)."""
        self.series = series
        self.dropped_samples += dropped

    def sample_count(self) -> int:
        """Samples held (merged), for health and metrics."""
        return sum(len(s) for s in self.series.values())


def _split(pending: Sequence[Chunk], id_of: Mapping[int, str]
           ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    if not pending:
        return {}
    index = np.concatenate([c.tag_index for c in pending])
    ts = np.concatenate([c.ts for c in pending]).astype(np.float64, copy=False)
    values = np.concatenate([c.values for c in pending]).astype(np.float64, copy=False)
    quality = np.concatenate([c.quality for c in pending]).astype(QUALITY_DTYPE, copy=False)
    finite = np.isfinite(ts)  # a failed scan may carry no source time
    index, ts, values, quality = index[finite], ts[finite], values[finite], quality[finite]
    order = np.lexsort((ts, index))
    index, ts, values, quality = index[order], ts[order], values[order], quality[order]
    tags, first = np.unique(index, return_index=True)
    bounds = np.append(first, len(index))
    return {id_of[int(tag)]: (ts[a:b], values[a:b], quality[a:b])
            for tag, a, b in zip(tags, bounds[:-1], bounds[1:], strict=True)}


def _tidy(ts: np.ndarray, values: np.ndarray, quality: np.ndarray, max_samples: int
          ) -> tuple[TagSeries, int]:
    """Order by time, keep one sample per timestamp (the backfill and the live feed may
    overlap), keep at most ``max_samples`` newest."""
    if len(ts) > 1 and bool(np.any(np.diff(ts) < 0)):
        order = np.argsort(ts, kind="stable")
        ts, values, quality = ts[order], values[order], quality[order]
    if len(ts) > 1:
        unique = np.append(True, np.diff(ts) > 0)
        if not unique.all():
            ts, values, quality = ts[unique], values[unique], quality[unique]
    dropped = max(len(ts) - max_samples, 0)
    if dropped:
        ts, values, quality = ts[dropped:], values[dropped:], quality[dropped:]
    return TagSeries(ts, values, quality), dropped
