"""The seed's dashboard routes: the root, KPIs per unit, the 24 h trend, OEE and stability.

``GET /``                      ``{message, status, timestamp, docs, health}``
``GET /api/kpis``              one row per unit: efficiency, throughput, quality, status
``GET /api/dashboard/history`` hourly plant efficiency and production over the last 24 h
``GET /api/stats/advanced``    plant OEE, stability and the daily loss in USD

Every figure is the analytics service's (``docs/analytics.md``): ``efficiency`` is the energy
efficiency score (0–100, actual vs benchmark kWh/bbl), ``throughput`` and ``production`` the
feed in bbl/day, ``quality`` the quality score (0–100). A unit without results yet has nulls
and status NO_DATA. Figures are rounded as the original backend's (:mod:`.rounding`):
percentages and scores to 1 decimal, barrels and dollars to whole numbers, the stability
variance to 4 decimals; ``/api/analytics/kpis`` has them in full precision.

Daily loss (``financial.daily_loss_usd``) = lost throughput × margin + excess energy × price:
lost throughput is the sum over units of (design feed − measured feed) in bbl/day (never
negative; design feed is the upper normal limit of the unit's feed tag, the same reference as
the OEE performance), priced at ``analytics.margin_usd_per_bbl``; excess energy is the units' consumption
above their kWh/bbl target, per day, priced at ``analytics.energy_price_usd_per_kwh``. Null
while either price is not configured or either quantity is not known.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel

from analytics.energy import design_feed_bpd
from analytics.kpis import StabilityTrend
from gateway.northbound.http import response_cache as sources
from gateway.northbound.http.compat.common import by_key, finite, running, utc
from gateway.northbound.http.compat.language import LANGUAGE_NOTE, localized
from gateway.northbound.http.compat.rounding import ROUNDED, Barrels, Kwh, Percent, Usd, Variance
from gateway.northbound.http.compat.sentences import root_message
from gateway.northbound.http.deps import deps_of
from gateway.northbound.http.openapi import DOCS_PATH, Operation, add, respond
from gateway.northbound.http.response_cache import cached
from gateway.services.analytics.run import PLANT_ID

HOUR_S = 3600.0
HISTORY_HOURS = 24
NO_DATA = "NO_DATA"
TAG = "dashboard"


class RootInfo(BaseModel):
    """What ``GET /`` tells a JSON client."""

    message: str
    status: str
    timestamp: datetime
    docs: str
    health: str


class UnitKpi(BaseModel):
    """A unit's latest KPIs (percentages 0–100, throughput bbl/day)."""

    unit_id: str
    efficiency: Percent | None
    throughput: Barrels | None
    quality: Percent | None
    status: str
    last_updated: datetime | None


class HistoryPoint(BaseModel):
    """One hour of the plant trend: ``time_label`` is ``HH:00`` in the plant's time zone."""

    time_label: str
    timestamp: datetime
    efficiency: Percent | None
    production: Barrels | None


# The seed contract spells the stability trend in lower case; analytics (and the stored KPI
# rows) in upper case. Mapped word by word, so a new analytics word fails here, not in a client.
SeedTrend = Literal["improving", "stable", "deteriorating"]
TREND_TO_SEED: dict[StabilityTrend, SeedTrend] = {
    StabilityTrend.IMPROVING: "improving",
    StabilityTrend.STABLE: "stable",
    StabilityTrend.DETERIORATING: "deteriorating",
}


class OeeStats(BaseModel):
    score: Percent | None
    quality: Percent | None
    availability: Percent | None
    performance: Percent | None


class StabilityStats(BaseModel):
    index: Percent | None
    trend: SeedTrend | None
    variance: Variance | None


class FinancialStats(BaseModel):
    """``daily_loss_usd`` and the two quantities it prices (see the module docstring)."""

    daily_loss_usd: Usd | None
    lost_throughput_bpd: Barrels | None
    excess_energy_kwh_per_day: Kwh | None


class AdvancedStats(BaseModel):
    oee: OeeStats
    stability: StabilityStats
    financial: FinancialStats
    last_updated: datetime | None


@localized
async def get_root(request: web.Request) -> web.Response:
    """GET /: the gateway is online; where its docs and health are."""
    deps = deps_of(request)
    return respond(RootInfo(message=root_message(deps.settings.gateway_id),
                            status="online", timestamp=datetime.now(UTC), docs=DOCS_PATH,
                            health="/health"))


@cached(sources.catalog, sources.analytics_latest)
async def get_kpis(request: web.Request) -> web.Response:
    """GET /api/kpis: each unit's latest KPIs, in catalog order."""
    deps = deps_of(request)
    analytics = running(deps.analytics, "analytics")
    rows = by_key(analytics.latest.kpis, "unit_id")
    out = []
    for unit in deps.catalog.plant.units:
        row = rows.get(unit.id, {})
        out.append(UnitKpi(unit_id=unit.id, efficiency=finite(row.get("energy_efficiency")),
                           throughput=finite(row.get("throughput_bpd")),
                           quality=finite(row.get("quality_score")),
                           status=row.get("status") or NO_DATA, last_updated=utc(row.get("ts"))))
    return respond(out)


def hourly(rows: list[dict], now: float, zone: ZoneInfo) -> list[HistoryPoint]:
    """Mean plant efficiency and production per clock hour, the last 24 hours, oldest first;
    an hour without stored KPIs has nulls."""
    current = (now // HOUR_S) * HOUR_S
    starts = [current - h * HOUR_S for h in range(HISTORY_HOURS - 1, -1, -1)]
    sums: dict[float, list[list[float]]] = {s: [[], []] for s in starts}
    for row in rows:
        bucket = sums.get((row["ts"] // HOUR_S) * HOUR_S)
        if bucket is None:
            continue
        for i, name in enumerate(("energy_efficiency", "throughput_bpd")):
            value = finite(row.get(name))
            if value is not None:
                bucket[i].append(value)
    out = []
    for start in starts:
        eff, prod = sums[start]
        label = datetime.fromtimestamp(start, zone).strftime("%H:00")
        out.append(HistoryPoint(time_label=label, timestamp=utc(start),
                                efficiency=sum(eff) / len(eff) if eff else None,
                                production=sum(prod) / len(prod) if prod else None))
    return out


@cached(sources.analytics_rows)
async def get_history(request: web.Request) -> web.Response:
    """GET /api/dashboard/history: the plant's hourly trend from the stored KPI rows."""
    analytics = running(deps_of(request).analytics, "analytics")
    now = analytics.clock()
    since = (now // HOUR_S) * HOUR_S - (HISTORY_HOURS - 1) * HOUR_S
    rows = await analytics.results.kpi_history(since, PLANT_ID)
    return respond(hourly(rows, now, analytics.zone))


def lost_throughput_bpd(unit_rows: dict[str, dict], capacities: dict[str, float]) -> float | None:
    """Design feed minus measured feed, summed over units (None if a unit is unknown)."""
    total = 0.0
    for unit_id, capacity in capacities.items():
        throughput = finite(unit_rows.get(unit_id, {}).get("throughput_bpd"))
        if throughput is None:
            return None
        total += max(0.0, capacity - throughput)
    return total


def daily_loss_usd(lost_bpd: float | None, excess_kwh: float | None,
                   margin: float | None, price: float | None) -> float | None:
    if None in (lost_bpd, excess_kwh, margin, price):
        return None
    return lost_bpd * margin + excess_kwh * price


@cached(sources.catalog, sources.analytics_latest)
async def get_advanced(request: web.Request) -> web.Response:
    """GET /api/stats/advanced: plant OEE, stability and daily loss."""
    deps = deps_of(request)
    analytics = running(deps.analytics, "analytics")
    rows = by_key(analytics.latest.kpis, "unit_id")
    plant = rows.get(PLANT_ID, {})
    trend = plant.get("stability_trend")
    design = {u.id: design_feed_bpd(u, deps.catalog) for u in deps.catalog.plant.units}
    lost = lost_throughput_bpd(rows, {k: v for k, v in design.items() if v is not None})
    excess = finite(plant.get("excess_kwh_per_day"))
    settings = analytics.settings
    return respond(AdvancedStats(
        oee=OeeStats(score=finite(plant.get("oee_pct")),
                     quality=finite(plant.get("oee_quality_pct")),
                     availability=finite(plant.get("availability_pct")),
                     performance=finite(plant.get("performance_pct"))),
        stability=StabilityStats(index=finite(plant.get("stability_index")),
                                 trend=TREND_TO_SEED[StabilityTrend(trend)] if trend else None,
                                 variance=finite(plant.get("stability_variance"))),
        financial=FinancialStats(
            daily_loss_usd=daily_loss_usd(lost, excess, settings.margin_usd_per_bbl,
                                          settings.energy_price_usd_per_kwh),
            lost_throughput_bpd=lost, excess_energy_kwh_per_day=excess),
        last_updated=utc(plant.get("ts"))))


def setup(app: web.Application) -> None:
    add(app, Operation("GET", "/", get_root, "The gateway is online (JSON)", RootInfo, tag=TAG,
                       description=f"The message is a sentence: {LANGUAGE_NOTE}"))
    add(app, Operation("GET", "/api/kpis", get_kpis, "Latest KPIs of each unit", list[UnitKpi],
                       tag=TAG, errors={503: "analytics is not running"}, description=ROUNDED))
    add(app, Operation("GET", "/api/dashboard/history", get_history,
                       "Hourly plant efficiency and production, last 24 h", list[HistoryPoint],
                       tag=TAG, errors={503: "analytics is not running"}, description=ROUNDED))
    add(app, Operation("GET", "/api/stats/advanced", get_advanced,
                       "Plant OEE, stability and daily loss", AdvancedStats, tag=TAG,
                       errors={503: "analytics is not running"}, description=ROUNDED))

