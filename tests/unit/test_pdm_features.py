"""Features: deterministic, causal, normalised, and the same for training and live inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analytics.pdm.features import (
    SECONDS_PER_HOUR,
    STATS,
    Scaling,
    fails_within,
    feature_matrix,
    feature_names,
    latest_features,
    resample,
    rolling_stats,
)
from analytics.pdm.signals import Signal, equipment_signals, model_signals
from plant.load import load_plant
from plant.schema import EquipmentType
from simulator.training import run_to_failure

PLANT = load_plant(Path(__file__).resolve().parents[2] / "config" / "plant.toml")


@pytest.fixture(scope="module")
def pump_run():
    return run_to_failure("PUMP", seed=2, dt=1800.0, healthy_h=24.0, wear_h=60.0)


def _pump_columns(run):
    signals = model_signals(PLANT, run.equipment_id, EquipmentType.PUMP)
    return run.values[:, [run.tag_ids.index(s.tag_id) for s in signals]], Scaling.of(signals)


def test_pumps_map_their_own_tags_to_the_same_signals():
    a = equipment_signals(PLANT, "PUMP-101")
    b = equipment_signals(PLANT, "PUMP-305")
    assert a[Signal.VIBRATION].tag_id == "VI-101" and b[Signal.VIBRATION].tag_id == "VI-305"
    assert a[Signal.FEED_FLOW].tag_id == "FI-102" and b[Signal.DISCHARGE_PRESSURE].tag_id == "PI-308"


def test_furnace_and_exchanger_tags_are_told_apart():
    furnace = equipment_signals(PLANT, "FURNACE-100")
    exchanger = equipment_signals(PLANT, "EXCH-306")
    assert furnace[Signal.TUBE_SKIN].tag_id == "TI-109"
    assert exchanger[Signal.EXCHANGER_OUTLET].tag_id == "TI-310"


def test_features_are_deterministic(pump_run):
    values, scaling = _pump_columns(pump_run)
    a = feature_matrix(EquipmentType.PUMP, pump_run.time_s, values, scaling)
    b = feature_matrix(EquipmentType.PUMP, pump_run.time_s, values.copy(), scaling)
    assert a.shape == (len(pump_run.time_s), len(feature_names(EquipmentType.PUMP)))
    assert np.array_equal(a, b)
    assert np.isfinite(a).all()


def test_features_are_causal(pump_run):
    values, scaling = _pump_columns(pump_run)
    full = feature_matrix(EquipmentType.PUMP, pump_run.time_s, values, scaling)
    cut = 40
    prefix = feature_matrix(EquipmentType.PUMP, pump_run.time_s[:cut], values[:cut], scaling)
    np.testing.assert_allclose(prefix, full[:cut], rtol=1e-9, atol=1e-9)


def test_live_features_equal_the_training_row(pump_run):
    values, scaling = _pump_columns(pump_run)
    training = feature_matrix(EquipmentType.PUMP, pump_run.time_s, values, scaling)
    # Live: samples every dt/10 held constant between training points, resampled on the dt grid.
    k = 60
    epoch = 1.7e9
    fine_t = epoch + np.arange(pump_run.time_s[0], pump_run.time_s[k] + 1, pump_run.dt / 10)
    idx = np.searchsorted(pump_run.time_s, fine_t - epoch, side="right") - 1
    live_values = np.column_stack([resample(epoch + pump_run.time_s[: k + 1], fine_t, values[idx, c])
                                   for c in range(values.shape[1])])
    live = latest_features(EquipmentType.PUMP, epoch + pump_run.time_s[: k + 1], live_values, scaling)
    np.testing.assert_allclose(live, training[k], rtol=1e-7, atol=1e-9)


def test_rolling_mean_and_slope_of_a_ramp():
    t = np.arange(0, 48 * SECONDS_PER_HOUR, 600.0)
    x = (2.0 * t / SECONDS_PER_HOUR)[:, None]  # 2 units per hour
    stats = rolling_stats(t, x)
    assert stats[-1, 0, STATS.index("slope_6h")] == pytest.approx(2.0)
    assert stats[-1, 0, STATS.index("mean_1h")] == pytest.approx(x[-6:].mean())


def test_normalisation_makes_machine_ranges_comparable():
    a = Scaling(np.array([165.0]), np.array([15.0]))  # PI-104 150-180
    b = Scaling(np.array([730.0]), np.array([30.0]))  # PI-308 700-760
    t = np.arange(0, 10 * 3600.0, 600.0)
    za = feature_matrix(EquipmentType.PUMP, t, np.tile([3.0, 57.5, 50.0, 180.0, 10000.0], (len(t), 1)),
                        Scaling(np.array([2.5, 57.5, 50.0, a.mid[0], 10000.0]),
                                np.array([2.0, 17.5, 5.0, a.half_span[0], 200.0])))
    zb = feature_matrix(EquipmentType.PUMP, t, np.tile([3.0, 57.5, 67.5, 760.0, 6000.0], (len(t), 1)),
                        Scaling(np.array([2.5, 57.5, 67.5, b.mid[0], 6000.0]),
                                np.array([2.0, 17.5, 7.5, b.half_span[0], 200.0])))
    np.testing.assert_allclose(za, zb)


def test_label_is_failure_within_the_horizon():
    t = np.array([0.0, 10.0, 20.0, 30.0]) * SECONDS_PER_HOUR
    assert fails_within(t, 30.0 * SECONDS_PER_HOUR, 15.0).tolist() == [False, False, True, True]


def test_the_wear_index_is_the_mean_excess_of_the_symptoms():
    t = np.arange(0, 10 * 3600.0, 600.0)
    # Vibration +0.3, bearing +0.6, discharge -0.9 half-spans from mid: excesses 0.3, 0.6, 0.9.
    values = np.tile([2.8, 57.5 + 0.6 * 17.5, 50.0, 165.0 - 0.9 * 15.0, 10000.0], (len(t), 1))
    scaling = Scaling(np.array([2.5, 57.5, 50.0, 165.0, 10000.0]), np.array([1.0, 17.5, 5.0, 15.0, 200.0]))
    row = feature_matrix(EquipmentType.PUMP, t, values, scaling)[-1]
    names = feature_names(EquipmentType.PUMP)
    assert row[names.index("wear_index.last")] == pytest.approx(0.6)
    assert row[names.index("log_excess_wear_index.last")] == pytest.approx(np.log(0.6))


def test_a_valve_that_stops_following_its_demand_shows_a_wider_error_spread():
    t = np.arange(0, 72 * 3600.0, 600.0)
    demand = 50.0 + 4.0 * np.sin(2 * np.pi * t / 86400.0)
    feed = np.full(len(t), 1000.0)
    scaling = Scaling(np.array([50.0, 50.0, 1000.0]), np.array([20.0, 20.0, 100.0]))
    names = feature_names(EquipmentType.VALVE)
    following = feature_matrix(EquipmentType.VALVE, t, np.column_stack([demand, demand, feed]), scaling)[-1]
    stuck = feature_matrix(EquipmentType.VALVE, t, np.column_stack([np.full(len(t), 50.0), demand, feed]),
                           scaling)[-1]
    spread = names.index("error_spread.last")
    assert following[spread] == pytest.approx(0.0, abs=1e-9)
    assert stuck[spread] == pytest.approx(4.0 / np.sqrt(2) / 20.0, rel=0.02)


def test_history_window_covers_windows_over_windowed_channels():
    from analytics.pdm.features import HISTORY_H, SLOPE_WINDOWS_H, SMOOTH_H, SPREAD_H
    assert HISTORY_H >= max(SLOPE_WINDOWS_H) + SMOOTH_H + SPREAD_H


def test_live_valve_features_equal_the_training_row():
    run = run_to_failure("VALVE", seed=1, dt=1800.0, healthy_h=80.0, wear_h=60.0)
    signals = model_signals(PLANT, run.equipment_id, EquipmentType.VALVE)
    values = run.values[:, [run.tag_ids.index(s.tag_id) for s in signals]]
    scaling = Scaling.of(signals)
    training = feature_matrix(EquipmentType.VALVE, run.time_s, values, scaling)
    from analytics.pdm.features import HISTORY_H
    k = len(run.time_s) - 2
    first = int(np.searchsorted(run.time_s, run.time_s[k] - HISTORY_H * SECONDS_PER_HOUR, side="left"))
    live = latest_features(EquipmentType.VALVE, run.time_s[first:k + 1], values[first:k + 1], scaling)
    np.testing.assert_allclose(live, training[k], rtol=1e-6, atol=1e-8)
