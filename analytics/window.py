"""Tag histories over a time window: the one input type every analytics module takes.

A :class:`Window` maps ``tag_id`` to a :class:`TagSeries` (timestamps, values, quality) and
carries the period ``[start, end)`` being analysed. The helpers here turn samples into
time-weighted quantities under one rule, documented in ``docs/analytics.md``:

* only good-quality samples are measurements; doubtful and bad samples are missing data
  (doubtful ones are counted separately so a result can say how many it ignored);
* missing stretches up to ``max_gap_s`` are bridged, longer ones are excluded and reduce the
  reported coverage.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from drivers.batch import Batch
from drivers.quality import QUALITY_DTYPE, Quality, good_mask
from plant.catalog import Catalog

DEFAULT_MAX_GAP_S = 60.0
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0
# Above this many breakpoints `align` falls back to a regular grid, bounding memory and CPU.
MAX_ALIGN_POINTS = 200_000


def _readonly(array: np.ndarray, dtype: type) -> np.ndarray:
    view = np.asarray(array, dtype=dtype).view()
    view.setflags(write=False)
    return view


@dataclass(frozen=True, slots=True)
class SampleCounts:
    """How many samples of each quality an analysis saw (doubtful/bad ones are not used)."""

    good: int = 0
    doubtful: int = 0
    bad: int = 0

    def __add__(self, other: SampleCounts) -> SampleCounts:
        return SampleCounts(self.good + other.good, self.doubtful + other.doubtful,
                            self.bad + other.bad)

    @property
    def total(self) -> int:
        return self.good + self.doubtful + self.bad


@dataclass(frozen=True, slots=True, eq=False)
class TagSeries:
    """The history of one tag: epoch-second timestamps (ascending), values, quality codes."""

    ts: np.ndarray
    values: np.ndarray
    quality: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", _readonly(self.ts, np.float64))
        object.__setattr__(self, "values", _readonly(self.values, np.float64))
        object.__setattr__(self, "quality", _readonly(self.quality, QUALITY_DTYPE))
        n = len(self.ts)
        if len(self.values) != n or len(self.quality) != n:
            raise ValueError(f"TagSeries arrays differ in length: ts {n}, values "
                             f"{len(self.values)}, quality {len(self.quality)}")
        if n > 1 and bool(np.any(np.diff(self.ts) < 0)):
            raise ValueError("TagSeries timestamps must be in ascending order")

    @classmethod
    def empty(cls) -> TagSeries:
        """A series with no samples (a tag that was never read in the window)."""
        return cls(np.empty(0), np.empty(0), np.empty(0, dtype=QUALITY_DTYPE))

    @classmethod
    def good_only(cls, ts: np.ndarray | list[float], values: np.ndarray | list[float]) -> TagSeries:
        """A series whose samples are all good quality (convenient for tests and replays)."""
        ts_arr = np.asarray(ts, dtype=np.float64)
        return cls(ts_arr, np.asarray(values, dtype=np.float64),
                   np.full(len(ts_arr), Quality.GOOD, dtype=QUALITY_DTYPE))

    @classmethod
    def _subset(cls, parent: TagSeries, keep: slice | np.ndarray) -> TagSeries:
        # A subset of a validated series is ordered and consistent: skip re-validation.
        subset = object.__new__(cls)
        for name in ("ts", "values", "quality"):
            part = getattr(parent, name)[keep]
            part.setflags(write=False)
            object.__setattr__(subset, name, part)
        return subset

    def __len__(self) -> int:
        return len(self.ts)

    def between(self, start: float, end: float) -> TagSeries:
        """The samples with ``start <= ts < end``."""
        lo, hi = np.searchsorted(self.ts, [start, end], side="left")
        return TagSeries._subset(self, slice(lo, hi))

    def good(self) -> TagSeries:
        """Only the samples that may be used as measurements."""
        return TagSeries._subset(self, good_mask(self.quality))

    def counts(self) -> SampleCounts:
        """Samples by quality family."""
        good = int(np.count_nonzero(self.quality == Quality.GOOD))
        doubtful = int(np.count_nonzero(self.quality == Quality.DOUBTFUL))
        return SampleCounts(good, doubtful, len(self.quality) - good - doubtful)

    def last_good(self) -> tuple[float, float] | None:
        """(ts, value) of the latest good sample, or None."""
        idx = np.flatnonzero(good_mask(self.quality))
        if len(idx) == 0:
            return None
        return float(self.ts[idx[-1]]), float(self.values[idx[-1]])


_EMPTY = TagSeries.empty()


@dataclass(frozen=True, eq=False)
class Window(Mapping[str, TagSeries]):
    """Tag histories (``tag_id`` → :class:`TagSeries`) over the period ``[start, end)``.

    Series may hold samples outside the period (so a window can be re-cut into hours without
    copying); every analysis restricts itself to ``[start, end)``.
    """

    start: float
    end: float
    series: Mapping[str, TagSeries] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.end > self.start:
            raise ValueError(f"Window end {self.end} must be after start {self.start}")

    def __getitem__(self, tag_id: str) -> TagSeries:
        return self.series[tag_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.series)

    def __len__(self) -> int:
        return len(self.series)

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    def history(self, tag_id: str | None) -> TagSeries:
        """The tag's samples within the window; empty when the tag was not read at all."""
        if tag_id is None:
            return _EMPTY
        return self.series.get(tag_id, _EMPTY).between(self.start, self.end)

    def around(self, tag_id: str | None) -> TagSeries:
        """The tag's whole history, including samples just outside the window.

        Integrals and holds need the neighbours of the window's edges to cut a segment
        exactly at ``start`` and ``end``; they restrict themselves to the window.
        """
        if tag_id is None:
            return _EMPTY
        return self.series.get(tag_id, _EMPTY)

    def good_values(self, tag_id: str | None) -> np.ndarray:
        """Values of the tag's good samples within the window."""
        return self.history(tag_id).good().values

    def counts(self, tag_ids: Iterable[str | None]) -> SampleCounts:
        """Samples by quality family over several tags within the window."""
        total = SampleCounts()
        for tag_id in tag_ids:
            total = total + self.history(tag_id).counts()
        return total

    def clip(self, start: float, end: float) -> Window:
        """The same histories over another period (no arrays are copied)."""
        return Window(start, end, self.series)

    def halves(self) -> tuple[Window, Window]:
        """The first and second half of the period, for trends."""
        middle = self.start + self.duration_s / 2
        return self.clip(self.start, middle), self.clip(middle, self.end)

    @classmethod
    def from_batches(cls, batches: Iterable[Batch], catalog: Catalog, start: float,
                     end: float) -> Window:
        """Gather scans (Batches) into per-tag histories, ordered by source timestamp."""
        batch_list = [b for b in batches if len(b)]
        if not batch_list:
            return cls(start, end, {})
        index = np.concatenate([b.tag_index for b in batch_list])
        ts = np.concatenate([b.source_ts for b in batch_list])
        values = np.concatenate([b.values for b in batch_list])
        quality = np.concatenate([b.quality for b in batch_list])
        order = np.lexsort((ts, index))
        index, ts, values, quality = index[order], ts[order], values[order], quality[order]
        tags, first = np.unique(index, return_index=True)
        bounds = np.append(first, len(index))
        series = {
            catalog.tags[int(tag)].id: TagSeries(ts[a:b], values[a:b], quality[a:b])
            for tag, a, b in zip(tags, bounds[:-1], bounds[1:], strict=True)
        }
        return cls(start, end, series)


# --------------------------------------------------------------------------- time weighting


@dataclass(frozen=True, slots=True)
class Integral:
    """The time integral of a tag over a window (value·s) and the time it covers."""

    area: float
    covered_s: float
    duration_s: float

    @property
    def mean(self) -> float | None:
        """Time-weighted mean over the covered time; None when nothing was covered."""
        return self.area / self.covered_s if self.covered_s > 0 else None

    @property
    def coverage_pct(self) -> float:
        return 100.0 * self.covered_s / self.duration_s if self.duration_s > 0 else 0.0


def integrate(series: TagSeries, start: float, end: float,
              max_gap_s: float = DEFAULT_MAX_GAP_S) -> Integral:
    """Trapezoid integral of the good samples over ``[start, end)``.

    Consecutive good samples at most ``max_gap_s`` apart are joined by a straight line;
    segments crossing ``start`` or ``end`` are cut there by linear interpolation, so
    integrals over adjacent windows add up exactly to the integral over their union.
    """
    good = series.good()
    t, v = good.ts, good.values
    lo = max(int(np.searchsorted(t, start, side="right")) - 1, 0)
    hi = min(int(np.searchsorted(t, end, side="left")) + 1, len(t))
    t, v = t[lo:hi], v[lo:hi]
    duration = end - start
    if len(t) < 2:
        return Integral(0.0, 0.0, duration)
    t0, t1, v0, v1 = t[:-1], t[1:], v[:-1], v[1:]
    dt = t1 - t0
    a = np.clip(t0, start, end)
    b = np.clip(t1, start, end)
    ok = (dt > 0) & (dt <= max_gap_s) & (b > a)
    if not ok.any():
        return Integral(0.0, 0.0, duration)
    t0, v0, dt, a, b = t0[ok], v0[ok], dt[ok], a[ok], b[ok]
    slope = (v1[ok] - v0) / dt
    va = v0 + slope * (a - t0)
    vb = v0 + slope * (b - t0)
    return Integral(float(np.sum((b - a) * (va + vb) / 2)), float(np.sum(b - a)), duration)


def hold_durations(series: TagSeries, start: float, end: float,
                   max_gap_s: float = DEFAULT_MAX_GAP_S) -> tuple[np.ndarray, np.ndarray]:
    """(values, seconds) of the good samples, each held until the next or for ``max_gap_s``.

    Sample-and-hold suits states (running/stopped) and "time within range": a good sample
    stands for ``[t_i, min(t_next, t_i + max_gap_s))`` cut to the window.
    """
    good = series.good()
    lo = max(int(np.searchsorted(good.ts, start, side="right")) - 1, 0)
    hi = int(np.searchsorted(good.ts, end, side="left"))
    t, v = good.ts[lo:hi], good.values[lo:hi]
    if len(t) == 0:
        return np.empty(0), np.empty(0)
    nxt = good.ts[hi] if hi < len(good.ts) else np.inf
    stop = np.minimum(np.append(t[1:], nxt), t + max_gap_s)
    held = np.clip(stop, start, end) - np.clip(t, start, end)
    return v, np.maximum(held, 0.0)


@dataclass(frozen=True, slots=True, eq=False)
class Aligned:
    """Several tags held on one time grid: ``values[k, j]`` holds tag k over interval j."""

    tag_ids: tuple[str, ...]
    durations: np.ndarray  # (n,) seconds of each grid interval
    values: np.ndarray  # (k, n); NaN where the tag had no good value held

    def row(self, tag_id: str) -> np.ndarray:
        return self.values[self.tag_ids.index(tag_id)]

    def known(self, tag_ids: Iterable[str] | None = None) -> np.ndarray:
        """True for intervals where every named tag (default: all) has a value."""
        rows = self.values if tag_ids is None else self.values[[self.tag_ids.index(t) for t in tag_ids]]
        return ~np.isnan(rows).any(axis=0) if len(rows) else np.ones(len(self.durations), bool)


def align(window: Window, tag_ids: Iterable[str], max_gap_s: float = DEFAULT_MAX_GAP_S) -> Aligned:
    """Hold several tags on the union of their sample times (exact sample-and-hold).

    The grid has a breakpoint wherever any tag gets a new good sample or its held value
    expires; beyond :data:`MAX_ALIGN_POINTS` breakpoints a regular grid is used instead.
    """
    ids = tuple(dict.fromkeys(tag_ids))
    start, end = window.start, window.end
    held: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    points = [np.array([start])]
    for tag_id in ids:
        full = window.series.get(tag_id, _EMPTY).good()
        lo = max(int(np.searchsorted(full.ts, start, side="right")) - 1, 0)
        hi = int(np.searchsorted(full.ts, end, side="left"))
        t, v = full.ts[lo:hi], full.values[lo:hi]
        nxt = full.ts[hi] if hi < len(full.ts) else np.inf
        stop = np.minimum(np.append(t[1:], nxt), t + max_gap_s)
        held.append((t, v, stop))
        points += [t, stop[stop < end]]
    grid = np.unique(np.concatenate(points))
    grid = grid[(grid >= start) & (grid < end)]
    if len(grid) > MAX_ALIGN_POINTS:
        grid = np.linspace(start, end, MAX_ALIGN_POINTS + 1)[:-1]
    durations = np.diff(np.append(grid, end))
    values = np.full((len(ids), len(grid)), np.nan)
    for k, (t, v, stop) in enumerate(held):
        if len(t) == 0:
            continue
        idx = np.searchsorted(t, grid, side="right") - 1
        safe = np.maximum(idx, 0)
        live = (idx >= 0) & (grid < stop[safe])
        values[k, live] = v[safe[live]]
    return Aligned(ids, durations, values)
