"""The asyncua server of the northbound interface, running on its own thread and event loop.

Why a thread: everything asyncua does for clients (encryption, password checks, publishing
to subscriptions, writing 10,000 changed values into the address space) would otherwise
share the event loop with ingestion. On its own loop, the OPC-UA side can fall behind or be
busy with a client without delaying a scan; the two sides meet only at
:class:`ChangeSource` (a lock-protected "changed tags" mask) and at coroutine hand-offs
(``asyncio.run_coroutine_threadsafe``) that the ingestion side never waits for.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from asyncua import Server, ua
from asyncua.common.event_objects import AlarmCondition

from analytics.alarm_types import AlarmState, AlarmTransition
from gateway.ingest.live_cache import LiveCache
from gateway.northbound.opcua import standard_nodes
from gateway.northbound.opcua.address_space import (
    NAMESPACE_URI,
    NS,
    AddressSpace,
    TagWriter,
    build_address_space,
    data_value,
    notify,
    share_standard_values,
    tag_node_id,
)
from gateway.northbound.opcua.security import (
    APPLICATION_URI,
    AnonymousReader,
    HashedUsers,
    ensure_certificate,
)
from gateway.northbound.opcua.status import ALARM_SEVERITY, GOOD, status_codes
from gateway.northbound.opcua.writes import TagWrites, WritePath
from gateway.runtime.logs import get_logger
from gateway.services.accounts.users import Role
from gateway.settings import OpcUaServerSecurity, OpcUaServerSettings
from plant.catalog import Catalog

log = get_logger("gateway.northbound.opcua.service")

# Values written per slice of a flush; the server's loop serves clients between slices.
FLUSH_SLICE = 2000
STOP_TIMEOUT_S = 5.0

Figures = dict[tuple[str, ...], tuple[Any, ua.VariantType]]


class ChangeSource:
    """Which tags changed since the last flush, marked by the pipeline sink (ingestion
    thread) and taken by the flush (server thread)."""

    def __init__(self, live: LiveCache):
        self.live = live
        self._dirty = np.ones(len(live.values), dtype=bool)  # everything once at start
        self._lock = threading.Lock()

    def mark(self, tag_index: np.ndarray) -> None:
        with self._lock:
            self._dirty[tag_index] = True

    def take(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(index, values, StatusCodes, source_ts) of the tags changed since the last take.

        The live columns are read after the mask is cleared: a Batch accepted meanwhile marks
        its tags again, so a value read half-updated is rewritten at the next flush.
        """
        with self._lock:
            index = np.flatnonzero(self._dirty)
            self._dirty[index] = False
        live = self.live
        codes = status_codes(live.quality[index], live.reason[index])
        return index, live.values[index], codes, live.source_ts[index]


@dataclass
class ServerStats:
    """Counters of the northbound server (in /health)."""

    flushes: int = 0
    values_written: int = 0
    last_flush_s: float = 0.0
    max_flush_s: float = 0.0
    events: int = 0
    event_errors: int = 0


class NorthboundServer:
    """The asyncua server: address space, periodic flush of changed tags, alarm events.

    Every coroutine method runs on the server's own loop (see :class:`ServerThread`).
    """

    def __init__(self, settings: OpcUaServerSettings, catalog: Catalog, changes: ChangeSource,
                 state_dir: Path, writes: WritePath | None = None,
                 writable: tuple[str, ...] = ()):
        """``writes`` is the daemon's write path; ``writable`` the tags clients may write
        through it (none without ``writes``)."""
        self.settings = settings
        self.writes = writes
        self.writable = frozenset(writable) if writes is not None else frozenset()
        self.tag_writes: TagWrites | None = None
        self.catalog = catalog
        self.changes = changes
        self.state_dir = state_dir
        self.stats = ServerStats()
        self.server: Server | None = None
        self.space: AddressSpace | None = None
        self.endpoint = ""
        self.port = settings.port
        self._writer: TagWriter | None = None
        self._events: Any = None
        self._figures: dict[tuple[str, ...], Any] = {}
        self._flush_task: asyncio.Task | None = None

    async def start(self) -> int:
        """Build the server and the address space, listen; returns the bound port."""
        sec = self.settings.security
        user_manager = (HashedUsers(self.settings.users)
                        if sec == OpcUaServerSecurity.BASIC256SHA256 else AnonymousReader())
        server = Server(user_manager=user_manager)
        await standard_nodes.install(server)
        await server.init()
        server.allow_remote_admin(False)
        server.set_endpoint(f"opc.tcp://{self.settings.host}:{self.settings.port}")
        server.set_server_name("RefineryIQ Edge gateway")
        await server.set_application_uri(APPLICATION_URI)
        if sec == OpcUaServerSecurity.BASIC256SHA256:
            key, cert = await ensure_certificate(self.state_dir)
            await server.load_certificate(str(cert))
            await server.load_private_key(str(key))
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
            server.set_identity_tokens([ua.UserNameIdentityToken])
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
            server.set_identity_tokens([ua.AnonymousIdentityToken])
        ns = await server.register_namespace(NAMESPACE_URI)
        if ns != NS:
            raise RuntimeError(f"namespace {NAMESPACE_URI} registered as ns={ns}, expected {NS}")
        share_standard_values(server.iserver.aspace)
        self.space = await build_address_space(server, self.catalog, self.writable,
                                                self.changes.live)
        if self.writes is not None and self.writable:
            roles = ({u.username: Role.parse(u.role) for u in self.settings.users}
                     if sec == OpcUaServerSecurity.BASIC256SHA256 else None)
            self.tag_writes = TagWrites(self.writes, {tag_node_id(t): t for t in self.writable},
                                        roles)
            self.tag_writes.install(server)
        self._writer = TagWriter(self.space)
        self._events = await server.get_event_generator(_alarm_condition(), ua.ObjectIds.Server)
        await server.start()
        self.server = server
        self.port = server.bserver.port  # type: ignore[union-attr]  # the real one when 0 was asked
        self.endpoint = f"opc.tcp://{self.settings.host}:{self.port}"
        for endpoint in server.iserver.endpoints:  # advertised with the configured port
            endpoint.EndpointUrl = self.endpoint
        await self.flush()
        self._flush_task = asyncio.get_running_loop().create_task(self._flush_loop())
        return self.port

    async def stop(self) -> None:
        if self._flush_task is not None:
            self._flush_task.cancel()
            await asyncio.gather(self._flush_task, return_exceptions=True)
        if self.server is not None:
            await self.server.stop()
            self.server = None

    @property
    def sessions(self) -> int:
        return 0 if self.server is None else len(self.server.iserver.asyncio_transports)

    # ------------------------------------------------------------------ tag values

    async def _flush_loop(self) -> None:
        interval = self.settings.publish_interval_ms / 1000.0
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
            except Exception:
                log.exception("opcua_server.flush_failed")

    async def flush(self) -> int:
        """Write every tag changed since the last flush; returns how many."""
        assert self._writer is not None
        started = time.perf_counter()
        index, values, codes, source_ts = self.changes.take()
        now = dt.datetime.now(dt.UTC)
        for lo in range(0, len(index), FLUSH_SLICE):
            hi = lo + FLUSH_SLICE
            pending = self._writer.write(index[lo:hi], values[lo:hi], codes[lo:hi],
                                         source_ts[lo:hi], now)
            if pending:
                await notify(pending)
            if hi < len(index):
                await asyncio.sleep(0)  # let the server answer clients between slices
        duration = time.perf_counter() - started
        s = self.stats
        s.flushes += 1
        s.values_written += len(index)
        s.last_flush_s = duration
        s.max_flush_s = max(s.max_flush_s, duration)
        return len(index)

    # ------------------------------------------------------------------ figures

    async def write_figures(self, figures: Figures) -> None:
        """KPIs, health, gateway and alarm figures; only those whose value changed."""
        assert self.server is not None and self.space is not None
        now = dt.datetime.now(dt.UTC)
        for path, (value, vtype) in figures.items():
            node_id = self.space.figures.get(path)
            if node_id is None or self._figures.get(path, _UNSET) == value:
                continue
            self._figures[path] = value
            if vtype == ua.VariantType.DateTime and value is not None:
                value = dt.datetime.fromtimestamp(value, dt.UTC)
            dv = data_value(value, GOOD, now, now, vtype)
            await self.server.write_attribute_value(node_id, dv)

    # ------------------------------------------------------------------ alarm events

    async def emit(self, transitions: list[AlarmTransition]) -> None:
        """One AlarmConditionType event per alarm transition, from the Server object."""
        for t in transitions:
            try:
                await self._trigger(t)
                self.stats.events += 1
            except Exception:
                self.stats.event_errors += 1
                log.exception("opcua_server.event_failed", key=t.key, seq=t.seq)

    async def _trigger(self, t: AlarmTransition) -> None:
        assert self.space is not None
        ev = self._events.event
        source = (self.space.tag_nodes[self.catalog.index[t.tag_id]]
                  if t.tag_id in self.catalog.index else self.space.root)
        when = dt.datetime.fromtimestamp(t.time, dt.UTC)
        active = t.to_state.is_active
        acked = not t.to_state.is_unacknowledged
        ev.SourceNode = source
        ev.SourceName = t.tag_id
        ev.Severity = ALARM_SEVERITY[t.severity]
        ev.ConditionName = t.key
        ev.Retain = t.to_state != AlarmState.NORMAL
        setattr(ev, "ActiveState/Id", active)
        ev.ActiveState = ua.LocalizedText("Active" if active else "Inactive")
        setattr(ev, "ActiveState/TransitionTime", when)
        setattr(ev, "AckedState/Id", acked)
        ev.AckedState = ua.LocalizedText("Acknowledged" if acked else "Unacknowledged")
        setattr(ev, "SuppressedState/Id", t.to_state == AlarmState.SUPPRESSED)
        ev.SuppressedOrShelved = t.to_state in (AlarmState.SUPPRESSED, AlarmState.SHELVED)
        ev.ClientUserId = t.user
        ev.Comment = ua.LocalizedText(t.comment) if t.comment else None
        message = t.message or f"{t.key} {t.kind.value} {t.from_state.value} -> {t.to_state.value}"
        await self._events.trigger(time_attr=when, message=message)


_UNSET = object()
# asyncua's event objects type some fields by DataType NodeId (UtcTime, Duration), which
# asyncua cannot encode once the field holds a value; give them their builtin Variant type.
_BUILTIN_OF = {ua.NodeId(ua.ObjectIds.UtcTime): ua.VariantType.DateTime,
               ua.NodeId(ua.ObjectIds.Duration): ua.VariantType.Double}


def _alarm_condition() -> AlarmCondition:
    """An AlarmConditionType event object whose every field can carry a value."""
    event = AlarmCondition()
    for name, data_type in list(event.data_types.items()):
        if isinstance(data_type, ua.NodeId) and data_type in _BUILTIN_OF:
            event.data_types[name] = _BUILTIN_OF[data_type]
    return event


class ServerThread:
    """A daemon thread running an event loop for the :class:`NorthboundServer`."""

    def __init__(self, name: str = "opcua-server"):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        # Stopped (possibly while the server was still building its address space): end what
        # is left on this loop before closing it, so no task is destroyed while pending.
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def start(self) -> None:
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future:
        """Schedule a coroutine on the server loop; the caller may await the result."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def post(self, coro: Coroutine[Any, Any, Any],
             on_error: Callable[[BaseException], None] | None = None) -> None:
        """Schedule a coroutine on the server loop without waiting for it."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        if on_error is not None:
            future.add_done_callback(
                lambda f: f.cancelled() or f.exception() is None or on_error(f.exception()))

    async def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            await asyncio.to_thread(self._thread.join, STOP_TIMEOUT_S)
