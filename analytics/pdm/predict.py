"""Live predictions per equipment from a saved type model (pure and CPU-bound: run it in an executor).

Prediction levels (:class:`PredictionLevel`):

* ``NORMAL`` — probability below the model's decision threshold (chosen on validation runs);
* ``WARNING`` — above the threshold: failure expected within the horizon, plan maintenance;
* ``FAILURE_IMMINENT`` — above the threshold and the estimated remaining life is under a
  quarter of the horizon (or the probability is at least 90 %): intervene now.

"Above the threshold" means the model card's *standing warning*, the rule the card's event
figures were evaluated with (:func:`analytics.pdm.events.standing_warning`): the alarm
(probability at or above the threshold) raises it once it has held for the card's on-delay and
it clears once the alarm has been quiet for the off-delay. Each prediction therefore scores the
rows of the last ``on_h + off_h`` hours and one step at the model's step as well (the same
live features, each row with its full history) and applies the rule to their alarms
(:func:`live_warning`). The result says both: ``alarm`` (this row's) and ``warning`` (the
standing one), with ``warning_state`` such as ``on-delay: alarm for 3.0 of 6.0 h``. A card
without delays (older models) gives 0 and 0: the warning is the alarm. With less history than
the rule needs (a new installation) the warning is taken from the rows there are, starting
off as the evaluation's timelines do, and flagged ``warning_partial``. When every run of the
alarm in those rows is shorter than its delay (an alarm that came and went, or chattered,
around the threshold) the rows cannot decide it, and the equipment's previous warning carries
over (:class:`PreviousWarning`), as the rule over the whole history would have it.

``confidence`` is the share of trees that agree with the forest's decision; ``rul_hours`` and
the estimated failure date are given only when the level is not NORMAL. The drivers are the
exact path-decomposition contributions of this prediction (:mod:`analytics.pdm.contributions`).

The daemon predicts in a short-lived child process (:func:`describe_models` and
:func:`predict_fleet` are what it runs there) and imports this module only for the records
(:class:`Prediction`, :class:`ModelInfo`, :class:`EquipmentSeries`). scikit-learn, SciPy and
joblib cost about 90 MB of resident memory, so they are imported by the functions that load
or evaluate a model, never at module level: the daemon's process never holds them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from analytics.pdm.dataset import MIN_HISTORY_H
from analytics.pdm.events import warning_now
from analytics.pdm.features import (
    HISTORY_H,
    SECONDS_PER_HOUR,
    Scaling,
    feature_matrix,
    latest_features,
    resample,
)
from analytics.pdm.signals import TYPE_SIGNALS, SignalTag
from plant.schema import EquipmentType

TOP_DRIVERS = 5
IMMINENT_RUL_FRACTION = 0.25
IMMINENT_PROBABILITY = 0.9
ANOMALY_HALF_SPANS = 1.0  # a signal's 1 h mean outside its normal range


class PredictionLevel(StrEnum):
    NORMAL = "NORMAL"
    WARNING = "WARNING"
    FAILURE_IMMINENT = "FAILURE_IMMINENT"


class WarningPhase(StrEnum):
    """Where the standing warning is in its rule (the first word of ``warning_state``)."""

    STANDING = "standing"  # on
    OFF_DELAY = "off-delay"  # on, the alarm has cleared but not for the off-delay yet
    ON_DELAY = "on-delay"  # off, the alarm is on but not for the on-delay yet
    CLEAR = "clear"  # off


class Unavailable(StrEnum):
    """Why an equipment has no prediction."""

    NO_MODEL = "no model for its type"
    NO_SIGNAL_TAG = "no tag for a signal of its model"
    NOT_ENOUGH_HISTORY = "not enough good history"


class Direction(StrEnum):
    """The seed API's words: the feature pushes the failure probability up / down."""

    INCREASE = "aumento"
    DECREASE = "disminución"


@dataclass(frozen=True)
class LoadedModel:
    """A type model read from the state dir: the joblib artifact and its card."""

    kind: EquipmentType
    classifier: Any
    regressor: Any
    threshold: float
    horizon_h: float
    dt_s: float
    feature_names: tuple[str, ...]
    card: dict[str, Any]
    on_h: float = 0.0  # the card's warning on-delay (h)
    off_h: float = 0.0  # and off-delay (h)

    @property
    def source(self) -> str:
        from analytics.pdm.card import model_source

        return model_source(self.card)

    @property
    def step_s(self) -> float:
        return self.dt_s if self.dt_s > 0 else 60.0

    def info(self) -> ModelInfo:
        return ModelInfo(kind=self.kind, dt_s=self.dt_s, horizon_h=self.horizon_h, source=self.source,
                         on_h=self.on_h, off_h=self.off_h)


@dataclass(frozen=True)
class ModelInfo:
    """What the daemon keeps of a loaded type model (the model itself stays in the child)."""

    kind: EquipmentType
    dt_s: float  # step of the training histories (s): live history is resampled onto it
    horizon_h: float  # "fails within" horizon of the classifier (h)
    source: str  # the API's model_source, "<TYPE> v<version> (<card date>)"
    on_h: float = 0.0  # the card's warning on-delay (h)
    off_h: float = 0.0  # the card's warning off-delay (h)

    @property
    def history_h(self) -> float:
        """Hours of history a prediction reads: the features' window behind every row of the
        warning rule's ``on_h + off_h`` hours (the prediction adds one step)."""
        return HISTORY_H + self.on_h + self.off_h


@dataclass(frozen=True)
class PreviousWarning:
    """The standing warning of an equipment's previous prediction (carried over when the
    recent rows cannot decide it, see the module docstring)."""

    time_s: float
    warning: bool
    model_source: str  # a warning of another model (another rule) is not carried


@dataclass(frozen=True)
class EquipmentSeries:
    """One equipment to predict: its type, signal tags and their recent good samples
    (tag_id → (epoch-second timestamps, values))."""

    equipment_id: str
    kind: EquipmentType
    signals: tuple[SignalTag, ...]
    series: dict[str, tuple[np.ndarray, np.ndarray]]
    previous: PreviousWarning | None = None


@dataclass(frozen=True)
class FleetPredictions:
    """The result of one prediction run: predictions, equipment without one (→ why), and
    the time spent on features and predictions (s, without loading the models)."""

    predictions: dict[str, Prediction]
    unavailable: dict[str, str]
    inference_s: float


@dataclass(frozen=True)
class Driver:
    feature: str
    contribution_pct: float
    direction: Direction

    def as_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "contribution_pct": self.contribution_pct,
                "direction": self.direction.value}


@dataclass(frozen=True)
class LiveWarning:
    """The card's warning rule at the newest row (see :func:`live_warning`)."""

    warning: bool  # the standing warning
    alarm: bool  # this row's alarm (probability >= threshold)
    held_h: float  # how long the alarm has been on (alarm) or off (no alarm), over the rows
    on_h: float
    off_h: float
    rows_h: float  # hours of rows the rule was applied to (each row one step)
    window_h: float  # hours it needs: on_h + off_h + one step
    carried: bool = False  # the rows could not decide: the previous prediction's warning

    @property
    def partial(self) -> bool:
        """Fewer rows than the rule needs (a new installation's short history)."""
        return self.rows_h < self.window_h - 1e-9

    @property
    def delayed(self) -> bool:
        return self.on_h > 0 or self.off_h > 0

    @property
    def phase(self) -> WarningPhase:
        if self.warning:
            return WarningPhase.STANDING if self.alarm else WarningPhase.OFF_DELAY
        return WarningPhase.ON_DELAY if self.alarm else WarningPhase.CLEAR

    def state(self) -> str:
        """``on-delay: alarm for 3.0 of 6.0 h``, ``off-delay: clear for 1.0 of 4.0 h``,
        ``standing: alarm for 7.5 h``, ``clear: no alarm for at least 10.2 h`` (the run goes
        back past the rows read); with a short history `` (from 2.5 of 10.2 h of history)``;
        without delays ``standing: alarm (no delays)`` or ``clear: no alarm (no delays)``."""
        phase = self.phase
        if not self.delayed:
            return f"{phase.value}: {'alarm' if self.alarm else 'no alarm'} (no delays)"
        least = "at least " if self.held_h >= self.rows_h - 1e-9 else ""
        text = {WarningPhase.STANDING: f"alarm for {least}{self.held_h:.1f} h",
                WarningPhase.OFF_DELAY: f"clear for {self.held_h:.1f} of {self.off_h:.1f} h",
                WarningPhase.ON_DELAY: f"alarm for {self.held_h:.1f} of {self.on_h:.1f} h",
                WarningPhase.CLEAR: f"no alarm for {least}{self.held_h:.1f} h"}[phase]
        partial = f" (from {self.rows_h:.1f} of {self.window_h:.1f} h of history)" if self.partial else ""
        return f"{phase.value}: {text}{partial}"


@dataclass(frozen=True)
class Prediction:
    """One equipment's maintenance prediction, shaped like the seed API's record."""

    equipment_id: str
    failure_probability: float  # 0-100 %
    rul_hours: float | None
    estimated_failure_date: str | None
    is_anomaly: bool
    anomaly_score: float
    prediction: PredictionLevel
    recommendation: str
    narrative: str
    confidence: float  # 0-100 %
    model_source: str
    timestamp: str
    top_drivers: tuple[Driver, ...] = field(default_factory=tuple)
    alarm: bool = False  # this prediction's own alarm (probability >= the card's threshold)
    warning: bool = False  # the card's standing warning (what ``prediction`` follows)
    warning_state: str = ""  # e.g. "on-delay: alarm for 3.0 of 6.0 h" (LiveWarning.state)
    warning_partial: bool = False  # less history than the warning rule needs

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict with ``shap_explanation.top_drivers`` as the API expects (and the
        warning fields after the seed's)."""
        return {
            "equipment_id": self.equipment_id, "failure_probability": self.failure_probability,
            "rul_hours": self.rul_hours, "estimated_failure_date": self.estimated_failure_date,
            "is_anomaly": self.is_anomaly, "anomaly_score": self.anomaly_score,
            "prediction": self.prediction.value, "recommendation": self.recommendation,
            "narrative": self.narrative, "confidence": self.confidence,
            "model_source": self.model_source, "timestamp": self.timestamp,
            "shap_explanation": {"top_drivers": [d.as_dict() for d in self.top_drivers]},
            "alarm": self.alarm, "warning": self.warning, "warning_state": self.warning_state,
            "warning_partial": self.warning_partial,
        }

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> Prediction:
        """The inverse of :meth:`as_dict` (predictions persisted by the daemon are read back;
        one persisted before the warning fields: warning and alarm as its level said)."""
        drivers = tuple(Driver(d["feature"], float(d["contribution_pct"]), Direction(d["direction"]))
                        for d in (body.get("shap_explanation") or {}).get("top_drivers", []))
        return cls(equipment_id=body["equipment_id"], failure_probability=float(body["failure_probability"]),
                   rul_hours=body.get("rul_hours"), estimated_failure_date=body.get("estimated_failure_date"),
                   is_anomaly=bool(body["is_anomaly"]), anomaly_score=float(body["anomaly_score"]),
                   prediction=PredictionLevel(body["prediction"]), recommendation=body["recommendation"],
                   narrative=body["narrative"], confidence=float(body["confidence"]),
                   model_source=body["model_source"], timestamp=body["timestamp"], top_drivers=drivers,
                   alarm=bool(body.get("alarm", body["prediction"] != PredictionLevel.NORMAL)),
                   warning=bool(body.get("warning", body["prediction"] != PredictionLevel.NORMAL)),
                   warning_state=str(body.get("warning_state", "")),
                   warning_partial=bool(body.get("warning_partial", False)))


def load_models(directory: Path) -> dict[EquipmentType, LoadedModel]:
    """Every ``<TYPE>.joblib`` with its card in a directory (missing dir: no models)."""
    import joblib

    from analytics.pdm.card import CARD_SUFFIX, MODEL_SUFFIX, read_card

    models: dict[EquipmentType, LoadedModel] = {}
    if not directory.is_dir():
        return models
    for path in sorted(directory.glob(f"*{MODEL_SUFFIX}")):
        name = path.name.removesuffix(MODEL_SUFFIX)
        card_path = directory / f"{name}{CARD_SUFFIX}"
        if name not in EquipmentType.__members__ or not card_path.exists():
            continue
        artifact = joblib.load(path)
        kind = EquipmentType(name)
        card = read_card(card_path)
        on_h, off_h = warning_delays(card, artifact)
        models[kind] = LoadedModel(kind=kind, classifier=artifact["classifier"],
                                   regressor=artifact["regressor"], threshold=float(artifact["threshold"]),
                                   horizon_h=float(artifact["horizon_h"]), dt_s=float(artifact["dt_s"]),
                                   feature_names=tuple(artifact["feature_names"]), card=card,
                                   on_h=on_h, off_h=off_h)
    return models


def warning_delays(card: Mapping[str, Any], artifact: Mapping[str, Any] | None = None) -> tuple[float, float]:
    """The warning's on- and off-delays (h) of a model: its card's ``warning`` (else the
    artifact's); 0 and 0 for a model saved before warnings had delays."""
    rule = card.get("warning") or (artifact or {}).get("warning") or {}
    on_h, off_h = float(rule.get("on_h") or 0.0), float(rule.get("off_h") or 0.0)
    if not (np.isfinite(on_h) and np.isfinite(off_h)) or on_h < 0 or off_h < 0:
        raise ValueError(f"{card.get('equipment_type', '?')} model card: warning delays must be "
                         f">= 0 h, got on_h={on_h}, off_h={off_h}")
    return on_h, off_h


def warning_rows(model: LoadedModel) -> int:
    """Rows the warning rule reads at the model's step: ``on_h + off_h`` and one step."""
    return int(np.ceil((model.on_h + model.off_h) * SECONDS_PER_HOUR / model.step_s - 1e-9)) + 1


def live_features(model: LoadedModel, signals: tuple[SignalTag, ...],
                  series: Mapping[str, tuple[np.ndarray, np.ndarray]], now_s: float) -> np.ndarray:
    """The feature row at ``now_s`` from live samples (tag_id → (ts, good values)).

    Samples are point-sampled onto the model's ``dt`` grid over the last HISTORY_H hours, as
    the training histories were; raises ValueError when a signal has no samples or the
    history is shorter than MIN_HISTORY_H (the model was not trained on such rows).
    """
    return live_feature_rows(model, signals, series, now_s)[1][-1]


def live_feature_rows(model: LoadedModel, signals: tuple[SignalTag, ...],
                      series: Mapping[str, tuple[np.ndarray, np.ndarray]], now_s: float,
                      rows: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The feature rows of the last ``rows`` steps up to ``now_s`` (times, matrix; newest last).

    As :func:`live_features`, each row with up to HISTORY_H hours behind it; rows with less
    than MIN_HISTORY_H of history are left out (so there may be fewer than ``rows``), and
    ValueError is raised when even the newest has too little.
    """
    dt = model.step_s
    steps = int(HISTORY_H * SECONDS_PER_HOUR // dt) + max(int(rows), 1) - 1
    grid = now_s - dt * np.arange(steps, -1, -1, dtype=np.float64)
    columns = []
    for signal in signals:
        ts, values = series.get(signal.tag_id, (np.empty(0), np.empty(0)))
        if len(ts) == 0:
            raise ValueError(f"no samples of {signal.tag_id} ({signal.signal.value})")
        columns.append(resample(grid, ts, values))
    first_s = max(float(series[s.tag_id][0][0]) for s in signals)
    if now_s - first_s < MIN_HISTORY_H * SECONDS_PER_HOUR:
        raise ValueError(f"only {(now_s - first_s) / SECONDS_PER_HOUR:.1f} h of history; "
                         f"need {MIN_HISTORY_H:g} h")
    start = np.searchsorted(grid, first_s, side="left")
    grid, values = grid[start:], np.column_stack(columns)[start:]
    if rows <= 1:
        return grid[-1:], latest_features(model.kind, grid, values, Scaling.of(signals))[None, :]
    matrix = feature_matrix(model.kind, grid, values, Scaling.of(signals))
    keep = np.flatnonzero(grid - first_s >= MIN_HISTORY_H * SECONDS_PER_HOUR)[-int(rows):]
    return grid[keep], matrix[keep]


def live_warning(model: LoadedModel, time_s: np.ndarray, probability: np.ndarray,
                 previous: PreviousWarning | None = None) -> LiveWarning:
    """The card's warning rule at the newest of the recent rows (times and probabilities,
    newest last), as :func:`analytics.pdm.events.standing_warning` gives it over the rows.

    ``previous`` (the equipment's previous prediction) decides when the rows cannot: only a
    warning of the same model, from a time late enough in the rows that no run of the alarm
    before it could have lasted its delay unseen (within the rows' span less the longer delay).
    """
    t = np.asarray(time_s, dtype=np.float64)
    alarm = np.asarray(probability, dtype=np.float64) >= model.threshold
    step = model.step_s
    rows_s = float(t[-1] - t[0]) + step
    before = None
    if previous is not None and previous.model_source == model.source:
        age_s = float(t[-1]) - previous.time_s
        if 0.0 < age_s <= rows_s - max(model.on_h, model.off_h) * SECONDS_PER_HOUR + 1e-6:
            before = previous.warning
    now = warning_now(alarm, t, model.on_h, model.off_h, step_s=step, before=before)
    return LiveWarning(warning=now.warning, alarm=now.alarm, held_h=now.held_h, on_h=model.on_h,
                       off_h=model.off_h, rows_h=rows_s / SECONDS_PER_HOUR,
                       window_h=model.on_h + model.off_h + step / SECONDS_PER_HOUR, carried=now.carried)


def positive_probability(classifier: Any, rows: np.ndarray) -> np.ndarray:
    """The forest's probability of the failure class for each row (0 without that class)."""
    proba = classifier.predict_proba(np.asarray(rows, dtype=np.float64))
    positive = np.flatnonzero(classifier.classes_ == 1)
    return proba[:, positive[0]] if len(positive) else np.zeros(len(rows))


def predict_equipment(model: LoadedModel, features_row: np.ndarray, now: datetime,
                      equipment_id: str = "",
                      recent: tuple[np.ndarray, np.ndarray] | None = None,
                      previous: PreviousWarning | None = None) -> Prediction:
    """Probability, level, RUL, drivers and texts for one equipment's feature row.

    ``recent``: the times and probabilities of the rows before it that the warning rule reads
    (:func:`live_warning`; this row is appended as the newest); None: this row alone.
    """
    from analytics.pdm.contributions import decompose

    row = np.asarray(features_row, dtype=np.float64).reshape(1, -1)
    decomposition = decompose(model.classifier, row)
    probability = float(decomposition.bias[0] + decomposition.contributions[0].sum())
    probability = min(max(probability, 0.0), 1.0)
    alarm = probability >= model.threshold
    times, probabilities = recent if recent is not None and len(recent[0]) else (np.zeros(0), np.zeros(0))
    # The rows are on the model's regular grid: the newest is one step after the last of them.
    now_s = float(times[-1]) + model.step_s if len(times) else now.timestamp()
    warning = live_warning(model, np.r_[times, now_s], np.r_[probabilities, probability], previous)
    tree_alarm = np.array([_tree_positive(t, row) >= model.threshold for t in model.classifier.estimators_])
    confidence = float(np.mean(tree_alarm == alarm))
    rul = max(float(model.regressor.predict(row)[0]), 0.0) if warning.warning else None
    level = _level(model, probability, rul, warning.warning)
    drivers = _drivers(decomposition.contributions[0], model.feature_names)
    score = _anomaly_score(model.kind, row[0], model.feature_names)
    failure_date = (now + timedelta(hours=rul)).astimezone(UTC).isoformat() if rul is not None else None
    return Prediction(
        equipment_id=equipment_id, failure_probability=round(100.0 * probability, 1),
        rul_hours=None if rul is None else round(rul, 1), estimated_failure_date=failure_date,
        is_anomaly=score > ANOMALY_HALF_SPANS, anomaly_score=round(score, 3), prediction=level,
        recommendation=_recommendation(level, equipment_id, rul, drivers),
        narrative=_narrative(model, equipment_id, probability, level, rul, drivers,
                             warning if warning.delayed else None),
        confidence=round(100.0 * confidence, 1), model_source=model.source,
        timestamp=now.astimezone(UTC).isoformat(), top_drivers=drivers,
        alarm=warning.alarm, warning=warning.warning, warning_state=warning.state(),
        warning_partial=warning.partial)


def _tree_positive(tree: Any, row: np.ndarray) -> float:
    proba = tree.predict_proba(row)[0]
    positive = np.flatnonzero(tree.classes_ == 1)
    return float(proba[positive[0]]) if len(positive) else 0.0


def _level(model: LoadedModel, probability: float, rul: float | None,
           warning: bool | None = None) -> PredictionLevel:
    """NORMAL unless the warning stands (default: the alarm, ``probability >= threshold``)."""
    if not (probability >= model.threshold if warning is None else warning):
        return PredictionLevel.NORMAL
    if probability >= IMMINENT_PROBABILITY or (rul is not None and rul <= IMMINENT_RUL_FRACTION * model.horizon_h):
        return PredictionLevel.FAILURE_IMMINENT
    return PredictionLevel.WARNING


def _drivers(contributions: np.ndarray, names: tuple[str, ...]) -> tuple[Driver, ...]:
    total = float(np.abs(contributions).sum())
    if total <= 0.0:
        return ()
    order = np.argsort(-np.abs(contributions))[:TOP_DRIVERS]
    return tuple(Driver(names[i], round(100.0 * abs(float(contributions[i])) / total, 1),
                        Direction.INCREASE if contributions[i] > 0 else Direction.DECREASE)
                 for i in order if contributions[i] != 0.0)


def _anomaly_score(kind: EquipmentType, row: np.ndarray, names: tuple[str, ...]) -> float:
    """Largest |1 h mean| of the type's signals, in half-spans of the normal range."""
    index = [names.index(f"{s.value}.mean_1h") for s in TYPE_SIGNALS[kind]]
    return float(np.max(np.abs(row[index])))


def _signal_of(feature: str) -> str:
    return feature.split(".")[0].removeprefix("log_excess_").replace("_", " ")


def _recommendation(level: PredictionLevel, equipment_id: str, rul: float | None,
                    drivers: tuple[Driver, ...]) -> str:
    rising = [_signal_of(d.feature) for d in drivers if d.direction == Direction.INCREASE]
    focus = ", ".join(dict.fromkeys(rising[:3])) or "the main symptoms"
    if level == PredictionLevel.NORMAL:
        return f"Continue normal operation of {equipment_id}; keep routine condition monitoring."
    if level == PredictionLevel.WARNING:
        return (f"Plan maintenance of {equipment_id} within the next {rul:.0f} h; "
                f"inspect {focus} and prepare spares.")
    return (f"Intervene on {equipment_id} now: schedule a controlled shutdown or switch to the spare; "
            f"check {focus}.")


def _narrative(model: LoadedModel, equipment_id: str, probability: float, level: PredictionLevel,
               rul: float | None, drivers: tuple[Driver, ...], warning: LiveWarning | None = None) -> str:
    parts = [f"{equipment_id or model.kind.value}: {100 * probability:.0f} % probability of failure "
             f"within {model.horizon_h:g} h (alarm threshold {100 * model.threshold:.0f} %), {level.value}."]
    if warning is not None:
        parts.append(f"Warning {warning.state()}.")
    if rul is not None:
        parts.append(f"Estimated remaining useful life {rul:.0f} h.")
    if drivers:
        listed = "; ".join(f"{d.feature} {d.contribution_pct:.0f} % "
                           f"({'raises' if d.direction == Direction.INCREASE else 'lowers'} the risk)"
                           for d in drivers[:3])
        parts.append(f"Main drivers: {listed}.")
    return " ".join(parts)


# --------------------------------------------------------------------------- the prediction child


def describe_models(directory: Path) -> dict[EquipmentType, ModelInfo]:
    """Load every model of a directory (proving the artifacts load) and describe them."""
    return {kind: model.info() for kind, model in load_models(directory).items()}


def predict_fleet(directory: Path, inputs: Sequence[EquipmentSeries], now_s: float) -> FleetPredictions:
    """Load the type models and predict every equipment at ``now_s`` (epoch s).

    An equipment whose history is too short (``live_features`` raises ValueError) or whose
    type model is no longer in ``directory`` gets no prediction, with the reason instead.
    """
    models = load_models(directory)
    started = time.perf_counter()
    predictions: dict[str, Prediction] = {}
    unavailable: dict[str, str] = {}
    for item in inputs:
        model = models.get(item.kind)
        if model is None:
            unavailable[item.equipment_id] = Unavailable.NO_MODEL.value
            continue
        try:
            predictions[item.equipment_id] = predict_series(model, item, now_s)
        except ValueError as exc:
            unavailable[item.equipment_id] = f"{Unavailable.NOT_ENOUGH_HISTORY.value}: {exc}"
    return FleetPredictions(predictions, unavailable, time.perf_counter() - started)


def predict_series(model: LoadedModel, item: EquipmentSeries, now_s: float) -> Prediction:
    """One equipment's prediction at ``now_s`` from its live samples, with the card's warning
    rule over the last ``on_h + off_h`` hours and one step (ValueError: too little history)."""
    times, rows = live_feature_rows(model, item.signals, item.series, now_s, warning_rows(model))
    recent = (times[:-1], positive_probability(model.classifier, rows[:-1])) if len(rows) > 1 else None
    return predict_equipment(model, rows[-1], datetime.fromtimestamp(now_s, UTC), item.equipment_id,
                             recent=recent, previous=item.previous)
