"""Tank level, volume, FILLING / DRAINING / STABLE from a robust level trend, time to full/empty.

The trend is the Theil–Sen slope (median of pairwise slopes) of the good level samples, which
ignores spikes and is not fooled by one noisy difference. A slope counts as movement only if
it exceeds both a floor in %/h and three standard errors of the slope estimated from the
residual noise (1.4826 × MAD); otherwise the tank is STABLE.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from analytics.window import SECONDS_PER_HOUR, SampleCounts, TagSeries, Window
from plant.schema import Plant, Tank

MIN_RATE_PCT_PER_H = 0.5
NOISE_SIGMAS = 3.0
# Pairwise slopes are O(n²): the fit uses at most this many evenly spaced samples.
MAX_TREND_SAMPLES = 400
MIN_TREND_SAMPLES = 3
MAD_TO_SIGMA = 1.4826
FULL_PCT = 100.0
EMPTY_PCT = 0.0


class TankTrend(StrEnum):
    FILLING = "FILLING"
    DRAINING = "DRAINING"
    STABLE = "STABLE"


class TankStatus(StrEnum):
    LOW = "LOW"
    NORMAL = "NORMAL"
    HIGH = "HIGH"
    NO_DATA = "NO_DATA"


@dataclass(frozen=True, slots=True)
class LevelTrend:
    """Robust slope of a level series (%/h), its noise (%) and whether it is significant."""

    slope_pct_per_h: float
    noise_pct: float
    threshold_pct_per_h: float
    trend: TankTrend


@dataclass(frozen=True, slots=True)
class TankState:
    """A tank at the end of a window: level %, volume L, trend and times to full/empty (h)."""

    tank_id: str
    level_tag: str
    level_pct: float | None
    volume_l: float | None
    capacity_l: float
    level_ts: float | None
    trend: TankTrend
    rate_pct_per_h: float | None
    rate_l_per_h: float | None
    hours_to_full: float | None
    hours_to_empty: float | None
    status: TankStatus
    samples: SampleCounts


def theil_sen(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of the Theil–Sen estimator; t must not be all equal."""
    i, j = np.triu_indices(len(t), k=1)
    dt = t[j] - t[i]
    ok = dt > 0
    slope = float(np.median((y[j] - y[i])[ok] / dt[ok]))
    intercept = float(np.median(y - slope * t))
    return slope, intercept


def level_trend(series: TagSeries, *, min_rate_pct_per_h: float = MIN_RATE_PCT_PER_H,
                noise_sigmas: float = NOISE_SIGMAS) -> LevelTrend | None:
    """Trend of the good samples of a level series; None with fewer than 3 distinct times."""
    good = series.good()
    if len(good) > MAX_TREND_SAMPLES:
        pick = np.linspace(0, len(good) - 1, MAX_TREND_SAMPLES).round().astype(np.int64)
        good = TagSeries(good.ts[pick], good.values[pick], good.quality[pick])
    t_h = (good.ts - good.ts[0]) / SECONDS_PER_HOUR if len(good) else good.ts
    if len(np.unique(t_h)) < MIN_TREND_SAMPLES:
        return None
    slope, intercept = theil_sen(t_h, good.values)
    residuals = good.values - (intercept + slope * t_h)
    noise = MAD_TO_SIGMA * float(np.median(np.abs(residuals - np.median(residuals))))
    spread = float(np.sqrt(np.sum((t_h - t_h.mean()) ** 2)))
    threshold = max(min_rate_pct_per_h, noise_sigmas * noise / spread)
    if slope > threshold:
        trend = TankTrend.FILLING
    elif slope < -threshold:
        trend = TankTrend.DRAINING
    else:
        trend = TankTrend.STABLE
    return LevelTrend(slope, noise, threshold, trend)


def level_status(level_pct: float | None, tank: Tank) -> TankStatus:
    """LOW at or below the tank's low level, HIGH at or above its high level, else NORMAL."""
    if level_pct is None:
        return TankStatus.NO_DATA
    if level_pct <= tank.low_level_pct:
        return TankStatus.LOW
    if level_pct >= tank.high_level_pct:
        return TankStatus.HIGH
    return TankStatus.NORMAL


def tank_state(window: Window, tank: Tank, *, min_rate_pct_per_h: float = MIN_RATE_PCT_PER_H
               ) -> TankState:
    """Level (last good sample), volume, trend over the window and time to full/empty."""
    history = window.history(tank.level_tag)
    last = history.last_good()
    level_ts, level = (last if last is not None else (None, None))
    fit = level_trend(history, min_rate_pct_per_h=min_rate_pct_per_h)
    trend = fit.trend if fit is not None else TankTrend.STABLE
    rate = fit.slope_pct_per_h if fit is not None else None
    to_full = to_empty = None
    if level is not None and rate is not None:
        if trend == TankTrend.FILLING:
            to_full = max(FULL_PCT - level, 0.0) / rate
        elif trend == TankTrend.DRAINING:
            to_empty = max(level - EMPTY_PCT, 0.0) / -rate
    return TankState(
        tank_id=tank.id, level_tag=tank.level_tag, level_pct=level,
        volume_l=tank.capacity_l * level / 100.0 if level is not None else None,
        capacity_l=tank.capacity_l, level_ts=level_ts, trend=trend, rate_pct_per_h=rate,
        rate_l_per_h=tank.capacity_l * rate / 100.0 if rate is not None else None,
        hours_to_full=to_full, hours_to_empty=to_empty,
        status=level_status(level, tank), samples=history.counts())


def tank_states(window: Window, plant: Plant, *, min_rate_pct_per_h: float = MIN_RATE_PCT_PER_H
                ) -> list[TankState]:
    """:func:`tank_state` for every tank of the plant, in catalog order."""
    return [tank_state(window, tank, min_rate_pct_per_h=min_rate_pct_per_h) for tank in plant.tanks]
