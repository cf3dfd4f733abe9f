"""What route handlers depend on: the running gateway's parts, each under its own typed name.

The daemon (:mod:`gateway.daemon`) builds one :class:`ApiDeps` and hands it to
:func:`gateway.northbound.http.app.create_app`; a handler reaches it with ``deps_of(request)``.
A service that is switched off in the configuration is ``None`` here and its routes answer 503.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.settings import GatewaySettings
from plant.catalog import Catalog

if TYPE_CHECKING:
    from gateway.ingest.pipeline import Pipeline
    from gateway.northbound.http.stream_hub import StreamHub
    from gateway.northbound.opcua.service import OpcUaServerService
    from gateway.services.accounts.service import AccountsService
    from gateway.services.alarms.service import AlarmService
    from gateway.services.analytics.service import AnalyticsService
    from gateway.services.historian import HistorianService
    from gateway.services.inventory import InventoryStore
    from gateway.services.maintenance import MaintenanceService
    from gateway.services.reports.service import ReportService
    from gateway.services.writes.service import WriteService
    from gateway.store.embedded import EmbeddedStore

DEPS_KEY: web.AppKey[ApiDeps] = web.AppKey("deps")

HealthSection = Callable[[], dict[str, Any]]
HealthCheck = Callable[[], str | None]  # a problem to report, or None when healthy
MetricsSource = Callable[[], Iterator[Any]]  # prometheus_client metric families


@dataclass
class ApiDeps:
    settings: GatewaySettings
    catalog: Catalog
    pipeline: Pipeline
    store: EmbeddedStore
    started_at: float
    accounts: AccountsService | None = None
    alarms: AlarmService | None = None
    analytics: AnalyticsService | None = None
    maintenance: MaintenanceService | None = None
    inventory: InventoryStore | None = None
    reports: ReportService | None = None
    stream: StreamHub | None = None
    opcua_server: OpcUaServerService | None = None
    historian: HistorianService | None = None
    writes: WriteService | None = None  # the one write path (None: [writes] enabled = false)
    # `run --simulate`: the simulator child's ports and control API (None otherwise)
    simulator: dict[str, Any] | None = None
    # /health sections and checks, /metrics families, by service name (the daemon fills them)
    health_sections: dict[str, HealthSection] = field(default_factory=dict)
    health_checks: dict[str, HealthCheck] = field(default_factory=dict)
    metrics: dict[str, MetricsSource] = field(default_factory=dict)


def deps_of(request: web.Request) -> ApiDeps:
    return request.app[DEPS_KEY]
