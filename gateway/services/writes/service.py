"""The one write path: every front door (HTTP, northbound OPC-UA, the status page) writes a
tag through :meth:`WriteService.write`.

For each request::

    journal the request (durable) -> validate -> driver.write -> read back -> journal the outcome
                                                                             -> operator-action event

Validation (:mod:`.rules`): writable, the caller's role, a finite number inside the write
range, the step from the current value, the permissive, a device that is connected. A refusal
sends nothing and is journaled ``rejected`` with its reason. A write is sent once and never
retried: a timeout may have reached the device, so it is journaled ``unconfirmed``; a device
that says no is ``failed``. After a write the tag is read back through the same driver until
it agrees within the tag's tolerance (``confirmed``) or the read-back timeout passes
(``unconfirmed``).

Writes to one tag run one at a time, in the order they arrived (a per-tag FIFO lock); each
runs in a task of its own, so a caller that goes away (an HTTP client disconnecting) does not
interrupt a write half-way. At shutdown (:meth:`finish`) new writes are refused, the writes
in flight get ``shutdown_wait_s`` to end, and the rest are journaled: ``unknown`` if sent,
``rejected`` if still waiting their turn. A row found pending at start belonged to a gateway
that died mid-write: it becomes ``unknown``.

Every outcome is also an ISA-18.2 operator-action event in the alarm journal
(``AlarmService.record_operator_action``), so the alarm journal tells the whole story.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from drivers.base import (
    WriteError,
    WriteNotConnected,
    WriteNotEncodable,
    WriteRefused,
    WriteTimeout,
)
from drivers.quality import Quality
from gateway.ingest.live_cache import LiveCache
from gateway.runtime.logs import get_logger
from gateway.services.base import Tasks
from gateway.services.writes import rules
from gateway.services.writes.journal import WriteFilter, WriteJournal
from gateway.services.writes.readback import DRIVER_GRACE_S, WriteDriver, device_reading, read_back
from gateway.services.writes.records import Outcome, Refusal, WriteRecord, WriteRequest
from gateway.settings import WritesSettings
from plant.catalog import Catalog
from plant.schema import Tag
from plant.writes import write_device_by_tag

log = get_logger("gateway.services.writes")

SERVICE_NAME = "writes"
RETENTION_EVERY_S = 3600.0
CRASH_DETAIL = ("the gateway stopped before this write's outcome was known (crash, kill or "
                "power loss): it may or may not have reached the device; check the device")
SHUTDOWN_DETAIL = ("the gateway shut down while this write was in flight: it may or may not "
                   "have reached the device; check the device")


class OperatorActions(Protocol):
    """Where each write's outcome is journaled as an alarm-system operator action
    (``gateway.services.alarms.service.AlarmService``)."""

    async def record_operator_action(self, *, source: str, user: str, origin: str, action: str,
                                     outcome: str, message: str, ref: str | None = None,
                                     unit_id: str | None = None) -> None: ...


@dataclass
class _TagQueue:
    """Serializes the writes of one tag (asyncio.Lock wakes waiters in FIFO order)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0
    last_confirmed: tuple[float, float] | None = None  # (value, epoch s) of the last confirmed


@dataclass
class _InFlight:
    record: WriteRecord
    sent: bool = False
    # The row as finish() journaled it, for a caller whose write was cut off at shutdown.
    settled: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class WriteService:
    """The ``writes`` service (implements ``gateway.services.base.Service``).

    ``drivers`` and ``live`` are read at each write (the pipeline replaces both on reload);
    ``devices_by_tag`` names the device that scans (and so writes and reads back) each
    writable tag (``plant.writes.write_device_by_tag``).
    """

    name = SERVICE_NAME

    def __init__(self, settings: WritesSettings, catalog: Catalog,
                 devices_by_tag: Mapping[str, str],
                 drivers: Callable[[], Mapping[str, WriteDriver]],
                 live: Callable[[], LiveCache], journal_path: Path, tasks: Tasks,
                 alarms: OperatorActions | None = None, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.catalog = catalog
        self.devices_by_tag = dict(devices_by_tag)
        self.drivers = drivers
        self.live = live
        self.tasks = tasks
        self.alarms = alarms
        self.clock = clock
        self.journal = WriteJournal(journal_path, settings.retention_days * 86400)
        self.outcomes: Counter[str] = Counter()
        self.recovered_unknown = 0
        self._queues: dict[str, _TagQueue] = {}
        self._tasks: set[asyncio.Task] = set()
        self._in_flight: dict[int, _InFlight] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._finished = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the journal; rows left pending by a gateway that died become ``unknown``."""
        await self.journal.open()
        self._loop = asyncio.get_running_loop()
        for record in await self.journal.settle_pending(Outcome.UNKNOWN, CRASH_DETAIL,
                                                        self.clock()):
            self.recovered_unknown += 1
            log.warning("write found pending at start: outcome unknown", write_id=record.id,
                        tag_id=record.tag_id, user=record.user, value=record.requested_value)
            await self._announce(record)
        self.tasks.start(f"{SERVICE_NAME}:retention", self._retention_loop)
        log.info("write service started", writable=len(self.writable_tags()),
                 recovered_unknown=self.recovered_unknown)

    async def reload(self, settings: Any, catalog: Catalog) -> None:
        """SIGHUP: the new catalog's write settings and device map apply to the next write."""
        self.settings, self.catalog = settings.writes, catalog
        self.devices_by_tag = write_device_by_tag(settings.devices, settings.scan_groups,
                                                  catalog.plant)

    async def finish(self, wait_s: float | None = None) -> None:
        """Refuse new writes, give those in flight ``wait_s`` to end, journal the rest."""
        if self._finished:
            return
        self._closing = True
        if self._loop is None:  # never started: nothing in flight, no journal open
            self._finished = True
            return
        wait_s = self.settings.shutdown_wait_s if wait_s is None else wait_s
        running = set(self._tasks)
        if running:
            log.info("waiting for writes in flight", writes=len(running), wait_s=wait_s)
            _, late = await asyncio.wait(running, timeout=wait_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        left = list(self._in_flight.values())
        self._in_flight.clear()
        now = self.clock()
        sent = [f.record.id for f in left if f.sent]
        waiting = [f.record.id for f in left if not f.sent]
        settled = await self.journal.settle_pending(Outcome.UNKNOWN, SHUTDOWN_DETAIL, now, sent)
        settled += await self.journal.settle_pending(
            Outcome.REJECTED, "the gateway shut down before this write was sent", now, waiting,
            refusal=Refusal.SHUTTING_DOWN)
        by_id = {r.id: r for r in settled}
        for record in settled:
            log.warning("write settled at shutdown", write_id=record.id, tag_id=record.tag_id,
                        outcome=record.outcome.value)
            await self._announce(record)
        for flight in left:
            if not flight.settled.done():
                record = by_id.get(flight.record.id) or await self.journal.get(flight.record.id)
                flight.settled.set_result(record)
        self._finished = True

    async def stop(self) -> None:
        await self.finish()
        if self._loop is not None:
            await self.journal.close()
        log.info("write service stopped", outcomes=dict(self.outcomes))

    async def _retention_loop(self) -> None:
        while True:
            deleted = await self.journal.enforce_retention(self.clock())
            if deleted:
                log.info("write journal trimmed", deleted=deleted)
            await asyncio.sleep(RETENTION_EVERY_S)

    # ------------------------------------------------------------------ the write path

    def writable_tags(self) -> list[Tag]:
        """The catalog's writable tags (none when writes are switched off)."""
        if not self.settings.enabled:
            return []
        return [t for t in self.catalog.plant.tags if t.writable]

    def submit_threadsafe(self, request: WriteRequest) -> concurrent.futures.Future[WriteRecord]:
        """Hand a write over from another thread's loop (the northbound OPC-UA server)."""
        if self._loop is None:
            raise RuntimeError("the write service is not started")
        return asyncio.run_coroutine_threadsafe(self.write(request), self._loop)

    async def write(self, request: WriteRequest) -> WriteRecord:
        """Carry out one write request; returns its journal row with the outcome."""
        now = self.clock()
        index = self.catalog.index.get(request.tag_id)
        old = None if index is None else self._reading(index, now)
        old_value = None if old is None or not math.isfinite(old.value) else old.value
        old_quality = None if old is None else old.quality

        async def reject(refusal: Refusal, detail: str) -> WriteRecord:
            record = await self.journal.reject(request, refusal, detail, old_value, old_quality,
                                               self.clock())
            return await self._done(record)

        if self._closing:
            return await reject(Refusal.SHUTTING_DOWN, "the gateway is shutting down")
        if index is None:
            return await reject(Refusal.UNKNOWN_TAG, f"no tag '{request.tag_id}'")
        tag = self.catalog.tags[index]
        if not self.settings.enabled:
            return await reject(Refusal.NOT_WRITABLE, "writes are switched off ([writes] enabled"
                                                      " = false)")
        problem = rules.check_static(tag, request.value, request.role)
        if problem is not None:
            return await reject(problem.refusal, problem.detail)
        queue = self._queues.setdefault(tag.id, _TagQueue())
        if queue.waiting >= self.settings.max_queued_per_tag:
            return await reject(Refusal.BUSY, f"{queue.waiting} writes to {tag.id} are already "
                                              "waiting; try again")
        queue.waiting += 1
        try:
            record = await self.journal.request(request, old_value, old_quality, now)
        except BaseException:
            queue.waiting -= 1
            raise
        flight = self._in_flight[record.id] = _InFlight(record)
        # No await between the journal insert and the lock: rows and turns keep one order.
        task = asyncio.get_running_loop().create_task(self._run(tag, request, flight, queue))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if task.cancelled() and (caller is None or not caller.cancelling()):
                return await flight.settled  # cut off by finish(): answer what it journaled
            raise

    async def _run(self, tag: Tag, request: WriteRequest, flight: _InFlight,
                   queue: _TagQueue) -> WriteRecord:
        # Cancelled (only by finish(), at shutdown): the row stays in _in_flight and
        # finish() journals it as unknown (sent) or rejected (still waiting).
        turn = False
        try:
            async with queue.lock:
                turn = True
                queue.waiting -= 1
                record = await self._carry_out(tag, request, flight, queue)
        finally:
            if not turn:
                queue.waiting -= 1
        self._in_flight.pop(record.id, None)
        return await self._done(record)

    async def _carry_out(self, tag: Tag, request: WriteRequest, flight: _InFlight,
                         queue: _TagQueue) -> WriteRecord:
        s = self.settings
        write_id = flight.record.id
        now = self.clock()
        index = self.catalog.index.get(tag.id)
        if index is None or self._closing:  # removed by a reload, or shutting down meanwhile
            return await self.journal.finish(
                write_id, Outcome.REJECTED, "the gateway is shutting down" if self._closing
                else f"no tag '{tag.id}'", now,
                refusal=Refusal.SHUTTING_DOWN if self._closing else Refusal.UNKNOWN_TAG)
        tag = self.catalog.tags[index]  # the current catalog's settings for this tag
        live = self._reading(index, now)
        old_value = live.value if math.isfinite(live.value) else None
        old_quality = live.quality

        def finish(outcome: Outcome, detail: str, **extra: Any):
            return self.journal.finish(write_id, outcome, detail, self.clock(),
                                       old_value=old_value, old_quality=old_quality,
                                       **extra)

        problem = rules.check_static(tag, request.value, request.role)
        if problem is not None:  # the catalog changed (SIGHUP) while the write waited
            return await finish(Outcome.REJECTED, problem.detail, refusal=problem.refusal)
        device_id = self.devices_by_tag.get(tag.id)
        driver = None if device_id is None else self.drivers().get(device_id)
        if driver is None:
            return await finish(Outcome.REJECTED, f"no scan group reads {tag.id}, so no device "
                                "can write it", refusal=Refusal.NO_DEVICE)
        if not driver.connected:
            return await finish(Outcome.REJECTED, f"device {device_id} is not connected",
                                refusal=Refusal.NOT_CONNECTED, device_id=device_id)
        current = live
        if queue.last_confirmed is not None:
            value, at = queue.last_confirmed
            if at > now - live.age_s:  # confirmed after the live value was received
                current = rules.Reading(value, Quality.GOOD, now - at)
        if tag.max_step is not None and not current.trusted(s.max_value_age_s):
            # A subscribed tag that does not change is not refreshed: ask the device itself.
            current = await device_reading(driver, tag, s.read_back_timeout_s)
            if math.isfinite(current.value) and current.quality >= Quality.GOOD:
                old_value, old_quality = current.value, current.quality
        permissive = None
        if tag.permissive is not None and tag.permissive.tag in self.catalog.index:
            p_index = self.catalog.index[tag.permissive.tag]
            permissive = self._reading(p_index, now)
            p_driver = self.drivers().get(self.live().device[p_index] or "")
            if not permissive.trusted(s.max_value_age_s) and p_driver is not None:
                permissive = await device_reading(p_driver, self.catalog.tags[p_index],
                                                  s.read_back_timeout_s)
        problem = rules.check_live(tag, request.value, current, permissive, s.max_value_age_s)
        if problem is not None:
            return await finish(Outcome.REJECTED, problem.detail, refusal=problem.refusal,
                                device_id=device_id)
        flight.sent = True
        try:
            await asyncio.wait_for(driver.write(tag, request.value, s.write_timeout_s),
                                   s.write_timeout_s + DRIVER_GRACE_S)
        except WriteNotEncodable as exc:
            flight.sent = False
            return await finish(Outcome.REJECTED, exc.reason, refusal=Refusal.NOT_ENCODABLE,
                                device_id=device_id)
        except WriteRefused as exc:
            return await finish(Outcome.FAILED, f"device {device_id} refused the write: "
                                f"{exc.reason}", device_id=device_id, device_status=exc.status)
        except WriteNotConnected as exc:
            return await finish(Outcome.FAILED, f"device {device_id}: {exc.reason}",
                                device_id=device_id, device_status="NotConnected")
        except (WriteTimeout, TimeoutError) as exc:
            why = (exc.reason if isinstance(exc, WriteError)
                   else f"no answer within {s.write_timeout_s + DRIVER_GRACE_S:g} s")
            return await finish(Outcome.UNCONFIRMED, f"device {device_id} did not answer the "
                                f"write ({why}); it may have reached the device and is not "
                                "retried", device_id=device_id, device_status="Timeout")
        except WriteError as exc:
            return await finish(Outcome.FAILED, f"device {device_id}: {exc.reason}",
                                device_id=device_id)
        except Exception as exc:  # a driver bug: whether it was sent is not known
            log.exception("driver write failed unexpectedly", tag_id=tag.id, device=device_id)
            return await finish(Outcome.UNCONFIRMED, f"the driver failed unexpectedly "
                                f"({type(exc).__name__}: {exc}); the write may have reached the "
                                "device and is not retried", device_id=device_id)
        value, quality, problem_text = await read_back(
            driver, tag, request.value, s.read_back_timeout_s, s.read_back_interval_s)
        if problem_text is None:
            queue.last_confirmed = (value, self.clock())
            return await finish(Outcome.CONFIRMED, f"read back {value:g} "
                                f"{tag.engineering_units}", device_id=device_id,
                                read_back=value, read_back_quality=quality)
        return await finish(Outcome.UNCONFIRMED, problem_text, device_id=device_id,
                            read_back=value, read_back_quality=quality)

    def _reading(self, index: int, now: float) -> rules.Reading:
        live = self.live()
        received = float(live.receive_ts[index])
        age = now - received if received > 0 else math.inf
        return rules.Reading(float(live.values[index]), int(live.quality[index]), age)

    async def _done(self, record: WriteRecord) -> WriteRecord:
        self.outcomes[record.outcome.value] += 1
        log.info("tag write", write_id=record.id, tag_id=record.tag_id, user=record.user,
                 origin=record.origin, value=record.requested_value, old=record.old_value,
                 outcome=record.outcome.value, detail=record.detail)
        await self._announce(record)
        return record

    async def _announce(self, record: WriteRecord) -> None:
        """The ISA-18.2 operator-action event of a write, in the alarm journal."""
        if self.alarms is None:
            return
        index = self.catalog.index.get(record.tag_id)
        unit_id = None if index is None else self.catalog.tags[index].unit_id
        old = "?" if record.old_value is None else f"{record.old_value:g}"
        new = "?" if record.requested_value is None else f"{record.requested_value:g}"
        message = (f"write {record.tag_id} {old} -> {new} by {record.user} ({record.origin}"
                   f"{' ' + record.client if record.client else ''}): {record.outcome.value}"
                   f"{': ' + record.detail if record.detail else ''}")
        try:
            await self.alarms.record_operator_action(
                source=record.tag_id, user=record.user, origin=record.origin, action="write",
                outcome=record.outcome.value, message=message, ref=f"write:{record.id}",
                unit_id=unit_id)
        except Exception:
            log.exception("operator action not journaled", write_id=record.id)

    # ------------------------------------------------------------------ views

    async def page(self, where: WriteFilter, limit: int, offset: int) -> list[WriteRecord]:
        return await self.journal.query(where, limit, offset)

    def health(self) -> dict[str, Any]:
        """The ``writes`` section of /health."""
        return {"enabled": self.settings.enabled, "writable_tags": len(self.writable_tags()),
                "in_flight": len(self._in_flight), "outcomes": dict(self.outcomes),
                "recovered_unknown": self.recovered_unknown}

    def metrics(self) -> Iterator[Any]:
        total = CounterMetricFamily("refineryiq_tag_writes", "Tag writes by outcome since start",
                                    labels=["outcome"])
        for outcome in Outcome:
            if outcome is not Outcome.PENDING:
                total.add_metric([outcome.value], self.outcomes.get(outcome.value, 0))
        yield total
        in_flight = GaugeMetricFamily("refineryiq_tag_writes_in_flight",
                                      "Tag writes waiting or running")
        in_flight.add_metric([], len(self._in_flight))
        yield in_flight
