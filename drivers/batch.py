"""The Batch: one scan of one scan group, the unit of data everything downstream consumes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drivers.quality import QUALITY_DTYPE, REASON_DTYPE, Quality, Reason


@dataclass(frozen=True, slots=True, eq=False)
class Batch:
    """Columnar values of one scan; arrays are read-only once built.

    ``tag_index`` are indices into the compiled catalog. ``source_ts`` are the device's
    timestamps (epoch seconds, float64; the receive time where the device gives none).
    ``scan_start`` and ``receive_ts`` are wall-clock epoch seconds of the scan.
    """

    group: str
    device: str
    scan_start: float
    receive_ts: float
    tag_index: np.ndarray
    source_ts: np.ndarray
    values: np.ndarray
    quality: np.ndarray
    reason: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.tag_index)
        for name in ("tag_index", "source_ts", "values", "quality", "reason"):
            arr = getattr(self, name)
            if len(arr) != n:
                raise ValueError(f"Batch.{name} has {len(arr)} entries, expected {n}")
            arr.setflags(write=False)

    def __len__(self) -> int:
        return len(self.tag_index)

    @classmethod
    def build(cls, group: str, device: str, scan_start: float, receive_ts: float,
              tag_index: np.ndarray, values: np.ndarray, quality: np.ndarray,
              reason: np.ndarray, source_ts: np.ndarray | None = None) -> Batch:
        n = len(tag_index)
        if source_ts is None:
            source_ts = np.full(n, receive_ts, dtype=np.float64)
        return cls(group=group, device=device, scan_start=scan_start, receive_ts=receive_ts,
                   tag_index=np.asarray(tag_index, dtype=np.int32),
                   source_ts=np.asarray(source_ts, dtype=np.float64),
                   values=np.asarray(values, dtype=np.float64),
                   quality=np.asarray(quality, dtype=QUALITY_DTYPE),
                   reason=np.asarray(reason, dtype=REASON_DTYPE))

    @classmethod
    def failed(cls, group: str, device: str, scan_start: float, receive_ts: float,
               tag_index: np.ndarray, reason: Reason) -> Batch:
        """A scan in which nothing could be read: every tag bad with one reason."""
        n = len(tag_index)
        return cls.build(group, device, scan_start, receive_ts, tag_index,
                         np.full(n, np.nan), np.full(n, Quality.BAD, dtype=QUALITY_DTYPE),
                         np.full(n, reason, dtype=REASON_DTYPE))
