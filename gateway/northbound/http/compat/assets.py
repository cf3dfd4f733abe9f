"""The seed's asset view: each piece of equipment with its own sensors' live values.

``GET /api/assets/overview``  ``[{equipment_id, equipment_name, equipment_type, status,
unit_id, unit_name, sensors: [{tag_id, tag_name, value, units, quality}]}]``

``status`` is the analytics health status in the seed's words (see
:data:`gateway.northbound.http.compat.common.HEALTH_TO_SEED`: NO_DATA shows as MAINTENANCE);
``health_status`` and ``health_score`` carry the analytics figures as they are. A sensor's
``value`` is null until it has been read or while its quality is bad. Values are rounded to
2 decimals and the health score to 1, as the original backend (:mod:`.rounding`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime

from aiohttp import web
from pydantic import BaseModel

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
from gateway.northbound.http.compat.rounding import ROUNDED, Percent, ProcessValue
from gateway.northbound.http.deps import deps_of
from gateway.northbound.http.openapi import Operation, add, respond
from gateway.northbound.http.response_cache import cached

TAG = "assets"


class Sensor(BaseModel):
    tag_id: str
    tag_name: str
    value: ProcessValue | None
    units: str
    quality: str
    timestamp: datetime | None


class Asset(BaseModel):
    equipment_id: str
    equipment_name: str
    equipment_type: str
    status: EquipmentStatus
    health_status: str | None
    health_score: Percent | None
    unit_id: str
    unit_name: str
    sensors: list[Sensor]


@cached(sources.catalog, sources.scans, sources.analytics_latest)
async def get_overview(request: web.Request) -> web.Response:
    """GET /api/assets/overview."""
    deps = deps_of(request)
    live = deps.pipeline.live
    latest = analytics_latest(request)
    health = by_key(latest.equipment, "equipment_id") if latest is not None else {}
    names = unit_names(deps)
    sensors: dict[str, list[Sensor]] = defaultdict(list)
    for tag in plant_tags(deps):
        if tag.equipment_id is None:
            continue
        i = deps.catalog.index[tag.id]
        quality = Quality(int(live.quality[i]))
        value = float(live.values[i])
        usable = quality >= Quality.DOUBTFUL and math.isfinite(value)
        sensors[tag.equipment_id].append(Sensor(
            tag_id=tag.id, tag_name=tag.name, value=value if usable else None,
            units=tag.engineering_units, quality=quality.name, timestamp=utc(float(live.source_ts[i]))))
    out = []
    for eq in deps.catalog.plant.equipment:
        row = health.get(eq.id, {})
        out.append(Asset(equipment_id=eq.id, equipment_name=eq.name, equipment_type=eq.type,
                         status=equipment_status(row.get("status")),
                         health_status=row.get("status"), health_score=finite(row.get("score")),
                         unit_id=eq.unit_id, unit_name=names.get(eq.unit_id, eq.unit_id),
                         sensors=sensors.get(eq.id, [])))
    return respond(out)


def setup(app: web.Application) -> None:
    add(app, Operation("GET", "/api/assets/overview", get_overview,
                       "Equipment with its sensors' live values", list[Asset], tag=TAG,
                       description=ROUNDED))
