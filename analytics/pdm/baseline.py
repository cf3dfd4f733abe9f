"""Condition baseline: a machine's normal operating envelope learned from its own history.

No failure labels are needed. While the machine runs in service, its signals (the type's
:data:`~analytics.pdm.signals.TYPE_SIGNALS`, one of them the unit's feed) are averaged over
buckets of :data:`BUCKET_S`; a bucket counts only when every signal has a usable sample in it
and the machine ran through all of it (:class:`RunningRule`: a rotating machine's run status
and motor current, else the unit's feed, above a fraction of normal). Once enough good running
hours are collected, :func:`fit` learns:

1. **Context.** Each health signal is regressed (least squares) on the context signals
   (:data:`CONTEXT_SIGNALS`: the unit's feed, an exchanger's inlet, a valve's demand) and the
   time of day (one daily harmonic, when the learning buckets span at least a day): a pump's
   current follows the feed, an exchanger's outlet its inlet, temperatures the day. The residual is what the context
   does not explain. A learning window shorter than a day sees only part of the daily course
   and flags the rest of it: keep ``baseline_learning_h`` at a day or more (default a week).
2. **Envelope.** A quadratic form on the residuals, ``stat = r' M r`` (:class:`Method`):
   ``robust_covariance`` — scikit-learn's Minimum Covariance Determinant (robust location and
   precision: the squared Mahalanobis distance, with the signals' correlations, so an
   exchanger's outlet that no longer follows its inlet or a valve that no longer follows its
   demand counts even when each value alone looks normal); ``robust_z`` — per-signal median
   and MAD (diagonal M); ``pca`` — PCA's combined T²/SPE index.
3. **Threshold.** :data:`THRESHOLD_QUANTILE` of the training statistic times
   :data:`THRESHOLD_MARGIN`.

Scoring is numpy only (the daemon scores without scikit-learn): ``score = sqrt(stat /
threshold)``, so 1.0 is the edge of the envelope, and each signal's contribution is
``r_i (M r)_i`` (the terms that sum to ``stat``), reported as a share with the direction of
the signal's deviation. A machine is *deviating* after :data:`CONFIRM_BUCKETS` buckets in a
row above the edge and stops after as many below it (:func:`step_flag`). The comparison of the
three methods on simulated data and the measured detection delay are in docs/analytics.md
("Condition baseline"). Pure: no I/O, no clock (bucket times come in with the data).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from analytics.pdm.signals import Signal, SignalTag
from plant.schema import ROTATING, EquipmentType

BUCKET_S = 300.0
DAY_S = 86400.0
# A machine is running when its load signal stays above this fraction of its normal minimum.
RUNNING_FRACTION = 0.5
# Buckets in a row above the envelope's edge that raise the deviation flag (15 minutes), and
# below it that clear the flag (an hour: a score wavering at the edge is one episode, not many).
CONFIRM_BUCKETS = 3
CLEAR_BUCKETS = 12
THRESHOLD_QUANTILE = 0.999
THRESHOLD_MARGIN = 1.5
# Fewer good buckets than this and no envelope is fitted (a day of 5-minute buckets is 288).
MIN_ROWS = 48
# Contributions listed per score (the largest first).
TOP_SIGNALS = 3
SCALE_FLOOR = 1e-6


class Method(StrEnum):
    ROBUST_COVARIANCE = "robust_covariance"
    ROBUST_Z = "robust_z"
    PCA = "pca"


DEFAULT_METHOD = Method.ROBUST_COVARIANCE


class BaselineState(StrEnum):
    LEARNING = "learning"
    ACTIVE = "active"


@dataclass(frozen=True)
class RunningRule:
    """The machine is in service while every one of these tags is at least its minimum."""

    tag_id: str
    minimum: float


def running_rules(kind: EquipmentType, found: Mapping[Signal, SignalTag]) -> tuple[RunningRule, ...]:
    """When a machine of ``kind`` counts as running: a rotating machine's run status (when it
    has one) and motor current, else its unit's feed, above :data:`RUNNING_FRACTION` of normal."""
    rules = []
    if kind in ROTATING:
        if Signal.RUN_STATUS in found:
            rules.append(RunningRule(found[Signal.RUN_STATUS].tag_id, 0.5))
        load = found.get(Signal.MOTOR_CURRENT) or found.get(Signal.FEED_FLOW)
    else:
        load = found.get(Signal.FEED_FLOW)
    if load is not None:
        rules.append(RunningRule(load.tag_id, RUNNING_FRACTION * load.normal_min))
    return tuple(rules)


Series = Mapping[str, tuple[np.ndarray, np.ndarray]]  # tag_id -> (source_ts, usable values)


@dataclass(frozen=True)
class Buckets:
    """Complete buckets of good running data: start times and normalised signal means."""

    ts: np.ndarray  # (n,) bucket start, seconds
    rows: np.ndarray  # (n, k) (mean - mid) / half_span per signal
    seen: int = 0  # complete buckets in the span (running or not)


def bucket_rows(series: Series, signals: Sequence[SignalTag], rules: Sequence[RunningRule],
                start: float, end: float, bucket_s: float = BUCKET_S) -> Buckets:
    """The complete buckets in ``[start, end)`` (aligned to multiples of ``bucket_s``) in which
    every signal has a sample and every running rule holds for every sample of its tag.

    ``series`` holds usable samples only (the caller drops doubtful and bad ones); a missing
    tag gives no bucket. Times need not be sorted.
    """
    first = math.ceil(start / bucket_s) * bucket_s
    n = int(math.floor((end - first) / bucket_s + 1e-9))
    k = len(signals)
    if n <= 0:
        return Buckets(np.zeros(0), np.zeros((0, k)), 0)
    ok = np.ones(n, dtype=bool)
    for rule in rules:
        ts, values = series.get(rule.tag_id, (np.zeros(0), np.zeros(0)))
        idx, keep = _bucket_index(ts, first, bucket_s, n)
        present = np.bincount(idx[keep], minlength=n) > 0
        below = np.bincount(idx[keep], weights=(values[keep] < rule.minimum).astype(float), minlength=n) > 0
        ok &= present & ~below
    rows = np.zeros((n, k))
    for j, sig in enumerate(signals):
        ts, values = series.get(sig.tag_id, (np.zeros(0), np.zeros(0)))
        idx, keep = _bucket_index(ts, first, bucket_s, n)
        count = np.bincount(idx[keep], minlength=n)
        total = np.bincount(idx[keep], weights=values[keep], minlength=n)
        ok &= count > 0
        rows[:, j] = (np.divide(total, np.maximum(count, 1)) - sig.mid) / sig.half_span
    starts = first + bucket_s * np.arange(n)
    return Buckets(starts[ok], rows[ok], n)


def _bucket_index(ts: np.ndarray, first: float, bucket_s: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    ts = np.asarray(ts, dtype=float)
    idx = np.floor((ts - first) / bucket_s).astype(np.int64)
    keep = (idx >= 0) & (idx < n)
    return np.where(keep, idx, 0), keep


# Signals that describe the machine's operating condition rather than its health: the load
# (the unit's feed), an exchanger's inlet temperature (its outlet follows it), a valve's demand
# (its position follows it). They are regressors, not scored: a colder crude is not a fouled
# exchanger.
CONTEXT_SIGNALS = frozenset({Signal.FEED_FLOW.value, Signal.EXCHANGER_INLET.value, Signal.VALVE_DEMAND.value})


def context(ts: np.ndarray, rows: np.ndarray, columns: Sequence[int]) -> np.ndarray:
    """The regressors of each bucket: 1, the context signals, the time of day (sin, cos)."""
    phase = 2.0 * math.pi * ((np.asarray(ts, dtype=float) + BUCKET_S / 2) % DAY_S) / DAY_S
    return np.column_stack([np.ones(len(ts)), rows[:, list(columns)], np.sin(phase), np.cos(phase)])


@dataclass(frozen=True)
class Envelope:
    """A fitted baseline over the scored signals ``S`` given the context signals ``C``:
    ``r = x[S] - W·context(x[C], time of day)``, ``stat = (r - center)' M (r - center)``."""

    method: Method
    signals: tuple[str, ...]  # scored Signal values
    tag_ids: tuple[str, ...]  # their tags
    scored: tuple[int, ...]  # their columns in the input rows
    context: tuple[int, ...]  # the context signals' columns in the input rows
    width: int  # columns of the input rows
    weights: np.ndarray  # (len(S), 1 + len(C) + 2) context coefficients
    center: np.ndarray  # (len(S),)
    matrix: np.ndarray  # (len(S), len(S)) symmetric
    threshold: float
    rows: int  # buckets it was fitted on

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method.value, "signals": list(self.signals), "tag_ids": list(self.tag_ids),
                "scored": list(self.scored), "context": list(self.context), "width": self.width,
                "weights": self.weights.tolist(), "center": self.center.tolist(),
                "matrix": self.matrix.tolist(), "threshold": self.threshold, "rows": self.rows}

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> Envelope:
        k, c = len(body["signals"]), len(body["context"])
        weights = np.asarray(body["weights"], dtype=float).reshape(k, 1 + c + 2)
        matrix = np.asarray(body["matrix"], dtype=float).reshape(k, k)
        threshold = float(body["threshold"])
        if not (threshold > 0 and np.isfinite(weights).all() and np.isfinite(matrix).all()):
            raise ValueError("baseline envelope with a non-finite matrix or threshold")
        return cls(Method(body["method"]), tuple(body["signals"]), tuple(body["tag_ids"]),
                   tuple(int(i) for i in body["scored"]), tuple(int(i) for i in body["context"]),
                   int(body["width"]), weights, np.asarray(body["center"], dtype=float).reshape(k),
                   matrix, threshold, int(body["rows"]))

    def residuals(self, ts: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The scored signals' residuals given their context, minus the envelope's center."""
        rows = np.asarray(rows, dtype=float).reshape(-1, self.width)
        x = context(np.asarray(ts, dtype=float), rows, self.context)
        return rows[:, list(self.scored)] - x @ self.weights.T - self.center


def _context_weights(ts: np.ndarray, rows: np.ndarray, scored: Sequence[int],
                     ctx: Sequence[int]) -> np.ndarray:
    """Least-squares context coefficients per scored signal: the time of day only when the
    buckets span a whole day (part of a cycle extrapolates), a context signal only when it
    varies."""
    x = context(ts, rows, ctx)
    daily = [1 + len(ctx), 2 + len(ctx)] if len(ts) and float(ts.max() - ts.min()) >= DAY_S - BUCKET_S else []
    varying = [1 + i for i, j in enumerate(ctx) if np.std(rows[:, j]) >= SCALE_FLOOR]
    cols = [0, *varying, *daily]
    weights = np.zeros((len(scored), x.shape[1]))
    coef, *_ = np.linalg.lstsq(x[:, cols], rows[:, list(scored)], rcond=None)
    weights[:, cols] = coef.T
    return weights


def fit(ts: np.ndarray, rows: np.ndarray, signals: Sequence[SignalTag], method: Method = DEFAULT_METHOD,
        margin: float = THRESHOLD_MARGIN) -> Envelope:
    """Learn the envelope from good running buckets (see the module docstring).

    ``robust_covariance`` and ``pca`` import scikit-learn: call them in a child process.
    Raises ValueError with fewer than :data:`MIN_ROWS` buckets or non-finite values.
    """
    rows = np.asarray(rows, dtype=float)
    ts = np.asarray(ts, dtype=float)
    k = len(signals)
    if rows.ndim != 2 or rows.shape[1] != k or len(ts) != len(rows):
        raise ValueError(f"rows must be (buckets, {k}) with one time per bucket, got {rows.shape}")
    if len(rows) < MIN_ROWS:
        raise ValueError(f"{len(rows)} good running buckets, at least {MIN_ROWS} are needed")
    if not np.isfinite(rows).all():
        raise ValueError("non-finite values in the learning buckets")
    names = [s.signal.value for s in signals]
    ctx = tuple(j for j, n in enumerate(names) if n in CONTEXT_SIGNALS)
    scored = tuple(j for j, n in enumerate(names) if n not in CONTEXT_SIGNALS)
    if not scored:
        raise ValueError("no signal to score: every signal is context")
    weights = _context_weights(ts, rows, scored, ctx)
    r = rows[:, list(scored)] - context(ts, rows, ctx) @ weights.T
    q = len(scored)
    if method == Method.ROBUST_Z:
        center = np.median(r, axis=0)
        scale = 1.4826 * np.median(np.abs(r - center), axis=0)
        matrix = np.diag(1.0 / np.maximum(scale, SCALE_FLOOR) ** 2)
    elif method == Method.ROBUST_COVARIANCE:
        from sklearn.covariance import MinCovDet

        mcd = MinCovDet(random_state=0).fit(r)
        center, matrix = mcd.location_, mcd.get_precision()
    elif method == Method.PCA:
        from sklearn.decomposition import PCA

        center = r.mean(axis=0)
        std = np.maximum(r.std(axis=0), SCALE_FLOOR)
        z = (r - center) / std
        pca = PCA(n_components=0.9, svd_solver="full").fit(z) if q > 1 else None
        if pca is None:
            phi = np.eye(1)
        else:
            p = pca.components_.T  # (q, a)
            t2 = p @ np.diag(1.0 / pca.explained_variance_) @ p.T / p.shape[1]
            spe_m = np.eye(q) - p @ p.T
            spe = np.einsum("ij,jk,ik->i", z, spe_m, z)
            phi = t2 + spe_m / max(float(spe.mean()), SCALE_FLOOR)
        matrix = phi / np.outer(std, std)
    else:  # pragma: no cover - Method is closed
        raise ValueError(f"unknown method {method}")
    matrix = (np.asarray(matrix, dtype=float) + np.asarray(matrix, dtype=float).T) / 2.0
    d = r - center
    stat = np.einsum("ij,jk,ik->i", d, matrix, d)
    threshold = float(np.quantile(stat, THRESHOLD_QUANTILE)) * margin
    return Envelope(method, tuple(names[j] for j in scored), tuple(signals[j].tag_id for j in scored),
                    scored, ctx, k, weights, np.asarray(center, dtype=float), matrix,
                    max(threshold, SCALE_FLOOR), len(rows))


@dataclass(frozen=True)
class Scores:
    """Per bucket: ``score`` (1.0 = the envelope's edge), signed residuals and contributions."""

    score: np.ndarray  # (n,)
    deviation: np.ndarray  # (n, k) residual minus center (its sign: above / below normal)
    contribution: np.ndarray  # (n, k) shares of the statistic, >= 0, rows sum to 1 (or 0)


def score(envelope: Envelope, ts: np.ndarray, rows: np.ndarray) -> Scores:
    """Score buckets against the envelope (numpy only)."""
    d = envelope.residuals(ts, rows)
    terms = d * (d @ envelope.matrix)
    stat = np.maximum(terms.sum(axis=1), 0.0)
    positive = np.maximum(terms, 0.0)
    total = positive.sum(axis=1, keepdims=True)
    shares = np.divide(positive, total, out=np.zeros_like(positive), where=total > 0)
    return Scores(np.sqrt(stat / envelope.threshold), d, shares)


def top_signals(envelope: Envelope, scores: Scores, row: int = -1, n: int = TOP_SIGNALS) -> list[dict[str, Any]]:
    """The signals that moved most in one scored bucket, largest share first."""
    shares, dev = scores.contribution[row], scores.deviation[row]
    order = np.argsort(-shares, kind="stable")[:n]
    return [{"signal": envelope.signals[j], "tag_id": envelope.tag_ids[j],
             "contribution_pct": round(100.0 * float(shares[j]), 1),
             "direction": "above" if dev[j] >= 0 else "below"}
            for j in order if shares[j] > 0]


@dataclass
class Flag:
    """The deviation flag with its hysteresis (buckets in a row above / below the edge)."""

    deviating: bool = False
    run: int = 0
    episodes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"deviating": self.deviating, "run": self.run, "episodes": self.episodes}

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> Flag:
        return cls(bool(body.get("deviating", False)), int(body.get("run", 0)), int(body.get("episodes", 0)))


def step_flag(flag: Flag, scores: np.ndarray, confirm: int = CONFIRM_BUCKETS,
              clear: int = CLEAR_BUCKETS) -> np.ndarray:
    """Advance ``flag`` over consecutive bucket scores; returns the flag after each bucket."""
    out = np.zeros(len(scores), dtype=bool)
    for i, s in enumerate(np.asarray(scores, dtype=float)):
        against = (s <= 1.0) if flag.deviating else (s > 1.0)
        flag.run = flag.run + 1 if against else 0
        if flag.run >= (clear if flag.deviating else confirm):
            flag.deviating, flag.run = not flag.deviating, 0
            flag.episodes += int(flag.deviating)
        out[i] = flag.deviating
    return out


@dataclass
class Learning:
    """Good running buckets collected so far (the envelope is fitted from them)."""

    ts: list[float] = field(default_factory=list)
    rows: list[list[float]] = field(default_factory=list)

    def add(self, buckets: Buckets) -> None:
        self.ts.extend(float(t) for t in buckets.ts)
        self.rows.extend(r.tolist() for r in buckets.rows)

    def hours(self, bucket_s: float = BUCKET_S) -> float:
        return len(self.ts) * bucket_s / 3600.0

    def progress(self, learning_h: float, bucket_s: float = BUCKET_S) -> float:
        """Good running hours collected / the learning window, 0..1."""
        return min(1.0, self.hours(bucket_s) / learning_h)

    def arrays(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.ts, dtype=float), np.asarray(self.rows, dtype=float).reshape(-1, k)
