"""Train one failure model per equipment type on run-to-failure histories and save it.

Per type: a RandomForestClassifier predicts "fails within the horizon" (the seed used Random
Forest; its per-prediction path decomposition is exact, see :mod:`analytics.pdm.contributions`),
and a RandomForestRegressor estimates the remaining useful life in hours on worn rows. Rows are
split by run, machine by machine (:func:`analytics.pdm.dataset.split_runs`), into train and
test runs; healthy-only runs (a machine that never fails, see
:func:`simulator.training.healthy_run`) are split the same way, apart from the failing ones, so
both sides hold healthy machine time. The warning rule (alarm threshold and the warning's on/off
delays) is chosen by grouped cross-validation over the training runs: each fold's runs are
predicted by a forest trained on the other folds, and the rule is picked on those out-of-fold
probabilities for the event-level targets (:func:`analytics.pdm.evaluate.choose_warning_cv`:
at least 95 % of failures warned by a standing warning at the type's planning lead, at most
0.5 false-alarm episodes per healthy machine-month; among tied rules, one whose leads keep room
in their 5 % tail by a lower confidence bound). The final forest is trained on all
training runs; every reported metric comes from test runs that neither the model nor the rule
ever saw. The card's ``meets_target`` is the event-level target on the test runs
(:mod:`analytics.pdm.events`); the row-level precision / recall are kept as secondary figures.

Horizons per type (hours, :data:`HORIZON_H`; the label is "fails within the horizon", and a
warning episode is false when the machine does not fail within it) were chosen by grouped cross-validation over the
training runs only: for each candidate horizon, the smaller margin of the out-of-fold
precision and recall bounds over the targets at the balanced threshold (see
:func:`analytics.pdm.evaluate.choose_threshold_cv`); the horizon with the largest margin won.
They come out at 40-60 % of the type's mean wear duration in the simulator (pump 120 h,
compressor 160 h, furnace/exchanger 300 h, valve 100 h). Wear is a noisy multiplicative walk,
so the remaining life of a machine is uncertain by about 15 % of its wear time whatever the
model knows; a horizon that is a larger share of the wear makes that uncertainty a smaller
share of the horizon, as long as the early wear is still visible in the signals. A classifier
given the simulator's hidden damage itself reaches about precision 0.85 at recall 0.91 at
these horizons: the targets sit close to what the physics allow, and a held-out set of 20
runs moves precision by 2-5 points either way, one of 80 (the default) by about 2
(docs/analytics.md gives the measurements).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from analytics.pdm.card import (
    CARD_SUFFIX,
    MODEL_SUFFIX,
    MODEL_VERSION,
    data_sha256,
    library_versions,
    utc_now_iso,
    write_card,
)
from analytics.pdm.dataset import (
    Rows,
    RunHistory,
    SplitName,
    cv_folds,
    dealing_order,
    rows_of,
    split_runs,
)
from analytics.pdm.evaluate import WarningRule, choose_warning_cv, evaluate, timelines_of
from analytics.pdm.events import (
    TARGET_FALSE_PER_MONTH,
    TARGET_WARNED_SHARE,
    event_metrics,
    meets_event_target,
)
from analytics.pdm.features import HISTORY_H, feature_names
from analytics.pdm.signals import TYPE_SIGNALS
from plant.schema import EquipmentType

HORIZON_H: dict[EquipmentType, float] = {
    EquipmentType.PUMP: 60.0,
    EquipmentType.COMPRESSOR: 72.0,
    EquipmentType.FURNACE: 150.0,
    EquipmentType.EXCHANGER: 180.0,
    EquipmentType.VALVE: 48.0,
}
# The planning lead per type (hours) when the caller gives none: the defaults of the gateway's
# ``maintenance.planning_lead_h`` setting (analytics cannot read settings; the caller passes the
# configured lead to train_type).
PLANNING_LEAD_H: dict[EquipmentType, float] = {
    EquipmentType.PUMP: 24.0,
    EquipmentType.VALVE: 24.0,
    EquipmentType.COMPRESSOR: 48.0,
    EquipmentType.FURNACE: 72.0,
    EquipmentType.EXCHANGER: 72.0,
}
# Row-level targets: secondary since the event-level target (analytics.pdm.events) replaced them.
TARGET_PRECISION = 0.8
TARGET_RECALL = 0.9
# The RUL regressor learns on rows up to this many horizons before failure.
RUL_HORIZONS = 2.0

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class TrainOptions:
    """Hyper-parameters and reproducibility knobs of one training."""

    seed: int = 0
    horizon_h: float | None = None  # None: HORIZON_H of the type
    n_estimators: int = 100
    min_samples_leaf: int = 10
    max_samples: float = 0.5
    row_stride: int = 2  # every n-th training row (neighbouring rows are near duplicates)
    n_jobs: int = 2


@dataclass
class TrainedModel:
    """A trained type model with its card; :func:`save` writes both."""

    kind: EquipmentType
    classifier: RandomForestClassifier
    regressor: RandomForestRegressor
    threshold: float
    horizon_h: float
    dt_s: float
    card: dict[str, Any] = field(default_factory=dict)
    warning: WarningRule | None = None  # threshold plus on/off delays (None: the bare threshold)

    def artifact(self) -> dict[str, Any]:
        """What goes into the joblib file (plain dict: loads without this module's classes)."""
        return {"kind": self.kind.value, "classifier": self.classifier, "regressor": self.regressor,
                "threshold": self.threshold, "horizon_h": self.horizon_h, "dt_s": self.dt_s,
                "warning": (self.warning or WarningRule(self.threshold)).as_dict(),
                "feature_names": list(feature_names(self.kind)), "version": MODEL_VERSION}


def _silent(stage: str, fraction: float) -> None:
    return None


def _rows(histories: Sequence[RunHistory], ids: list[int], kind: EquipmentType, horizon_h: float) -> Rows:
    chosen = [h for h in histories if h.run_id in set(ids)]
    return Rows.concat([rows_of(h, kind, horizon_h) for h in chosen])


def _classifier(rows: Rows, options: TrainOptions, n_estimators: int | None = None) -> RandomForestClassifier:
    fit = rows.take(np.arange(len(rows)) % options.row_stride == 0)
    return RandomForestClassifier(
        n_estimators=n_estimators or options.n_estimators, min_samples_leaf=options.min_samples_leaf,
        max_samples=options.max_samples, max_features="sqrt", n_jobs=options.n_jobs,
        random_state=options.seed).fit(fit.features, fit.label.astype(np.int8))


def out_of_fold_probability(train: Rows, folds: list[list[int]], options: TrainOptions,
                            progress: Progress = _silent) -> np.ndarray:
    """P(fails within the horizon) of every training row from a forest that never saw its run."""
    probability = np.zeros(len(train))
    for k, fold in enumerate(folds):
        held = np.isin(train.run_id, fold)
        model = _classifier(train.take(~held), options, max(options.n_estimators // 2, 10))
        probability[held] = _positive_proba(model, train.features[held])
        progress("cross-validation", 0.1 + 0.5 * (k + 1) / len(folds))
    return probability


def _split(histories: Sequence[RunHistory]) -> tuple[dict[SplitName, list[int]], list[list[int]], list[int]]:
    """Train/test split and CV folds: failing runs and healthy-only runs each dealt on their own.

    Returns the split (both kinds of run), the folds (both kinds) and the healthy run ids.
    """
    machine_of = {h.run_id: h.equipment_id for h in histories}
    failing = [h.run_id for h in histories if np.isfinite(h.failure_time_s)]
    healthy = [h.run_id for h in histories if not np.isfinite(h.failure_time_s)]
    splits = split_runs(failing, machine_of)
    folds = cv_folds(splits[SplitName.TRAIN], machine_of=machine_of)
    ordered = dealing_order(healthy, machine_of)
    splits[SplitName.TEST] = sorted(splits[SplitName.TEST] + ordered[0::2])
    train_healthy = ordered[1::2]
    splits[SplitName.TRAIN] = sorted(splits[SplitName.TRAIN] + train_healthy)
    for k, run_id in enumerate(train_healthy):
        folds[k % len(folds)].append(run_id)
    return splits, [sorted(f) for f in folds], sorted(healthy)


def train_type(kind: EquipmentType, histories: Sequence[RunHistory], options: TrainOptions,
               progress: Progress = _silent, *, planning_lead_h: float | None = None) -> TrainedModel:
    """Train, choose the warning rule and evaluate one type's model; see the module docstring.

    ``histories``: run-to-failure histories of the type, optionally with healthy-only ones
    (``failure_time_s`` infinite), at least MIN_RUNS failing. ``planning_lead_h``: the type's
    planning lead in hours (default :data:`PLANNING_LEAD_H`). Choose the rule by grouped CV on
    train runs, fit on all of them, evaluate on test runs (event level and row level).
    """
    horizon_h = options.horizon_h or HORIZON_H[kind]
    lead_h = float(planning_lead_h if planning_lead_h is not None else PLANNING_LEAD_H[kind])
    splits, folds, healthy_ids = _split(histories)
    progress("features", 0.0)
    train = _rows(histories, splits[SplitName.TRAIN], kind, horizon_h)
    test = _rows(histories, splits[SplitName.TEST], kind, horizon_h)
    oof = out_of_fold_probability(train, folds, options, progress)
    rule, cv_margin, cv_events = choose_warning_cv(train, oof, lead_h, horizon_h)
    progress("classifier", 0.6)
    classifier = _classifier(train, options)
    fit_rows = train.take(np.arange(len(train)) % options.row_stride == 0)
    progress("regressor", 0.8)
    worn = fit_rows.take(fit_rows.hours_to_failure <= RUL_HORIZONS * horizon_h)
    regressor = RandomForestRegressor(
        n_estimators=max(options.n_estimators // 2, 10), min_samples_leaf=options.min_samples_leaf,
        max_samples=options.max_samples, max_features="sqrt", n_jobs=options.n_jobs,
        random_state=options.seed).fit(worn.features, worn.hours_to_failure)
    progress("evaluation", 0.9)
    test_probability = _positive_proba(classifier, test.features)
    test_events = event_metrics(timelines_of(test, test_probability, rule), lead_h, horizon_h)
    # Row-level figures over the run-to-failure runs, as before healthy-only runs were added.
    failing_test, failing_train = np.isfinite(test.hours_to_failure), np.isfinite(train.hours_to_failure)
    test_rows = evaluate(test.take(failing_test), test_probability[failing_test], rule.threshold)
    cv_rows = evaluate(train.take(failing_train), oof[failing_train], rule.threshold)
    positives = test.take(test.label)
    test_rows["rul_mae_h"] = (float(np.mean(np.abs(regressor.predict(positives.features)
                                                   - positives.hours_to_failure)))
                              if len(positives) else None)
    dt_s = float(np.median(np.diff(histories[0].time_s))) if len(histories[0].time_s) > 1 else 0.0
    model = TrainedModel(kind, classifier, regressor, rule.threshold, horizon_h, dt_s, warning=rule)
    model.card = _card(kind, options, horizon_h, rule, lead_h, dt_s, splits, folds, healthy_ids,
                       histories, (train, test, fit_rows),
                       {"events": {**cv_events, "target_margin": cv_margin}, "row_level": cv_rows},
                       {"events": test_events, "row_level": test_rows})
    progress("done", 1.0)
    return model


def _positive_proba(classifier: RandomForestClassifier, features: np.ndarray) -> np.ndarray:
    proba = classifier.predict_proba(features)
    positive = np.flatnonzero(classifier.classes_ == 1)
    return proba[:, positive[0]] if len(positive) else np.zeros(len(features))


def meets_target(metrics: dict[str, Any]) -> bool:
    """The event-level target: see :func:`analytics.pdm.events.meets_event_target`.

    ``metrics`` is a card's ``metrics["test"]`` (with ``events``) or event metrics themselves.
    """
    return meets_event_target(metrics.get("events", metrics))


def meets_row_target(metrics: dict[str, Any]) -> bool:
    """Row level (secondary): recall >= TARGET_RECALL at precision >= TARGET_PRECISION."""
    return bool(metrics["precision"] >= TARGET_PRECISION and metrics["recall"] >= TARGET_RECALL)


def _card(kind: EquipmentType, options: TrainOptions, horizon_h: float, rule: WarningRule,
          planning_lead_h: float, dt_s: float, splits: dict[SplitName, list[int]],
          folds: list[list[int]], healthy_ids: list[int], histories: Sequence[RunHistory],
          rows: tuple[Rows, Rows, Rows], cv_metrics: dict[str, Any],
          test_metrics: dict[str, Any]) -> dict[str, Any]:
    train, test, fit_rows = rows
    train_histories = [h for h in histories if h.run_id in set(splits[SplitName.TRAIN])]
    met = meets_target(test_metrics)
    healthy = set(healthy_ids)
    return {
        "equipment_type": kind.value,
        "version": MODEL_VERSION,
        "created": utc_now_iso(),
        "model": "RandomForestClassifier + RandomForestRegressor (RUL)",
        "target": f"fails within {horizon_h:g} h",
        "horizon_h": horizon_h,
        "planning_lead_h": planning_lead_h,
        "threshold": rule.threshold,
        "warning": rule.as_dict(),
        "threshold_selection": (f"alarm threshold and warning on/off delays whose smaller margin over "
                                f"the event targets (out-of-fold share of failures warned "
                                f">= {planning_lead_h:g} h ahead >= {TARGET_WARNED_SHARE:g}, false-alarm "
                                f"episodes per healthy machine-month <= {TARGET_FALSE_PER_MONTH:g}, each "
                                f"margin as a share of its room) is largest, {len(folds)}-fold "
                                f"cross-validation grouped by run over the train runs; among tied "
                                f"rules the widest band of tied thresholds, narrowed to the thresholds "
                                f"whose 95 % lower bound on the lead of 95 % of failures is at least "
                                f"{planning_lead_h:g} h (if any), at its middle"),
        "meets_target": met,
        "meets_row_target": meets_row_target(test_metrics["row_level"]),
        "seed": options.seed,
        "dt_s": dt_s,
        "history_h": HISTORY_H,
        "signals": [s.value for s in TYPE_SIGNALS[kind]],
        "features": list(feature_names(kind)),
        "hyperparameters": {"n_estimators": options.n_estimators, "min_samples_leaf": options.min_samples_leaf,
                            "max_samples": options.max_samples, "row_stride": options.row_stride},
        "split": {**{name.value: sorted(ids) for name, ids in splits.items()},
                  "healthy_runs": sorted(healthy_ids), "cv_folds": [sorted(f) for f in folds]},
        "sizes": {"train_runs": len(splits[SplitName.TRAIN]), "test_runs": len(splits[SplitName.TEST]),
                  "train_healthy_runs": len(healthy & set(splits[SplitName.TRAIN])),
                  "test_healthy_runs": len(healthy & set(splits[SplitName.TEST])),
                  "cv_folds": len(folds), "train_rows": len(train), "fit_rows": len(fit_rows),
                  "test_rows": len(test)},
        "metrics": {"test": test_metrics, "cross_validation": cv_metrics},
        "targets": {"warned_share": TARGET_WARNED_SHARE, "false_per_machine_month": TARGET_FALSE_PER_MONTH,
                    "met_on_test": met,
                    "row_level": {"precision": TARGET_PRECISION, "recall": TARGET_RECALL}},
        "libraries": library_versions(),
        "data_sha256": data_sha256([a for h in train_histories for a in (h.time_s, h.values)]),
    }

def save(model: TrainedModel, out_dir: Path) -> tuple[Path, Path]:
    """Write ``<out>/<TYPE>.joblib`` and ``<out>/<TYPE>.card.json``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / f"{model.kind.value}{MODEL_SUFFIX}"
    card_path = out_dir / f"{model.kind.value}{CARD_SUFFIX}"
    tmp = model_path.with_suffix(".joblib.tmp")
    joblib.dump(model.artifact(), tmp, compress=3)
    tmp.replace(model_path)
    write_card(model.card, card_path)
    return model_path, card_path
