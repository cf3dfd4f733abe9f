"""Training per type: run-level split, held-out metrics in the card, exact contributions, predictions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from analytics.pdm.card import read_card
from analytics.pdm.contributions import decompose
from analytics.pdm.dataset import CV_FOLDS, Rows, SplitName, cv_folds, rows_of, split_runs
from analytics.pdm.evaluate import WarningRule, evaluate, timelines_of
from analytics.pdm.events import event_metrics, meets_event_target
from analytics.pdm.features import feature_names
from analytics.pdm.model import PLANNING_LEAD_H, TrainOptions, save, train_type
from analytics.pdm.predict import Direction, PredictionLevel, load_models, predict_equipment
from plant.load import load_plant
from plant.schema import EquipmentType
from simulator.training import healthy_run, run_to_failure

PLANT = load_plant(Path(__file__).resolve().parents[2] / "config" / "plant.toml")
KIND = EquipmentType.PUMP
# The toy lives wear for 60 h (half a real pump's): the horizon is scaled down with them.
OPTIONS = TrainOptions(seed=3, n_estimators=15, n_jobs=1, horizon_h=24.0)


HEALTHY_IDS = (8, 9, 10, 11)


@pytest.fixture(scope="module")
def histories():
    from analytics.pdm.dataset import history_from_run
    failing = [history_from_run(run_to_failure(KIND.value, seed=s, dt=1800.0, healthy_h=60.0, wear_h=60.0),
                                PLANT, KIND) for s in range(8)]
    healthy = [history_from_run(healthy_run(KIND.value, seed=s, hours=200.0, dt=1800.0), PLANT, KIND)
               for s in HEALTHY_IDS]
    return failing + healthy


@pytest.fixture(scope="module")
def trained(histories):
    return train_type(KIND, histories, OPTIONS, planning_lead_h=12.0)


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    save(trained, out)
    return out


def test_train_and_test_runs_never_overlap():
    splits = split_runs(list(range(40)))
    train, test = set(splits[SplitName.TRAIN]), set(splits[SplitName.TEST])
    assert not train & test and train | test == set(range(40))
    assert len(test) == 20 and len(train) == 20


def test_cv_folds_partition_the_training_runs_by_run():
    folds = cv_folds(list(range(30)))
    assert len(folds) == CV_FOLDS
    assert sorted(r for f in folds for r in f) == list(range(30))
    assert all(not set(a) & set(b) for i, a in enumerate(folds) for b in folds[i + 1:])


def test_cv_folds_shrink_to_the_number_of_training_runs():
    assert cv_folds([7, 3]) == [[3], [7]]


def test_every_machine_of_a_type_gets_its_share_of_test_runs_and_folds():
    # The simulator picks the pump from the run's seed (even: PUMP-101, odd: PUMP-305); dealt by
    # id alone, every second id is even and the test runs would all be PUMP-101.
    machine_of = {r: ("PUMP-101", "PUMP-305")[r % 2] for r in range(40)}
    by_id = split_runs(list(machine_of))
    assert {machine_of[r] for r in by_id[SplitName.TEST]} == {"PUMP-101"}
    splits = split_runs(list(machine_of), machine_of)
    test = splits[SplitName.TEST]
    assert sorted(machine_of[r] for r in test) == ["PUMP-101"] * 10 + ["PUMP-305"] * 10
    assert not set(test) & set(splits[SplitName.TRAIN]) and len(splits[SplitName.TRAIN]) == 20
    folds = cv_folds(splits[SplitName.TRAIN], machine_of=machine_of)
    assert sorted(r for f in folds for r in f) == splits[SplitName.TRAIN]
    for fold in folds:
        shares = [sum(machine_of[r] == m for r in fold) for m in ("PUMP-101", "PUMP-305")]
        assert min(shares) >= 2 and abs(shares[0] - shares[1]) <= 1, fold


def test_trained_card_tests_on_both_pumps(saved, histories):
    card = read_card(saved / "PUMP.card.json")
    machine_of = {h.run_id: h.equipment_id for h in histories}
    assert {machine_of[r] for r in card["split"]["test"]} == {"PUMP-101", "PUMP-305"}


def test_threshold_comes_from_out_of_fold_predictions_of_train_runs_only(saved, trained, histories):
    card = read_card(saved / "PUMP.card.json")
    folds = card["split"]["cv_folds"]
    assert sorted(r for f in folds for r in f) == sorted(card["split"]["train"])
    assert card["metrics"]["cross_validation"]["events"]["failures"] == 4
    assert card["metrics"]["cross_validation"]["row_level"]["runs"] == 4  # the failing train runs
    assert not set(card["split"]["test"]) & set(card["split"]["train"])


def test_healthy_only_runs_are_split_between_train_and_test(saved):
    card = read_card(saved / "PUMP.card.json")
    assert card["split"]["healthy_runs"] == list(HEALTHY_IDS)
    assert card["sizes"]["train_healthy_runs"] == card["sizes"]["test_healthy_runs"] == 2
    assert len(set(HEALTHY_IDS) & set(card["split"]["test"])) == 2
    # Four failing runs and two healthy ones on each side; every fold has a failing run.
    assert card["sizes"]["test_runs"] == card["sizes"]["train_runs"] == 6
    assert all(set(f) - set(HEALTHY_IDS) for f in card["split"]["cv_folds"])


def test_card_says_whether_the_event_target_is_met(saved, trained, histories):
    card = read_card(saved / "PUMP.card.json")
    events = card["metrics"]["test"]["events"]
    assert card["planning_lead_h"] == 12.0 and events["planning_lead_h"] == 12.0
    assert events["failures"] == 4 and events["horizon_h"] == 24.0
    # Healthy time: the two healthy runs (200 h less the first 6 h each) and the failing runs'
    # rows more than 24 h before their failures.
    assert events["healthy_hours"] > 2 * 190.0
    assert card["meets_target"] == meets_event_target(events)
    assert card["meets_target"] == (events["warned_share"] >= 0.95 and events["false_per_machine_month"] <= 0.5)
    # The same figures again from the saved rule applied to the test runs.
    rule = WarningRule(**card["warning"])
    assert rule.threshold == card["threshold"] == trained.threshold
    test_rows = Rows.concat([rows_of(h, KIND, card["horizon_h"]) for h in histories
                             if h.run_id in set(card["split"]["test"])])
    probability = trained.classifier.predict_proba(test_rows.features)[:, 1]
    assert event_metrics(timelines_of(test_rows, probability, rule), 12.0, 24.0) == events


def test_the_default_planning_leads_are_the_settings_defaults():
    from gateway.settings.analytics import DEFAULT_PLANNING_LEAD_H
    assert PLANNING_LEAD_H == DEFAULT_PLANNING_LEAD_H


def test_card_records_the_split_without_overlap(saved):
    split = read_card(saved / "PUMP.card.json")["split"]
    assert not set(split["train"]) & set(split["test"])


def test_model_and_card_are_written(saved):
    assert (saved / "PUMP.joblib").is_file()
    card = read_card(saved / "PUMP.card.json")
    for key in ("features", "sizes", "metrics", "seed", "threshold", "horizon_h", "libraries",
                "data_sha256", "created", "version", "equipment_type"):
        assert key in card
    assert card["features"] == list(feature_names(KIND))
    assert card["seed"] == 3 and len(card["data_sha256"]) == 64
    assert {"scikit-learn", "numpy"} <= set(card["libraries"])


def test_card_metrics_are_numbers_computed_on_the_test_runs(saved, trained, histories):
    card = read_card(saved / "PUMP.card.json")
    test = card["metrics"]["test"]["row_level"]
    for key in ("precision", "recall", "f1", "brier", "false_alarm_rate_healthy"):
        assert isinstance(test[key], float) and 0.0 <= test[key] <= 1.0
    assert isinstance(test["lead_time_h"]["median"], float)
    assert len(test["calibration"]) == 10
    # Row level over the failing test runs only.
    test_rows = Rows.concat([rows_of(h, KIND, card["horizon_h"]) for h in histories
                             if h.run_id in set(card["split"]["test"]) - set(HEALTHY_IDS)])
    probability = trained.classifier.predict_proba(test_rows.features)[:, 1]
    again = evaluate(test_rows, probability, card["threshold"])
    assert test["precision"] == pytest.approx(again["precision"])
    assert test["recall"] == pytest.approx(again["recall"])
    assert test["rows"] == len(test_rows) < card["sizes"]["test_rows"]


def test_contributions_and_bias_sum_to_the_predicted_probability(trained, histories):
    rows = rows_of(histories[0], KIND, trained.horizon_h).features[::5]
    decomposition = decompose(trained.classifier, rows)
    expected = trained.classifier.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(decomposition.bias + decomposition.contributions.sum(axis=1), expected,
                               atol=1e-9)


def test_loaded_models_predict_with_drivers_and_source(saved, trained, histories):
    models = load_models(saved)
    assert set(models) == {KIND}
    model = models[KIND]
    rows = rows_of(histories[0], KIND, trained.horizon_h)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    worn = predict_equipment(model, rows.features[-2], now, "PUMP-101")
    assert worn.model_source.startswith("PUMP v1.0 (")
    assert 0.0 <= worn.failure_probability <= 100.0 and 0.0 <= worn.confidence <= 100.0
    assert worn.top_drivers and all(d.direction in tuple(Direction) for d in worn.top_drivers)
    assert sum(d.contribution_pct for d in worn.top_drivers) <= 100.0 + 1e-6
    body = worn.as_dict()
    assert set(body["shap_explanation"]["top_drivers"][0]) == {"feature", "contribution_pct", "direction"}


def test_a_machine_near_failure_is_not_normal_and_gets_a_failure_date(saved, trained, histories):
    from analytics.pdm.predict import positive_probability
    model = load_models(saved)[KIND]
    rows = rows_of(histories[0], KIND, trained.horizon_h)
    k = len(rows) - 2
    # The rows before it, as the live warning rule reads them (the card's on/off delays).
    recent = (rows.time_s[:k], positive_probability(model.classifier, rows.features[:k]))
    worn = predict_equipment(model, rows.features[k], datetime.fromtimestamp(rows.time_s[k], UTC),
                             "PUMP-101", recent=recent)
    assert worn.warning and worn.prediction != PredictionLevel.NORMAL
    assert worn.rul_hours is not None and worn.estimated_failure_date is not None


def test_one_row_alone_cannot_raise_a_warning_with_an_on_delay(saved, trained, histories):
    model = load_models(saved)[KIND]
    assert model.on_h == trained.warning.on_h and model.off_h == trained.warning.off_h
    rows = rows_of(histories[0], KIND, trained.horizon_h)
    worn = predict_equipment(model, rows.features[-2], datetime(2025, 1, 1, tzinfo=UTC), "PUMP-101")
    assert worn.alarm
    assert worn.warning == (model.on_h * 3600.0 <= model.step_s)
    assert worn.warning_partial == (model.on_h + model.off_h > 0)


def test_a_healthy_machine_is_normal_without_rul(saved, trained, histories):
    model = load_models(saved)[KIND]
    rows = rows_of(histories[0], KIND, trained.horizon_h)
    first_healthy = int(np.flatnonzero(rows.healthy)[0])
    healthy = predict_equipment(model, rows.features[first_healthy], datetime(2025, 1, 1, tzinfo=UTC),
                                "PUMP-101")
    assert healthy.prediction == PredictionLevel.NORMAL
    assert healthy.rul_hours is None and healthy.estimated_failure_date is None


def test_missing_model_dir_loads_no_models(tmp_path):
    assert load_models(tmp_path / "absent") == {}


def test_live_features_from_tag_series_match_the_training_row(saved, trained, histories):
    from analytics.pdm.predict import live_features
    from analytics.pdm.signals import model_signals
    model = load_models(saved)[KIND]
    history = histories[0]
    signals = model_signals(PLANT, history.equipment_id, KIND)
    epoch = 1.7e9
    k = len(history.time_s) - 3
    series = {s.tag_id: (epoch + history.time_s[: k + 1], history.values[: k + 1, c])
              for c, s in enumerate(signals)}
    live = live_features(model, signals, series, epoch + history.time_s[k])
    rows = rows_of(history, KIND, trained.horizon_h)
    np.testing.assert_allclose(live, rows.features[rows.time_s == history.time_s[k]][0], rtol=1e-7, atol=1e-9)


def test_a_prediction_survives_a_round_trip_through_its_dict(saved, trained, histories):
    from analytics.pdm.predict import Prediction
    model = load_models(saved)[KIND]
    rows = rows_of(histories[0], KIND, trained.horizon_h)
    worn = predict_equipment(model, rows.features[-2], datetime(2025, 1, 1, tzinfo=UTC), "PUMP-101")
    assert Prediction.from_dict(worn.as_dict()) == worn
