"""The seed's energy analysis: each unit's newest hourly energy row from the analytics store.

``GET /api/energy/analysis``  ``[{id, unit_id, unit_name, consumption_kwh, kwh_per_bbl,
benchmark, target, efficiency_score, status, savings_potential, recommendation,
analysis_date}]``

The row is the current clock hour (``complete`` false while it runs) or, early in an hour
with no data yet, the previous one. ``consumption_kwh`` is that hour's energy; ``benchmark``
and ``target`` are kWh/bbl; ``savings_potential`` is kWh per day at the hour's rate above
target (the analytics' yearly savings / 365); ``id`` is ``<unit_id>@<hour start, epoch s>``.
Units without power or feed tags have no row.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel

from analytics.energy import DAYS_PER_YEAR
from gateway.northbound.http import response_cache as sources
from gateway.northbound.http.compat.common import finite, running, unit_names, utc
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
    consumption_kwh: float | None
    kwh_per_bbl: float | None
    benchmark: float | None
    target: float | None
    efficiency_score: float | None
    status: str
    savings_potential: float | None
    recommendation: str | None
    analysis_date: datetime | None
    complete: bool


@cached(sources.catalog, sources.analytics_rows)
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
            recommendation=row.get("recommendation"), analysis_date=utc(row.get("hour_start")),
            complete=bool(row.get("complete"))))
    return respond(out)


def setup(app: web.Application) -> None:
    add(app, Operation("GET", "/api/energy/analysis", get_analysis,
                       "Newest hourly energy analysis per unit", list[EnergyAnalysis], tag=TAG,
                       errors={503: "analytics is not running"}))
