"""Analytics results over HTTP (gateway-native JSON; the seed's routes map onto these).

GET /api/analytics/kpis                              latest KPIs per unit and the plant
GET /api/analytics/kpis/history?unit_id=&hours=24    stored KPI rows, oldest first
GET /api/analytics/energy?hours=24&unit_id=          hourly energy rows, oldest first
GET /api/analytics/tanks                             latest tank states
GET /api/analytics/equipment                         latest equipment health
GET /api/analytics/balance                           mass and energy balance of the plant day
"""

from __future__ import annotations

import math

from aiohttp import web

from gateway.northbound.http.deps import deps_of
from gateway.northbound.http.errors import error
from gateway.services.analytics.run import PLANT_ID
from gateway.services.analytics.service import AnalyticsService

DEFAULT_HOURS = 24.0
MAX_HOURS = 24.0 * 366
HOUR_S = 3600.0


class BadQuery(Exception):
    """A query parameter is invalid; the message names it."""


def _hours(request: web.Request) -> float:
    raw = request.query.get("hours")
    if raw is None or raw == "":
        return DEFAULT_HOURS
    try:
        hours = float(raw)
    except ValueError:
        raise BadQuery(f"hours must be a number, got '{raw}'") from None
    if not math.isfinite(hours) or not 0 < hours <= MAX_HOURS:
        raise BadQuery(f"hours must be greater than 0 and at most {MAX_HOURS:g}, got '{raw}'")
    return hours


def _unit_id(request: web.Request, allow_plant: bool) -> str | None:
    unit_id = request.query.get("unit_id") or None
    if unit_id is None:
        return None
    known = {u.id for u in deps_of(request).catalog.plant.units}
    if allow_plant:
        known.add(PLANT_ID)
    if unit_id not in known:
        raise BadQuery(f"unit_id '{unit_id}' is not a unit of the plant "
                       f"(one of {', '.join(sorted(known))})")
    return unit_id


def _unavailable() -> web.Response:
    return error(503, "the analytics service is not running")


def _guarded(handler):
    """Answer 503 without the service and 400 on a bad query parameter."""
    async def guarded(request: web.Request) -> web.Response:
        service = deps_of(request).analytics
        if service is None or service.results is None:
            return _unavailable()
        try:
            return await handler(request, service)
        except BadQuery as exc:
            return error(400, str(exc))
    guarded.__name__ = handler.__name__
    return guarded


@_guarded
async def get_kpis(request: web.Request, service: AnalyticsService) -> web.Response:
    latest = service.latest
    units = [r for r in latest.kpis if r["unit_id"] != PLANT_ID]
    plant = next((r for r in latest.kpis if r["unit_id"] == PLANT_ID), None)
    return web.json_response({"ts": latest.ts, "units": units, "plant": plant})


@_guarded
async def get_kpi_history(request: web.Request, service: AnalyticsService) -> web.Response:
    unit_id = _unit_id(request, allow_plant=True)
    hours = _hours(request)
    rows = await service.results.kpi_history(service.clock() - hours * HOUR_S, unit_id)
    return web.json_response({"unit_id": unit_id, "hours": hours, "rows": rows})


@_guarded
async def get_energy(request: web.Request, service: AnalyticsService) -> web.Response:
    unit_id = _unit_id(request, allow_plant=False)
    hours = _hours(request)
    since = (service.clock() // HOUR_S) * HOUR_S - hours * HOUR_S
    rows = await service.results.energy(since, unit_id)
    return web.json_response({"unit_id": unit_id, "hours": hours, "rows": rows})


@_guarded
async def get_tanks(request: web.Request, service: AnalyticsService) -> web.Response:
    return web.json_response({"ts": service.latest.ts, "tanks": service.latest.tanks})


@_guarded
async def get_equipment(request: web.Request, service: AnalyticsService) -> web.Response:
    return web.json_response({"ts": service.latest.ts, "equipment": service.latest.equipment})


@_guarded
async def get_balance(request: web.Request, service: AnalyticsService) -> web.Response:
    return web.json_response({"ts": service.latest.ts, "units": service.latest.balance})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/analytics/kpis", get_kpis)
    app.router.add_get("/api/analytics/kpis/history", get_kpi_history)
    app.router.add_get("/api/analytics/energy", get_energy)
    app.router.add_get("/api/analytics/tanks", get_tanks)
    app.router.add_get("/api/analytics/equipment", get_equipment)
    app.router.add_get("/api/analytics/balance", get_balance)
