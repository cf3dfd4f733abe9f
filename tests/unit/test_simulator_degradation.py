"""Equipment wear toward failure, maintenance, and run-to-failure histories for training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plant.catalog import Catalog
from plant.load import load_plant
from simulator.degradation import EventKind
from simulator.model import PlantModel
from simulator.training import run_to_failure

PLANT = Path(__file__).resolve().parents[2] / "config" / "plant.toml"


@pytest.fixture(scope="module")
def plant():
    return load_plant(PLANT)


def test_degradation_reaches_failure_and_maintenance_resets_health(plant):
    model = PlantModel(Catalog.build(plant), seed=21)
    k = model.equipment_index("PUMP-305")
    model.degradation.start_wear(k, model.time_s, wear_h=10.0)
    failed_at = repaired_at = None
    for _ in range(24 * 60):
        model.step(60.0)
        if failed_at is None and model.equipment_failed[k]:
            failed_at = model.time_s
            assert model.value("XS-305") == 0.0
        if failed_at is not None and not model.equipment_failed[k]:
            repaired_at = model.time_s
            break
    assert failed_at is not None and repaired_at is not None
    assert model.equipment_health[k] == 1.0
    kinds = [e.kind for e in model.events if e.equipment_id == "PUMP-305"]
    assert kinds[-3:] == [EventKind.WEAR_ONSET, EventKind.FAILURE, EventKind.REPAIRED]


def test_health_only_falls_while_wearing(plant):
    model = PlantModel(Catalog.build(plant), seed=3)
    k = model.equipment_index("COMP-201")
    model.degradation.start_wear(k, model.time_s, wear_h=20.0)
    health = []
    while not model.equipment_failed[k]:
        model.step(60.0)
        health.append(model.equipment_health[k])
    assert health[0] > 0.9 and health[-1] == 0.0
    assert health[len(health) // 2] > health[-2]


def test_forced_degradation_raises_pump_vibration(plant):
    model = PlantModel(Catalog.build(plant), seed=1)
    model.step(1.0)
    before = model.value("VI-101")
    model.degrade("PUMP-101", 0.1)
    for _ in range(200):
        model.step(1.0)
    assert model.value("VI-101") > before + 3.0
    assert model.value("TI-107") > 75.0


def test_run_to_failure_ends_at_failure_with_rising_symptoms():
    run = run_to_failure("PUMP", seed=4, dt=120.0, wear_h=40.0, healthy_h=6.0)
    vibration = run.values[:, run.tag_ids.index("VI-101" if run.equipment_id == "PUMP-101" else "VI-305")]
    assert run.health[-1] == 0.0 and run.health[0] == 1.0
    assert run.failure_time_s == run.time_s[-1]
    assert run.wear_onset_s < run.failure_time_s
    assert vibration[-10] > 2.0 * vibration[0]


def test_run_to_failure_is_deterministic_per_seed():
    a = run_to_failure("VALVE", seed=2, dt=300.0, wear_h=30.0)
    b = run_to_failure("VALVE", seed=2, dt=300.0, wear_h=30.0)
    assert a.failure_time_s == b.failure_time_s
    assert np.array_equal(a.values, b.values)


@pytest.mark.parametrize("equipment_type", ["COMPRESSOR", "FURNACE", "EXCHANGER"])
def test_run_to_failure_works_for_each_degradable_type(equipment_type):
    run = run_to_failure(equipment_type, seed=1, dt=600.0, wear_h=24.0, healthy_h=6.0)
    assert run.health[-1] == 0.0
    assert len(run.time_s) == len(run.values)


def test_run_to_failure_rejects_types_without_degradation():
    with pytest.raises(ValueError):
        run_to_failure("TOWER", seed=1)
