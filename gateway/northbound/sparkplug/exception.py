"""Report by exception: which values of a Batch are worth a DDATA metric. Pure, vectorized.

A value is reported when it moved by more than its tag's deadband since the value last
reported, or its quality changed. The deadband is the tag's own ``deadband`` (engineering
units, config/plant.toml), else ``deadband_pct`` of its normal span; 0 reports every change.
Two values that are both not a number (a bad reading) count as unchanged.
"""

from __future__ import annotations

import numpy as np

from plant.catalog import Catalog


def deadbands(catalog: Catalog, deadband_pct: float) -> np.ndarray:
    """Per catalog index, the deadband in engineering units."""
    own = np.array([np.nan if t.deadband is None else t.deadband for t in catalog.tags],
                   dtype=np.float64)
    span = catalog.normal_max - catalog.normal_min
    return np.where(np.isnan(own), span * deadband_pct / 100.0, own)


class ExceptionFilter:
    """The last reported value and quality per catalog index, and the test against them."""

    def __init__(self, deadband: np.ndarray):
        self.deadband = deadband
        self.value = np.full(len(deadband), np.nan)
        self.quality = np.zeros(len(deadband), dtype=np.int16)  # 0: nothing reported yet

    def copy(self) -> ExceptionFilter:
        other = ExceptionFilter(self.deadband)
        other.value[:] = self.value
        other.quality[:] = self.quality
        return other

    def remember(self, tag_index: np.ndarray, values: np.ndarray, quality: np.ndarray) -> None:
        """Take these as reported (a birth reports every tag)."""
        self.value[tag_index] = values
        self.quality[tag_index] = quality

    def select(self, tag_index: np.ndarray, values: np.ndarray, quality: np.ndarray) -> np.ndarray:
        """Mask of the values to report, and remember them as reported.

        A tag listed twice in one call (two scans of it) is compared with the previous value
        reported, scan by scan, so the second is tested against the first when the first
        was reported.
        """
        if len(np.unique(tag_index)) != len(tag_index):
            return self._select_in_order(tag_index, values, quality)
        last = self.value[tag_index]
        with np.errstate(invalid="ignore"):
            moved = np.abs(values - last) > self.deadband[tag_index]
        both_nan = np.isnan(values) & np.isnan(last)
        one_nan = np.isnan(values) != np.isnan(last)
        report = ((moved | one_nan) & ~both_nan) | (quality != self.quality[tag_index])
        chosen = tag_index[report]
        self.value[chosen] = values[report]
        self.quality[chosen] = quality[report]
        return report

    def _select_in_order(self, tag_index: np.ndarray, values: np.ndarray,
                         quality: np.ndarray) -> np.ndarray:
        report = np.zeros(len(tag_index), dtype=bool)
        # Split into runs in which every tag appears once; each run sees the previous ones.
        seen: set[int] = set()
        start = 0
        for j, t in enumerate(tag_index.tolist()):
            if t in seen:
                report[start:j] = self.select(tag_index[start:j], values[start:j], quality[start:j])
                seen.clear()
                start = j
            seen.add(t)
        report[start:] = self.select(tag_index[start:], values[start:], quality[start:])
        return report
