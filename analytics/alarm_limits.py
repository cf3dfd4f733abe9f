"""Vectorized limit checks: which limit each value violates, and how badly.

These are the per-tag operations the alarm engine runs on every scan, so they are whole-column
numpy expressions over a Batch; the engine does Python-level work only for the few tags whose
condition differs from what it already knows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.alarm_config import AlarmConfig
from analytics.alarm_types import Condition
from plant.catalog import Catalog
from plant.schema import TagType

CONDITION_DTYPE = np.int8
_NORMAL = int(Condition.NORMAL)


@dataclass(frozen=True)
class LimitColumns:
    """Alarm limits of every catalog tag as float64 columns (NaN where a limit is not set).

    ``lo``/``hi`` are the normal range (the L/H alarm limits), ``lolo``/``hihi`` the optional
    LL/HH. ``deadband`` is in engineering units: the tag's own, else a percentage of its span.
    STATUS tags have ``has_limits`` False: a state is not a process variable to alarm on.
    """

    lo: np.ndarray
    hi: np.ndarray
    lolo: np.ndarray
    hihi: np.ndarray
    span: np.ndarray
    deadband: np.ndarray
    has_limits: np.ndarray

    @classmethod
    def from_catalog(cls, catalog: Catalog, config: AlarmConfig) -> LimitColumns:
        lo = np.asarray(catalog.normal_min, dtype=np.float64)
        hi = np.asarray(catalog.normal_max, dtype=np.float64)
        span = hi - lo
        # Zero span (a setpoint written as min == max): measure deviation against the limit's
        # own magnitude rather than divide by zero.
        span = np.where(span > 0, span, np.maximum(np.abs(hi), 1.0))
        own = np.array([np.nan if t.deadband is None else t.deadband for t in catalog.tags],
                       dtype=np.float64)
        deadband = np.where(np.isnan(own), (hi - lo) * config.deadband_pct / 100.0, own)
        has_limits = np.array([t.tag_type != TagType.STATUS for t in catalog.tags], dtype=bool)
        return cls(lo=lo, hi=hi, lolo=np.asarray(catalog.ll, dtype=np.float64),
                   hihi=np.asarray(catalog.hh, dtype=np.float64), span=span,
                   deadband=deadband, has_limits=has_limits)

    def limit(self, tag: int, condition: Condition) -> float:
        """The limit a condition violates, for messages and transitions."""
        column = {Condition.LO: self.lo, Condition.LOLO: self.lolo, Condition.HI: self.hi,
                  Condition.HIHI: self.hihi}[condition]
        return float(column[tag])


def evaluate(limits: LimitColumns, tags: np.ndarray, values: np.ndarray,
             current: np.ndarray) -> np.ndarray:
    """The raw condition of each value, with hysteresis around the condition already held.

    A value violates a limit when strictly beyond it (the normal range is inclusive). A held
    condition is left only once the value is back inside its limit by the deadband, so noise
    around a limit cannot make the alarm chatter (ISA-18.2 section 10.4.2).
    """
    raw = np.zeros(len(tags), dtype=CONDITION_DTYPE)
    # The usual scan: every value inside its normal range and no condition held. Only the
    # rest (normally none) needs the full comparison with hysteresis.
    with np.errstate(invalid="ignore"):
        busy = (values > limits.hi[tags]) | (values < limits.lo[tags]) | (current != _NORMAL)
    if busy.any():
        k = np.flatnonzero(busy)
        raw[k] = _evaluate_with_hysteresis(limits, tags[k], values[k], current[k])
    return raw


def _evaluate_with_hysteresis(limits: LimitColumns, tags: np.ndarray, values: np.ndarray,
                              current: np.ndarray) -> np.ndarray:
    db = limits.deadband[tags]
    hi_held = (current == Condition.HI) | (current == Condition.HIHI)
    lo_held = (current == Condition.LO) | (current == Condition.LOLO)
    hi = limits.hi[tags] - np.where(hi_held, db, 0.0)
    hihi = limits.hihi[tags] - np.where(current == Condition.HIHI, db, 0.0)
    lo = limits.lo[tags] + np.where(lo_held, db, 0.0)
    lolo = limits.lolo[tags] + np.where(current == Condition.LOLO, db, 0.0)
    raw = np.zeros(len(tags), dtype=CONDITION_DTYPE)
    with np.errstate(invalid="ignore"):  # NaN limits compare False: never violated
        raw[values < lo] = Condition.LO
        raw[values < lolo] = Condition.LOLO
        raw[values > hi] = Condition.HI
        raw[values > hihi] = Condition.HIHI
    return raw


def severity_rank(limits: LimitColumns, tags: np.ndarray, values: np.ndarray,
                  raw: np.ndarray, config: AlarmConfig) -> np.ndarray:
    """Severity rank (1 LOW, 2 MEDIUM, 3 HIGH; 0 where normal) of each raw condition.

    The deviation beyond the normal limit on the violated side, in % of the normal span,
    is banded by the config (seed: < 15 LOW, 15-30 MEDIUM, > 30 HIGH); an HH or LL
    violation is at least HIGH.
    """
    span = limits.span[tags]
    high_side = raw >= Condition.HI
    beyond = np.where(high_side, values - limits.hi[tags], limits.lo[tags] - values)
    # Round away binary noise so a value exactly on a band edge lands in the documented band.
    pct = np.round(beyond * 100.0 / span, 9)
    rank = (1 + (pct >= config.medium_from_pct) + (pct > config.high_above_pct)).astype(np.int8)
    rank[(raw == Condition.HIHI) | (raw == Condition.LOLO)] = 3
    rank[raw == Condition.NORMAL] = 0
    return rank
