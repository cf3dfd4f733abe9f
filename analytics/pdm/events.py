"""Event-level evaluation of failure warnings: what maintenance planners count.

A planner does not count rows; they count failures and alarms. Per machine timeline (one
machine's rows in time order, each with a warning on or off, and the time the machine failed,
or None if it did not):

* a failure is **warned at the planning lead** when a *standing* warning (on at every row from
  its start up to the failure) started at least ``planning_lead_h`` before the failure;
* its **lead time** is the failure time minus the start of that standing warning (0 when the
  machine was not warned at its last row before the failure);
* a **false-alarm episode** is a maximal stretch of consecutive warned rows on which the machine
  does not fail within ``horizon_h`` of the stretch's last row (every episode of a timeline
  without a failure is false);
* **healthy time** is the time of rows not within ``horizon_h`` of a failure; a healthy
  machine-month is :data:`MACHINE_MONTH_H` (730 h) of it. Each row stands for the timeline's
  median step (a gap in the data does not count as healthy time).

Rows at or after the failure time are ignored (the machine is down; a warning then is no
news). A machine history with several failures is split at each failure (and its repair) into
one timeline per failure; a timeline without a failure is taken as healthy to its end, so a
real history whose last ``horizon_h`` is not yet known to be failure-free should be cut first.

The warning itself is the model's alarm (probability at or above the threshold) after
:func:`standing_warning`: it goes on once the alarm has held for ``on_h`` hours and goes off once
the alarm has been quiet for ``off_h`` hours, so one noisy row neither raises nor clears it.

Public API: :class:`Timeline`, :func:`standing_warning`, :func:`failure_lead_h`,
:func:`warning_now` (the warning at the newest row, as the daemon shows it live),
:func:`episodes`, :func:`false_episodes`, :func:`healthy_hours`, :func:`event_metrics`,
:func:`summarize`, :func:`lead_of` and :func:`false_episode_count` (the same on plain arrays),
:func:`meets_event_target`, :data:`TARGET_WARNED_SHARE`, :data:`TARGET_FALSE_PER_MONTH`.
Everything is pure (numpy in, numbers out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SECONDS_PER_HOUR = 3600.0
MACHINE_MONTH_H = 730.0
# The targets of the model card (per equipment type, on held-out runs).
TARGET_WARNED_SHARE = 0.95
TARGET_FALSE_PER_MONTH = 0.5


@dataclass(frozen=True)
class Timeline:
    """One machine's rows in time order.

    ``time_s``: row times in seconds (any epoch, increasing); ``warning``: bool per row (the
    warning as shown to people, e.g. after :func:`standing_warning`); ``failure_time_s``: when
    the machine failed (same clock), or None if it did not fail in this timeline.
    """

    time_s: np.ndarray
    warning: np.ndarray
    failure_time_s: float | None

    def __post_init__(self) -> None:
        t, w = np.asarray(self.time_s, dtype=np.float64), np.asarray(self.warning, dtype=bool)
        if t.ndim != 1 or w.shape != t.shape:
            raise ValueError(f"timeline: time_s and warning must be 1-D of the same length, "
                             f"got {t.shape} and {w.shape}")
        if len(t) > 1 and np.any(np.diff(t) <= 0):
            raise ValueError("timeline: time_s must be strictly increasing")
        if self.failure_time_s is not None and not np.isfinite(self.failure_time_s):
            raise ValueError(f"timeline: failure_time_s must be finite or None, got {self.failure_time_s}")
        object.__setattr__(self, "time_s", t)
        object.__setattr__(self, "warning", w)

    def step_s(self) -> float:
        """The median step between rows (0 with fewer than two rows)."""
        return float(np.median(np.diff(self.time_s))) if len(self.time_s) > 1 else 0.0


def _runs(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of equal values: (start index, end index exclusive, value) per run."""
    if not len(flags):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=bool)
    change = np.flatnonzero(flags[1:] != flags[:-1]) + 1
    starts = np.r_[0, change]
    ends = np.r_[change, len(flags)]
    return starts, ends, flags[starts]


def standing_warning(alarm: np.ndarray, time_s: np.ndarray, on_h: float = 0.0,
                     off_h: float = 0.0, step_s: float | None = None) -> np.ndarray:
    """The warning people see from a per-row alarm, with an on-delay and an off-delay.

    The warning goes on at the row where the alarm has been on continuously for ``on_h`` hours
    and goes off at the row where it has been off continuously for ``off_h`` hours; a row
    stands for the median step, so at 10-minute rows ``on_h = 1`` is six alarmed rows in a row
    (the sixth raises the warning). 0 means at once; both 0 give the alarm itself. ``alarm``
    and ``time_s`` are one machine's rows in time order; ``step_s`` is their step if known
    (default: the median step).
    """
    alarm = np.asarray(alarm, dtype=bool)
    t = np.asarray(time_s, dtype=np.float64)
    if alarm.shape != t.shape:
        raise ValueError(f"alarm and time_s must have the same shape, got {alarm.shape} and {t.shape}")
    if on_h <= 0.0 and off_h <= 0.0:
        return alarm.copy()
    step = step_s if step_s is not None else (float(np.median(np.diff(t))) if len(t) > 1 else 0.0)
    # A small tolerance so that k rows of a step meet k * step exactly.
    on_s, off_s = on_h * SECONDS_PER_HOUR - 1e-6, off_h * SECONDS_PER_HOUR - 1e-6
    out = np.zeros(len(alarm), dtype=bool)
    starts, ends, values = _runs(alarm)
    on = False
    for a, b, value in zip(starts.tolist(), ends.tolist(), values.tolist(), strict=True):
        held = t[a:b] - t[a] + step  # how long the alarm has been on (off) at each row
        if value:
            if on:
                out[a:b] = True
            else:
                rise = a + int(np.searchsorted(held, on_s, side="left"))
                if rise < b:
                    out[rise:b] = True
                    on = True
        elif on:
            # Stays on until the quiet has lasted off_h (the row where it has is off).
            fall = a + int(np.searchsorted(held, off_s, side="left")) if off_h > 0 else a
            out[a:min(fall, b)] = True
            on = fall >= b
    return out


@dataclass(frozen=True)
class WarningNow:
    """The warning at the newest of a machine's rows, with what it is waiting for.

    ``warning``: the standing warning (:func:`standing_warning`); ``alarm``: the row's own
    alarm; ``held_h``: how long the alarm has been on (``alarm``) or off (not ``alarm``) at
    that row, counted over the rows given; ``settled``: some run of the rows lasted its delay,
    so the rows decide the warning whatever came before them (when not settled the warning is
    the state before the rows: ``before`` if given, else off); ``carried``: it was.
    """

    warning: bool
    alarm: bool
    held_h: float
    settled: bool
    carried: bool = False


def warning_now(alarm: np.ndarray, time_s: np.ndarray, on_h: float = 0.0, off_h: float = 0.0,
                step_s: float | None = None, before: bool | None = None) -> WarningNow:
    """:func:`standing_warning` at the newest row of the recent rows of one machine.

    The warning at a row is the value of the latest run of the alarm (on or off) that lasted
    its delay (``on_h`` for alarm runs, ``off_h`` for quiet ones), off if there was none: runs
    shorter than their delay change nothing. The rows decide it when one of their runs lasted
    its delay (``on_h + off_h`` hours and a step of rows hold at least one run, or a run as long
    as the rows); when every run in them is shorter than its delay (an alarm that came and went,
    or chattered), the warning is the state before the rows, ``before`` (off when None, as at
    the start of a timeline). ``alarm`` and ``time_s`` as for :func:`standing_warning`, at
    least one row.
    """
    alarm = np.asarray(alarm, dtype=bool)
    t = np.asarray(time_s, dtype=np.float64)
    if not len(alarm):
        raise ValueError("warning_now needs at least one row")
    warning = standing_warning(alarm, t, on_h, off_h, step_s)
    step = step_s if step_s is not None else (float(np.median(np.diff(t))) if len(t) > 1 else 0.0)
    starts, ends, values = _runs(alarm)
    lasted = t[ends - 1] - t[starts] + step
    delay = np.where(values, on_h, off_h) * SECONDS_PER_HOUR - 1e-6
    settled = bool(np.any(lasted >= delay))
    now_alarm = bool(alarm[-1])
    held_h = float(lasted[-1] / SECONDS_PER_HOUR)
    if settled or before is None:
        return WarningNow(bool(warning[-1]), now_alarm, held_h, settled)
    # No run in the rows changed the warning: it is what it was before them.
    return WarningNow(bool(before), now_alarm, held_h, settled=False, carried=True)


def _before_failure(timeline: Timeline) -> tuple[np.ndarray, np.ndarray]:
    t, w = timeline.time_s, timeline.warning
    if timeline.failure_time_s is None:
        return t, w
    keep = t < timeline.failure_time_s
    return t[keep], w[keep]


def failure_lead_h(timeline: Timeline) -> float | None:
    """Hours from the start of the standing warning to the failure (None without a failure).

    The standing warning is the last stretch of warned rows, if it reaches the last row before
    the failure; 0 when that row is not warned (or there are no rows before the failure).
    """
    if timeline.failure_time_s is None:
        return None
    t, w = _before_failure(timeline)
    return lead_of(t, w, timeline.failure_time_s)


def lead_of(t: np.ndarray, w: np.ndarray, failure_time_s: float) -> float:
    """:func:`failure_lead_h` on arrays: ``t`` and ``w`` are the rows before the failure."""
    if not len(w) or not w[-1]:
        return 0.0
    quiet = np.flatnonzero(~w)
    first = int(quiet[-1]) + 1 if len(quiet) else 0
    return float((failure_time_s - t[first]) / SECONDS_PER_HOUR)


def episodes(timeline: Timeline) -> list[tuple[float, float]]:
    """(start, end) times in seconds of every maximal stretch of warned rows before the failure.

    ``end`` is the time of the stretch's last warned row.
    """
    t, w = _before_failure(timeline)
    starts, ends, values = _runs(w)
    return [(float(t[a]), float(t[b - 1])) for a, b, v in zip(starts, ends, values, strict=True) if v]


def false_episodes(timeline: Timeline, horizon_h: float) -> int:
    """Warning episodes after whose last row the machine does not fail within ``horizon_h``."""
    t, w = _before_failure(timeline)
    return false_episode_count(t, w, timeline.failure_time_s, horizon_h)


def false_episode_count(t: np.ndarray, w: np.ndarray, failure_time_s: float | None,
                        horizon_h: float) -> int:
    """:func:`false_episodes` on arrays: ``t`` and ``w`` are the rows before the failure."""
    # The last row of each warned stretch: warned, and the next row is not (or there is none).
    ends = np.flatnonzero(w & ~np.r_[w[1:], False])
    if failure_time_s is None:
        return len(ends)
    return int(np.count_nonzero(t[ends] < failure_time_s - horizon_h * SECONDS_PER_HOUR))


def healthy_hours(timeline: Timeline, horizon_h: float) -> float:
    """Hours of rows not within ``horizon_h`` of the failure (each row = the median step)."""
    t, _ = _before_failure(timeline)
    if timeline.failure_time_s is not None:
        t = t[t < timeline.failure_time_s - horizon_h * SECONDS_PER_HOUR]
    return len(t) * timeline.step_s() / SECONDS_PER_HOUR


def event_metrics(timelines: Sequence[Timeline], planning_lead_h: float,
                  horizon_h: float) -> dict[str, Any]:
    """Event-level figures of one equipment type over its timelines.

    Takes the timelines (one per machine life: rows with time, warning, and failure time or
    None), the type's planning lead and the model's horizon, in hours. Returns a dict:
    ``failures``, ``warned_at_lead`` (count), ``warned_share`` (of failures; None without
    failures), ``lead_time_h`` (median / p10 / min / max over failures, an unwarned failure
    counting 0), ``false_episodes``, ``healthy_hours``, ``healthy_machine_months``,
    ``false_per_machine_month`` (None without healthy time), ``planning_lead_h``, ``horizon_h``.
    """
    leads = [lead for tl in timelines if (lead := failure_lead_h(tl)) is not None]
    false = sum(false_episodes(tl, horizon_h) for tl in timelines)
    hours = sum(healthy_hours(tl, horizon_h) for tl in timelines)
    return summarize(leads, false, hours, planning_lead_h, horizon_h)


def summarize(leads: Sequence[float], false: int, hours: float, planning_lead_h: float,
              horizon_h: float) -> dict[str, Any]:
    """The dict of :func:`event_metrics` from the lead time of each failure (hours), the count
    of false-alarm episodes and the healthy hours (for callers that count these themselves)."""
    warned = sum(1 for lead in leads if lead >= planning_lead_h - 1e-9)
    months = hours / MACHINE_MONTH_H
    return {
        "failures": len(leads),
        "warned_at_lead": warned,
        "warned_share": warned / len(leads) if leads else None,
        "lead_time_h": distribution(leads),
        "false_episodes": false,
        "healthy_hours": hours,
        "healthy_machine_months": months,
        "false_per_machine_month": false / months if months > 0 else None,
        "planning_lead_h": float(planning_lead_h),
        "horizon_h": float(horizon_h),
    }


def meets_event_target(metrics: dict[str, Any], warned_share: float = TARGET_WARNED_SHARE,
                       false_per_month: float = TARGET_FALSE_PER_MONTH) -> bool:
    """At least ``warned_share`` of failures warned at the lead and at most ``false_per_month``
    false-alarm episodes per healthy machine-month (False when either is undefined)."""
    share, rate = metrics.get("warned_share"), metrics.get("false_per_machine_month")
    return bool(share is not None and rate is not None and share >= warned_share
                and rate <= false_per_month)


def distribution(values: Sequence[float]) -> dict[str, float | None]:
    """Median, 10th percentile, min and max (None each when there are no values)."""
    arr = np.asarray(values, dtype=np.float64)
    if not len(arr):
        return {"median": None, "p10": None, "min": None, "max": None}
    return {"median": float(np.median(arr)), "p10": float(np.percentile(arr, 10)),
            "min": float(arr.min()), "max": float(arr.max())}
