"""Held-out metrics of a failure classifier: what the model card reports.

* precision / recall / F1 per row ("fails within the horizon" vs the alarm at the threshold),
  with the standard errors of precision and recall over runs (see :func:`run_standard_error`);
* Brier score and calibration bins (mean predicted probability vs observed frequency);
* lead time per run: failure time minus the first alarm *that stays* (every later row alarmed),
  median and 10th percentile; a run whose failure was never alarmed has lead time 0;
* false alarm rate: share of rows in healthy periods (before wear onset) that alarm.

These row-level figures are secondary on the model card; the target is per failure event
(:mod:`analytics.pdm.events`): :func:`timelines_of` turns rows and probabilities into the
warning timelines it counts, and :func:`choose_warning_cv` picks the threshold and the
warning's on/off delays for it on out-of-fold predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from analytics.pdm.dataset import Rows
from analytics.pdm.events import (
    SECONDS_PER_HOUR,
    TARGET_FALSE_PER_MONTH,
    TARGET_WARNED_SHARE,
    Timeline,
    false_episode_count,
    healthy_hours,
    lead_of,
    standing_warning,
    summarize,
)

CALIBRATION_BINS = 10
THRESHOLD_CANDIDATES = np.round(np.arange(0.10, 0.91, 0.01), 2)
# Confidence of the lower bound on the lead time that the target share of failures get
# (:func:`lead_lower_bound_h`), used by choose_warning_cv within a band of tied rules.
LEAD_BOUND_CONFIDENCE = 0.95


def precision_recall(label: np.ndarray, alarm: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and F1 (0 where undefined)."""
    tp = float(np.count_nonzero(alarm & label))
    fp = float(np.count_nonzero(alarm & ~label))
    fn = float(np.count_nonzero(~alarm & label))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def fold_bounds(label: np.ndarray, probability: np.ndarray, fold_of_row: np.ndarray,
                threshold: float) -> tuple[float, float]:
    """Pooled precision and recall at ``threshold``, each minus its standard error across folds.

    The folds are independent groups of machines, so the spread of their precisions (recalls)
    says how far the figure on another set of machines may fall; dividing the spread by
    sqrt(folds) gives the standard error of the pooled estimate (a one-sigma lower bound).
    """
    alarm = probability >= threshold
    pooled_p, pooled_r, _ = precision_recall(label, alarm)
    folds = np.unique(fold_of_row)
    per_fold = np.array([precision_recall(label[fold_of_row == f], alarm[fold_of_row == f])[:2]
                         for f in folds]).reshape(-1, 2)
    if len(per_fold) < 2:
        return pooled_p, pooled_r
    spread = per_fold.std(axis=0, ddof=1) / np.sqrt(len(per_fold))
    return pooled_p - float(spread[0]), pooled_r - float(spread[1])


def choose_threshold_cv(label: np.ndarray, probability: np.ndarray, fold_of_row: np.ndarray,
                        min_precision: float, min_recall: float) -> tuple[float, float]:
    """The threshold that puts the operating point deepest inside both targets.

    For each candidate, the margins of the out-of-fold precision and recall bounds (see
    :func:`fold_bounds`) over ``min_precision`` and ``min_recall``; the threshold whose smaller
    margin is largest wins (the lowest such threshold on a tie). A threshold at the edge of one
    target (the lowest that reaches the precision, say) meets it on another set of machines
    only half the time; the balanced point leaves both targets the same room. Returns the
    threshold and its smaller margin (negative when no threshold meets both in CV).
    """
    best = (-np.inf, float(THRESHOLD_CANDIDATES[-1]))
    for th in THRESHOLD_CANDIDATES:
        precision, recall = fold_bounds(label, probability, fold_of_row, float(th))
        margin = min(precision - min_precision, recall - min_recall)
        if margin > best[0] + 1e-12:
            best = (margin, float(th))
    return best[1], float(best[0])


def calibration_bins(label: np.ndarray, probability: np.ndarray) -> list[dict[str, float | int]]:
    """Equal-width bins of predicted probability with their observed failure frequency."""
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    index = np.clip(np.digitize(probability, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    out = []
    for b in range(CALIBRATION_BINS):
        in_bin = index == b
        n = int(np.count_nonzero(in_bin))
        out.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": n,
                    "mean_predicted": float(probability[in_bin].mean()) if n else None,
                    "observed": float(label[in_bin].mean()) if n else None})
    return out


def run_standard_error(numerator: np.ndarray, denominator: np.ndarray) -> float | None:
    """Standard error of the ratio sum(numerator) / sum(denominator) with runs as the units.

    ``numerator`` and ``denominator`` hold one count per run (true alarms and alarms for
    precision; true alarms and positive rows for recall). Rows of one run are not independent
    (a machine that looks worn early alarms for hours), so the error is taken over runs:
    the linearised ratio estimator, SE = sqrt(n / (n - 1) * sum((num_i - R * den_i)^2)) / sum(den),
    with R the pooled ratio and n the number of runs. None with fewer than 2 runs or an empty
    denominator.
    """
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    n, total = len(num), float(den.sum())
    if n < 2 or total <= 0.0:
        return None
    residual = num - (num.sum() / total) * den
    return float(np.sqrt(n / (n - 1) * np.sum(residual ** 2)) / total)


def lead_time_h(hours_to_failure: np.ndarray, alarm: np.ndarray) -> float:
    """Hours between the first alarm that stays until the failure and the failure (0 if none).

    Both arrays are one run's rows in time order.
    """
    quiet = np.flatnonzero(~alarm)
    first = int(quiet[-1]) + 1 if len(quiet) else 0
    if first >= len(alarm):
        return 0.0
    return float(hours_to_failure[first])


def evaluate(rows: Rows, probability: np.ndarray, threshold: float) -> dict[str, object]:
    """All held-out metrics for rows (of whole runs) and their predicted probabilities."""
    alarm = probability >= threshold
    precision, recall, f1 = precision_recall(rows.label, alarm)
    run_ids, run_of_row = np.unique(rows.run_id, return_inverse=True)
    leads = [lead_time_h(rows.hours_to_failure[run_of_row == k], alarm[run_of_row == k])
             for k in range(len(run_ids)) if np.isfinite(rows.hours_to_failure[run_of_row == k][0])]

    def per_run(mask: np.ndarray) -> np.ndarray:
        return np.bincount(run_of_row, weights=mask, minlength=len(run_ids))

    true_alarms, alarms, positives = per_run(alarm & rows.label), per_run(alarm), per_run(rows.label)
    healthy = rows.healthy
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "precision_se": run_standard_error(true_alarms, alarms),
        "recall_se": run_standard_error(true_alarms, positives),
        "brier": float(np.mean((probability - rows.label) ** 2)),
        "calibration": calibration_bins(rows.label, probability),
        "lead_time_h": _distribution(leads),
        "false_alarm_rate_healthy": float(alarm[healthy].mean()) if healthy.any() else 0.0,
        "rows": len(rows),
        "positive_rows": int(np.count_nonzero(rows.label)),
        "runs": len(run_ids),
    }


@dataclass(frozen=True)
class WarningRule:
    """How a model's probabilities become the warning people see: the alarm threshold and the
    warning's on- and off-delays in hours (see :func:`analytics.pdm.events.standing_warning`)."""

    threshold: float
    on_h: float = 0.0
    off_h: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"threshold": self.threshold, "on_h": self.on_h, "off_h": self.off_h}


# Candidate warning delays (hours) for the choice in choose_warning_cv.
ON_DELAYS_H = (0.0, 1.0, 3.0, 6.0)
OFF_DELAYS_H = (0.0, 3.0, 12.0, 24.0)


def failure_time_of(rows: Rows) -> float | None:
    """The failure time of one run's rows (None for a run without a failure)."""
    if not len(rows) or not np.isfinite(rows.hours_to_failure[0]):
        return None
    return float(rows.time_s[0] + rows.hours_to_failure[0] * SECONDS_PER_HOUR)


def timelines_of(rows: Rows, probability: np.ndarray, rule: WarningRule) -> list[Timeline]:
    """One warning timeline per run of ``rows`` (rows of whole runs, each run in time order)."""
    out = []
    for run_id in dict.fromkeys(rows.run_id.tolist()):
        mask = rows.run_id == run_id
        run = rows.take(mask)
        warning = standing_warning(probability[mask] >= rule.threshold, run.time_s, rule.on_h, rule.off_h)
        out.append(Timeline(run.time_s, warning, failure_time_of(run)))
    return out


def event_margin(metrics: dict[str, object], warned_share: float = TARGET_WARNED_SHARE,
                 false_per_month: float = TARGET_FALSE_PER_MONTH) -> float:
    """The smaller of the two event targets' margins, each as a share of its room.

    Warned share: (share - target) / (1 - target), 1 when every failure is warned; false
    alarms: (target - rate) / target, 1 with none. Negative when a target is missed; -inf when
    a figure is undefined (no failures, no healthy time).
    """
    share, rate = metrics["warned_share"], metrics["false_per_machine_month"]
    if share is None or rate is None:
        return -np.inf
    return min((float(share) - warned_share) / (1.0 - warned_share),
               (false_per_month - float(rate)) / false_per_month)


def lead_lower_bound_h(leads: Sequence[float], share: float = TARGET_WARNED_SHARE,
                       confidence: float = LEAD_BOUND_CONFIDENCE) -> float | None:
    """A lower confidence bound of the lead time that a ``share`` of failures get, in hours.

    The ``1 - share`` quantile of the failures' lead times (the lead that ``share`` of them
    reach) under a normal approximation, mean - z_share * sd, less z_confidence of its standard
    error sd * sqrt(1/n + z_share^2 / (2 (n - 1))). With the targets' 0.95 and 0.95 it says:
    with 95 % confidence, 95 % of failures like these are warned at least this long ahead. The
    count of failures warned at the lead is the same figure read off the sample itself, which
    with 20 failures rests on the one or two shortest leads; the bound uses every lead, and
    falls as the leads spread. None with fewer than 3 leads.
    """
    arr = np.asarray(leads, dtype=np.float64)
    n = len(arr)
    if n < 3:
        return None
    normal = NormalDist()
    z_share, z_conf = normal.inv_cdf(share), normal.inv_cdf(confidence)
    sd = float(arr.std(ddof=1))
    quantile = float(arr.mean()) - z_share * sd
    return quantile - z_conf * sd * float(np.sqrt(1.0 / n + z_share ** 2 / (2 * (n - 1))))


def choose_warning_cv(rows: Rows, probability: np.ndarray, planning_lead_h: float, horizon_h: float,
                      thresholds: Sequence[float] = tuple(THRESHOLD_CANDIDATES),
                      on_delays_h: Sequence[float] = ON_DELAYS_H,
                      off_delays_h: Sequence[float] = OFF_DELAYS_H) -> tuple[WarningRule, float, dict]:
    """The warning rule deepest inside both event targets on out-of-fold predictions.

    ``rows`` are the training runs' rows and ``probability`` their out-of-fold probabilities.
    For every threshold and pair of delays, the event metrics of the resulting warnings
    (:func:`analytics.pdm.events.event_metrics`) and their :func:`event_margin`; the largest
    margin wins. Ties are common (every failure warned and no false alarm over a band of
    thresholds, with a few hundred training-run hours): they go to the pair of delays with the
    widest band of tied thresholds (the most room for another machine's probabilities to sit
    higher or lower; equal widths: the shorter delays; taking the shortest delays first instead
    picked rules at the edge of their band and doubled the held-out false alarms of some
    trainings: docs/analytics.md). Within that band, the thresholds whose leads keep a margin
    in standard errors, :func:`lead_lower_bound_h` at least the planning lead (if none does,
    the whole band: the bound then gives no direction, and the band's middle keeps its room
    from false alarms); the middle of them wins. The band's low edge is where a
    false alarm appears in CV; its high edge, by count, is where the shortest of the training
    failures' leads falls below the planning lead, and on held-out failures the shortest leads
    are shorter (20 failures say little about a 5 % tail), so the bound moves the high edge
    down to where the lead tail has room. Returns the rule, its margin and its metrics (with
    ``lead_lower_bound_h``).
    """
    runs = []
    for run_id in dict.fromkeys(rows.run_id.tolist()):
        mask = rows.run_id == run_id
        run = rows.take(mask)
        failure = failure_time_of(run)
        timeline = Timeline(run.time_s, np.zeros(len(run), dtype=bool), failure)
        before = run.time_s < failure if failure is not None else np.ones(len(run), dtype=bool)
        runs.append((run.time_s[before], probability[mask][before], failure, timeline.step_s(),
                     healthy_hours(timeline, horizon_h)))
    hours = sum(r[4] for r in runs)
    scored: list[tuple[float, float, float, float, dict]] = []
    for on_h in on_delays_h:
        for off_h in off_delays_h:
            for th in thresholds:
                leads, false = [], 0
                for t, p, failure, step, _ in runs:
                    w = standing_warning(p >= th, t, on_h, off_h, step_s=step)
                    false += false_episode_count(t, w, failure, horizon_h)
                    if failure is not None:
                        leads.append(lead_of(t, w, failure))
                metrics = summarize(leads, false, hours, planning_lead_h, horizon_h)
                metrics["lead_lower_bound_h"] = lead_lower_bound_h(leads)
                scored.append((event_margin(metrics), on_h, off_h, float(th), metrics))
    best = max(m for m, *_ in scored)
    tied = [s for s in scored if s[0] >= best - 1e-9]
    width: dict[tuple[float, float], int] = {}
    for _, on, off, _, _ in tied:
        width[(on, off)] = width.get((on, off), 0) + 1
    delays = max(width, key=lambda d: (width[d], -(d[0] + d[1]), -d[0]))
    band = [s for s in tied if (s[1], s[2]) == delays]
    bounds = [-np.inf if s[4]["lead_lower_bound_h"] is None else s[4]["lead_lower_bound_h"] for s in band]
    if max(bounds) >= planning_lead_h - 1e-9:
        band = [s for s, b in zip(band, bounds, strict=True) if b >= planning_lead_h - 1e-9]
    margin, on_h, off_h, th, metrics = band[(len(band) - 1) // 2]
    return WarningRule(th, on_h, off_h), float(margin), metrics


def _distribution(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    if not len(arr):
        return {"median": 0.0, "p10": 0.0, "min": 0.0, "max": 0.0}
    return {"median": float(np.median(arr)), "p10": float(np.percentile(arr, 10)),
            "min": float(arr.min()), "max": float(arr.max())}
