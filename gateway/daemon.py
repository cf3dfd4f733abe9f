"""The daemon: builds the pieces, wires them together in one visible place, handles signals.

Where a value goes after a scan (see ``docs/architecture.md``)::

    drivers --> pipeline --> embedded store (durable: a scan is accepted once committed)
                    |            `--> historian forwarder --> PostgreSQL/TimescaleDB
                    |--> live cache --> HTTP API, SSE stream, northbound OPC-UA
                    `--> sinks, in order: alarms --> MQTT outbox, journal, e-mail, SSE, OPC-UA
                                          mqtt_values --> MQTT
                                          sparkplug --> MQTT (Sparkplug B)
                                          opcua_server --> northbound OPC-UA nodes
                                          analytics --> KPIs, energy, health (+ maintenance)

:meth:`Gateway._wire` is that picture in code: every service is constructed with the narrow
things it uses and attached by name as a sink, an alarm listener, a /health section, a
/metrics source or an HTTP dependency. No service receives the daemon.
"""

from __future__ import annotations

import asyncio
import signal
import time

from aiohttp import web

from gateway.ingest.pipeline import Pipeline
from gateway.northbound.http.app import create_app
from gateway.northbound.http.deps import ApiDeps
from gateway.northbound.http.health import gateway_status
from gateway.northbound.http.stream_hub import StreamHub
from gateway.runtime.logs import get_logger
from gateway.runtime.ports import Listener, PortInUse, ensure_free, is_address_in_use
from gateway.runtime.sdnotify import Notifier
from gateway.runtime.simulator_child import SimulatorProcess
from gateway.runtime.state_dir import check_state_dir
from gateway.runtime.supervisor import Supervisor
from gateway.services.accounts.service import AccountsService
from gateway.services.alarms.journal import JOURNAL_FILE
from gateway.services.alarms.service import AlarmService
from gateway.services.analytics.results import FILE_NAME as ANALYTICS_FILE
from gateway.services.analytics.service import AnalyticsService
from gateway.services.base import Service
from gateway.services.inventory import FILE_NAME as INVENTORY_FILE
from gateway.services.inventory import InventoryStore
from gateway.services.reports.service import ReportService
from gateway.services.writes.journal import WRITES_FILE
from gateway.services.writes.service import WriteService
from gateway.settings import Config, load_config
from gateway.store.embedded import EmbeddedStore
from plant.catalog import Catalog
from plant.errors import ConfigError
from plant.writes import write_device_by_tag

log = get_logger("gateway.daemon")

SHUTDOWN_DEADLINE_S = 8.0
RETENTION_EVERY_S = 300.0


class Gateway:
    """One running gateway. ``run()`` returns after SIGTERM/SIGINT once data is flushed."""

    def __init__(self, config: Config, simulate: bool = False, scenario: str | None = None):
        self.config = config
        self.settings = config.settings
        self.simulate = simulate
        self.scenario = scenario
        self.simulator: SimulatorProcess | None = None
        self.supervisor = Supervisor()
        self.stop_event = asyncio.Event()
        self.http_runner: web.AppRunner | None = None
        self.http_port: int | None = None
        self.notifier = Notifier()
        self.services: list[Service] = []
        self._reload_lock = asyncio.Lock()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_event.set)
        loop.add_signal_handler(signal.SIGHUP, self._request_reload)
        try:
            await self._start()
            await self._wait_first_scans()
            self.notifier.ready(f"scanning {len(self.pipeline.plans)} groups, "
                                f"{len(self.settings.devices)} devices")
            log.info("gateway running", gateway_id=self.settings.gateway_id,
                     http=f"http://{self.settings.http.host}:{self.http_port}",
                     devices=len(self.settings.devices), tags=len(self.catalog))
            await self.stop_event.wait()
            log.info("shutdown requested; flushing")
            self.notifier.stopping()
        finally:
            await asyncio.wait_for(self._shutdown(), SHUTDOWN_DEADLINE_S + 2)

    def _listeners(self) -> list[Listener]:
        """Every port this configuration listens on, with the setting that names it."""
        s = self.settings
        out = [Listener("http.port", s.http.host, s.http.port)]
        if s.opcua_server.enabled:
            out.append(Listener("opcua_server.port", s.opcua_server.host, s.opcua_server.port))
        if self.simulate:
            out += [Listener("simulator.opcua_port", "127.0.0.1", s.simulator.opcua_port),
                    Listener("simulator.modbus_port", "127.0.0.1", s.simulator.modbus_port)]
        return out

    async def _start(self) -> None:
        settings = self.settings
        # Before anything starts: a port in use is a configuration problem naming its setting.
        ensure_free(self._listeners(), str(self.config.path))
        if self.simulate:
            self.simulator = SimulatorProcess(settings, self.scenario)
            await self.simulator.start()
            settings = self.settings = self.simulator.point_devices(settings)
        self.catalog_synthetic = settings.simulator.synthetic_tags if self.simulate else 0
        self.catalog = Catalog.build(self.config.plant, self.catalog_synthetic)
        state_dir = settings.state_dir
        check_state_dir(state_dir)
        self.store = EmbeddedStore(state_dir / "history.sqlite",
                                   retention_s=settings.store.retention_days * 86400,
                                   max_bytes=settings.store.max_bytes,
                                   forwarding=settings.database.url is not None,
                                   tag_ids=[t.id for t in self.catalog.tags])
        await self.store.open()
        self.pipeline = Pipeline(settings, self.catalog, self.store, state_dir)
        await self._restore_live()
        self.deps = ApiDeps(settings=settings, catalog=self.catalog, pipeline=self.pipeline,
                            store=self.store, started_at=time.time())
        for service in self._wire():
            await service.start()
            self.services.append(service)
        await self._start_http()
        await self.pipeline.connect_all()
        self.supervisor.start("accept", self.pipeline.accept_loop)
        self._start_scans()
        self.supervisor.start("retention", self._retention_loop)
        if (interval := Notifier.watchdog_interval()) is not None:
            self.supervisor.start("watchdog", lambda: self._watchdog_loop(interval))

    async def _wait_first_scans(self, timeout: float = 30.0) -> None:
        """READY=1 only once every device's first scan was accepted or failed cleanly."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        stats = self.pipeline.device_stats
        while loop.time() < deadline and not self.stop_event.is_set():
            if all(s.last_scan is not None for s in stats.values()):
                return
            await asyncio.sleep(0.05)

    async def _watchdog_loop(self, interval: float) -> None:
        """Keep-alive to systemd only while the pipeline really accepts scans."""
        last = -1
        while True:
            accepted = self.pipeline.accepted_batches
            if accepted != last:
                self.notifier.watchdog()
                last = accepted
            await asyncio.sleep(interval)

    def _request_reload(self) -> None:
        if not hasattr(self, "pipeline"):
            log.warning("SIGHUP before start-up finished; ignored")
            return
        asyncio.get_running_loop().create_task(self.reload())

    async def reload(self) -> bool:
        """Re-read the configuration (SIGHUP). A valid one is applied without losing buffered
        data or alarm state; an invalid one is logged and the running configuration kept."""
        async with self._reload_lock:
            try:
                config = load_config(self.config.path)
            except ConfigError as exc:
                log.error("reload rejected; keeping the running configuration",
                          file=exc.path, problems=exc.problems)
                return False
            settings = config.settings
            if self.simulator is not None:
                settings = self.simulator.point_devices(settings)
            fixed = ("state_dir", "http", "database", "gateway_id", "site")
            changed = [k for k in fixed if getattr(settings, k) != getattr(self.settings, k)]
            if changed:
                log.warning("these settings take effect only after a restart", settings=changed)
                settings = settings.model_copy(update={k: getattr(self.settings, k) for k in changed})
            catalog = Catalog.build(config.plant, self.catalog_synthetic)
            scans = [n for n in self.supervisor.names() if n.startswith(("scan:", "subscribe:"))]
            await self.supervisor.stop(scans)
            await self.pipeline.drain()
            await self.pipeline.close_all()
            await self.store.bind_catalog([t.id for t in catalog.tags])
            self.pipeline.reconfigure(settings, catalog)
            self.config, self.settings, self.catalog = config, settings, catalog
            self.deps.settings, self.deps.catalog = settings, catalog
            for piece in {id(p): p for p in (*self.services, *self.pipeline.sinks.values())}.values():
                if hasattr(piece, "reload"):
                    try:
                        await piece.reload(settings, catalog)
                    except Exception:
                        log.exception("service failed to apply the new configuration",
                                      service=getattr(piece, "name", repr(piece)))
            await self.pipeline.connect_all()
            self._start_scans()
            log.info("configuration reloaded", devices=len(settings.devices),
                     scan_groups=len(settings.scan_groups), tags=len(catalog))
            return True

    def _start_scans(self) -> None:
        for mode, group_id in self.pipeline.scan_task_names():
            if mode == "poll":
                self.supervisor.start(f"scan:{group_id}",
                                      lambda g=group_id: self.pipeline.scan_loop(g))
            else:
                self.supervisor.start(f"subscribe:{group_id}",
                                      lambda g=group_id: self.pipeline.subscribe_group(g))

    def _wire(self) -> list[Service]:
        """Build the services this configuration needs, in start order, and attach each one
        where it belongs. Stopped in the reverse order."""
        s, catalog, store, pipeline, deps = (self.settings, self.catalog, self.store,
                                             self.pipeline, self.deps)
        tasks, state_dir = self.supervisor, s.state_dir
        services: list[Service] = []

        def report(name: str, health=None, check=None, metrics=None) -> None:
            if health is not None:
                deps.health_sections[name] = health
            if check is not None:
                deps.health_checks[name] = check
            if metrics is not None:
                deps.metrics[name] = metrics

        if self.simulator is not None:
            ready = self.simulator.ready
            deps.simulator = ready  # tests and the bench find the simulator's control API here
            report("simulator", health=lambda: {k: v for k, v in ready.items() if k != "event"})

        # Accounts of the HTTP API: users, roles, tokens, the login throttle.
        deps.accounts = AccountsService(s)
        services.append(deps.accounts)

        # MQTT: one broker connection for alarm transitions (durable outbox) and live values.
        # A service's modules are imported only when it is configured: a disabled service
        # costs no resident memory (the MQTT, Sparkplug, e-mail, maintenance, OPC-UA server
        # and historian modules pull in several MB of libraries each).
        publisher = None
        if s.mqtt.host is not None:
            from gateway.northbound.mqtt.publisher import MqttPublisher
            from gateway.northbound.mqtt.service import MqttService
            publisher = MqttPublisher.from_settings(s, values=s.mqtt.values)
        if publisher is not None:
            mqtt = MqttService(publisher)
            report("mqtt", check=mqtt.problem, metrics=mqtt.metrics)
            services.append(mqtt)

        # Alarms: the first sink; journal and MQTT outbox before any listener hears of it.
        alarms = deps.alarms = AlarmService(
            s.alarms, catalog, store, state_dir / JOURNAL_FILE, s.store.retention_days * 86400,
            tasks, pipeline.device_connections, publisher)
        pipeline.add_sink("alarms", alarms)
        report("alarms", health=alarms.health, metrics=alarms.metrics)
        services.append(alarms)

        # Writes: the one write path of every front door; each outcome is also an operator
        # action in the alarm journal. Not a sink: it reads the live cache and the drivers.
        if s.writes.enabled:
            writes = deps.writes = WriteService(
                s.writes, catalog, write_device_by_tag(s.devices, s.scan_groups, catalog.plant),
                lambda: pipeline.drivers, lambda: pipeline.live, state_dir / WRITES_FILE, tasks,
                alarms=alarms)
            report("writes", health=writes.health, metrics=writes.metrics)
            services.append(writes)

        if publisher is not None and s.mqtt.values.enabled:
            from gateway.northbound.mqtt.values import MqttValues
            pipeline.add_sink("mqtt_values", MqttValues(publisher, catalog))

        # Sparkplug B: the gateway as an edge node on the broker of [mqtt] (off by default).
        if s.sparkplug.enabled and s.mqtt.host is not None:
            from gateway.northbound.sparkplug import (
                SparkplugNode,
                WritePathCommands,
                device_tags_from_plans,
            )
            sparkplug = SparkplugNode(
                s.sparkplug, s.mqtt, s.gateway_id, s.site, catalog, lambda: pipeline.live,
                state_dir, pipeline.device_connections,
                lambda: device_tags_from_plans(pipeline.plans), store,
                health_status=lambda: gateway_status(deps, time.time())["status"],
                values_per_s=lambda: sum(d.values_per_s(time.time())
                                         for d in pipeline.device_stats.values()),
                store_backlog=lambda: store.backlog.values,
                commands=None if deps.writes is None else WritePathCommands(
                    deps.writes, s.sparkplug.command_role, f"mqtt://{s.mqtt.host}:{s.mqtt.port}"))
            pipeline.add_sink("sparkplug", sparkplug)
            report("sparkplug", health=sparkplug.health, check=sparkplug.problem,
                   metrics=sparkplug.metrics)
            services.append(sparkplug)

        if s.email.enabled:
            from gateway.northbound.email.service import EmailService
            email = EmailService(s.email, catalog, s.gateway_id, s.site, s.analytics.timezone)
            alarms.add_listener("email", email.on_transitions)
            report("email", health=email.health, check=email.problem, metrics=email.metrics)
            services.append(email)

        if s.maintenance.enabled:
            from gateway.services.maintenance import MaintenanceService
            maintenance = deps.maintenance = MaintenanceService(
                s.maintenance, catalog, store, state_dir, tasks,
                config_path=getattr(self.config, "path", None))
            report("maintenance", health=maintenance.report, metrics=maintenance.metrics)
            services.append(maintenance)

        if s.analytics.enabled:
            analytics = deps.analytics = AnalyticsService(
                s.analytics, catalog, store, state_dir / ANALYTICS_FILE, tasks,
                maintenance=deps.maintenance)
            pipeline.add_sink("analytics", analytics)
            report("analytics", health=analytics.report, metrics=analytics.metrics)
            services.append(analytics)

        if s.opcua_server.enabled:
            from gateway.northbound.opcua.service import OpcUaServerService
            opcua = deps.opcua_server = OpcUaServerService(
                s.opcua_server, catalog, pipeline.live, state_dir, tasks,
                gateway_status=lambda: gateway_status(deps, time.time()),
                analytics=deps.analytics, alarms=alarms, writes=deps.writes)
            pipeline.add_sink("opcua_server", opcua)
            alarms.add_listener("opcua_server", opcua.on_transitions)
            report("opcua_server", health=opcua.health, check=opcua.problem)
            services.append(opcua)

        if s.database.url is not None:
            from gateway.services.historian import HistorianService
            # Not a sink: it forwards what the embedded store committed, from its own cursor.
            historian = deps.historian = HistorianService(
                s.database, store, catalog, s.gateway_id, s.site, tasks,
                tag_writes=None if deps.writes is None else deps.writes.journal,
                state_dir=state_dir)
            report("database", health=historian.health, check=historian.problem)
            services.append(historian)

        deps.inventory = InventoryStore(state_dir / INVENTORY_FILE, seed=catalog.plant.inventory)
        services.append(deps.inventory)

        stream = deps.stream = StreamHub(deps, tasks)
        alarms.add_listener("stream", stream.on_transitions)
        report("stream", health=stream.report, metrics=stream.metrics)
        services.append(stream)

        reports = deps.reports = ReportService(s, catalog, store, tasks)
        report("reports", health=reports.report)
        services.append(reports)
        return services

    async def _restore_live(self) -> None:
        latest = await self.store.latest()
        if latest is not None and len(latest[0]):
            self.pipeline.live.restore(*latest)

    async def _start_http(self) -> None:
        http = self.settings.http
        self.http_runner = web.AppRunner(create_app(self.deps), access_log=None)
        await self.http_runner.setup()
        site = web.TCPSite(self.http_runner, http.host, http.port)
        try:
            await site.start()
        except OSError as exc:
            if is_address_in_use(exc):  # taken since the check at start
                raise PortInUse(Listener("http.port", http.host, http.port),
                                str(self.config.path)) from None
            raise
        self.http_port = site._server.sockets[0].getsockname()[1]  # real port when 0 was asked

    async def _retention_loop(self) -> None:
        while True:
            await self.store.enforce_retention(time.time())
            await asyncio.sleep(RETENTION_EVERY_S)

    async def _shutdown(self) -> None:
        """Stop scanning, commit what is queued, close devices, store and HTTP."""
        writes = getattr(getattr(self, "deps", None), "writes", None)
        if writes is not None:
            # First: refuse new writes; those in flight finish (devices still connected) or are
            # journaled unknown within writes.shutdown_wait_s.
            try:
                await writes.finish()
            except Exception:
                log.exception("writes in flight not settled at shutdown")
        scans = [n for n in self.supervisor.names() if n.startswith(("scan:", "subscribe:"))]
        await self.supervisor.stop(scans)
        if hasattr(self, "pipeline"):
            try:
                await asyncio.wait_for(self.pipeline.drain(), SHUTDOWN_DEADLINE_S / 2)
            except TimeoutError:
                log.error("shutdown deadline reached with scans still queued",
                          queued=self.pipeline.queue.qsize())
        await self.supervisor.stop()
        for service in reversed(self.services):
            try:
                await service.stop()
            except Exception:
                log.exception("service failed to stop cleanly", service=service.name)
        if hasattr(self, "pipeline"):
            await self.pipeline.close_all()
        if self.http_runner is not None:
            await self.http_runner.cleanup()
        if hasattr(self, "store"):
            await self.store.close()
        if self.simulator is not None:
            await self.simulator.stop()
        log.info("gateway stopped")
