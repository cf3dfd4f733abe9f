"""The plant model's writable side: setpoints its controllers follow, pump and valve commands,
upsets and scenarios, on the shipped plant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plant.catalog import Catalog
from plant.load import load_plant
from simulator.controls import Excursion, OutOfRange, WriteRejected
from simulator.model import PlantModel
from simulator.scenarios import SCENARIOS, ScenarioRunner, UnknownScenario

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.build(load_plant(ROOT / "config" / "plant.toml"))


def run(model: PlantModel, seconds: float, dt: float = 1.0) -> None:
    for _ in range(int(seconds / dt)):
        model.step(dt)


def mean_over(model: PlantModel, tag_id: str, seconds: float) -> float:
    samples = []
    for _ in range(int(seconds)):
        model.step(1.0)
        samples.append(model.value(tag_id))
    return float(np.mean(samples))


def write(model: PlantModel, tag_id: str, value: float) -> None:
    model.write(model.catalog.index[tag_id], value)


def test_setpoints_start_at_their_loops_design_value_and_hold_still(catalog):
    model = PlantModel(catalog, seed=7)
    assert model.value("TIC-101.SP") == pytest.approx(350.0)
    assert model.value("FIC-102.SP") == pytest.approx(10000.0)
    assert (model.value("HS-101"), model.value("XV-101"), model.value("HS-305")) == (1.0, 1.0, 1.0)
    run(model, 600)
    assert model.value("TIC-101.SP") == pytest.approx(350.0)
    assert model.value("HS-101") == 1.0


def test_the_furnace_outlet_follows_its_setpoint(catalog):
    model = PlantModel(catalog, seed=7)
    run(model, 300)
    write(model, "TIC-101.SP", 365.0)
    assert model.value("TIC-101.SP") == 365.0  # reported at once
    run(model, 900)
    assert mean_over(model, "TI-101", 120) == pytest.approx(365.0, abs=2.0)


def test_the_feed_follows_its_setpoint_and_the_unit_with_it(catalog):
    model = PlantModel(catalog, seed=7)
    run(model, 300)
    naphtha = mean_over(model, "FI-110", 60)
    write(model, "FIC-102.SP", 10500.0)
    run(model, 300)
    assert mean_over(model, "FI-102", 60) == pytest.approx(10500.0, abs=60.0)
    assert mean_over(model, "FI-110", 60) > naphtha * 1.03


def test_the_valve_demand_follows_the_manual_loading_and_the_stem_follows_it(catalog):
    model = PlantModel(catalog, seed=7)
    run(model, 120)
    write(model, "HIC-401.SP", 65.0)
    run(model, 120)
    assert mean_over(model, "ZC-401", 30) == pytest.approx(65.0, abs=8.0)
    assert mean_over(model, "ZI-401", 30) == pytest.approx(65.0, abs=8.0)


def test_a_stopped_pump_stops_its_flow_current_and_status(catalog):
    model = PlantModel(catalog, seed=7)
    run(model, 120)
    write(model, "HS-101", 0.0)
    run(model, 180)
    assert model.value("XS-101") == 0.0
    assert model.value("FI-102") < 200.0
    assert model.value("II-999") < 2.0
    assert not model.equipment_failed[model.equipment_index("PUMP-101")]
    write(model, "HS-101", 1.0)
    run(model, 300)
    assert model.value("XS-101") == 1.0
    assert mean_over(model, "FI-102", 60) == pytest.approx(10000.0, abs=150.0)


def test_a_closed_discharge_valve_dead_heads_the_running_pump(catalog):
    model = PlantModel(catalog, seed=7)
    run(model, 120)
    write(model, "XV-101", 0.0)
    run(model, 180)
    assert model.value("XS-101") == 1.0
    assert model.value("FI-102") < 200.0
    assert mean_over(model, "PI-104", 30) > catalog.tag("PI-104").normal_max


def test_writes_are_refused_as_a_device_would(catalog):
    model = PlantModel(catalog, seed=7)
    with pytest.raises(WriteRejected, match="not writable"):
        write(model, "TI-101", 350.0)
    with pytest.raises(OutOfRange, match="instrument range"):
        write(model, "TIC-101.SP", 700.0)
    with pytest.raises(OutOfRange, match="0 or 1"):
        write(model, "HS-101", 0.5)
    assert model.value("TIC-101.SP") == pytest.approx(350.0)


def test_an_excursion_ramps_in_holds_and_ramps_out():
    e = Excursion(index=0, delta=10.0, start_s=100.0, rise_s=10.0, hold_s=20.0, fall_s=10.0)
    assert [e.level(t) for t in (100.0, 105.0, 110.0, 125.0, 135.0, 140.0, 150.0)] == \
        [0.0, 5.0, 10.0, 10.0, 5.0, 0.0, 0.0]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_scenario_is_deterministic_from_the_seed(catalog, name):
    series = []
    for _ in range(2):
        model = PlantModel(catalog, seed=7)
        runner = ScenarioRunner()
        runner.start(name, model)
        for _ in range(300):
            runner.advance(model)
            model.step(1.0)
        series.append(model.values.copy())
    np.testing.assert_array_equal(series[0], series[1])


def test_an_unknown_scenario_names_the_known_ones(catalog):
    with pytest.raises(UnknownScenario, match="furnace-upset, pump-bearing-wear, tank-overfill, device-dropout"):
        ScenarioRunner().start("meltdown", PlantModel(catalog, seed=7))


def test_a_scenario_the_plant_cannot_run_says_what_is_missing(tmp_path):
    plant = tmp_path / "plant.toml"
    plant.write_text('[[units]]\nid = "U"\nname = "u"\ntype = "T"\ncapacity_bpd = 1\n[[tags]]\nid = "X-1"\n'
                     'name = "x"\nunit_id = "U"\nengineering_units = "-"\ntag_type = "ANALOG"\n'
                     'normal_min = 0\nnormal_max = 1\n', encoding="utf-8")
    model = PlantModel(Catalog.build(load_plant(plant)), seed=1)
    with pytest.raises(ValueError, match="furnace-upset' needs tag 'TI-101'"):
        ScenarioRunner().start("furnace-upset", model)
