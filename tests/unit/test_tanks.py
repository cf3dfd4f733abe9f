"""Tank level, volume, robust trend and time to full/empty."""

from pathlib import Path

import numpy as np
import pytest

from analytics.tanks import TankStatus, TankTrend, level_status, tank_state, tank_states
from analytics.window import TagSeries, Window
from drivers.quality import Quality
from plant.load import load_plant

PLANT = load_plant(Path(__file__).parents[2] / "config" / "plant.toml")
TK101 = next(t for t in PLANT.tanks if t.id == "TK-101")  # 80000 L, LI-1101, low 15 %, high 90 %
HOUR = 3600.0


def noisy_level(start_pct: float, rate_pct_per_h: float, noise_pct: float, seed: int,
                hours: float = 2.0, step: float = 10.0, spikes: int = 0) -> TagSeries:
    rng = np.random.default_rng(seed)
    ts = np.arange(0.0, hours * HOUR, step)
    values = start_pct + rate_pct_per_h * ts / HOUR + rng.normal(0.0, noise_pct, len(ts))
    if spikes:
        where = rng.choice(len(ts), spikes, replace=False)
        values[where] += rng.choice([-15.0, 15.0], spikes)
    return TagSeries.good_only(ts, values)


def state(series: TagSeries, hours: float = 2.0):
    return tank_state(Window(0.0, hours * HOUR, {"LI-1101": series}), TK101)


def test_noisy_filling_tank_is_filling_at_its_true_rate():
    result = state(noisy_level(40.0, 2.0, 0.3, seed=1, spikes=20))
    assert result.trend == TankTrend.FILLING
    assert result.rate_pct_per_h == pytest.approx(2.0, abs=0.1)
    assert result.rate_l_per_h == pytest.approx(80000 * result.rate_pct_per_h / 100)
    assert result.hours_to_full == pytest.approx((100 - result.level_pct) / result.rate_pct_per_h)
    assert result.hours_to_empty is None


def test_noisy_draining_tank_is_draining_with_time_to_empty():
    result = state(noisy_level(60.0, -3.0, 0.3, seed=2, spikes=20))
    assert result.trend == TankTrend.DRAINING
    assert result.rate_pct_per_h == pytest.approx(-3.0, abs=0.1)
    assert result.hours_to_empty == pytest.approx(result.level_pct / 3.0, rel=0.05)
    assert result.hours_to_full is None


def test_noisy_flat_tank_is_stable_with_no_times():
    result = state(noisy_level(50.0, 0.0, 0.5, seed=3, spikes=20))
    assert result.trend == TankTrend.STABLE
    assert result.hours_to_full is None and result.hours_to_empty is None


def test_one_noisy_difference_does_not_make_a_trend():
    series = noisy_level(50.0, 0.0, 0.2, seed=4)
    values = series.values.copy()
    values[-1] += 5.0  # the last two samples differ by 5 %: a naive difference says FILLING
    assert state(TagSeries.good_only(series.ts, values)).trend == TankTrend.STABLE


def test_slope_within_the_noise_of_a_short_window_is_stable():
    # 1 %/h over 10 minutes is 0.17 %, far below 3 % noise: not distinguishable from flat.
    result = state(noisy_level(50.0, 1.0, 3.0, seed=5, hours=1 / 6, step=30.0), hours=1 / 6)
    assert result.trend == TankTrend.STABLE


def test_slow_drift_below_the_rate_floor_is_stable():
    result = state(noisy_level(50.0, 0.2, 0.0, seed=6))
    assert result.trend == TankTrend.STABLE


def test_volume_is_capacity_times_level():
    result = state(TagSeries.good_only([0.0, 60.0, 120.0], [25.0, 25.0, 25.0]))
    assert result.level_pct == 25.0
    assert result.volume_l == pytest.approx(20000.0)


def test_level_is_the_last_good_sample():
    ts = np.array([0.0, 60.0, 120.0, 180.0])
    values = np.array([40.0, 41.0, 42.0, 99.0])
    quality = np.array([Quality.GOOD, Quality.GOOD, Quality.GOOD, Quality.BAD], dtype=np.uint8)
    result = state(TagSeries(ts, values, quality))
    assert result.level_pct == 42.0 and result.level_ts == 120.0
    assert result.samples.bad == 1


@pytest.mark.parametrize(("level", "status"), [
    (15.0, TankStatus.LOW), (15.01, TankStatus.NORMAL), (89.99, TankStatus.NORMAL),
    (90.0, TankStatus.HIGH), (None, TankStatus.NO_DATA),
])
def test_status_edges_use_the_tanks_limits(level, status):
    assert level_status(level, TK101) == status


def test_tank_without_data_is_stable_and_no_data():
    result = tank_state(Window(0.0, HOUR, {}), TK101)
    assert result.status == TankStatus.NO_DATA
    assert result.trend == TankTrend.STABLE and result.volume_l is None


def test_every_plant_tank_is_reported():
    assert [s.tank_id for s in tank_states(Window(0.0, HOUR, {}), PLANT)] == [
        t.id for t in PLANT.tanks]
