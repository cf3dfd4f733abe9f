"""Equipment health: ISO 10816-3 zones, limits, running status, PdM, data quality."""

from pathlib import Path

import numpy as np
import pytest

from analytics.health import (
    ComponentKind,
    HealthStatus,
    MachineClass,
    VibrationZone,
    equipment_health,
    limit_score,
    plant_health,
    status_for,
    vibration_score,
    vibration_zone,
)
from analytics.window import TagSeries, Window
from drivers.quality import Quality
from plant.catalog import Catalog
from plant.load import load_plant

PLANT = load_plant(Path(__file__).parents[2] / "config" / "plant.toml")
CATALOG = Catalog.build(PLANT)
EQUIPMENT = {e.id: e for e in PLANT.equipment}
PUMP = EQUIPMENT["PUMP-101"]  # VI-101, TI-107 bearing, II-999 current, PI-104, XS-101
MINUTES = 10
END = MINUTES * 60.0


def constant(value: float) -> TagSeries:
    ts = np.arange(0.0, END, 10.0)
    return TagSeries.good_only(ts, np.full(len(ts), value))


def pump_window(**overrides: float | TagSeries) -> Window:
    """PUMP-101 running in zone A with every tag mid-range, plus overrides by tag id."""
    values: dict[str, float | TagSeries] = {
        "VI-101": 1.5, "TI-107": 60.0, "II-999": 50.0, "PI-104": 165.0, "XS-101": 1.0}
    values.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return Window(0.0, END, {k: v if isinstance(v, TagSeries) else constant(v)
                             for k, v in values.items()})


@pytest.mark.parametrize(("velocity", "zone"), [
    (0.0, VibrationZone.A), (1.4, VibrationZone.A), (1.41, VibrationZone.B),
    (2.8, VibrationZone.B), (2.81, VibrationZone.C), (4.5, VibrationZone.C),
    (4.51, VibrationZone.D),
])
def test_iso_10816_group2_rigid_zone_edges(velocity, zone):
    assert vibration_zone(velocity, MachineClass.GROUP2_RIGID) == zone


@pytest.mark.parametrize(("velocity", "zone"), [
    (2.3, VibrationZone.A), (2.31, VibrationZone.B), (4.5, VibrationZone.B),
    (4.51, VibrationZone.C), (7.1, VibrationZone.C), (7.11, VibrationZone.D),
])
def test_default_class_is_group1_rigid_matching_the_catalog_alarm_limits(velocity, zone):
    assert vibration_zone(velocity) == zone


def test_vibration_score_is_75_at_b_c_and_50_at_c_d():
    assert vibration_score(2.3) == 100.0
    assert vibration_score(4.5) == 75.0
    assert vibration_score(7.1) == 50.0
    assert vibration_score(14.2) == 0.0


@pytest.mark.parametrize(("score", "status"), [
    (75.0, HealthStatus.OPERATIONAL), (74.99, HealthStatus.MAINTENANCE),
    (50.0, HealthStatus.MAINTENANCE), (49.99, HealthStatus.FAULT), (None, HealthStatus.NO_DATA),
])
def test_status_edges(score, status):
    assert status_for(score) == status


def test_healthy_running_pump_is_operational_in_zone_a():
    result = equipment_health(pump_window(), PUMP, CATALOG)
    assert result.score == 100.0
    assert result.status == HealthStatus.OPERATIONAL
    assert result.zone == VibrationZone.A and result.running is True


def test_vibration_in_zone_c_calls_for_maintenance_and_names_the_tag():
    result = equipment_health(pump_window(VI_101=5.8), PUMP, CATALOG)
    assert result.zone == VibrationZone.C
    assert result.status == HealthStatus.MAINTENANCE
    assert result.worst.tag_id == "VI-101" and result.worst.kind == ComponentKind.VIBRATION
    assert result.score == pytest.approx(75.0 - 25.0 * (5.8 - 4.5) / (7.1 - 4.5))


def test_current_deviation_is_scored_against_the_normal_span():
    # II-999 normal 45–55 A: 1.5 A above the range is 15 % of the span.
    assert limit_score(56.5, CATALOG.tag("II-999")) == pytest.approx(75.0)
    result = equipment_health(pump_window(II_999=56.5), PUMP, CATALOG)
    assert result.worst.tag_id == "II-999" and result.score == pytest.approx(75.0)


def test_hot_bearing_is_a_fault():
    result = equipment_health(pump_window(TI_107=95.0), PUMP, CATALOG)
    assert result.status == HealthStatus.FAULT
    assert result.worst.tag_id == "TI-107"
    assert result.worst.kind == ComponentKind.BEARING_TEMPERATURE


def test_cool_bearing_is_not_penalised():
    assert equipment_health(pump_window(TI_107=30.0), PUMP, CATALOG).score == 100.0


def test_stopped_pump_ignores_vibration_and_current():
    result = equipment_health(pump_window(XS_101=0.0, VI_101=9.0, II_999=0.0), PUMP, CATALOG)
    assert result.running is False
    assert result.score == 100.0
    assert [c.tag_id for c in result.contributions] == ["TI-107"]


def test_failure_probability_can_set_the_score():
    result = equipment_health(pump_window(), PUMP, CATALOG, failure_probability_pct=70.0)
    assert result.score == pytest.approx(30.0)
    assert result.worst.kind == ComponentKind.PDM and result.worst.tag_id is None
    assert result.status == HealthStatus.FAULT


def test_bad_quality_vibration_samples_are_excluded():
    good = constant(1.5)
    values = good.values.copy()
    quality = good.quality.copy()
    values[::4] = 40.0
    quality[::4] = Quality.BAD
    result = equipment_health(pump_window(VI_101=TagSeries(good.ts, values, quality)), PUMP, CATALOG)
    assert result.zone == VibrationZone.A and result.score == 100.0
    assert result.samples.bad == int(np.count_nonzero(quality == Quality.BAD))


def test_valve_health_follows_position_error():
    valve = EQUIPMENT["VALVE-401"]
    window = Window(0.0, END, {"ZI-401": constant(55.0), "ZC-401": constant(50.0)})
    result = equipment_health(window, valve, CATALOG)
    assert result.worst.kind == ComponentKind.POSITION_ERROR
    assert result.worst.value == pytest.approx(5.0)
    assert result.score == pytest.approx(75.0)


def test_equipment_without_data_has_no_score():
    result = equipment_health(Window(0.0, END, {}), PUMP, CATALOG)
    assert result.score is None and result.status == HealthStatus.NO_DATA


def test_plant_health_covers_every_equipment():
    assert set(plant_health(pump_window(), CATALOG)) == set(EQUIPMENT)
