"""Train one failure model per equipment type on run-to-failure histories and save it.

Per type: a RandomForestClassifier predicts "fails within the horizon" (the seed used Random
Forest; its per-prediction path decomposition is exact, see :mod:`analytics.pdm.contributions`),
and a RandomForestRegressor estimates the remaining useful life in hours on worn rows. Rows are
split by run, machine by machine (:func:`analytics.pdm.dataset.split_runs`), into train and
test runs. The decision threshold is chosen by grouped cross-validation over the training runs:
each fold's runs are predicted by a forest trained on the other folds, and the threshold is
picked on those out-of-fold probabilities (every training run contributes, none is predicted
by a model that saw it). The final forest is trained on all training runs; every reported
metric comes from test runs that neither the model nor the threshold ever saw.

Horizons per type (hours, :data:`HORIZON_H`) were chosen by grouped cross-validation over the
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
from analytics.pdm.dataset import Rows, RunHistory, SplitName, cv_folds, rows_of, split_runs
from analytics.pdm.evaluate import choose_threshold_cv, evaluate
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

    def artifact(self) -> dict[str, Any]:
        """What goes into the joblib file (plain dict: loads without this module's classes)."""
        return {"kind": self.kind.value, "classifier": self.classifier, "regressor": self.regressor,
                "threshold": self.threshold, "horizon_h": self.horizon_h, "dt_s": self.dt_s,
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


def train_type(kind: EquipmentType, histories: Sequence[RunHistory], options: TrainOptions,
               progress: Progress = _silent) -> TrainedModel:
    """Choose the threshold by grouped CV on train runs, fit on all of them, evaluate on test runs."""
    horizon_h = options.horizon_h or HORIZON_H[kind]
    machine_of = {h.run_id: h.equipment_id for h in histories}
    splits = split_runs(list(machine_of), machine_of)
    progress("features", 0.0)
    train = _rows(histories, splits[SplitName.TRAIN], kind, horizon_h)
    test = _rows(histories, splits[SplitName.TEST], kind, horizon_h)
    folds = cv_folds(splits[SplitName.TRAIN], machine_of=machine_of)
    oof = out_of_fold_probability(train, folds, options, progress)
    fold_of_row = np.zeros(len(train), dtype=np.int64)
    for k, fold in enumerate(folds):
        fold_of_row[np.isin(train.run_id, fold)] = k
    threshold, cv_margin = choose_threshold_cv(train.label, oof, fold_of_row, TARGET_PRECISION,
                                               TARGET_RECALL)
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
    test_metrics = evaluate(test, _positive_proba(classifier, test.features), threshold)
    cv_metrics = evaluate(train, oof, threshold)
    cv_metrics["target_margin"] = cv_margin
    positives = test.take(test.label)
    test_metrics["rul_mae_h"] = (float(np.mean(np.abs(regressor.predict(positives.features)
                                                      - positives.hours_to_failure)))
                                 if len(positives) else None)
    dt_s = float(np.median(np.diff(histories[0].time_s))) if len(histories[0].time_s) > 1 else 0.0
    model = TrainedModel(kind, classifier, regressor, threshold, horizon_h, dt_s)
    model.card = _card(kind, options, horizon_h, threshold, dt_s, splits, folds, histories,
                       (train, test, fit_rows), cv_metrics, test_metrics)
    progress("done", 1.0)
    return model


def _positive_proba(classifier: RandomForestClassifier, features: np.ndarray) -> np.ndarray:
    proba = classifier.predict_proba(features)
    positive = np.flatnonzero(classifier.classes_ == 1)
    return proba[:, positive[0]] if len(positive) else np.zeros(len(features))


def meets_target(metrics: dict[str, Any]) -> bool:
    """Recall >= TARGET_RECALL at precision >= TARGET_PRECISION."""
    return bool(metrics["precision"] >= TARGET_PRECISION and metrics["recall"] >= TARGET_RECALL)


def _card(kind: EquipmentType, options: TrainOptions, horizon_h: float, threshold: float, dt_s: float,
          splits: dict[SplitName, list[int]], folds: list[list[int]], histories: Sequence[RunHistory],
          rows: tuple[Rows, Rows, Rows], cv_metrics: dict[str, Any],
          test_metrics: dict[str, Any]) -> dict[str, Any]:
    train, test, fit_rows = rows
    train_histories = [h for h in histories if h.run_id in set(splits[SplitName.TRAIN])]
    met = meets_target(test_metrics)
    return {
        "equipment_type": kind.value,
        "version": MODEL_VERSION,
        "created": utc_now_iso(),
        "model": "RandomForestClassifier + RandomForestRegressor (RUL)",
        "target": f"fails within {horizon_h:g} h",
        "horizon_h": horizon_h,
        "threshold": threshold,
        "threshold_selection": (f"threshold whose smaller margin over the targets (out-of-fold "
                                f"precision >= {TARGET_PRECISION:g}, recall >= {TARGET_RECALL:g}, "
                                f"each less its standard error across folds) is largest, "
                                f"{len(folds)}-fold cross-validation grouped by run over the "
                                f"train runs"),
        "meets_target": met,
        "seed": options.seed,
        "dt_s": dt_s,
        "history_h": HISTORY_H,
        "signals": [s.value for s in TYPE_SIGNALS[kind]],
        "features": list(feature_names(kind)),
        "hyperparameters": {"n_estimators": options.n_estimators, "min_samples_leaf": options.min_samples_leaf,
                            "max_samples": options.max_samples, "row_stride": options.row_stride},
        "split": {**{name.value: sorted(ids) for name, ids in splits.items()},
                  "cv_folds": [sorted(f) for f in folds]},
        "sizes": {"train_runs": len(splits[SplitName.TRAIN]), "test_runs": len(splits[SplitName.TEST]),
                  "cv_folds": len(folds), "train_rows": len(train), "fit_rows": len(fit_rows),
                  "test_rows": len(test)},
        "metrics": {"test": test_metrics, "cross_validation": cv_metrics},
        "targets": {"precision": TARGET_PRECISION, "recall": TARGET_RECALL, "met_on_test": met},
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
