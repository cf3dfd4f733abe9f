"""KPIs and OEE of a unit and the plant, against hand computations."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from analytics.kpis import (
    Oee,
    StabilityTrend,
    UnitStatus,
    oee,
    plant_oee,
    stability,
    unit_kpis,
    unit_status,
)
from analytics.window import TagSeries, Window
from drivers.quality import Quality
from plant.catalog import Catalog
from plant.load import load_plant

PLANT = load_plant(Path(__file__).parents[2] / "config" / "plant.toml")
CATALOG = Catalog.build(PLANT)
UNITS = {u.id: u for u in PLANT.units}
CDU = UNITS["CDU-101"]  # feed FI-102 (design = normal_max 10200 bpd), pump status XS-101
HOUR = 3600.0
STEP = 60.0


def steps(*pieces: tuple[float, float], end: float) -> TagSeries:
    """A good series sampled every minute over [0, end]: (from_s, value) pieces in order."""
    ts = np.arange(0.0, end + STEP / 2, STEP)
    values = np.empty(len(ts))
    for start, value in pieces:
        values[ts >= start] = value
    return TagSeries.good_only(ts, values)


def cdu_window(end: float, **overrides: TagSeries) -> Window:
    """CDU-101 running smoothly at 90 % of design with every quality tag in range."""
    series = {
        "FI-102": steps((0, 9180.0), end=end),
        "XS-101": steps((0, 1.0), end=end),
        "TI-101": steps((0, 350.0), end=end),
        "PI-103": steps((0, 20.0), end=end),
        "TI-109": steps((0, 500.0), end=end),
    }
    series.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return Window(0.0, end, series)


def test_oee_factors_match_hand_computation():
    end = 10 * HOUR
    window = cdu_window(
        end,
        FI_102=steps((0, 9180.0), (8 * HOUR, 0.0), end=end),  # runs 8 of 10 h at 90 % of design
        TI_101=steps((0, 370.0), (2 * HOUR, 350.0), end=end),  # off spec the first 2 h
    )
    result = oee(window, CDU, CATALOG)
    assert result.availability_pct == pytest.approx(80.0)
    assert result.performance_pct == pytest.approx(90.0)
    assert result.quality_pct == pytest.approx(75.0)  # 6 of 8 running hours at constant feed
    assert result.oee_pct == pytest.approx(0.80 * 0.90 * 0.75 * 100)


def test_availability_counts_time_the_pump_is_stopped():
    end = 10 * HOUR
    window = cdu_window(end, XS_101=steps((0, 1.0), (4 * HOUR, 0.0), (5 * HOUR, 1.0), end=end))
    assert oee(window, CDU, CATALOG).availability_pct == pytest.approx(90.0)


def test_performance_is_capped_at_100():
    window = cdu_window(HOUR, FI_102=steps((0, 11000.0), end=HOUR))
    assert oee(window, CDU, CATALOG).performance_pct == 100.0


def test_quality_factor_weights_off_spec_time_by_feed():
    end = 2 * HOUR
    window = cdu_window(
        end,
        FI_102=steps((0, 3060.0), (HOUR, 9180.0), end=end),  # 1 h at 30 %, then 1 h at 90 %
        PI_103=steps((0, 30.0), (HOUR, 20.0), end=end),  # off spec during the low-feed hour
    )
    assert oee(window, CDU, CATALOG).quality_pct == pytest.approx(75.0)  # 9180 / (3060 + 9180)


def test_oee_has_no_factors_without_feed_data():
    result = oee(Window(0.0, HOUR, {}), CDU, CATALOG)
    assert result == Oee(None, None, None, None, 0.0, 0.0)


def test_plant_oee_is_weighted_by_design_capacity():
    base = unit_kpis(cdu_window(HOUR), CDU, CATALOG)
    cdu = dataclasses.replace(base, oee=Oee(90.0, 90.0, 90.0, 72.9, 1.0, 1.0))
    alk = dataclasses.replace(base, unit_id="ALK-400", oee=Oee(60.0, 60.0, 60.0, 21.6, 1.0, 1.0))
    result = plant_oee({"CDU-101": cdu, "ALK-400": alk}, CATALOG)
    # CDU-101 150000 bpd, ALK-400 50000 bpd
    assert result.oee_pct == pytest.approx((72.9 * 150000 + 21.6 * 50000) / 200000)
    assert result.availability_pct == pytest.approx((90.0 * 3 + 60.0) / 4)


def test_throughput_is_the_time_weighted_mean_of_good_feed():
    end = 2 * HOUR
    feed = steps((0, 9000.0), (HOUR, 10000.0), end=end)
    values = feed.values.copy()
    quality = feed.quality.copy()
    values[10::7] = 0.0
    quality[10::7] = Quality.BAD  # bad zeros must not drag the mean down
    window = cdu_window(end, FI_102=TagSeries(feed.ts, values, quality))
    result = unit_kpis(window, CDU, CATALOG)
    # Linear interpolation across the one-minute step between 9000 and 10000.
    assert result.throughput_bpd == pytest.approx((9000 * 3570 + 10000 * 3570 + 9500 * 60) / end)
    assert result.throughput_pct_of_design == pytest.approx(100 * result.throughput_bpd / 10200)


def test_quality_score_combines_good_data_share_and_time_in_range():
    alk = UNITS["ALK-400"]
    process_tags = [t for t in CATALOG.tags if t.unit_id == "ALK-400"]
    assert len(process_tags) == 8  # 7 measurements and the valve's manual loading HIC-401.SP
    series = {t.id: steps((0, (t.normal_min + t.normal_max) / 2), end=HOUR) for t in process_tags}
    series["AI-400"] = steps((0, 80.0), (HOUR / 2, 90.0), end=HOUR)  # out of range half the time
    ai = series["AI-400"]
    quality = ai.quality.copy()
    quality[-1] = Quality.DOUBTFUL  # the sample at the window end is outside [start, end)
    quality[5] = Quality.DOUBTFUL
    series["AI-400"] = TagSeries(ai.ts, ai.values, quality)
    result = unit_kpis(Window(0.0, HOUR, series), alk, CATALOG)
    assert result.good_data_pct == pytest.approx(100 * (8 * 60 - 1) / (8 * 60))
    # The doubtful sample at 300 s is missing data: the good one at 240 s holds for max_gap_s
    # (60 s) only, so the minute from 300 s to 360 s (out of range) is not counted at all.
    assert result.in_range_pct == pytest.approx(100 * (7 * HOUR + HOUR / 2) / (8 * HOUR - 60))
    assert result.quality_score == pytest.approx(result.good_data_pct * result.in_range_pct / 100)
    assert result.samples.doubtful == 1


def test_stability_is_100_for_a_steady_process():
    tag = CATALOG.tag("TI-101")
    window = Window(0.0, HOUR, {"TI-101": steps((0, 350.0), end=HOUR)})
    assert stability(window, [tag]).index == pytest.approx(100.0)


def test_stability_index_falls_with_std_relative_to_normal_span():
    tag = CATALOG.tag("TI-101")  # normal span 20 °C
    ts = np.arange(0.0, HOUR, STEP)
    values = np.where(np.arange(len(ts)) % 2 == 0, 345.0, 355.0)  # std 5 °C
    result = stability(Window(0.0, HOUR, {"TI-101": TagSeries.good_only(ts, values)}), [tag])
    assert result.index == pytest.approx(100 * (1 - 5 / 20))
    assert result.variance == pytest.approx((5 / 20) ** 2)


def test_stability_trend_deteriorates_when_the_second_half_is_noisier():
    tag = CATALOG.tag("TI-101")
    ts = np.arange(0.0, HOUR, STEP)
    swing = np.where(ts < HOUR / 2, 1.0, 6.0)
    values = 350.0 + swing * np.where(np.arange(len(ts)) % 2 == 0, 1.0, -1.0)
    result = stability(Window(0.0, HOUR, {"TI-101": TagSeries.good_only(ts, values)}), [tag])
    assert result.trend == StabilityTrend.DETERIORATING
    assert result.first_half_index > result.second_half_index


def test_stability_trend_is_stable_for_uniform_noise():
    tag = CATALOG.tag("TI-101")
    ts = np.arange(0.0, HOUR, STEP)
    values = 350.0 + np.where(np.arange(len(ts)) % 2 == 0, 2.0, -2.0)
    result = stability(Window(0.0, HOUR, {"TI-101": TagSeries.good_only(ts, values)}), [tag])
    assert result.trend == StabilityTrend.STABLE


@pytest.mark.parametrize(("efficiency", "quality", "status"), [
    (85.0, 95.0, UnitStatus.OPTIMAL),
    (84.9, 99.0, UnitStatus.WARNING),
    (99.0, 94.9, UnitStatus.WARNING),
    (70.0, 80.0, UnitStatus.WARNING),
    (69.9, 100.0, UnitStatus.CRITICAL),
    (100.0, 79.9, UnitStatus.CRITICAL),
    (None, 96.0, UnitStatus.OPTIMAL),
    (None, None, UnitStatus.NO_DATA),
])
def test_unit_status_edges(efficiency, quality, status):
    assert unit_status(efficiency, quality) == status


def test_maintenance_score_is_the_mean_health_of_the_units_equipment():
    result = unit_kpis(cdu_window(HOUR), CDU, CATALOG)
    # With only these tags, PUMP-101 has nothing but its status; FURNACE-100 judges TI-101 and
    # TI-109 (both in range) and TOWER-101 judges PI-103 (in range).
    assert result.maintenance_score == pytest.approx(100.0)
