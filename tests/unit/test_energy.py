"""Energy intensity (kWh/bbl) against hand computations from the same tag history."""

from pathlib import Path

import numpy as np
import pytest

from analytics.energy import (
    Action,
    EnergyStatus,
    analyze_energy,
    efficiency_score,
    energy_status,
    hourly_energy,
)
from analytics.health import EquipmentHealth, HealthStatus
from analytics.window import SampleCounts, TagSeries, Window
from drivers.quality import Quality
from plant.catalog import Catalog
from plant.load import load_plant

PLANT = load_plant(Path(__file__).parents[2] / "config" / "plant.toml")
CATALOG = Catalog.build(PLANT)
CDU = next(u for u in PLANT.units if u.id == "CDU-101")  # power JI-100, feed FI-102, target 42
HOUR = 3600.0


def constant(value: float, start: float = 0.0, end: float = HOUR, step: float = 10.0) -> TagSeries:
    ts = np.arange(start, end + step / 2, step)
    return TagSeries.good_only(ts, np.full(len(ts), value))


def cdu_window(power: TagSeries, feed: TagSeries, start: float = 0.0, end: float = HOUR) -> Window:
    return Window(start, end, {"JI-100": power, "FI-102": feed})


def test_kwh_per_bbl_equals_hand_computation():
    ts = np.arange(0.0, HOUR + 5, 10.0)
    power = TagSeries.good_only(ts, 17000.0 + 1000.0 * ts / HOUR)  # ramp 17000 → 18000 kW
    result = analyze_energy(cdu_window(power, constant(10000.0)), CDU, CATALOG)
    assert result.consumption_kwh == pytest.approx(17500.0)  # mean 17500 kW for 1 h
    assert result.feed_bbl == pytest.approx(10000.0 / 24)
    assert result.kwh_per_bbl == pytest.approx(17500.0 / (10000.0 / 24))
    assert result.power_coverage_pct == pytest.approx(100.0)


def test_efficiency_score_is_target_over_actual():
    result = analyze_energy(cdu_window(constant(18900.0), constant(10000.0)), CDU, CATALOG)
    assert result.kwh_per_bbl == pytest.approx(45.36)
    assert result.efficiency_score == pytest.approx(100.0 * 42.0 / 45.36)
    assert result.status == EnergyStatus.GOOD


def test_efficiency_score_is_capped_at_100_below_target():
    assert efficiency_score(30.0, 42.0) == 100.0


@pytest.mark.parametrize(("score", "status"), [
    (100.0, EnergyStatus.EXCELLENT), (95.0, EnergyStatus.EXCELLENT),
    (94.999, EnergyStatus.GOOD), (85.0, EnergyStatus.GOOD),
    (84.999, EnergyStatus.NEEDS_IMPROVEMENT), (70.0, EnergyStatus.NEEDS_IMPROVEMENT),
    (69.999, EnergyStatus.POOR), (0.0, EnergyStatus.POOR), (None, EnergyStatus.NO_DATA),
])
def test_status_bands_include_their_lower_edge(score, status):
    assert energy_status(score) == status


def test_savings_are_the_excess_over_target_per_window_and_per_year():
    result = analyze_energy(cdu_window(constant(18900.0), constant(10000.0)), CDU, CATALOG)
    excess = 45.36 - 42.0
    assert result.savings_kwh == pytest.approx(excess * 10000.0 / 24)
    assert result.savings_kwh_per_year == pytest.approx(excess * 10000.0 * 365)


def test_no_savings_at_or_below_target():
    result = analyze_energy(cdu_window(constant(17000.0), constant(10000.0)), CDU, CATALOG)
    assert result.savings_kwh == 0.0
    assert result.recommendations[0].action == Action.NOMINAL


def test_bad_quality_samples_are_excluded():
    power = constant(18000.0)
    quality = power.quality.copy()
    values = power.values.copy()
    values[100] = 1e6
    quality[100] = Quality.BAD
    values[200] = 5e5
    quality[200] = Quality.DOUBTFUL
    spiked = TagSeries(power.ts, values, quality)
    clean = analyze_energy(cdu_window(power, constant(10000.0)), CDU, CATALOG)
    result = analyze_energy(cdu_window(spiked, constant(10000.0)), CDU, CATALOG)
    assert result.consumption_kwh == pytest.approx(clean.consumption_kwh)
    assert result.samples.doubtful == 1 and result.samples.bad == 1


def test_gap_longer_than_limit_is_excluded_and_reported_as_coverage():
    ts = np.concatenate([np.arange(0.0, 1800.1, 10.0), np.arange(2700.0, HOUR + 5, 10.0)])
    power = TagSeries.good_only(ts, np.full(len(ts), 18000.0))
    result = analyze_energy(cdu_window(power, constant(10000.0)), CDU, CATALOG, max_gap_s=60.0)
    assert result.power_coverage_pct == pytest.approx(75.0)
    assert result.consumption_kwh == pytest.approx(18000.0 * 0.75)
    # The intensity comes from mean rates, so the meter gap does not bias it.
    assert result.kwh_per_bbl == pytest.approx(18000.0 / (10000.0 / 24))


def test_hourly_windows_add_up_to_the_whole_period():
    ts = np.arange(0.0, 3 * HOUR + 5, 7.0)
    power = TagSeries.good_only(ts, 17000.0 + 500.0 * np.sin(ts / 900.0))
    window = cdu_window(power, constant(10000.0, end=3 * HOUR), end=3 * HOUR)
    hours = hourly_energy(window, CDU, CATALOG, now=3 * HOUR, hours=3)
    whole = analyze_energy(window, CDU, CATALOG)
    assert [h.start for h in hours] == [0.0, HOUR, 2 * HOUR]
    assert sum(h.consumption_kwh for h in hours) == pytest.approx(whole.consumption_kwh)


def test_hourly_ends_with_the_partial_current_hour():
    window = cdu_window(constant(18000.0, end=4 * HOUR), constant(10000.0, end=4 * HOUR),
                        end=4 * HOUR)
    hours = hourly_energy(window, CDU, CATALOG, now=3 * HOUR + 900.0, hours=2)
    assert [(h.start, h.end) for h in hours] == [
        (HOUR, 2 * HOUR), (2 * HOUR, 3 * HOUR), (3 * HOUR, 3 * HOUR + 900.0)]
    assert hours[-1].consumption_kwh == pytest.approx(18000.0 / 4)


def test_low_throughput_recommends_raising_feed():
    result = analyze_energy(cdu_window(constant(12000.0), constant(5000.0)), CDU, CATALOG)
    assert result.feed_pct_of_design == pytest.approx(100.0 * 5000.0 / 10200.0)
    assert Action.RAISE_THROUGHPUT in [r.action for r in result.recommendations]


def test_high_consumption_at_design_feed_names_the_worst_equipment():
    health = {
        "PUMP-101": EquipmentHealth("PUMP-101", "CDU-101", 60.0, HealthStatus.MAINTENANCE, None,
                                    None, True, (), SampleCounts()),
        "TOWER-101": EquipmentHealth("TOWER-101", "CDU-101", 95.0, HealthStatus.OPERATIONAL, None,
                                     None, None, (), SampleCounts()),
    }
    result = analyze_energy(cdu_window(constant(21000.0), constant(10000.0)), CDU, CATALOG,
                            equipment_health=health)
    actions = [r.action for r in result.recommendations]
    assert Action.IMPROVE_EQUIPMENT_EFFICIENCY in actions
    inspect = next(r for r in result.recommendations if r.action == Action.INSPECT_EQUIPMENT)
    assert inspect.equipment_id == "PUMP-101"


def test_power_drawn_with_no_feed_is_poor():
    result = analyze_energy(cdu_window(constant(5000.0), constant(0.0)), CDU, CATALOG)
    assert result.kwh_per_bbl is None
    assert result.status == EnergyStatus.POOR


def test_no_samples_is_no_data():
    result = analyze_energy(Window(0.0, HOUR, {}), CDU, CATALOG)
    assert result.status == EnergyStatus.NO_DATA
    assert result.consumption_kwh == 0.0 and result.power_coverage_pct == 0.0


def test_scans_gathered_from_batches_give_the_same_analysis():
    from drivers.batch import Batch

    index = CATALOG.indices(["JI-100", "FI-102"])
    batches = [
        Batch.build("g", "dev", t, t, index, np.array([18900.0, 10000.0]),
                    np.full(2, Quality.GOOD, dtype=np.uint8), np.zeros(2, dtype=np.uint8))
        for t in np.arange(0.0, HOUR + 5, 10.0)[::-1]  # arrival order does not matter
    ]
    window = Window.from_batches(batches, CATALOG, 0.0, HOUR)
    result = analyze_energy(window, CDU, CATALOG)
    assert result.kwh_per_bbl == pytest.approx(45.36)
    assert result.consumption_kwh == pytest.approx(18900.0)
