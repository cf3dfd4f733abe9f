"""GET /health: is the gateway doing its job, per device, with counters.

:func:`gateway_status` is the same verdict in a few figures, for other northbound interfaces
(the OPC-UA server's ``Gateway`` folder): the daemon hands them a callable over it, so they
need not import the HTTP layer.
"""

from __future__ import annotations

import dataclasses
import time
from enum import StrEnum

from aiohttp import web

from gateway.northbound.http.deps import ApiDeps, deps_of
from gateway.northbound.http.openapi import respond

# A device whose last good scan is older than this many of its scan intervals is not current.
STALE_INTERVALS = 5


class Health(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


def _as_dict(stats) -> dict:
    if stats is None:
        return {}
    if hasattr(stats, "as_dict"):  # drivers give JSON-ready snapshots of their counters
        stats = stats.as_dict()
    elif dataclasses.is_dataclass(stats):
        stats = dataclasses.asdict(stats)
    return {k: v for k, v in dict(stats).items() if isinstance(v, (int, float, str, bool, dict, type(None)))}


def device_report(deps: ApiDeps, now: float) -> list[dict]:
    """Each configured device: connected, current, scan counters and its driver's stats."""
    pipeline = deps.pipeline
    out = []
    for device in deps.settings.devices:
        driver = pipeline.drivers[device.id]
        dstats = pipeline.device_stats[device.id]
        groups = [p for p in pipeline.plans.values() if p.group.device == device.id]
        interval = min((p.group.interval_ms for p in groups), default=1000) / 1000.0
        current = (dstats.last_good_scan is not None
                   and now - dstats.last_good_scan <= STALE_INTERVALS * max(interval, 1.0))
        out.append({
            "id": device.id,
            "protocol": device.protocol,
            "state": "connected" if driver.connected else "disconnected",
            "current": current,
            "last_good_scan": dstats.last_good_scan,
            "last_scan": dstats.last_scan,
            "scans": sum(pipeline.group_stats[p.group.id].scans for p in groups),
            "good_scans": dstats.good_scans,
            "failed_scans": dstats.failed_scans,
            "overruns": sum(pipeline.group_stats[p.group.id].overruns for p in groups),
            "skipped_scans": sum(pipeline.group_stats[p.group.id].skipped for p in groups),
            "values_per_s": round(dstats.values_per_s(now), 1),
            "tags": int(sum(len(p.tags) for p in groups)),
            "driver": _as_dict(getattr(driver, "stats", None)),
        })
    return out


def group_report(deps: ApiDeps) -> list[dict]:
    """Each scan group's counters, poll and subscribe alike, from ``Pipeline.group_stats``:
    the rows ``/metrics`` exports too, so the two never disagree."""
    pipeline = deps.pipeline
    out = []
    for group_id, plan in pipeline.plans.items():
        stats = pipeline.group_stats.get(group_id)
        if stats is None:
            continue
        out.append({
            "id": group_id,
            "device": plan.group.device,
            "mode": plan.group.mode,
            "tags": len(plan.tags),
            "scans": stats.scans,
            "overruns": stats.overruns,
            "skipped_scans": stats.skipped,
            "values": stats.values,
            "bad_values": stats.bad_values,
            "last_scan_duration_s": stats.last_scan_duration_s,
        })
    return out


def overall(devices: list[dict], deps: ApiDeps) -> tuple[Health, list[str]]:
    """The verdict over ``devices`` (:func:`device_report`), the store and the services'
    health checks, with the reasons for anything short of healthy."""
    reasons = []
    if deps.pipeline.last_store_error:
        return Health.UNHEALTHY, [f"embedded store: {deps.pipeline.last_store_error}"]
    down = [d["id"] for d in devices if d["state"] != "connected" or not d["current"]]
    if devices and len(down) == len(devices):
        return Health.UNHEALTHY, [f"no device is delivering data: {', '.join(down)}"]
    if down:
        reasons.append(f"devices not delivering data: {', '.join(down)}")
    for name, check in deps.health_checks.items():
        problem = check()
        if problem:
            reasons.append(f"{name}: {problem}")
    return (Health.DEGRADED if reasons else Health.HEALTHY), reasons


def gateway_status(deps: ApiDeps, now: float) -> dict:
    """The verdict and the main counters at ``now`` (epoch seconds): ``status`` (a
    :class:`Health` word), ``reasons``, ``devices_connected``, ``devices``,
    ``accepted_batches``, ``accepted_values``, ``uptime_s``."""
    devices = device_report(deps, now)
    status, reasons = overall(devices, deps)
    pipeline = deps.pipeline
    return {
        "status": status.value, "reasons": reasons,
        "devices_connected": sum(1 for d in devices if d["state"] == "connected"),
        "devices": len(devices), "accepted_batches": pipeline.accepted_batches,
        "accepted_values": pipeline.accepted_values, "uptime_s": now - deps.started_at,
    }


async def get_health(request: web.Request) -> web.Response:
    deps = deps_of(request)
    now = time.time()
    devices = device_report(deps, now)
    status, reasons = overall(devices, deps)
    p = deps.pipeline
    body = {
        "status": status.value,
        "reasons": reasons,
        "gateway_id": deps.settings.gateway_id,
        "site": deps.settings.site,
        "timestamp": now,
        "uptime_s": round(now - deps.started_at, 1),
        "devices": devices,
        "scan_groups": group_report(deps),
        "counters": {
            "accepted_batches": p.accepted_batches,
            "accepted_values": p.accepted_values,
            "queue_depth": p.queue.qsize(),
            "queue_full_waits": p.queue_full_waits,
            "store_errors": p.store_errors,
        },
    }
    for name, report in deps.health_sections.items():
        body[name] = report()
    return respond(body, status=503 if status is Health.UNHEALTHY else 200)


def setup(app: web.Application) -> None:
    app.router.add_get("/health", get_health)
