"""Southbound devices and their state.

``GET /api/devices``              every configured device: connection, freshness, counters
``GET /api/devices/{device_id}``  one device (404 for an unknown id)

The same figures as the ``devices`` section of ``/health`` (``gateway.northbound.http.health``). Counters
move with every accepted scan and freshness and rates with the clock, so an answer is kept
for at most one second (``gateway.northbound.http.response_cache``).
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from gateway.northbound.http import response_cache as sources
from gateway.northbound.http.deps import deps_of
from gateway.northbound.http.health import device_report
from gateway.northbound.http.openapi import InvalidInput, Operation, add, respond
from gateway.northbound.http.response_cache import cached

TAG = "gateway"


class DeviceState(BaseModel):
    id: str
    protocol: str
    state: str
    current: bool
    last_good_scan: float | None
    last_scan: float | None
    scans: int
    good_scans: int
    failed_scans: int
    overruns: int
    skipped_scans: int
    values_per_s: float
    tags: int
    driver: dict[str, Any]


@cached(sources.catalog, sources.scans, sources.clock_second)
async def get_devices(request: web.Request) -> web.Response:
    return respond([DeviceState.model_validate(d)
                    for d in device_report(deps_of(request), time.time())])


@cached(sources.catalog, sources.scans, sources.clock_second)
async def get_device(request: web.Request) -> web.Response:
    device_id = request.match_info["device_id"]
    for d in device_report(deps_of(request), time.time()):
        if d["id"] == device_id:
            return respond(DeviceState.model_validate(d))
    raise InvalidInput(404, f"no device '{device_id}'")


def setup(app: web.Application) -> None:
    add(app, Operation("GET", "/api/devices", get_devices, "Devices and their state",
                       list[DeviceState], tag=TAG))
    add(app, Operation("GET", "/api/devices/{device_id}", get_device, "One device's state",
                       DeviceState, tag=TAG, errors={404: "no device with this id"}))
