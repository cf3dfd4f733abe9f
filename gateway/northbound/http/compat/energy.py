"""The seed's energy analysis: each unit's newest hourly energy row from the analytics store.

``GET /api/energy/analysis``  ``[{id, unit_id, unit_name, consumption_kwh, kwh_per_bbl,
benchmark, target, efficiency_score, status, savings_potential, recommendation,
analysis_date}]``

The row is the current clock hour (``complete`` false while it runs) or, early in an hour
with no data yet, the previous one. ``consumption_kwh`` is that hour's energy; ``benchmark``
and ``target`` are kWh/bbl; ``savings_potential`` is kWh per day at the hour's rate above
target (the analytics' yearly savings / 365); ``id`` is ``<unit_id>@<hour start, epoch s>``.
Units without power or feed tags have no row. Figures are rounded as the original backend's
(:mod:`.rounding`: kWh whole, kWh/bbl 2 decimals, the score 1); ``recommendation`` is in the
request's language (:mod:`.language`); ``/api/analytics/energy`` has the rows as stored.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from analytics.energy import DAYS_PER_YEAR
from gateway.northbound.http import response_cache as sources
from gateway.northbound.http.compat.common import finite, running, unit_names, utc
from gateway.northbound.http.compat.language import LANGUAGE_NOTE, language_source, localized
from gateway.northbound.http.compat.rounding import ROUNDED, Kwh, KwhPerBbl, Percent
from gateway.northbound.http.compat.sentences import ENERGY
from gateway.northbound.http.deps import deps_of
from gateway.northbound.http.openapi import Operation, add, respond
from gateway.northbound.http.response_cache import cached

TAG = "energy"
HOUR_S = 3600.0
LOOKBACK_HOURS = 2


class EnergyAnalysis(BaseModel):
    id: str
    unit_id: str
    unit_name: str
    consumption_kwh: Kwh | None
    kwh_per_bbl: KwhPerBbl | None
    benchmark: KwhPerBbl | None
    target: KwhPerBbl | None
    efficiency_score: Percent | None
    status: str
    savings_potential: Kwh | None
    recommendation: str | None = Field(description="what to do about the gap to target: "
                                                   "Spanish, or English on Accept-Language en")
    analysis_date: datetime | None
    complete: bool


@localized
@cached(sources.catalog, sources.analytics_rows, language_source)
async def get_analysis(request: web.Request) -> web.Response:
    """GET /api/energy/analysis."""
    deps = deps_of(request)
    analytics = running(deps.analytics, "analytics")
    since = (analytics.clock() // HOUR_S) * HOUR_S - (LOOKBACK_HOURS - 1) * HOUR_S
    newest: dict[str, dict] = {}
    for row in await analytics.results.energy(since):
        newest[row["unit_id"]] = row  # oldest first: the last one wins
    names = unit_names(deps)
    out = []
    for unit in deps.catalog.plant.units:
        row = newest.get(unit.id)
        if row is None:
            continue
        per_year = finite(row.get("savings_kwh_per_year"))
        out.append(EnergyAnalysis(
            id=f"{unit.id}@{int(row['hour_start'])}", unit_id=unit.id,
            unit_name=names[unit.id], consumption_kwh=finite(row.get("consumption_kwh")),
            kwh_per_bbl=finite(row.get("kwh_per_bbl")),
            benchmark=finite(row.get("benchmark_kwh_bbl")),
            target=finite(row.get("target_kwh_bbl")),
            efficiency_score=finite(row.get("efficiency_score")), status=row.get("status") or "",
            savings_potential=per_year / DAYS_PER_YEAR if per_year is not None else None,
            recommendation=ENERGY.say(row.get("recommendation")), analysis_date=utc(row.get("hour_start")),
            complete=bool(row.get("complete"))))
    return respond(out)


def setup(app: web.Application) -> None:
    add(app, Operation("GET", "/api/energy/analysis", get_analysis,
                       "Newest hourly energy analysis per unit", list[EnergyAnalysis], tag=TAG,
                       errors={503: "analytics is not running"},
                       description=f"{ROUNDED} The recommendation is a sentence: {LANGUAGE_NOTE}"))
