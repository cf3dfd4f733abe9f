"""The northbound OPC-UA server: SCADA browses and reads the gateway (SPEC capability 10).

``opc.tcp://127.0.0.1:4841`` by default (``[opcua_server]`` in gateway.toml). Address space
(see :mod:`gateway.northbound.opcua.address_space`)::

    Objects/RefineryIQ/<unit>/<equipment>/<tag>        value, quality, source timestamp
    Objects/RefineryIQ/<unit>/<equipment>/Health/...    health score, status, failure probability
    Objects/RefineryIQ/<unit>/KPIs/...                   throughput, OEE, energy, stability
    Objects/RefineryIQ/KPIs/...                          the plant's KPIs
    Objects/RefineryIQ/Gateway/...                       gateway health and counters
    Objects/RefineryIQ/Alarms/...                        the active alarm list
    Objects/RefineryIQ/Synthetic/...                     benchmark tags (SYN-*), when configured

Each tag's StatusCode is mapped back from our quality and reason
(:mod:`gateway.northbound.opcua.status`); a tag not read yet and a KPI or health figure not
computed yet read BadWaitingForInitialData, a figure that cannot be computed (no feed for
OEE, say) BadDataUnavailable, never a Good null. Every variable is read-only for clients except
the writable tags, whose writes go through the gateway's write path (:mod:`.writes`). Alarm
transitions are AlarmConditionType events from the Server object (Severity LOW 300,
MEDIUM 500, HIGH 800; SourceName the tag id; ConditionName the alarm key).

Ingestion never waits for OPC-UA: the pipeline sink only marks the changed tags, and the
server (on its own thread and event loop, :mod:`gateway.northbound.opcua.runtime`) writes them
into the address space at most every ``publish_interval_ms``. KPIs, health and the alarm
list are gathered on the daemon's loop every ``summary_interval_s`` (a few dozen figures)
and handed over; alarm transitions are handed over as they are journaled.

Security: see :mod:`gateway.northbound.opcua.security` (None only on loopback, otherwise
Basic256Sha256 SignAndEncrypt with username/password).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asyncua import ua

from analytics.alarm_types import Alarm, AlarmTransition
from drivers.batch import Batch
from gateway.ingest.live_cache import LiveCache
from gateway.northbound.opcua.address_space import GATEWAY_FIGURES, HEALTH_FIGURES, KPI_FIGURES
from gateway.northbound.opcua.runtime import ChangeSource, Figures, NorthboundServer, ServerThread
from gateway.runtime.logs import get_logger
from gateway.services.base import Tasks
from gateway.settings import OpcUaServerSettings
from plant.catalog import Catalog

log = get_logger("gateway.northbound.opcua.service")

SERVICE_NAME = "opcua_server"
PLANT_ROW = "PLANT"


class OpcUaServerService:
    """The ``opcua_server`` service (implements ``gateway.services.base.Service``)."""

    name = SERVICE_NAME

    def __init__(self, settings: OpcUaServerSettings, catalog: Catalog, live: LiveCache,
                 state_dir: Path, tasks: Tasks, gateway_status: Callable[[], dict[str, Any]],
                 analytics: Any = None, alarms: Any = None, writes: Any = None):
        """``gateway_status`` gives the Gateway folder's figures (status, reasons, device and
        value counts, uptime: ``gateway.northbound.http.health.gateway_status``);
        ``analytics`` (its ``latest`` results) and ``alarms`` (its ``active()`` list) are read
        for the KPI, health and alarm figures when those services run; ``writes`` (the write
        service: ``writable_tags()``, ``submit_threadsafe()``) makes the writable tags
        writable by clients with the role (see :mod:`gateway.northbound.opcua.writes`)."""
        self.settings = settings
        self.catalog = catalog
        self.live = live
        self.state_dir = state_dir
        self.tasks = tasks
        self.gateway_status = gateway_status
        self.analytics = analytics
        self.alarms = alarms
        self.writes = writes
        self.server: NorthboundServer | None = None
        self.changes: ChangeSource | None = None
        self._thread: ServerThread | None = None
        self._handoff_errors = 0
        self.error: str | None = None
        self.ready = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the server thread (which builds the address space and listens) and the
        summary task. Returns without waiting for the server: /health shows
        ``opcua_server.state`` starting → serving (or failed). The daemon attaches
        :meth:`on_batches` as a pipeline sink and :meth:`on_transitions` as an alarm listener."""
        self.changes = ChangeSource(self.live)
        writable = () if self.writes is None else tuple(t.id for t in self.writes.writable_tags())
        self.server = NorthboundServer(self.settings, self.catalog, self.changes, self.state_dir,
                                       self.writes, writable)
        self._thread = ServerThread()
        self._thread.start()
        # Building the address space takes seconds at 10,000 tags (asyncua adds nodes one by
        # one): it runs on the server's thread while the daemon starts scanning.
        self._thread.post(self._serve(), self._start_failed)
        self.tasks.start(f"{SERVICE_NAME}:summary", self._summary_loop)

    async def _serve(self) -> None:
        """Start the server (on its own loop); ``ready`` once it listens."""
        assert self.server is not None and self.settings is not None
        await self.server.start()
        self.ready = True
        log.info("opcua server listening", endpoint=self.server.endpoint,
                 security=self.settings.security.value, tags=len(self.catalog))

    def _start_failed(self, exc: BaseException) -> None:
        # Ingestion goes on without the northbound server (e.g. its port is taken);
        # /health reports the problem.
        self.error = f"{type(exc).__name__}: {exc}"
        assert self.settings is not None
        log.error("opcua server did not start", error=self.error,
                  host=self.settings.host, port=self.settings.port)

    async def stop(self) -> None:
        """Stop the server (bounded) and its thread."""
        if self._thread is None:
            return
        if self.server is not None:
            try:
                await asyncio.wait_for(self._thread.submit(self.server.stop()), 5.0)
            except Exception:
                log.exception("opcua server did not stop cleanly")
        await self._thread.stop()
        self._thread = None

    @property
    def port(self) -> int | None:
        return None if self.server is None else self.server.port

    # ------------------------------------------------------------------ hand-offs

    async def on_batches(self, batches: list[Batch]) -> None:
        """Pipeline sink: mark the accepted tags as changed (the flush writes them)."""
        changes = self.changes
        if changes is not None:
            for batch in batches:
                changes.mark(batch.tag_index)

    async def on_transitions(self, transitions: list[AlarmTransition]) -> None:
        """Alarm listener: hand the transitions to the server as events (not awaited)."""
        if self._thread is not None and self.server is not None and self.ready:
            self._thread.post(self.server.emit(list(transitions)), self._handoff_failed)

    def _handoff_failed(self, exc: BaseException) -> None:
        self._handoff_errors += 1
        log.error("opcua server hand-off failed", error=repr(exc))

    async def _summary_loop(self) -> None:
        assert self.settings is not None
        while True:
            self.publish_figures()
            await asyncio.sleep(self.settings.summary_interval_s)

    def publish_figures(self) -> None:
        """Gather KPIs, health, gateway and alarm figures and hand them to the server."""
        if self._thread is None or self.server is None or not self.ready:
            return
        self._thread.post(self.server.write_figures(self.figures()), self._handoff_failed)

    def figures(self) -> Figures:
        """The current figures by address-space path (see opcua_server_space)."""
        out: Figures = {}
        latest = getattr(self.analytics, "latest", None)
        if latest is not None:
            out.update(kpi_figures(latest.kpis))
            out.update(health_figures(latest.equipment))
        out.update(self._gateway_figures())
        if self.alarms is not None:
            out.update(alarm_figures(self.alarms.active()))
        return out

    def _gateway_figures(self) -> Figures:
        values = self.gateway_status()
        return {("Gateway", k): (v, GATEWAY_FIGURES[k]) for k, v in values.items()}

    # ------------------------------------------------------------------ reporting

    def problem(self) -> str | None:
        """Health check: the server could not start (degraded: ingestion goes on)."""
        return None if self.error is None else f"not serving: {self.error}"

    def health(self) -> dict[str, Any]:
        """The ``opcua_server`` section of /health."""
        server = self.server
        if server is None or self.error is not None or not self.ready:
            state = "failed" if self.error else ("starting" if server is not None else "off")
            return {"state": state, "error": self.error}
        s = server.stats
        return {"state": "serving", "endpoint": server.endpoint, "port": server.port,
                "writable_tags": len(server.writable),
                "writes": 0 if server.tag_writes is None else server.tag_writes.handled,
                "security": server.settings.security.value, "sessions": server.sessions,
                "flushes": s.flushes, "values_written": s.values_written,
                "last_flush_s": round(s.last_flush_s, 6), "max_flush_s": round(s.max_flush_s, 6),
                "events": s.events, "event_errors": s.event_errors,
                "handoff_errors": self._handoff_errors}


def kpi_figures(rows: list[dict]) -> Figures:
    """KPI rows (one per unit and ``PLANT``) as figures under ``<unit>/KPIs``."""
    out: Figures = {}
    for row in rows:
        path = ("KPIs",) if row.get("unit_id") == PLANT_ROW else (row.get("unit_id"), "KPIs")
        for name, vtype in KPI_FIGURES.items():
            out[(*path, name)] = (_number(row.get(name), vtype), vtype)
    return out


def health_figures(rows: list[dict]) -> Figures:
    """Equipment health rows as figures under ``<unit>/<equipment>/Health``."""
    out: Figures = {}
    for row in rows:
        path = (row.get("unit_id"), row.get("equipment_id"), "Health")
        for name, vtype in HEALTH_FIGURES.items():
            out[(*path, name)] = (_number(row.get(name), vtype), vtype)
    return out


def alarm_figures(alarms: list[Alarm]) -> Figures:
    """The active alarm list: counts, one line per alarm and the list as JSON."""
    lines = [f"{a.key}|{a.state.value}|{a.severity.value}|{a.message}" for a in alarms]
    return {
        ("Alarms", "active_count"): (sum(1 for a in alarms if a.state.is_active),
                                     ua.VariantType.UInt32),
        ("Alarms", "unacknowledged_count"): (sum(1 for a in alarms if a.state.is_unacknowledged),
                                             ua.VariantType.UInt32),
        ("Alarms", "active_alarms"): (lines, ua.VariantType.String),
        ("Alarms", "active_alarms_json"): (json.dumps([_finite(a.to_dict()) for a in alarms],
                                                      default=str), ua.VariantType.String),
    }


def _finite(row: dict) -> dict:
    """NaN becomes None: JSON has no NaN."""
    return {k: None if isinstance(v, float) and v != v else v for k, v in row.items()}


def _number(value: Any, vtype: ua.VariantType) -> Any:
    if value is None:
        return None
    if vtype == ua.VariantType.Double:
        return float(value)
    if vtype == ua.VariantType.String:
        return str(value)
    return value
