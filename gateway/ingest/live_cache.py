"""The live cache: the newest value, quality and timestamps of every catalog tag, as columns."""

from __future__ import annotations

import numpy as np

from drivers.batch import Batch
from drivers.quality import Quality, Reason


class LiveCache:
    """Newest reading per tag, updated with one fancy-indexed assignment per Batch.

    Tags never read yet have quality BAD with reason NOT_READ and a NaN value.
    """

    def __init__(self, size: int):
        self.values = np.full(size, np.nan)
        self.quality = np.full(size, Quality.BAD, dtype=np.uint8)
        self.reason = np.full(size, Reason.NOT_READ, dtype=np.uint8)
        self.source_ts = np.zeros(size)
        self.receive_ts = np.zeros(size)
        self.device: list[str | None] = [None] * size

    def update(self, batch: Batch) -> None:
        idx = batch.tag_index
        self.values[idx] = batch.values
        self.quality[idx] = batch.quality
        self.reason[idx] = batch.reason
        self.source_ts[idx] = batch.source_ts
        self.receive_ts[idx] = batch.receive_ts

    def assign_device(self, tag_index: np.ndarray, device: str) -> None:
        for i in tag_index.tolist():
            self.device[i] = device

    def restore(self, tag_index: np.ndarray, ts: np.ndarray, values: np.ndarray,
                quality: np.ndarray, reason: np.ndarray) -> None:
        """Seed the cache from the store's latest values after a restart."""
        self.values[tag_index] = values
        self.quality[tag_index] = quality
        self.reason[tag_index] = reason
        self.source_ts[tag_index] = ts
        self.receive_ts[tag_index] = ts
