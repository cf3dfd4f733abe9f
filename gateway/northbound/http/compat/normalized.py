"""The seed's "normalized database" views, answered from the catalog, the live cache, the
embedded store and the alarm engine.

``GET /api/normalized/stats``                     counts (see :class:`NormalizedStats`)
``GET /api/normalized/units``                     units with their live and KPI status
``GET /api/normalized/tags``                      the plant's tags
``GET /api/normalized/equipment``                 equipment with its health status
``GET /api/normalized/process-data/enriched``     newest samples first, ``limit`` (1..1000)

Definitions: a unit is *active* (``status`` ACTIVE) while at least one of its tags has a good
live value; ``unit_status`` is its KPI status (OPTIMAL/WARNING/CRITICAL/NO_DATA).
``total_process_records`` are the values held in the embedded store, ``process_records_today``
those scanned since the plant day began (analytics time zone, UTC without analytics).
``total_alerts`` are alarm activations in the last 24 h; ``active_alerts`` the standing alarms
an operator sees (active, or returned but unacknowledged). ``operational_equipment`` is null
without analytics. Process data covers plant tags (synthetic benchmark tags have no unit);
its ``quality`` is the integer code of the report's data dictionary (192 good, 128 doubtful,
64 bad; Anexo A, ``process_data.quality``) with the word in ``quality_text``, and its
``value`` is rounded to 2 decimals as the original backend stored it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
from aiohttp import web
from pydantic import BaseModel, Field

from analytics.alarm_types import AlarmState
from drivers.quality import Quality
from gateway.northbound.http import response_cache as sources
from gateway.northbound.http.compat.common import (
    EquipmentStatus,
    analytics_latest,
    by_key,
    equipment_status,
    finite,
    plant_tags,
    unit_names,
    utc,
)
from gateway.northbound.http.compat.rounding import ROUNDED, ProcessValue
from gateway.northbound.http.deps import ApiDeps, deps_of
from gateway.northbound.http.openapi import Operation, QueryModel, add, query_of, respond
from gateway.northbound.http.response_cache import cached
from gateway.services.alarms.service import AlarmService

TAG = "normalized"
DAY_S = 86400.0
MAX_RECORDS = 1000
# Values scanned "today" include source timestamps slightly ahead of the gateway clock.
FUTURE_MARGIN_S = 60.0
ANNUNCIATED = (AlarmState.UNACK, AlarmState.ACKED, AlarmState.RTN_UNACK)


class NormalizedStats(BaseModel):
    total_units: int
    active_units: int
    total_tags: int
    total_equipment: int
    operational_equipment: int | None
    total_process_records: int
    process_records_today: int
    total_alerts: int
    active_alerts: int
    database_normalized: bool
    last_updated: datetime


class UnitRow(BaseModel):
    unit_id: str
    name: str
    type: str
    description: str
    capacity: float
    status: str
    unit_status: str


class TagRow(BaseModel):
    tag_id: str
    tag_name: str
    unit_id: str | None
    unit_name: str | None
    engineering_units: str
    min_val: float
    max_val: float
    description: str
    tag_type: str
    is_critical: bool


class EquipmentRow(BaseModel):
    equipment_id: str
    equipment_name: str
    equipment_type: str
    unit_id: str
    status: EquipmentStatus
    manufacturer: str
    installation_date: date | None


class ProcessRecord(BaseModel):
    timestamp: datetime
    value: ProcessValue | None
    quality: int = Field(description="192 good, 128 doubtful, 64 bad (the report's data "
                                     "dictionary, process_data.quality)")
    quality_text: str = Field(description="the quality code's word: GOOD, DOUBTFUL or BAD")
    unit_id: str | None
    unit_name: str | None
    tag_id: str
    tag_name: str
    engineering_units: str


class RecordsQuery(QueryModel):
    limit: int = Field(default=50, ge=1, le=MAX_RECORDS, description="records returned")


def _active_units(deps: ApiDeps) -> set[str]:
    live = deps.pipeline.live
    good = live.quality == Quality.GOOD
    return {t.unit_id for t in plant_tags(deps) if t.unit_id and good[deps.catalog.index[t.id]]}


def _day_start(request: web.Request, now: float) -> float:
    analytics = deps_of(request).analytics
    zone = analytics.zone if analytics is not None else ZoneInfo("UTC")
    local = datetime.fromtimestamp(now, zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


async def _activations_last_day(alarms: AlarmService | None) -> int:
    return 0 if alarms is None else int((await alarms.kpis(DAY_S))["activations"])


@cached(sources.catalog, sources.scans, sources.alarms, sources.analytics_latest,
        sources.clock_second)
async def get_stats(request: web.Request) -> web.Response:
    deps = deps_of(request)
    now = time.time()
    alarms = deps.alarms
    latest = analytics_latest(request)
    operational = None
    if latest is not None and latest.equipment:
        operational = sum(1 for r in latest.equipment
                          if equipment_status(r.get("status")) is EquipmentStatus.OPERATIONAL)
    # Asked together: the alarm journal's read runs beside the embedded store's two.
    stats, today, total_alerts = await asyncio.gather(
        deps.store.stats(),
        deps.store.count_values(_day_start(request, now), now + FUTURE_MARGIN_S),
        _activations_last_day(alarms))
    active_alerts = 0 if alarms is None else sum(1 for a in alarms.active()
                                                 if a.state in ANNUNCIATED)
    return respond(NormalizedStats(
        total_units=len(deps.catalog.plant.units), active_units=len(_active_units(deps)),
        total_tags=len(plant_tags(deps)), total_equipment=len(deps.catalog.plant.equipment),
        operational_equipment=operational, total_process_records=int(stats["values"]),
        process_records_today=int(today), total_alerts=total_alerts,
        active_alerts=active_alerts, database_normalized=True,
        last_updated=datetime.now(UTC)))


@cached(sources.catalog, sources.scans, sources.analytics_latest)
async def get_units(request: web.Request) -> web.Response:
    deps = deps_of(request)
    latest = analytics_latest(request)
    kpis = by_key(latest.kpis, "unit_id") if latest is not None else {}
    active = _active_units(deps)
    return respond([UnitRow(unit_id=u.id, name=u.name, type=u.type, description=u.description,
                            capacity=u.capacity_bpd,
                            status="ACTIVE" if u.id in active else "INACTIVE",
                            unit_status=kpis.get(u.id, {}).get("status") or "NO_DATA")
                    for u in deps.catalog.plant.units])


@cached(sources.catalog)
async def get_tags(request: web.Request) -> web.Response:
    deps = deps_of(request)
    names = unit_names(deps)
    return respond([TagRow(tag_id=t.id, tag_name=t.name, unit_id=t.unit_id,
                           unit_name=names.get(t.unit_id or ""),
                           engineering_units=t.engineering_units, min_val=t.normal_min,
                           max_val=t.normal_max, description=t.description or "",
                           tag_type=str(t.tag_type.value), is_critical=bool(t.is_critical))
                    for t in plant_tags(deps)])


@cached(sources.catalog, sources.analytics_latest)
async def get_equipment(request: web.Request) -> web.Response:
    deps = deps_of(request)
    latest = analytics_latest(request)
    health = by_key(latest.equipment, "equipment_id") if latest is not None else {}
    return respond([EquipmentRow(equipment_id=e.id, equipment_name=e.name, equipment_type=e.type,
                                 unit_id=e.unit_id,
                                 status=equipment_status(health.get(e.id, {}).get("status")),
                                 manufacturer=e.manufacturer, installation_date=e.installation_date)
                    for e in deps.catalog.plant.equipment])


async def recent_samples(deps: ApiDeps, limit: int
                         ) -> list[tuple[float, float, int, int]]:
    """The newest ``limit`` samples of the plant tags as (ts, value, quality, tag index)."""
    tags = np.array([deps.catalog.index[t.id] for t in plant_tags(deps)], dtype=np.int32)
    recent = await deps.store.recent(limit, tags)
    if recent is None:
        return []
    return list(zip(recent.source_ts.tolist(), recent.values.tolist(), recent.quality.tolist(),
                    recent.tag_index.tolist(), strict=True))


@cached(sources.catalog, sources.scans)
async def get_process_data(request: web.Request) -> web.Response:
    deps = deps_of(request)
    query: RecordsQuery = query_of(request)
    names = unit_names(deps)
    out = []
    for ts, value, quality, i in await recent_samples(deps, query.limit):
        tag = deps.catalog.tags[i]
        out.append(ProcessRecord(
            timestamp=utc(ts) or datetime.fromtimestamp(0, UTC),
            value=finite(value) if quality >= Quality.DOUBTFUL else None,
            quality=int(quality), quality_text=Quality(quality).name, unit_id=tag.unit_id,
            unit_name=names.get(tag.unit_id or ""), tag_id=tag.id, tag_name=tag.name,
            engineering_units=tag.engineering_units))
    return respond(out)


def setup(app: web.Application) -> None:
    add(app, Operation("GET", "/api/normalized/stats", get_stats, "Counts of the plant's data",
                       NormalizedStats, tag=TAG))
    add(app, Operation("GET", "/api/normalized/units", get_units, "Process units",
                       list[UnitRow], tag=TAG))
    add(app, Operation("GET", "/api/normalized/tags", get_tags, "Process tags", list[TagRow],
                       tag=TAG))
    add(app, Operation("GET", "/api/normalized/equipment", get_equipment, "Equipment",
                       list[EquipmentRow], tag=TAG))
    add(app, Operation("GET", "/api/normalized/process-data/enriched", get_process_data,
                       "Newest process samples with their tag and unit", list[ProcessRecord],
                       query=RecordsQuery, tag=TAG,
                       description=f"{ROUNDED} quality is the report's integer code (192/128/64), "
                                   "quality_text its word."))

