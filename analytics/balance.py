"""Mass and energy balance of a unit over a period (feed vs products), for the daily report.

Barrels are trapezoid integrals of the flow tags (bpd) over the period. Closure is computed
from time-weighted mean rates (products / feed × 100), so a gap in one meter does not
masquerade as a loss; with full coverage it equals product barrels / feed barrels × 100.
"""

from __future__ import annotations

from dataclasses import dataclass

from analytics.window import (
    DEFAULT_MAX_GAP_S,
    SECONDS_PER_DAY,
    SECONDS_PER_HOUR,
    SampleCounts,
    Window,
    integrate,
)
from plant.catalog import Catalog
from plant.schema import Unit


@dataclass(frozen=True, slots=True)
class ProductFlow:
    """Barrels of one product stream over the period and its meter's coverage."""

    tag_id: str
    bbl: float
    mean_bpd: float | None
    coverage_pct: float


@dataclass(frozen=True, slots=True)
class UnitBalance:
    """Feed vs products (bbl) and energy (kWh) of one unit over ``[start, end)`` (epoch s).

    ``closure_pct`` = products / feed × 100 (None without feed or with an unmeasured product);
    ``imbalance_bbl`` = feed − products, positive when barrels are unaccounted for.
    """

    unit_id: str
    start: float
    end: float
    feed_bbl: float
    feed_coverage_pct: float
    products_bbl: float
    products: tuple[ProductFlow, ...]
    closure_pct: float | None
    imbalance_bbl: float | None
    energy_kwh: float
    energy_coverage_pct: float
    kwh_per_bbl: float | None
    samples: SampleCounts


def unit_balance(window: Window, unit: Unit, *, max_gap_s: float = DEFAULT_MAX_GAP_S) -> UnitBalance:
    """Mass balance (feed tag vs product tags) and energy balance (power tag) of one unit."""
    start, end = window.start, window.end
    feed = integrate(window.around(unit.feed_tag), start, end, max_gap_s)
    power = integrate(window.around(unit.power_tag), start, end, max_gap_s)
    products = []
    for tag_id in unit.product_tags:
        flow = integrate(window.around(tag_id), start, end, max_gap_s)
        products.append(ProductFlow(tag_id, flow.area / SECONDS_PER_DAY, flow.mean, flow.coverage_pct))
    feed_bbl = feed.area / SECONDS_PER_DAY
    product_rates = [p.mean_bpd for p in products]
    closure = imbalance = None
    if feed.mean and products and all(r is not None for r in product_rates):
        closure = 100.0 * sum(r for r in product_rates if r is not None) / feed.mean
        imbalance = feed_bbl * (1.0 - closure / 100.0)
    kwh_per_bbl = power.mean / (feed.mean / 24.0) if power.mean is not None and feed.mean else None
    return UnitBalance(
        unit_id=unit.id, start=start, end=end, feed_bbl=feed_bbl,
        feed_coverage_pct=feed.coverage_pct, products_bbl=sum(p.bbl for p in products),
        products=tuple(products), closure_pct=closure, imbalance_bbl=imbalance,
        energy_kwh=power.area / SECONDS_PER_HOUR, energy_coverage_pct=power.coverage_pct,
        kwh_per_bbl=kwh_per_bbl,
        samples=window.counts([unit.feed_tag, unit.power_tag, *unit.product_tags]))


def plant_balance(window: Window, catalog: Catalog, *, max_gap_s: float = DEFAULT_MAX_GAP_S
                  ) -> dict[str, UnitBalance]:
    """:func:`unit_balance` for every unit with a feed tag, by ``unit_id``."""
    return {u.id: unit_balance(window, u, max_gap_s=max_gap_s)
            for u in catalog.plant.units if u.feed_tag}
