"""The daemon's live warning is the model card's rule: threshold, then on-delay and off-delay.

A hand-built PUMP model whose forest alarms exactly while the vibration sits in the upper half
of its normal range (probability 1, else 0) predicts from hand-built tag series through the
live path (:func:`analytics.pdm.predict.predict_series`: live features on the model's grid,
the rows of the last on_h + off_h hours and a step, :func:`analytics.pdm.events.standing_warning`).
The card says on after 3 h of alarm, off after 2 h quiet; rows every 10 minutes.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from analytics.pdm.events import standing_warning, warning_now
from analytics.pdm.features import HISTORY_H, feature_names
from analytics.pdm.predict import (
    EquipmentSeries,
    LoadedModel,
    ModelInfo,
    Prediction,
    PredictionLevel,
    PreviousWarning,
    live_feature_rows,
    predict_series,
    warning_delays,
    warning_rows,
)
from analytics.pdm.signals import Signal, model_signals
from gateway.northbound.http.compat.maintenance import MaintenancePrediction
from gateway.northbound.http.compat.sentences import MAINTENANCE_NARRATIVE
from gateway.services.maintenance import MaintenanceService
from gateway.settings import MaintenanceSettings
from plant.catalog import Catalog
from plant.load import load_plant
from plant.schema import EquipmentType

H = 3600.0
DT = 600.0
EPOCH = 1.75e9  # a multiple of DT: grid rows fall on whole 10 minutes
PLANT = load_plant(Path(__file__).parents[2] / "config" / "plant.toml")
KIND = EquipmentType.PUMP
SIGNALS = model_signals(PLANT, "PUMP-101", KIND)
ON_H, OFF_H = 3.0, 2.0


RULE = {"threshold": 0.5, "on_h": ON_H, "off_h": OFF_H}


def _model(card_warning: dict | None = RULE) -> LoadedModel:  # noqa: B006 (never mutated)
    """Alarm iff vibration.last > 0 (the middle of its normal range): every tree splits there."""
    names = feature_names(KIND)
    x = np.zeros((2, len(names)))
    x[:, names.index("vibration.last")] = (-1.0, 1.0)
    classifier = RandomForestClassifier(n_estimators=3, bootstrap=False, max_features=None,
                                        random_state=0).fit(x, [0, 1])
    regressor = RandomForestRegressor(n_estimators=2, bootstrap=False, max_features=None,
                                      random_state=0).fit(x, [20.0, 10.0])
    card = {"equipment_type": KIND.value, "version": "1.0", "created": "2026-12-01T00:00:00+00:00"}
    if card_warning is not None:
        card["warning"] = card_warning
    on_h, off_h = warning_delays(card)
    return LoadedModel(kind=KIND, classifier=classifier, regressor=regressor, threshold=0.5,
                       horizon_h=24.0, dt_s=DT, feature_names=names, card=card, on_h=on_h, off_h=off_h)


def _series(alarmed_h: list[tuple[float, float]], start_h: float = 0.0,
            end_h: float = 200.0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Samples every minute from start_h to end_h; vibration high during the alarmed hours,
    every other signal at the middle of its range."""
    ts = EPOCH + np.arange(start_h * H, end_h * H + 1.0, 60.0)
    out = {}
    for s in SIGNALS:
        values = np.full(len(ts), s.mid)
        if s.signal == Signal.VIBRATION:
            high = np.zeros(len(ts), dtype=bool)
            for a, b in alarmed_h:
                high |= (ts >= EPOCH + a * H) & (ts < EPOCH + b * H)
            values = np.where(high, s.mid + 0.8 * s.half_span, s.mid - 0.8 * s.half_span)
        out[s.tag_id] = (ts, values)
    return out


def _predict(model: LoadedModel, series, now_h: float, previous: PreviousWarning | None = None) -> Prediction:
    item = EquipmentSeries("PUMP-101", KIND, SIGNALS, series, previous=previous)
    return predict_series(model, item, EPOCH + now_h * H)


# ------------------------------------------------------------------ the rule on a hand-built timeline

ALARM_100_TO_110 = [(100.0, 110.0)]


def test_the_warning_is_pending_during_the_on_delay():
    p = _predict(_model(), _series(ALARM_100_TO_110), 101.0)
    assert p.alarm and not p.warning
    assert p.prediction == PredictionLevel.NORMAL and p.rul_hours is None
    assert p.warning_state == "on-delay: alarm for 1.2 of 3.0 h"  # 7 rows, 100:00 to 101:00
    assert "Warning on-delay: alarm for 1.2 of 3.0 h." in p.narrative
    assert p.failure_probability == 100.0  # the probability itself is shown as it is


def test_the_warning_stands_at_the_row_where_the_alarm_has_held_for_the_on_delay():
    before = _predict(_model(), _series(ALARM_100_TO_110), 102.0 + 40 / 60)  # 17 rows: 2.8 h
    at = _predict(_model(), _series(ALARM_100_TO_110), 102.0 + 50 / 60)  # 18 rows: 3.0 h
    assert not before.warning and before.warning_state == "on-delay: alarm for 2.8 of 3.0 h"
    assert at.warning and at.alarm and at.warning_state == "standing: alarm for 3.0 h"
    assert at.prediction != PredictionLevel.NORMAL and at.rul_hours is not None


def test_the_warning_holds_during_the_off_delay_then_clears():
    holding = _predict(_model(), _series(ALARM_100_TO_110), 111.0)  # quiet since 110:00, 7 rows
    assert holding.warning and not holding.alarm
    assert holding.warning_state == "off-delay: clear for 1.2 of 2.0 h"
    assert holding.prediction == PredictionLevel.WARNING and holding.rul_hours is not None
    cleared = _predict(_model(), _series(ALARM_100_TO_110), 111.0 + 50 / 60)  # 12 rows: 2.0 h
    assert not cleared.warning and not cleared.alarm
    assert cleared.warning_state == "clear: no alarm for 2.0 h"
    assert cleared.prediction == PredictionLevel.NORMAL and cleared.rul_hours is None


def test_a_short_alarm_never_raises_the_warning():
    p = _predict(_model(), _series([(100.0, 102.0)]), 102.5)
    assert not p.warning and not p.alarm and p.prediction == PredictionLevel.NORMAL


def _evaluated_warning(model: LoadedModel, series, times_h: np.ndarray) -> np.ndarray:
    """The rule as the card's evaluation applies it: standing_warning over the whole timeline."""
    t, rows = live_feature_rows(model, SIGNALS, series, EPOCH + times_h[-1] * H, rows=10_000)
    alarm = model.classifier.predict_proba(rows)[:, 1] >= model.threshold
    warning = standing_warning(alarm, t, model.on_h, model.off_h, step_s=model.step_s)
    return warning[np.searchsorted(t, EPOCH + times_h * H)]


def _every_30_min(model: LoadedModel, series, times_h: np.ndarray) -> list[bool]:
    """The live warning at each time, each prediction handed the previous one (as the service
    does)."""
    previous, out = None, []
    for h in times_h:
        p = _predict(model, series, h, previous)
        out.append(p.warning)
        previous = PreviousWarning(EPOCH + h * H, p.warning, p.model_source)
    return out


def test_the_live_warning_equals_the_evaluated_rule_at_every_prediction():
    # Alarm runs of 4 h, 1 h, 5 h with quiet gaps of 1.5 h and 3 h, a prediction every 30 min.
    series = _series([(90.0, 94.0), (95.5, 96.5), (99.5, 104.5)])
    model = _model()
    times_h = np.arange(88.0, 110.0, 0.5)
    live = _every_30_min(model, series, times_h)
    assert live == _evaluated_warning(model, series, times_h).tolist()
    assert any(live) and not all(live)


def test_rows_that_cannot_decide_keep_the_previous_warning_as_the_rule_does():
    # At 96.5 h the warning raised at 92:50 still stands (no quiet of 2 h since), but the run
    # that raised it began 6.5 h ago, before the 5 h 10 min of rows: they cannot tell.
    series, model = _series([(90.0, 94.0), (95.5, 96.5)]), _model()
    alone = _predict(model, series, 96.5)
    assert not alone.warning
    carried = _predict(model, series, 96.5, PreviousWarning(EPOCH + 96.0 * H, True, alone.model_source))
    assert carried.warning and carried.warning_state == "off-delay: clear for 0.2 of 2.0 h"


def test_a_chattering_alarm_keeps_the_warning_standing_as_the_rule_does():
    # Standing from 92:50, then 1 h on / 1 h off: no run lasts its delay, the warning stays on.
    chatter = [(90.0, 96.0)] + [(97.0 + 2 * k, 98.0 + 2 * k) for k in range(10)]
    series, model = _series(chatter), _model()
    times_h = np.arange(92.0, 116.0, 0.5)
    live = _every_30_min(model, series, times_h)
    assert live == _evaluated_warning(model, series, times_h).tolist()
    assert all(live[2:])


def test_a_previous_warning_of_another_model_is_not_carried():
    series = _series([(90.0, 96.0)] + [(97.0 + 2 * k, 98.0 + 2 * k) for k in range(10)])
    other = PreviousWarning(EPOCH + 109.5 * H, True, "PUMP v0.9 (2025-01-01)")
    assert not _predict(_model(), series, 110.0, other).warning


# ------------------------------------------------------------------ old cards, short history


def test_an_old_card_without_delays_warns_on_the_alarm_itself():
    model = _model(card_warning=None)
    assert (model.on_h, model.off_h) == (0.0, 0.0) and warning_rows(model) == 1
    on = _predict(model, _series(ALARM_100_TO_110), 100.0)
    off = _predict(model, _series(ALARM_100_TO_110), 110.0)
    assert on.warning and on.alarm and on.prediction != PredictionLevel.NORMAL
    assert not off.warning and not off.alarm and off.prediction == PredictionLevel.NORMAL
    assert "Warning" not in on.narrative and not on.warning_partial
    assert (on.warning_state, off.warning_state) == ("standing: alarm (no delays)", "clear: no alarm (no delays)")


def test_the_delays_come_from_the_artifact_when_the_card_has_none():
    assert warning_delays({}, {"warning": {"threshold": 0.4, "on_h": 1.0, "off_h": 12.0}}) == (1.0, 12.0)
    with pytest.raises(ValueError, match="warning delays"):
        warning_delays({"equipment_type": "PUMP", "warning": {"on_h": -1.0}})


def test_a_short_history_gives_a_partial_warning_from_the_rows_there_are():
    series = _series([(0.0, 10.0)], start_h=0.0, end_h=10.0)
    p = _predict(_model(), series, 8.0)  # rows from 6 h (MIN_HISTORY_H) to 8 h: 13 rows, 2.2 h
    assert p.warning_partial and p.alarm and not p.warning
    assert p.warning_state == "on-delay: alarm for 2.2 of 3.0 h (from 2.2 of 5.2 h of history)"
    later = _predict(_model(), series, 9.0)
    assert later.warning and later.warning_partial
    assert not _predict(_model(), _series(ALARM_100_TO_110), 120.0).warning_partial


def test_too_little_history_for_any_row_is_still_an_error():
    with pytest.raises(ValueError, match="of history"):
        _predict(_model(), _series([], start_h=0.0, end_h=10.0), 5.0)


# ------------------------------------------------------------------ events.warning_now on arrays


def test_warning_now_is_settled_by_a_run_that_lasted_its_delay():
    t = np.arange(12) * H
    alarm = np.array([0, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1], dtype=bool)  # hourly, on 3 h, off 2 h
    now = warning_now(alarm, t, on_h=3.0, off_h=2.0)
    assert now.settled and now.warning and now.alarm and now.held_h == pytest.approx(2.0)
    assert now.warning == standing_warning(alarm, t, 3.0, 2.0)[-1]


def test_warning_now_takes_the_state_before_rows_that_cannot_decide():
    t = np.arange(6) * H
    alarm = np.array([1, 0, 1, 0, 1, 0], dtype=bool)
    assert not warning_now(alarm, t, 3.0, 2.0).warning
    carried = warning_now(alarm, t, 3.0, 2.0, before=True)
    assert carried.warning and carried.carried and not carried.settled
    assert warning_now(alarm, t, 0.0, 0.0, before=True).warning is False  # no delays: the alarm


# ------------------------------------------------------------------ the service and the API


class _RecordingStore:
    def __init__(self):
        self.calls: list[tuple[int, float, float]] = []

    async def history(self, tag_index, start, end, max_points=None):
        self.calls.append((tag_index, start, end))
        empty = np.zeros(0)
        return SimpleNamespace(source_ts=empty, values=empty, quality=np.zeros(0, dtype=np.uint8))


async def test_the_service_reads_the_feature_window_behind_every_row_of_the_rule(tmp_path):
    store = _RecordingStore()
    service = MaintenanceService(MaintenanceSettings(train_on_first_start=False), Catalog.build(PLANT),
                                 store, tmp_path, tasks=None)
    service.models = {KIND: ModelInfo(KIND, DT, 24.0, "PUMP v1.0 (2026-12-01)", on_h=ON_H, off_h=OFF_H)}
    now = EPOCH + 200 * H
    inputs, _ = await service._inputs(now)
    assert inputs and store.calls
    looked_back = [now - start for _, start, _ in store.calls]
    assert looked_back == pytest.approx([(HISTORY_H + ON_H + OFF_H) * H + DT] * len(looked_back))


async def test_the_service_hands_each_equipment_its_previous_warning(tmp_path):
    service = MaintenanceService(MaintenanceSettings(train_on_first_start=False), Catalog.build(PLANT),
                                 _RecordingStore(), tmp_path, tasks=None)
    service.models = {KIND: ModelInfo(KIND, DT, 24.0, "PUMP v1.0 (2026-12-01)", on_h=ON_H, off_h=OFF_H)}
    service.predictions = {"PUMP-101": _predict(_model(), _series(ALARM_100_TO_110), 105.0)}
    inputs, _ = await service._inputs(EPOCH + 105.5 * H)
    previous = next(i.previous for i in inputs if i.equipment_id == "PUMP-101")
    assert previous == PreviousWarning(EPOCH + 105.0 * H, True, "PUMP v1.0 (2026-12-01)")
    assert all(i.previous is None for i in inputs if i.equipment_id != "PUMP-101")


def test_the_api_row_carries_the_warning_and_a_restored_row_keeps_it():
    p = _predict(_model(), _series(ALARM_100_TO_110), 111.0)
    body = p.as_dict()
    assert Prediction.from_dict(body) == p
    row = MaintenancePrediction.model_validate({**body, "equipment_name": "Bomba", "equipment_type": "PUMP"})
    assert (row.alarm, row.warning, row.warning_state) == (False, True, "off-delay: clear for 1.2 of 2.0 h")
    old = {k: v for k, v in body.items() if not k.startswith(("alarm", "warning"))}
    assert Prediction.from_dict(old).warning is True  # persisted before the fields: as its level said


def test_a_run_longer_than_the_rows_read_is_said_to_be_at_least_that_long():
    p = _predict(_model(), _series(ALARM_100_TO_110), 150.0)
    assert p.warning_state == "clear: no alarm for at least 5.2 h"


@pytest.mark.parametrize("now_h", [101.0, 104.0, 111.0, 115.0, 150.0, 8.0])
def test_the_warning_sentence_has_its_spanish_sentence(now_h):
    series = _series([(0.0, 10.0)], end_h=10.0) if now_h < 10 else _series(ALARM_100_TO_110)
    english = _predict(_model(), series, now_h).narrative
    spanish = MAINTENANCE_NARRATIVE.spanish(english)
    assert spanish is not None and "Aviso" in spanish, english
    assert not re.search(r"\b(alarm|clear|of|for|history|Warning)\b", spanish), spanish
    assert re.findall(r"\d+(?:\.\d+)?", spanish) == re.findall(r"\d+(?:\.\d+)?", english)
