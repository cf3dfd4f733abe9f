"""The Modbus TCP driver: scan groups read as planned requests over a small connection pool.

Each scan group is planned once (:mod:`drivers.modbus.planner`). A read hands the group's
requests to the live connections, which pull from one shared queue, so a slow or silent
request stalls only its own connection. Every failure becomes bad quality with a reason for
the tags of the failed request; nothing is raised for device trouble. Lost connections are
re-established in the background with capped exponential backoff, and while a device is down
reads fail at once as DISCONNECTED instead of queueing.

Writes (``write``) and single-tag reads (``read_tag``, the read-back after a write) use the same
connections, one request at a time per connection like the scans: they take an idle
connection when there is one, so a write waits at most for one request of a scan.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from drivers.base import (
    BatchCallback,
    GroupPlan,
    WriteNotConnected,
    WriteNotEncodable,
    WriteRefused,
    WriteTimeout,
)
from drivers.batch import Batch
from drivers.modbus.encoder import encode_write
from drivers.modbus.layout import ScanLayout
from drivers.modbus.link import Failure, ModbusLink, exception_name
from drivers.modbus.planner import Request, plan_requests
from drivers.quality import Quality, Reason, check_values
from plant.devices import ModbusDevice
from plant.schema import Tag

log = structlog.get_logger(__name__)

RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 30.0
# A connection whose requests keep timing out may be half-open: drop it and reconnect.
DROP_AFTER_TIMEOUTS = 3
# Failures after which a connection takes no more requests in this scan.
_RETIRING = frozenset({Reason.TIMEOUT, Reason.DISCONNECTED, Reason.MALFORMED_RESPONSE,
                       Reason.PROTOCOL_ERROR})


@dataclass
class ModbusStats:
    """Counters of one device, for /health, metrics and logs."""

    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # by Reason name
    exception_codes: Counter[int] = field(default_factory=Counter)
    last_error: str = ""
    last_error_ts: float | None = None
    last_good_scan: float | None = None
    reconnects: int = 0
    connected: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "errors": dict(self.errors),
                "exception_codes": {str(k): v for k, v in self.exception_codes.items()},
                "last_error": self.last_error, "last_error_ts": self.last_error_ts,
                "last_good_scan": self.last_good_scan, "reconnects": self.reconnects,
                "connected": self.connected}


@dataclass(frozen=True, eq=False)
class _GroupReader:
    """A scan group compiled for reading: requests and instrument ranges as columns."""

    tag_index: np.ndarray
    requests: tuple[Request, ...]
    layout: ScanLayout
    instrument_min: np.ndarray
    instrument_max: np.ndarray

    @classmethod
    def compile(cls, plan: GroupPlan, device: ModbusDevice) -> _GroupReader:
        tags = plan.tags
        requests = tuple(plan_requests(tags, device.max_registers, device.max_bits, device.max_gap))
        return cls(
            tag_index=np.asarray(plan.tag_index, dtype=np.int32),
            requests=requests,
            layout=ScanLayout.build(len(tags), requests),
            instrument_min=np.array([-np.inf if t.instrument_min is None else t.instrument_min
                                     for t in tags], dtype=np.float64),
            instrument_max=np.array([np.inf if t.instrument_max is None else t.instrument_max
                                     for t in tags], dtype=np.float64),
        )


@dataclass(frozen=True, eq=False)
class _TagReader:
    """One tag compiled for a read of its own: its request and layout, and instrument range."""

    request: Request
    layout: ScanLayout
    instrument_min: np.ndarray
    instrument_max: np.ndarray

    @classmethod
    def compile(cls, tag: Tag) -> _TagReader:
        (request,) = plan_requests([tag])
        return cls(request=request, layout=ScanLayout.build(1, [request]),
                   instrument_min=np.array([-np.inf if tag.instrument_min is None else tag.instrument_min]),
                   instrument_max=np.array([np.inf if tag.instrument_max is None else tag.instrument_max]))


class _LinkDown(Exception):
    """A connection attempt failed (drives the backoff)."""


@dataclass
class _Scan:
    """What one read collects per request, and what made the last connection give up."""

    responses: list[list[int] | list[bool] | None]
    outcomes: list[Reason]
    leftover: Reason = Reason.DISCONNECTED
    failed_requests: int = 0


class ModbusDriver:
    """Driver for one Modbus TCP device (see :class:`drivers.base.Driver`).

    ``connect`` tries every connection once and leaves the rest to the background reconnect;
    it does not raise when the device is down. ``state_dir`` is unused (no state to keep).
    """

    def __init__(self, device: ModbusDevice, plans: dict[str, GroupPlan], state_dir: Path) -> None:
        self.device_id = device.id
        self.device = device
        self.stats = ModbusStats()
        self._groups = {group_id: _GroupReader.compile(plan, device) for group_id, plan in plans.items()}
        most_requests = max((len(g.requests) for g in self._groups.values()), default=1)
        self._links = [
            ModbusLink(device.host, device.port, device.unit_id, device.timeout_s,
                       name=f"{device.id}#{n}", on_lost=self._on_link_lost)
            for n in range(max(1, min(device.max_concurrent, most_requests)))
        ]
        self._reconnecting: dict[int, asyncio.Task] = {}
        self._tag_readers: dict[str, _TagReader] = {}
        self._closed = False

    @property
    def connected(self) -> bool:
        return any(link.connected for link in self._links)

    async def connect(self) -> None:
        """Open every connection once; failed ones keep retrying in the background."""
        self._closed = False
        results = await asyncio.gather(*(link.connect() for link in self._links))
        for link, ok in zip(self._links, results, strict=True):
            if not ok:
                self._ensure_reconnecting(link)
        self.stats.connected = self.connected
        log.info("modbus.connect", device=self.device_id, connections=sum(results),
                 wanted=len(self._links))

    async def read(self, group: str, scan_start: float) -> Batch:
        """One scan of ``group``: one Batch, bad quality with a reason where reading failed."""
        reader = self._groups[group]
        live = [link for link in self._links if link.connected]
        for link in self._links:
            if not link.connected:
                self._ensure_reconnecting(link)
        self.stats.connected = bool(live)
        if not live:
            self._count(Reason.DISCONNECTED, f"{self.device_id}: not connected", len(reader.requests))
            return Batch.failed(group, self.device_id, scan_start, time.time(), reader.tag_index,
                                Reason.DISCONNECTED)
        count = len(reader.requests)
        scan = _Scan(responses=[None] * count, outcomes=[Reason.NOT_READ] * count)
        pending = enumerate(reader.requests)
        await asyncio.gather(*(self._work(link, pending, scan) for link in live))
        for k, _ in pending:  # every connection gave up: the rest were never sent
            scan.outcomes[k] = scan.leftover
            scan.failed_requests += 1
        values, quality, reason = reader.layout.decode(scan.responses, scan.outcomes)
        check_values(values, quality, reason, reader.instrument_min, reader.instrument_max)
        receive_ts = time.time()
        if scan.failed_requests == 0:
            self.stats.last_good_scan = receive_ts
        self.stats.connected = self.connected
        return Batch.build(group, self.device_id, scan_start, receive_ts, reader.tag_index,
                           values, quality, reason)

    async def write(self, tag: Tag, value: float, timeout_s: float) -> None:
        """Write ``value`` (engineering units) to the tag's holding registers or coil, once.

        Holding registers go as FC6 (one register) or FC16 (several), coils as FC5, encoded by
        :mod:`drivers.modbus.encoder` (its rounding rule and refusals). Raises WriteNotEncodable
        before sending, WriteNotConnected when no connection is up, WriteRefused with the
        exception's name when the device answers with one, WriteTimeout when no usable answer
        came within ``timeout_s`` (capped at three times the device's ``timeout_s``) or the
        connection dropped after sending.
        """
        if tag.modbus is None:
            raise WriteNotEncodable(f"tag {tag.id} has no modbus address")
        payload = encode_write(tag.modbus, value)
        link = self._free_link()
        if link is None:
            raise WriteNotConnected(f"{self.device_id}: not connected; tag {tag.id} was not written")
        failure = await link.write(tag.modbus.table, tag.modbus.address, payload, timeout_s)
        self.stats.requests += 1
        if failure is None:
            return
        # Not counted with the scans' errors: the write path journals every outcome.
        if failure.exception_code is not None:
            raise WriteRefused(f"{self.device_id} refused the write of {value:g} to {tag.id}: {failure.detail}",
                               status=exception_name(failure.exception_code))
        if not failure.sent:
            raise WriteNotConnected(f"{self.device_id}: {failure.detail}; tag {tag.id} was not written")
        if failure.reason is Reason.TIMEOUT:
            raise WriteTimeout(f"{failure.detail}: the write of {value:g} to {tag.id} may have reached the device")
        raise WriteTimeout(f"{failure.detail}: no usable answer; the write of {value:g} to {tag.id} "
                           "may have reached the device")

    async def read_tag(self, tag: Tag, timeout_s: float) -> tuple[float, int]:
        """Read one tag now: (value in engineering units, quality code); NaN and BAD on failure."""
        if tag.modbus is None:
            return float("nan"), int(Quality.BAD)
        reader = self._tag_readers.get(tag.id)
        if reader is None:
            reader = self._tag_readers[tag.id] = _TagReader.compile(tag)
        link = self._free_link()
        if link is None:
            return float("nan"), int(Quality.BAD)
        result = await link.read(reader.request, timeout_s)
        self.stats.requests += 1
        if isinstance(result, Failure):
            return float("nan"), int(Quality.BAD)
        values, quality, reason = reader.layout.decode([result], [Reason.NONE])
        check_values(values, quality, reason, reader.instrument_min, reader.instrument_max)
        return float(values[0]), int(quality[0])

    def _free_link(self) -> ModbusLink | None:
        """A connected link, an idle one when there is one (a write then waits for no scan)."""
        live = [link for link in self._links if link.connected]
        for link in self._links:
            if not link.connected:
                self._ensure_reconnecting(link)
        if not live:
            return None
        return next((link for link in live if not link.busy), live[0])

    async def subscribe(self, group: str, callback: BatchCallback) -> None:
        """Modbus has no subscriptions; scan groups of Modbus devices are polled."""
        raise NotImplementedError(f"{self.device_id}: Modbus devices are polled, not subscribed")

    async def close(self) -> None:
        """Stop reconnecting and close every connection."""
        self._closed = True
        tasks = list(self._reconnecting.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._reconnecting.clear()
        for link in self._links:
            link.close()
        self.stats.connected = False

    async def _work(self, link: ModbusLink, pending: Iterator[tuple[int, Request]], scan: _Scan) -> None:
        # Latency bound: only store results here; decoding happens once after the scan.
        for k, request in pending:
            result = await link.read(request)
            self.stats.requests += 1
            if not isinstance(result, Failure):
                scan.responses[k] = result
                scan.outcomes[k] = Reason.NONE
                link.consecutive_timeouts = 0
                continue
            scan.outcomes[k] = result.reason
            scan.failed_requests += 1
            self._count(result.reason, result.detail)
            if result.exception_code is not None:
                self.stats.exception_codes[result.exception_code] += 1
            if result.reason in _RETIRING:
                scan.leftover = result.reason
                self._after_failure(link, result.reason)
                return

    def _after_failure(self, link: ModbusLink, reason: Reason) -> None:
        if reason is Reason.TIMEOUT:
            link.consecutive_timeouts += 1
            if link.consecutive_timeouts >= DROP_AFTER_TIMEOUTS and link.connected:
                log.warning("modbus.drop_silent_connection", device=self.device_id, link=link.name)
                link.close()
        if not link.connected:
            self._ensure_reconnecting(link)

    def _count(self, reason: Reason, detail: str, times: int = 1) -> None:
        self.stats.errors[reason.name] += times
        self.stats.last_error = detail
        self.stats.last_error_ts = time.time()

    def _on_link_lost(self, link: ModbusLink) -> None:
        self.stats.connected = self.connected
        log.warning("modbus.connection_lost", device=self.device_id, link=link.name)
        self._ensure_reconnecting(link)

    def _ensure_reconnecting(self, link: ModbusLink) -> None:
        key = id(link)
        if self._closed or key in self._reconnecting:
            return
        try:
            task = asyncio.get_running_loop().create_task(self._reconnect(link))
        except RuntimeError:  # no running loop (closing): nothing to schedule
            return
        self._reconnecting[key] = task
        task.add_done_callback(lambda _: self._reconnecting.pop(key, None))

    async def _reconnect(self, link: ModbusLink) -> None:
        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=RECONNECT_MIN_S, min=RECONNECT_MIN_S, max=RECONNECT_MAX_S),
            retry=retry_if_exception_type(_LinkDown), reraise=True)
        await retrying(self._connect_or_raise, link)
        self.stats.reconnects += 1
        self.stats.connected = True
        log.info("modbus.reconnected", device=self.device_id, link=link.name)

    async def _connect_or_raise(self, link: ModbusLink) -> None:
        if link.connected:
            return
        if not await link.connect():
            raise _LinkDown(link.name)

