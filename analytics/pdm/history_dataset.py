"""The plant's own history, labelled by its failure records, as training runs.

Pure: arrays and records in, :class:`analytics.pdm.dataset.RunHistory` segments out, so the
same features, split and evaluation as the simulator-trained models apply
(:func:`analytics.pdm.model.train_type`).

A machine's history is cut at its failures: a segment runs from the end of the previous
repair (or the start of the history) up to a recorded failure, and it is one *run*, the unit
the split deals, so every row of one failure event lands on the same side of the train/test
split and no event leaks. The time between a failure and its repair end is left out (the
machine was down); without a repair end the machine is taken to be down for
:data:`DEFAULT_DOWN_H` hours. Signals come point-sampled onto a regular grid (the last usable
sample at or before each grid time, as live inference does); a grid time with no usable sample
of some signal within ``max_age_s`` is a gap, and a segment keeps only its rows after its last
gap (the windows of the features must not reach across it).

A failure is used only when at least ``min_history_h`` of gap-free history precede it (else it
is reported with the reason). The history after a machine's last failure (all of it for a
machine that never failed) ends in no failure: it is right-censored, a failure soon after the
data ends cannot be ruled out. With ``censored_cut_h`` given, that tail less its last
``censored_cut_h`` hours (the horizon: only then is "does not fail within the horizon" known)
becomes one healthy-only run (``failure_time_s`` infinite), healthy machine time for the
false-alarm figures, when it holds at least ``min_history_h``; what is not used is counted.
The plant's records carry no wear onset: rows more than ``healthy_before_h`` before a failure
count as healthy for the healthy-period false-alarm figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from analytics.pdm.dataset import RunHistory
from analytics.pdm.features import SECONDS_PER_HOUR, Scaling
from analytics.pdm.records import FailureRecord, iso

# A failure without a repair end: the machine is taken to be down this long after it.
DEFAULT_DOWN_H = 24.0


@dataclass(frozen=True)
class EquipmentHistory:
    """One machine's signals on a regular grid (columns in the type's signal order)."""

    equipment_id: str
    time_s: np.ndarray  # (n,) ascending epoch seconds, evenly spaced
    values: np.ndarray  # (n, signals), forward-filled from the last usable sample
    covered: np.ndarray  # (n,) bool: every signal had a usable sample within max_age_s
    scaling: Scaling


@dataclass(frozen=True)
class EventUse:
    """What became of one failure record."""

    equipment_id: str
    failure_s: float
    failure_mode: str
    used: bool
    history_h: float  # gap-free hours of history before the failure
    reason: str = ""  # why it was not used
    run_id: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {"equipment_id": self.equipment_id, "failure_time": iso(self.failure_s),
                "failure_mode": self.failure_mode, "used": self.used,
                "history_h": round(self.history_h, 1), "reason": self.reason, "run_id": self.run_id}


@dataclass
class Labelled:
    """Runs ending in a failure, what became of every record, and the hours not used."""

    runs: list[RunHistory] = field(default_factory=list)
    events: list[EventUse] = field(default_factory=list)
    censored_h: float = 0.0  # history after the last failure (no failure seen) not used
    healthy_h: float = 0.0  # of that history, the hours used as a healthy-only run
    gap_h: float = 0.0  # grid time without a usable sample of every signal

    @property
    def failing_runs(self) -> list[RunHistory]:
        return [r for r in self.runs if np.isfinite(r.failure_time_s)]

    @property
    def healthy_runs(self) -> list[RunHistory]:
        return [r for r in self.runs if not np.isfinite(r.failure_time_s)]

    def extend(self, other: Labelled) -> None:
        self.runs += other.runs
        self.events += other.events
        self.censored_h += other.censored_h
        self.healthy_h += other.healthy_h
        self.gap_h += other.gap_h


def point_sample(grid_s: np.ndarray, ts: np.ndarray, values: np.ndarray, max_age_s: float,
                 prior: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The last sample at or before each grid time, and whether it is at most ``max_age_s`` old.

    ``ts`` ascending. ``prior`` is the (time, value) of the last sample before ``ts`` (from an
    earlier chunk of a history read in chunks). Grid times with no sample at all get NaN.
    """
    ts = np.asarray(ts, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if prior is not None:
        ts = np.concatenate([[prior[0]], ts])
        values = np.concatenate([[prior[1]], values])
    grid_s = np.asarray(grid_s, dtype=np.float64)
    if not len(ts):
        return np.full(len(grid_s), np.nan), np.zeros(len(grid_s), dtype=bool)
    idx = np.searchsorted(ts, grid_s, side="right") - 1
    found = idx >= 0
    safe = np.maximum(idx, 0)
    out = np.where(found, values[safe], np.nan)
    fresh = found & (grid_s - ts[safe] <= max_age_s)
    return out, fresh


def label_history(history: EquipmentHistory, records: Sequence[FailureRecord], first_run_id: int,
                  min_history_h: float, healthy_before_h: float,
                  default_down_h: float = DEFAULT_DOWN_H,
                  censored_cut_h: float | None = None) -> Labelled:
    """Cut one machine's history at its recorded failures into runs; see the module docstring.

    Run ids are ``first_run_id``, ``first_run_id + 1``, ... in failure order (used runs only),
    then the healthy-only run of the censored tail, if any.
    """
    out = Labelled()
    t = history.time_s
    if len(t) == 0:
        out.events = [EventUse(r.equipment_id, r.failure_s, r.failure_mode, False, 0.0,
                               "no history of this equipment") for r in records]
        return out
    dt = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    out.gap_h = float(np.count_nonzero(~history.covered)) * dt / SECONDS_PER_HOUR
    start_s = float(t[0])
    run_id = first_run_id
    for record in sorted(records, key=lambda r: r.failure_s):
        failure_s = record.failure_s
        down_until = (record.repair_end_s if record.repair_end_s is not None
                      else failure_s + default_down_h * SECONDS_PER_HOUR)

        def skipped(reason: str, hours: float = 0.0, record: FailureRecord = record) -> EventUse:
            return EventUse(record.equipment_id, record.failure_s, record.failure_mode, False, hours, reason)

        if failure_s < t[0] or failure_s > t[-1] + dt:
            out.events.append(skipped(f"outside the stored history ({iso(float(t[0]))} to "
                                      f"{iso(float(t[-1]))})"))
        elif failure_s <= start_s:
            out.events.append(skipped(f"inside the down time of the previous failure (until "
                                      f"{iso(start_s)})"))
        else:
            lo = int(np.searchsorted(t, start_s, side="left"))
            hi = int(np.searchsorted(t, failure_s, side="right"))
            gaps = np.flatnonzero(~history.covered[lo:hi])
            if len(gaps):
                lo += int(gaps[-1]) + 1
            hours = (failure_s - float(t[lo])) / SECONDS_PER_HOUR if lo < hi else 0.0
            if hours < min_history_h:
                why = " (a gap in the signals cut it)" if len(gaps) else ""
                out.events.append(skipped(f"only {hours:.1f} h of history before the failure{why}, "
                                          f"needs {min_history_h:g} h", hours))
            else:
                out.runs.append(RunHistory(
                    run_id=run_id, equipment_id=history.equipment_id, time_s=t[lo:hi].copy(),
                    values=history.values[lo:hi].copy(), scaling=history.scaling,
                    failure_time_s=failure_s,
                    wear_onset_s=failure_s - healthy_before_h * SECONDS_PER_HOUR))
                out.events.append(EventUse(record.equipment_id, failure_s, record.failure_mode, True,
                                           hours, run_id=run_id))
                run_id += 1
        start_s = max(start_s, down_until)
    tail_h = max(float(t[-1]) - start_s, 0.0) / SECONDS_PER_HOUR
    if censored_cut_h is not None:
        lo = int(np.searchsorted(t, start_s, side="left"))
        hi = int(np.searchsorted(t, float(t[-1]) - censored_cut_h * SECONDS_PER_HOUR, side="right"))
        gaps = np.flatnonzero(~history.covered[lo:hi])
        if len(gaps):
            lo += int(gaps[-1]) + 1
        hours = (float(t[hi - 1]) - float(t[lo])) / SECONDS_PER_HOUR if lo < hi else 0.0
        if hours >= min_history_h:
            out.runs.append(RunHistory(
                run_id=run_id, equipment_id=history.equipment_id, time_s=t[lo:hi].copy(),
                values=history.values[lo:hi].copy(), scaling=history.scaling,
                failure_time_s=float("inf"), wear_onset_s=float("inf")))
            out.healthy_h = hours
    out.censored_h = tail_h - out.healthy_h
    return out
