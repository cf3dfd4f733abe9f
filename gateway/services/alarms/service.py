"""The alarm service: runs the alarm engine on every accepted scan, journals each transition
and hands it to MQTT; keeps alarm state across restarts.

Wiring (see :mod:`gateway.daemon`): as the pipeline's ``alarms`` sink it evaluates each accepted Batch
(``AlarmEngine.process``), a supervised task ticks the engine's timers once a second and
reports each device's connection, and the engine's snapshot is persisted in the embedded store
(``alarms.snapshot``) when it changed and at stop. Operator actions (acknowledge, shelve,
unshelve, out of service) come from the HTTP routes in :mod:`gateway.northbound.http.alarms` and are
journaled and published like any other transition.

The sink is on the accept path and on the alarm latency budget (scan → MQTT within the scan
interval + 50 ms): a quiet scan costs a few numpy operations; a scan with transitions costs one
journal and one outbox transaction, run concurrently on their own SQLite threads.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from analytics.alarm_config import AlarmConfig
from analytics.alarm_kpis import alarm_kpis
from analytics.alarm_types import Alarm, AlarmState, AlarmTransition, Severity
from analytics.alarms import SNAPSHOT_VERSION, AlarmEngine
from drivers.batch import Batch
from gateway.runtime.logs import get_logger
from gateway.services.alarms.journal import AlarmJournal, JournalFilter, OperatorAction
from gateway.services.base import Tasks
from plant.catalog import Catalog

DeviceConnections = Callable[[], Iterable[tuple[str, bool]]]  # (device id, connected)

log = get_logger("gateway.alarms")

SERVICE_NAME = "alarms"
SNAPSHOT_KEY = "alarms.snapshot"
TICK_S = 1.0
PERSIST_EVERY_S = 5.0
JOURNAL_RETENTION_EVERY_S = 3600.0

TransitionListener = Callable[[list[AlarmTransition]], Awaitable[None]]


class AlarmOutbox(Protocol):
    """Where transitions leave the gateway durably (the MQTT publisher's outbox)."""

    async def publish_transitions(self, transitions: Iterable[AlarmTransition]) -> None: ...

    async def max_seq(self) -> int: ...

    def status(self) -> dict[str, Any]: ...


class StateStore(Protocol):
    """Where the engine's snapshot survives a restart (the embedded store's state table)."""

    async def get_state(self, key: str) -> str | None: ...

    async def put_state(self, key: str, value: str) -> None: ...


class AlarmService:
    """The alarm engine inside the running daemon (implements ``gateway.services.base.Service``).

    ``clock`` returns epoch seconds (tests pass a fake one); ``tick_s`` is the timer period;
    ``persist_every_s`` bounds how often a changed snapshot is written. ``listeners`` receive
    every list of transitions after it is journaled (e.g. a database writer of ``alerts``).
    """

    name = SERVICE_NAME

    def __init__(self, config: AlarmConfig, catalog: Catalog, state: StateStore,
                 journal_path: Path, journal_retention_s: float, tasks: Tasks,
                 devices: DeviceConnections, publisher: AlarmOutbox | None = None,
                 clock: Callable[[], float] = time.time, tick_s: float = TICK_S,
                 persist_every_s: float = PERSIST_EVERY_S):
        self.config = config
        self.catalog = catalog
        self.state = state
        self.tasks = tasks
        self.devices = devices
        self.publisher = publisher
        self.clock = clock
        self.tick_s = tick_s
        self.persist_every_s = persist_every_s
        self.listeners: dict[str, TransitionListener] = {}
        self.engine: AlarmEngine | None = None
        self.journal = AlarmJournal(journal_path, retention_s=journal_retention_s)
        self.transitions = 0
        self.trimmed = 0  # journal rows deleted by the retention (answers that listed them are stale)
        self.activations = 0
        self.operator_actions = 0  # journaled by record_operator_action since start
        self._persisted_seq = -1
        self._persisted_at = float("-inf")
        self._retention_at = float("-inf")
        self._lock = asyncio.Lock()

    def add_listener(self, name: str, listener: TransitionListener) -> None:
        """``listener`` receives every list of transitions after it is journaled."""
        self.listeners[name] = listener

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the journal, restore the engine, start the ticker. The publisher (when MQTT is
        on) must already be started: its outbox holds the highest sequence number sent."""
        await self.journal.open()
        self.engine = await self._restore_engine()
        self._persisted_seq = self.engine.seq
        self.tasks.start(f"{SERVICE_NAME}:tick", self._tick_loop)
        log.info("alarm service started", seq=self.engine.seq,
                 standing=len(self.engine.active()), mqtt=self.publisher is not None)

    async def _restore_engine(self) -> AlarmEngine:
        min_seq = await self.journal.max_seq()
        if self.publisher is not None:
            min_seq = max(min_seq, await self.publisher.max_seq())
        raw = await self.state.get_state(SNAPSHOT_KEY)
        if raw is not None:
            try:
                return AlarmEngine.restore(self.catalog, self.config, json.loads(raw), min_seq)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("alarm snapshot unusable; starting with no standing alarms",
                          error=f"{type(exc).__name__}: {exc}")
        return AlarmEngine.restore(self.catalog, self.config, _empty_snapshot(), min_seq)

    async def reload(self, settings: Any, catalog: Catalog) -> None:
        """SIGHUP: carry the alarm state over to the new catalog and ``[alarms]`` settings.

        The snapshot names tags by id, so tags that moved keep their alarms and tags that were
        removed drop theirs. MQTT and journal settings take effect at the next restart.
        """
        engine = self._engine()
        self.config, self.catalog = settings.alarms, catalog
        self.engine = AlarmEngine.restore(catalog, settings.alarms, engine.snapshot(), engine.seq)
        await self.persist(force=True)
        log.info("alarm engine reloaded", tags=len(catalog), standing=len(self.engine.active()))

    async def stop(self) -> None:
        """Persist the snapshot and close the journal (the daemon stops MQTT afterwards)."""
        if self.engine is not None:
            await self.persist(force=True)
        await self.journal.close()
        log.info("alarm service stopped", seq=None if self.engine is None else self.engine.seq)

    # ------------------------------------------------------------------ the scan path

    async def on_batches(self, batches: list[Batch]) -> None:
        """Pipeline sink: evaluate accepted scans and emit their transitions."""
        engine = self._engine()
        now = self.clock()
        out: list[AlarmTransition] = []
        for batch in batches:
            out += engine.process(batch, now)
        if out:
            await self._emit(out)

    async def _emit(self, transitions: list[AlarmTransition]) -> None:
        """Journal and queue for MQTT concurrently (both durable before this returns)."""
        work = [self.journal.append(transitions)]
        if self.publisher is not None:
            work.append(self.publisher.publish_transitions(transitions))
        results = await asyncio.gather(*work, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.error("alarm transitions not recorded", error=repr(result),
                          first_seq=transitions[0].seq, count=len(transitions))
        self.transitions += len(transitions)
        self.activations += sum(1 for t in transitions if t.is_activation)
        for name, listener in self.listeners.items():
            try:
                await listener(transitions)
            except Exception:
                log.exception("alarm listener failed", listener=name)

    # ------------------------------------------------------------------ timers

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            await self.tick()

    async def tick(self, now: float | None = None) -> list[AlarmTransition]:
        """Fire due timers and device states; persist and trim when due. Returns transitions."""
        engine = self._engine()
        now = self.clock() if now is None else now
        out = engine.tick(now)
        for device_id, connected in self.devices():
            out += engine.device_status(device_id, connected, now)
        if out:
            await self._emit(out)
        if now - self._persisted_at >= self.persist_every_s:
            await self.persist()
        if now - self._retention_at >= JOURNAL_RETENTION_EVERY_S:
            self._retention_at = now
            await self.enforce_journal_retention(now)
        return out

    async def enforce_journal_retention(self, now: float) -> int:
        """Delete journaled transitions past the store retention; returns how many went."""
        deleted = await self.journal.enforce_retention(now)
        await self.journal.enforce_action_retention(now)
        if deleted:
            self.trimmed += deleted
            log.info("alarm journal trimmed", deleted=deleted)
        return deleted

    async def persist(self, force: bool = False) -> bool:
        """Write the engine's snapshot to the embedded store if it changed (or ``force``)."""
        engine = self._engine()
        async with self._lock:
            if not force and engine.seq == self._persisted_seq:
                return False
            seq = engine.seq
            body = json.dumps(engine.snapshot(), allow_nan=False)
            await self.state.put_state(SNAPSHOT_KEY, body)
            self._persisted_seq = seq
            self._persisted_at = self.clock()
            return True

    # ------------------------------------------------------------------ operator actions

    async def acknowledge(self, alarm_key: str, user: str,
                          comment: str | None = None) -> list[AlarmTransition]:
        """Acknowledge by alarm key or occurrence id; raises ``AlarmError`` (unknown key)."""
        out = self._engine().acknowledge(alarm_key, user, comment, self.clock())
        await self._after_action(out)
        return out

    async def shelve(self, alarm_key: str, user: str, duration_s: float,
                     comment: str | None = None) -> list[AlarmTransition]:
        """Shelve for ``duration_s`` seconds; the ticker returns it to service at expiry."""
        now = self.clock()
        out = self._engine().shelve(alarm_key, user, now + duration_s, now, comment)
        await self._after_action(out)
        return out

    async def unshelve(self, alarm_key: str, user: str,
                       comment: str | None = None) -> list[AlarmTransition]:
        out = self._engine().unshelve(alarm_key, user, self.clock(), comment)
        await self._after_action(out)
        return out

    async def set_out_of_service(self, alarm_key: str, out_of_service: bool, user: str,
                                 comment: str | None = None) -> list[AlarmTransition]:
        """Remove an alarm point from service (SUPPRESSED), or return it to service."""
        out = self._engine().set_out_of_service(alarm_key, out_of_service, user, self.clock(),
                                                comment)
        await self._after_action(out)
        return out

    async def record_operator_action(self, *, source: str, user: str, origin: str, action: str,
                                     outcome: str, message: str, ref: str | None = None,
                                     unit_id: str | None = None) -> OperatorAction:
        """Journal an operator action that is not an alarm transition (a tag write and its
        outcome, from the write path): the alarm journal's ISA-18.2 record of what operators
        did. No alarm state changes; nothing goes to MQTT or the transition listeners."""
        entry = await self.journal.append_action(OperatorAction(
            time=self.clock(), source=source, user=user, origin=origin, action=action,
            outcome=outcome, message=message, ref=ref, unit_id=unit_id))
        self.operator_actions += 1
        return entry

    async def operator_actions_page(self, source: str | None = None, limit: int = 100,
                                    offset: int = 0) -> list[OperatorAction]:
        """Journaled operator actions, newest first."""
        return await self.journal.actions(source=source, limit=limit, offset=offset)

    async def _after_action(self, out: list[AlarmTransition]) -> None:
        if out:
            await self._emit(out)
            await self.persist()  # an operator's action should survive a crash right away

    # ------------------------------------------------------------------ views

    def active(self) -> list[Alarm]:
        """Every alarm point that is not NORMAL, oldest first."""
        return self._engine().active()

    def alarm(self, alarm_key: str) -> Alarm | None:
        return self._engine().alarm(alarm_key)

    async def kpis(self, window_s: float, now: float | None = None) -> dict[str, Any]:
        """Alarm-rate KPIs over the last ``window_s`` seconds, from the journal."""
        now = self.clock() if now is None else now
        journal = await self.journal.kpi_window(now - window_s, now)
        return alarm_kpis(journal, now, window_s, self.config)

    async def journal_page(self, where: JournalFilter, limit: int,
                           offset: int) -> list[AlarmTransition]:
        return await self.journal.query(where, limit, offset)

    def health(self) -> dict[str, Any]:
        """The ``alarms`` section of /health."""
        alarms = self._engine().active()
        by_severity = Counter(a.severity.value for a in alarms if a.state.is_active)
        by_state = Counter(a.state.value for a in alarms)
        return {
            "active": {s.value: by_severity.get(s.value, 0) for s in Severity},
            "states": {s.value: by_state.get(s.value, 0) for s in AlarmState
                       if s is not AlarmState.NORMAL},
            "unacknowledged": sum(1 for a in alarms if a.state.is_unacknowledged),
            "seq": self._engine().seq,
            "transitions": self.transitions,
            "mqtt": {"state": "off"} if self.publisher is None else self.publisher.status(),
        }

    def metrics(self) -> Iterator[Any]:
        """Prometheus families for /metrics."""
        alarms = self._engine().active()
        active = GaugeMetricFamily("refineryiq_alarms_active", "Active alarms by severity",
                                   labels=["severity"])
        counts = Counter(a.severity.value for a in alarms if a.state.is_active)
        for s in Severity:
            active.add_metric([s.value], counts.get(s.value, 0))
        yield active
        transitions = CounterMetricFamily("refineryiq_alarm_transitions",
                                          "Alarm transitions journaled since start")
        transitions.add_metric([], self.transitions)
        yield transitions

    # ------------------------------------------------------------------ internals

    def _engine(self) -> AlarmEngine:
        if self.engine is None:
            raise RuntimeError("the alarm service is not started")
        return self.engine


def _empty_snapshot() -> dict[str, Any]:
    return {"version": SNAPSHOT_VERSION, "seq": 0, "tags": {}, "devices": {}, "alarms": []}
