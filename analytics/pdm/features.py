"""Features of an equipment's recent history, the same code for training rows and live inference.

Input is a regular-ish series: sample times (seconds) and one column per signal (in the order
of :data:`analytics.pdm.signals.TYPE_SIGNALS`), each already in engineering units. Every signal
is first normalised by its tag's normal range, ``z = (value - mid) / half_span``, so a feature
means the same on PUMP-101 (discharge 150-180 bar) and PUMP-305 (700-760 bar). A few derived
channels carry each type's physics (motor current per unit of feed, tube-skin minus outlet,
exchanger fouling, valve position error and its spread over a day), and a
wear index (the mean excess of a type's symptoms). Then every channel gets, per row, over causal
time windows ending at that row: the last value, the mean over 1 / 6 / 24 / 48 h, the standard
deviation over 1 / 6 h and the least-squares slope (per hour) over 6 / 24 / 48 h. Symptom
excesses are smoothed over 6 h and taken in log, with an extrapolated hours-to-failure-level.

:func:`feature_matrix` computes all rows of a history at once with cumulative sums (O(n), no
Python loop over rows); live inference takes the last row of the same matrix over the recent
history (:func:`latest_features`), so training and inference cannot drift apart.

The training target is "fails within the horizon": ``failure_time - t <= horizon`` (see
:func:`fails_within`); the horizon is chosen per type in :mod:`analytics.pdm.model`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analytics.pdm.signals import TYPE_SIGNALS, Signal, SignalTag
from plant.schema import ROTATING, EquipmentType

SECONDS_PER_HOUR = 3600.0
MEAN_WINDOWS_H = (1.0, 6.0, 24.0, 48.0)
STD_WINDOWS_H = (1.0, 6.0)
SLOPE_WINDOWS_H = (6.0, 24.0, 48.0)
# A symptom's excess is averaged over this window before the log (the log of noise is unusable).
SMOOTH_H = 6.0
# A sticking valve holds until its demand has moved past the stiction band, then jumps: the
# position error (position minus demand) wanders inside the band, so its spread over a day
# grows with the band while the position transmitter's noise sets the healthy floor.
SPREAD_H = 24.0
# How much history inference needs for fully formed features: the longest window over a
# channel that is itself windowed (the smoothed excess of the valve error spread).
HISTORY_H = max(MEAN_WINDOWS_H + SLOPE_WINDOWS_H) + SMOOTH_H + SPREAD_H
# Below this the motor-current-per-feed ratio is meaningless (the unit is not being fed).
MIN_FEED_RATIO = 0.05

STATS: tuple[str, ...] = (
    ("last",)
    + tuple(f"mean_{w:g}h" for w in MEAN_WINDOWS_H)
    + tuple(f"std_{w:g}h" for w in STD_WINDOWS_H)
    + tuple(f"slope_{w:g}h" for w in SLOPE_WINDOWS_H)
)

# Derived channels per type (name, computed from the normalised signals in _derived).
DERIVED: dict[EquipmentType, tuple[str, ...]] = {
    EquipmentType.PUMP: ("current_per_feed",),
    EquipmentType.COMPRESSOR: ("current_per_feed",),
    EquipmentType.FURNACE: ("skin_minus_outlet",),
    EquipmentType.EXCHANGER: ("fouling",),
    EquipmentType.VALVE: ("position_error", "error_spread"),
}


# Symptoms that grow as the equipment wears: (channel, +1 rising / -1 falling). Each is
# measured as an *excess* over its healthy reference (0 for a signal at the middle of its
# normal range). The excess is smoothed over SMOOTH_H, then taken in log: wear-out is close to
# exponential, so the slope of the log excess is the growth rate, and an extrapolated "hours
# until the excess reaches LIMIT_HALF_SPANS" is a remaining-life estimate.
SYMPTOMS: dict[EquipmentType, tuple[tuple[str, int], ...]] = {
    EquipmentType.PUMP: (("vibration", 1), ("bearing_temp", 1), ("discharge_pressure", -1)),
    EquipmentType.COMPRESSOR: (("vibration", 1), ("bearing_temp", 1), ("discharge_pressure", -1)),
    EquipmentType.FURNACE: (("tube_skin", 1), ("skin_minus_outlet", 1)),
    EquipmentType.EXCHANGER: (("fouling", 1),),
    EquipmentType.VALVE: (("error_spread", 1),),
}
# The wear index is the mean excess of a type's symptoms: one channel with the noise of each
# symptom averaged down (they are independent measurements of the same damage).
WEAR_INDEX = "wear_index"
# Excess below this (in half-spans) is indistinguishable from noise: the log is floored there.
EXCESS_FLOOR = 0.01
# The smoothed excess at which a symptom reaches failure (median over the training machines
# just before they failed, rounded); "hours to limit" extrapolates the log excess to it.
FAILURE_EXCESS: dict[EquipmentType, dict[str, float]] = {
    EquipmentType.PUMP: {"vibration": 2.5, "bearing_temp": 1.7, "discharge_pressure": 2.0, WEAR_INDEX: 2.0},
    EquipmentType.COMPRESSOR: {"vibration": 2.6, "bearing_temp": 1.7, "discharge_pressure": 2.2,
                               WEAR_INDEX: 2.1},
    EquipmentType.FURNACE: {"tube_skin": 2.8, "skin_minus_outlet": 2.8, WEAR_INDEX: 2.8},
    EquipmentType.EXCHANGER: {"fouling": 0.46},
    EquipmentType.VALVE: {"error_spread": 0.09},
}
MAX_HOURS_TO_LIMIT = 1000.0
# Level and growth rate of the extrapolation: the 48 h slope, because the wear process itself
# is a noisy multiplicative walk and a day of it says little about its mean growth rate.
TREND_MEAN = "last"
TREND_SLOPE = "slope_48h"


def symptom_names(kind: EquipmentType) -> tuple[str, ...]:
    """Channels whose log excess is a feature: the type's symptoms, then its wear index."""
    names = tuple(name for name, _ in SYMPTOMS[kind])
    return names + ((WEAR_INDEX,) if len(names) > 1 else ())


def channel_names(kind: EquipmentType) -> tuple[str, ...]:
    """Channels of a type's model: signals, derived channels, wear index, log-excess symptoms."""
    index = (WEAR_INDEX,) if len(SYMPTOMS[kind]) > 1 else ()
    return (tuple(s.value for s in TYPE_SIGNALS[kind]) + DERIVED[kind] + index
            + tuple(f"log_excess_{name}" for name in symptom_names(kind)))


def feature_names(kind: EquipmentType) -> tuple[str, ...]:
    """Column names of :func:`feature_matrix` for a type, e.g. ``vibration.slope_6h``."""
    return (tuple(f"{c}.{s}" for c in channel_names(kind) for s in STATS)
            + tuple(f"{name}.hours_to_limit" for name in symptom_names(kind)))


@dataclass(frozen=True)
class Scaling:
    """Per-signal normalisation (mid and half-span of the tag's normal range)."""

    mid: np.ndarray
    half_span: np.ndarray

    @classmethod
    def of(cls, signals: Sequence[SignalTag]) -> Scaling:
        return cls(np.array([s.mid for s in signals]), np.array([s.half_span for s in signals]))


def _derived(kind: EquipmentType, time_s: np.ndarray, z: np.ndarray, values: np.ndarray,
             scaling: Scaling) -> list[np.ndarray]:
    col = {s: i for i, s in enumerate(TYPE_SIGNALS[kind])}
    if kind in ROTATING:
        current = values[:, col[Signal.MOTOR_CURRENT]] / scaling.mid[col[Signal.MOTOR_CURRENT]]
        feed = values[:, col[Signal.FEED_FLOW]] / scaling.mid[col[Signal.FEED_FLOW]]
        return [np.where(feed > MIN_FEED_RATIO, current / np.maximum(feed, MIN_FEED_RATIO) - 1.0, 0.0)]
    if kind == EquipmentType.FURNACE:
        return [z[:, col[Signal.TUBE_SKIN]] - z[:, col[Signal.FURNACE_OUTLET]]]
    if kind == EquipmentType.EXCHANGER:
        i, o = col[Signal.EXCHANGER_INLET], col[Signal.EXCHANGER_OUTLET]
        design_rise = scaling.mid[o] - scaling.mid[i]
        # Fouling: the share of the design temperature rise lost (0 clean).
        return [1.0 - (values[:, o] - values[:, i]) / (design_rise if design_rise != 0 else 1.0)]
    i, d = col[Signal.VALVE_POSITION], col[Signal.VALVE_DEMAND]
    error = ((values[:, i] - values[:, d]) / scaling.half_span[i])[:, None]
    mean = rolling_mean(time_s, error, SPREAD_H)
    spread = np.sqrt(np.maximum(rolling_mean(time_s, error * error, SPREAD_H) - mean * mean, 0.0))
    return [np.abs(error[:, 0]), spread[:, 0]]


def channels(kind: EquipmentType, values: np.ndarray, scaling: Scaling,
             time_s: np.ndarray | None = None) -> np.ndarray:
    """Signals, derived channels, wear index and smoothed log excesses, one column each.

    Shape (rows, len(channel_names(kind))). ``time_s`` (ascending seconds) is needed for the
    windowed channels; without it the rows are taken as ``dt``-spaced by their index.
    """
    values = np.asarray(values, dtype=np.float64)
    if time_s is None:
        time_s = np.arange(len(values), dtype=np.float64)
    time_s = np.asarray(time_s, dtype=np.float64)
    z = (values - scaling.mid) / scaling.half_span
    base = np.column_stack([z, *_derived(kind, time_s, z, values, scaling)])
    names = tuple(s.value for s in TYPE_SIGNALS[kind]) + DERIVED[kind]
    excess = np.column_stack([sign * base[:, names.index(name)] for name, sign in SYMPTOMS[kind]])
    if excess.shape[1] > 1:
        excess = np.column_stack([excess, excess.mean(axis=1)])
        base = np.column_stack([base, excess[:, -1]])
    smooth = rolling_mean(time_s, excess, SMOOTH_H)
    return np.column_stack([base, np.log(np.maximum(smooth, EXCESS_FLOOR))])


def _window_start(time_s: np.ndarray, window_s: float) -> np.ndarray:
    """Index of the first row inside the causal window (t - window, t] of each row."""
    return np.searchsorted(time_s, time_s - window_s, side="right")


def _prefix(x: np.ndarray) -> np.ndarray:
    out = np.zeros((x.shape[0] + 1,) + x.shape[1:])
    np.cumsum(x, axis=0, out=out[1:])
    return out


def rolling_mean(time_s: np.ndarray, x: np.ndarray, window_h: float) -> np.ndarray:
    """Mean of each column over the causal window (t - window_h, t] of each row."""
    lo = _window_start(time_s, window_h * SECONDS_PER_HOUR)
    hi = np.arange(len(time_s)) + 1
    s_x = _prefix(x)
    return (s_x[hi] - s_x[lo]) / (hi - lo)[:, None]


def rolling_stats(time_s: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per row and channel the :data:`STATS`, shape (rows, channels, len(STATS))."""
    time_s = np.asarray(time_s, dtype=np.float64)
    rows = np.arange(len(time_s))
    t = ((time_s - time_s[0]) / SECONDS_PER_HOUR)[:, None] if len(time_s) else time_s[:, None]
    s_x, s_xx = _prefix(x), _prefix(x * x)
    s_t, s_tt, s_tx = _prefix(t), _prefix(t * t), _prefix(t * x)
    out = [x]

    def window_sums(window_h: float):
        lo = _window_start(time_s, window_h * SECONDS_PER_HOUR)
        hi = rows + 1
        n = (hi - lo)[:, None].astype(np.float64)
        return lo, hi, n

    for w in MEAN_WINDOWS_H:
        lo, hi, n = window_sums(w)
        out.append((s_x[hi] - s_x[lo]) / n)
    for w in STD_WINDOWS_H:
        lo, hi, n = window_sums(w)
        mean = (s_x[hi] - s_x[lo]) / n
        var = (s_xx[hi] - s_xx[lo]) / n - mean * mean
        out.append(np.sqrt(np.maximum(var, 0.0)))
    for w in SLOPE_WINDOWS_H:
        lo, hi, n = window_sums(w)
        mt = (s_t[hi] - s_t[lo]) / n
        mx = (s_x[hi] - s_x[lo]) / n
        cov = (s_tx[hi] - s_tx[lo]) / n - mt * mx
        var_t = (s_tt[hi] - s_tt[lo]) / n - mt * mt
        # A single sample (or identical times) has no slope.
        out.append(np.where(var_t > 1e-12, cov / np.where(var_t > 1e-12, var_t, 1.0), 0.0))
    return np.stack(out, axis=2)


def feature_matrix(kind: EquipmentType, time_s: np.ndarray, values: np.ndarray,
                   scaling: Scaling) -> np.ndarray:
    """Features of every row of a history, shape (rows, len(feature_names(kind))).

    ``values`` has one column per signal of ``TYPE_SIGNALS[kind]``; rows are ascending in time
    and contain no NaN (live data is forward-filled by :func:`resample` first).
    """
    x = channels(kind, values, scaling, time_s)
    stats = rolling_stats(time_s, x)
    names = channel_names(kind)
    level, slope = STATS.index(TREND_MEAN), STATS.index(TREND_SLOPE)
    hours = []
    for name in symptom_names(kind):
        k = names.index(f"log_excess_{name}")
        rising = stats[:, k, slope] > 1e-6
        to_go = np.maximum(np.log(FAILURE_EXCESS[kind][name]) - stats[:, k, level], 0.0)
        h = np.where(rising, to_go / np.where(rising, stats[:, k, slope], 1.0), MAX_HOURS_TO_LIMIT)
        hours.append(np.minimum(h, MAX_HOURS_TO_LIMIT))
    return np.column_stack([stats.reshape(len(time_s), -1), *hours])


def latest_features(kind: EquipmentType, time_s: np.ndarray, values: np.ndarray,
                    scaling: Scaling) -> np.ndarray:
    """The feature row of the newest sample (what live inference feeds the model)."""
    if len(time_s) == 0:
        raise ValueError("no samples: cannot compute features")
    return feature_matrix(kind, time_s, values, scaling)[-1]


def resample(grid_s: np.ndarray, ts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Point-sample one tag's series at the grid times: the last sample at or before each.

    Training histories are instantaneous values every ``dt`` seconds; live data (scans every
    second, gaps, bad samples removed) is brought to the same ``dt`` grid this way. Grid times
    before the first sample take the first sample's value.
    """
    ts = np.asarray(ts, dtype=np.float64)
    if len(ts) == 0:
        raise ValueError("no samples to resample")
    idx = np.searchsorted(ts, grid_s, side="right") - 1
    return np.asarray(values, dtype=np.float64)[np.maximum(idx, 0)]


def fails_within(time_s: np.ndarray, failure_time_s: float, horizon_h: float) -> np.ndarray:
    """Training label per row: the equipment fails within ``horizon_h`` hours of that row."""
    return (failure_time_s - np.asarray(time_s)) <= horizon_h * SECONDS_PER_HOUR
