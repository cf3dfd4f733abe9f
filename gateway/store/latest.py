"""The in-memory table of the last known value of every tag, answered without touching disk.

The live views (HTTP, MQTT by exception, OPC-UA server) ask for "the current value" far more
often than for history; keeping it as numpy columns indexed by tag index makes the answer a
single fancy-index, and an update per Batch a few vector assignments.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from drivers.batch import Batch
from drivers.quality import QUALITY_DTYPE, REASON_DTYPE, Quality, Reason


class LatestValues(NamedTuple):
    """Last known sample per requested tag. Tags never seen: NaN, BAD, ``Reason.NOT_READ``.

    A tuple, so it unpacks as ``tag_index, source_ts, values, quality, reason``.
    """

    tag_index: np.ndarray
    source_ts: np.ndarray
    values: np.ndarray
    quality: np.ndarray
    reason: np.ndarray


class LatestTable:
    """Last appended sample per tag index; later Batches win over earlier ones."""

    def __init__(self, capacity: int = 0) -> None:
        self._source_ts = np.empty(0, dtype=np.float64)
        self._values = np.empty(0, dtype=np.float64)
        self._quality = np.empty(0, dtype=QUALITY_DTYPE)
        self._reason = np.empty(0, dtype=REASON_DTYPE)
        self._known = np.empty(0, dtype=bool)
        self._grow(capacity)

    @property
    def known_count(self) -> int:
        """How many tags have a value."""
        return int(self._known.sum())

    def known_mask(self, tag_index: np.ndarray) -> np.ndarray:
        """True for the tags of ``tag_index`` that already have a value."""
        inside = tag_index < len(self._known)
        known = np.zeros(len(tag_index), dtype=bool)
        known[inside] = self._known[tag_index[inside]]
        return known

    def update(self, batch: Batch) -> None:
        """Take every value of ``batch`` as the tag's latest."""
        self._assign(batch, np.ones(len(batch), dtype=bool))

    def fill_missing(self, batch: Batch) -> int:
        """Take only the values of tags that have none yet (rebuilding newest-first).

        Returns how many tags gained a value.
        """
        missing = ~self.known_mask(batch.tag_index)
        self._assign(batch, missing)
        return int(missing.sum())

    def snapshot(self, tag_index: np.ndarray | None = None) -> LatestValues:
        """Copies of the latest samples of ``tag_index`` (default: every tag with a value)."""
        if tag_index is None:
            tag_index = np.flatnonzero(self._known).astype(np.int32)
        tag_index = np.asarray(tag_index, dtype=np.int32)
        n = len(tag_index)
        source_ts = np.full(n, np.nan)
        values = np.full(n, np.nan)
        quality = np.full(n, Quality.BAD, dtype=QUALITY_DTYPE)
        reason = np.full(n, Reason.NOT_READ, dtype=REASON_DTYPE)
        known = self.known_mask(tag_index)
        rows = tag_index[known]
        source_ts[known] = self._source_ts[rows]
        values[known] = self._values[rows]
        quality[known] = self._quality[rows]
        reason[known] = self._reason[rows]
        return LatestValues(tag_index, source_ts, values, quality, reason)

    def _assign(self, batch: Batch, mask: np.ndarray) -> None:
        if not mask.any():
            return
        rows = batch.tag_index[mask]
        self._grow(int(rows.max()) + 1)
        self._source_ts[rows] = batch.source_ts[mask]
        self._values[rows] = batch.values[mask]
        self._quality[rows] = batch.quality[mask]
        self._reason[rows] = batch.reason[mask]
        self._known[rows] = True

    def _grow(self, size: int) -> None:
        old = len(self._known)
        if size <= old:
            return
        size = max(size, 2 * old)
        self._source_ts = _extend(self._source_ts, size, np.nan)
        self._values = _extend(self._values, size, np.nan)
        self._quality = _extend(self._quality, size, Quality.BAD)
        self._reason = _extend(self._reason, size, Reason.NOT_READ)
        self._known = _extend(self._known, size, False)


def _extend(column: np.ndarray, size: int, fill: object) -> np.ndarray:
    grown = np.full(size, fill, dtype=column.dtype)
    grown[: len(column)] = column
    return grown
