"""What the seed's routes share: timestamps, the services they read, the plant's names, and the
mapping of the gateway's words onto the seed contract's.

The seed routes (the modules of this package) answer the report's Annex B shapes from the
gateway's own data: the live cache, the embedded store, the analytics results, the alarm
engine and the inventory store. None of them invents a figure; one that cannot be computed
is null.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from aiohttp import web

from analytics.health import HealthStatus
from gateway.northbound.http.deps import ApiDeps, deps_of
from gateway.northbound.http.openapi import InvalidInput
from plant.catalog import SYNTHETIC_PREFIX
from plant.schema import Tag

S = TypeVar("S")


class EquipmentStatus(StrEnum):
    """The seed's three equipment words."""

    OPERATIONAL = "OPERATIONAL"
    MAINTENANCE = "MAINTENANCE"
    FAULT = "FAULT"


# Analytics says NO_DATA when none of the equipment's condition tags delivered a usable sample
# in the health window. The seed has no word for "unknown"; an equipment whose instruments are
# silent needs a technician's visit, so it is shown as MAINTENANCE (never as OPERATIONAL, which
# would claim a health nobody measured, nor FAULT, which is kept for a measured condition).
HEALTH_TO_SEED = {
    HealthStatus.OPERATIONAL.value: EquipmentStatus.OPERATIONAL,
    HealthStatus.MAINTENANCE.value: EquipmentStatus.MAINTENANCE,
    HealthStatus.FAULT.value: EquipmentStatus.FAULT,
    HealthStatus.NO_DATA.value: EquipmentStatus.MAINTENANCE,
}


def equipment_status(health_status: str | None) -> EquipmentStatus:
    """The seed word for an analytics health status (None: no run yet, as NO_DATA)."""
    return HEALTH_TO_SEED.get(health_status or HealthStatus.NO_DATA.value,
                              EquipmentStatus.MAINTENANCE)


def utc(ts: float | None) -> datetime | None:
    """Epoch seconds as an aware UTC datetime (None for never/NaN)."""
    if ts is None or not math.isfinite(ts) or ts <= 0:
        return None
    return datetime.fromtimestamp(ts, UTC)


def finite(x: Any) -> float | None:
    """A JSON-safe number: NaN/inf/None become None."""
    if x is None or isinstance(x, bool):
        return None
    value = float(x)
    return value if math.isfinite(value) else None


def running(service: S | None, name: str) -> S:
    """``service`` (a field of ``ApiDeps``), or a 503 saying the ``name`` service is not
    running (it is switched off in the configuration)."""
    if service is None:
        raise InvalidInput(503, f"the {name} service is not running")
    return service


def analytics_latest(request: web.Request) -> Any:
    """The analytics service's latest results, or None when analytics is off."""
    analytics = deps_of(request).analytics
    return None if analytics is None else analytics.latest


def plant_tags(deps: ApiDeps) -> list[Tag]:
    """The plant's own tags (synthetic benchmark tags belong to no unit)."""
    return [t for t in deps.catalog.tags if not t.id.startswith(SYNTHETIC_PREFIX)]


def unit_names(deps: ApiDeps) -> dict[str, str]:
    return {u.id: u.name for u in deps.catalog.plant.units}


def by_key(rows: list[dict], key: str) -> dict[str, dict]:
    return {r[key]: r for r in rows}
