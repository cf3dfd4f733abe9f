"""Mass and energy balance of a unit: feed vs products."""

from pathlib import Path

import numpy as np
import pytest

from analytics.balance import plant_balance, unit_balance
from analytics.window import TagSeries, Window
from drivers.quality import Quality
from plant.catalog import Catalog
from plant.load import load_plant

PLANT = load_plant(Path(__file__).parents[2] / "config" / "plant.toml")
CATALOG = Catalog.build(PLANT)
CDU = next(u for u in PLANT.units if u.id == "CDU-101")  # feed FI-102, products FI-110/111/112
DAY = 86400.0


def constant(value: float, end: float = DAY, step: float = 30.0) -> TagSeries:
    ts = np.arange(0.0, end + step / 2, step)
    return TagSeries.good_only(ts, np.full(len(ts), value))


def cdu_window(**overrides: TagSeries) -> Window:
    series = {"FI-102": constant(10000.0), "FI-110": constant(2500.0), "FI-111": constant(3500.0),
              "FI-112": constant(3900.0), "JI-100": constant(17500.0)}
    series.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return Window(0.0, DAY, series)


def test_closure_is_products_over_feed():
    result = unit_balance(cdu_window(), CDU)
    assert result.feed_bbl == pytest.approx(10000.0)
    assert result.products_bbl == pytest.approx(9900.0)
    assert result.closure_pct == pytest.approx(99.0)
    assert result.imbalance_bbl == pytest.approx(100.0)


def test_energy_balance_gives_kwh_and_kwh_per_bbl():
    result = unit_balance(cdu_window(), CDU)
    assert result.energy_kwh == pytest.approx(17500.0 * 24)
    assert result.kwh_per_bbl == pytest.approx(17500.0 * 24 / 10000.0)


def test_product_meter_gap_does_not_look_like_a_loss():
    series = constant(3500.0)
    keep = (series.ts < DAY / 4) | (series.ts > DAY / 2)  # a 6 h gap on FI-111
    result = unit_balance(cdu_window(FI_111=TagSeries.good_only(series.ts[keep], series.values[keep])), CDU)
    assert result.products[1].coverage_pct == pytest.approx(75.0, abs=0.1)
    assert result.closure_pct == pytest.approx(99.0)


def test_bad_quality_flow_samples_are_excluded():
    feed = constant(10000.0)
    quality = feed.quality.copy()
    quality[1::3] = Quality.BAD  # the samples at both window edges stay good
    values = np.where(quality == Quality.BAD, 0.0, feed.values)
    result = unit_balance(cdu_window(FI_102=TagSeries(feed.ts, values, quality)), CDU)
    assert result.feed_bbl == pytest.approx(10000.0)
    assert result.samples.bad == int(np.count_nonzero(quality[feed.ts < DAY] == Quality.BAD))


def test_unmeasured_product_leaves_closure_unknown():
    window = cdu_window()
    series = {k: v for k, v in window.items() if k != "FI-112"}
    result = unit_balance(Window(0.0, DAY, series), CDU)
    assert result.closure_pct is None and result.imbalance_bbl is None


def test_plant_balance_covers_units_with_a_feed_tag():
    assert set(plant_balance(cdu_window(), CATALOG)) == {u.id for u in PLANT.units if u.feed_tag}
