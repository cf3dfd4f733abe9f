"""The plant model: determinism, normal operation, and the couplings physics imposes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plant.catalog import Catalog
from plant.load import load_plant
from simulator.model import PlantModel
from simulator.tanks import HIGH_TURNAROUND_PCT, LITRES_PER_BBL, LOW_TURNAROUND_PCT

PLANT = Path(__file__).resolve().parents[2] / "config" / "plant.toml"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.build(load_plant(PLANT), synthetic_tags=20)


def series(catalog: Catalog, seed: int, steps: int = 50, dt: float = 1.0) -> np.ndarray:
    model = PlantModel(catalog, seed=seed)
    rows = []
    for _ in range(steps):
        model.step(dt)
        rows.append(model.values.copy())
    return np.array(rows)


def test_same_seed_gives_the_same_series(catalog):
    assert np.array_equal(series(catalog, 5), series(catalog, 5))


def test_different_seeds_give_different_series(catalog):
    assert not np.allclose(series(catalog, 5), series(catalog, 6))


def test_values_are_indexed_like_the_catalog_including_synthetic_tags(catalog):
    model = PlantModel(catalog, seed=1)
    model.step(0.1)
    assert model.values.shape == (len(catalog),)
    assert model.status.shape == (len(catalog),)
    assert model.values.dtype == np.float64


def test_normal_operation_stays_inside_normal_ranges_over_an_hour(catalog):
    model = PlantModel(catalog, seed=11)
    excursions = 0
    samples = 0
    for _ in range(3600):
        model.step(1.0)
        v = model.values
        excursions += int(((v < catalog.normal_min) | (v > catalog.normal_max)).sum())
        samples += len(v)
    assert not model.equipment_failed.any()
    assert excursions <= samples * 1e-5


def test_synthetic_tags_stay_between_20_and_80(catalog):
    data = series(catalog, 3, steps=600, dt=10.0)
    synthetic = data[:, len(catalog.plant.tags):]
    assert synthetic.min() > 20.0 and synthetic.max() < 80.0


def test_unit_power_is_kwh_per_bbl_times_feed_over_24_below_the_benchmark(catalog):
    model = PlantModel(catalog, seed=2)
    for _ in range(600):
        model.step(1.0)
    for unit in catalog.plant.units:
        kwh_per_bbl = model.value(unit.power_tag) * 24.0 / model.value(unit.feed_tag)
        assert 0.9 * unit.energy_benchmark_kwh_bbl < kwh_per_bbl < unit.energy_benchmark_kwh_bbl


def test_power_follows_feed_when_the_feed_pump_fails(catalog):
    model = PlantModel(catalog, seed=2)
    model.step(1.0)
    before = model.value("JI-100")
    model.degrade("PUMP-101", 0.0)
    for _ in range(300):
        model.step(1.0)
    assert model.value("FI-102") < 500.0
    assert model.value("JI-100") < 0.2 * before


def test_product_flows_sum_to_98_to_100_percent_of_feed(catalog):
    model = PlantModel(catalog, seed=4)
    ratios = []
    for _ in range(900):
        model.step(1.0)
        for unit in catalog.plant.units:
            products = sum(model.value(t) for t in unit.product_tags)
            ratios.append(products / model.value(unit.feed_tag))
    mean = float(np.mean(ratios))
    assert 0.975 <= mean <= 1.0


def test_tank_level_integrates_its_net_flow(catalog):
    model = PlantModel(catalog, seed=8)
    tanks = model.tanks
    level_before = tanks.level_pct.copy()
    direction = tanks.direction.copy()
    expected = level_before.copy()
    for _ in range(60):
        net = tanks.net_flow_bpd(model._pv)
        model.step(1.0)
        expected += 100.0 * net / 86400.0 / tanks.capacity_bbl
    unturned = tanks.direction == direction
    assert np.allclose(tanks.level_pct[unturned], expected[unturned], atol=1e-6)
    assert LITRES_PER_BBL > 0


def test_tanks_fill_and_drain_between_the_turnaround_levels(catalog):
    model = PlantModel(catalog, seed=9)
    levels = []
    for _ in range(24 * 60):
        model.step(60.0)
        levels.append(model.tanks.level_pct.copy())
    levels = np.array(levels)
    assert levels.min() > LOW_TURNAROUND_PCT - 2.0
    assert levels.max() < HIGH_TURNAROUND_PCT + 2.0
    assert (levels.max(axis=0) - levels.min(axis=0) > 50.0).all()


def test_status_tags_are_one_while_running_and_zero_while_failed(catalog):
    model = PlantModel(catalog, seed=1)
    model.step(1.0)
    assert model.value("XS-201") == 1.0
    model.degrade("COMP-201", 0.0)
    model.step(1.0)
    assert model.value("XS-201") == 0.0


def test_valve_position_follows_demand_with_a_lag(catalog):
    model = PlantModel(catalog, seed=1)
    gaps = []
    for _ in range(600):
        model.step(1.0)
        gaps.append(abs(model.value("ZI-401") - model.value("ZC-401")))
    assert float(np.mean(gaps)) < 3.0


def _valve_errors(model: PlantModel, steps: int, dt: float) -> np.ndarray:
    errors = []
    for _ in range(steps):
        model.step(dt)
        errors.append(model.value("ZI-401") - model.value("ZC-401"))
    return np.array(errors)


def test_a_healthy_valve_tracks_its_controller_output_to_the_transmitter_noise(catalog):
    # The demand (controller output) carries the process disturbance and no instrument noise;
    # the valve follows it, so position minus demand is the stem transmitter's noise (0.25 %)
    # plus the healthy stiction band (0.2 %).
    errors = _valve_errors(PlantModel(catalog, seed=4), 2000, 60.0)
    assert float(np.std(errors)) < 0.4
    assert float(np.max(np.abs(errors))) < 1.5


def test_a_sticking_valve_lags_its_moving_demand_by_up_to_its_band(catalog):
    model = PlantModel(catalog, seed=4)
    model.degrade("VALVE-401", 0.5)  # band 0.2 + 8 * 0.5 = 4.2 % of stroke
    model.degradation.growth[model.equipment_index("VALVE-401")] = 0.0  # hold the damage
    errors = _valve_errors(model, 2000, 60.0)
    assert float(np.std(errors)) > 1.0
    assert float(np.max(np.abs(errors))) < 4.2 + 1.5


def test_furnace_outlet_follows_the_feed_after_a_trip(catalog):
    model = PlantModel(catalog, seed=1)
    model.degrade("FURNACE-100", 0.0)
    for _ in range(900):
        model.step(1.0)
    assert model.value("TI-101") < 300.0
