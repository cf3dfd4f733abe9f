"""The ingestion pipeline: scan loops per group → bounded queue → embedded store → sinks.

A Batch counts as accepted only once the embedded store has committed it; only then does it
reach the live cache and the sinks (alarms, MQTT, live stream). Each scan group runs on its own
drift-free schedule; a scan that overruns its interval skips ahead and is counted.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drivers.base import Driver, GroupPlan
from drivers.batch import Batch
from drivers.quality import Quality, Reason
from gateway.ingest.live_cache import LiveCache
from gateway.ingest.scheduler import ScanSchedule, sleep_until
from gateway.ingest.sinks import Sink
from gateway.runtime.logs import get_logger
from gateway.settings import GatewaySettings
from plant.catalog import Catalog
from plant.devices import Device

log = get_logger("gateway.ingest.pipeline")


QUEUE_BATCHES = 256  # bounded: at most this many scans wait for the store
RATE_WINDOW_S = 10.0


def make_driver(device: Device, plans: dict[str, GroupPlan], state_dir: Path) -> Driver:
    """The driver for a device's protocol (imported lazily: a gateway may use only one)."""
    if device.protocol == "modbus":
        from drivers.modbus.driver import ModbusDriver
        return ModbusDriver(device, plans, state_dir)
    from drivers.opcua.driver import OpcUaDriver
    return OpcUaDriver(device, plans, state_dir)


@dataclass
class GroupStats:
    """Counters of one scan group, the one source of /health and /metrics figures.

    ``scans`` counts a poll group's completed reads and a subscribe group's deliveries;
    ``overruns``, ``skipped`` and ``last_scan_duration_s`` only apply to poll groups.
    """

    scans: int = 0
    overruns: int = 0
    skipped: int = 0
    values: int = 0
    bad_values: int = 0
    last_scan_duration_s: float = 0.0
    data_age_s: deque = field(default_factory=lambda: deque(maxlen=1000))


@dataclass
class DeviceStats:
    """Counters of one device across its groups."""

    last_good_scan: float | None = None
    last_scan: float | None = None
    good_scans: int = 0
    failed_scans: int = 0
    values: int = 0
    rate: deque = field(default_factory=lambda: deque(maxlen=4096))  # (receive_ts, n)

    def values_per_s(self, now: float) -> float:
        recent = [(t, n) for t, n in self.rate if now - t <= RATE_WINDOW_S]
        if not recent:
            return 0.0
        return sum(n for _, n in recent) / RATE_WINDOW_S


class Pipeline:
    """Owns the drivers, scan loops, the accept stage and the sink fan-out."""

    def __init__(self, settings: GatewaySettings, catalog: Catalog, store, state_dir: Path):
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.state_dir = state_dir
        self.live = LiveCache(len(catalog))
        self.queue: asyncio.Queue[Batch] = asyncio.Queue(maxsize=QUEUE_BATCHES)
        self.sinks: dict[str, Sink] = {}  # by name, in the order the daemon attached them
        self.drivers: dict[str, Driver] = {}
        self.plans: dict[str, GroupPlan] = {}
        self.group_stats: dict[str, GroupStats] = {}
        self.device_stats: dict[str, DeviceStats] = {}
        self.accepted_batches = 0
        self.accepted_values = 0
        self.queue_full_waits = 0
        self.store_errors = 0
        self.last_store_error: str | None = None
        self._stale_count: dict[str, np.ndarray] = {}
        self._last_source: dict[str, np.ndarray] = {}
        self._build()

    def _build(self) -> None:
        self.drivers, self.plans = {}, {}
        self._stale_count.clear()
        self._last_source.clear()
        by_device: dict[str, dict[str, GroupPlan]] = {}
        for group in self.settings.scan_groups:
            device = next(d for d in self.settings.devices if d.id == group.device)
            tags = self.catalog.group_tags(group, device.protocol)
            plan = GroupPlan(group=group, tag_index=self.catalog.indices([t.id for t in tags]),
                             tags=tuple(tags))
            self.plans[group.id] = plan
            by_device.setdefault(device.id, {})[group.id] = plan
            self.group_stats.setdefault(group.id, GroupStats())
            self.live.assign_device(plan.tag_index, device.id)
        for device in self.settings.devices:
            plans = by_device.get(device.id, {})
            self.drivers[device.id] = make_driver(device, plans, self.state_dir)
            self.device_stats.setdefault(device.id, DeviceStats())

    def add_sink(self, name: str, sink: Sink) -> None:
        """Fan every accepted list of Batches out to ``sink`` (after the sinks already added)."""
        if not isinstance(sink, Sink):
            raise TypeError(f"sink {name!r} has no on_batches(batches)")
        self.sinks[name] = sink

    def device_connections(self) -> list[tuple[str, bool]]:
        """(device id, connected) of every device whose first scan has been tried: until then
        its state says nothing yet."""
        return [(device_id, bool(driver.connected)) for device_id, driver in self.drivers.items()
                if self.device_stats[device_id].last_scan is not None]

    def reconfigure(self, settings: GatewaySettings, catalog: Catalog) -> None:
        """Adopt a new configuration (scans must be stopped and drivers closed). Live values
        of tags in both catalogs are kept; counters of groups and devices that remain too."""
        live = LiveCache(len(catalog))
        old_index = self.catalog.index
        both = [(i, old_index[t.id]) for i, t in enumerate(catalog.tags) if t.id in old_index]
        if both:
            new_idx, old_idx = (np.array(x, dtype=np.int64) for x in zip(*both, strict=True))
            for name in ("values", "quality", "reason", "source_ts", "receive_ts"):
                getattr(live, name)[new_idx] = getattr(self.live, name)[old_idx]
        self.settings, self.catalog, self.live = settings, catalog, live
        groups = {g.id for g in settings.scan_groups}
        devices = {d.id for d in settings.devices}
        self.group_stats = {k: v for k, v in self.group_stats.items() if k in groups}
        self.device_stats = {k: v for k, v in self.device_stats.items() if k in devices}
        self._build()

    # ------------------------------------------------------------------ scanning

    async def scan_loop(self, group_id: str) -> None:
        """Poll one group forever on its own schedule."""
        plan = self.plans[group_id]
        driver = self.drivers[plan.group.device]
        stats = self.group_stats[group_id]
        interval = plan.group.interval_ms / 1000.0
        schedule = ScanSchedule.starting_at(time.monotonic(), interval)
        while True:
            await sleep_until(schedule.next_due)
            started = time.monotonic()
            batch = await driver.read(group_id, time.time())
            await self.submit(batch)
            finished = time.monotonic()
            stats.last_scan_duration_s = finished - started
            schedule.advance(finished)
            stats.scans, stats.overruns, stats.skipped = (
                schedule.scans, schedule.overruns, schedule.skipped)

    async def subscribe_group(self, group_id: str) -> None:
        """Keep a ``mode = "subscribe"`` group's subscription: each delivery is one scan."""
        plan = self.plans[group_id]
        await self.drivers[plan.group.device].subscribe(group_id, self._deliver)

    async def _deliver(self, batch: Batch) -> None:
        # A subscription delivery (changed values, or the group failed as a whole) is that
        # group's scan: counted here as a poll group's is by its schedule, so /health and
        # /metrics, which both read ``group_stats``, count every group kind the same way.
        self.group_stats[batch.group].scans += 1
        await self.submit(batch)

    async def submit(self, batch: Batch) -> None:
        """Hand a Batch to the accept stage; waits (counted) when the queue is full, so a slow
        store slows the scans down (they then skip ahead, counted) instead of growing memory."""
        batch = self._mark_stale(batch)
        stats = self.group_stats[batch.group]
        stats.data_age_s.append(batch.receive_ts - batch.scan_start)
        if self.queue.full():
            self.queue_full_waits += 1
        await self.queue.put(batch)

    def _mark_stale(self, batch: Batch) -> Batch:
        """A value whose source timestamp has not advanced for `stale_after_scans` scans is
        doubtful with reason STALE (the device keeps answering but the reading is frozen)."""
        group = self.plans[batch.group].group
        if group.mode != "poll":
            return batch
        last = self._last_source.get(batch.group)
        count = self._stale_count.get(batch.group)
        if last is None or len(last) != len(batch):
            self._last_source[batch.group] = batch.source_ts.copy()
            self._stale_count[batch.group] = np.zeros(len(batch), dtype=np.int32)
            return batch
        unchanged = batch.source_ts == last
        count[:] = np.where(unchanged, count + 1, 0)
        last[:] = batch.source_ts
        stale = (count >= group.stale_after_scans) & (batch.quality == Quality.GOOD)
        if not stale.any():
            return batch
        quality = batch.quality.copy()
        reason = batch.reason.copy()
        quality[stale] = Quality.DOUBTFUL
        reason[stale] = Reason.STALE
        return Batch.build(batch.group, batch.device, batch.scan_start, batch.receive_ts,
                           batch.tag_index, batch.values, quality, reason, batch.source_ts)

    # ------------------------------------------------------------------ accepting

    async def accept_loop(self) -> None:
        """Take queued Batches (several at once when they queue up), commit them to the
        embedded store, then update the live cache and fan out to the sinks."""
        while True:
            batches = [await self.queue.get()]
            while len(batches) < 64 and not self.queue.empty():
                batches.append(self.queue.get_nowait())
            await self._accept(batches)

    async def _accept(self, batches: list[Batch]) -> None:
        while True:
            try:
                # Shielded: a shutdown that cancels this task must not interrupt the store's
                # bookkeeping of a write its thread commits anyway.
                await asyncio.shield(self.store.append_many(batches))
                break
            except Exception as exc:  # disk full, read-only state dir: keep the scans queued
                self.store_errors += 1
                self.last_store_error = f"{type(exc).__name__}: {exc}"
                log.error("embedded store write failed; retrying", error=self.last_store_error,
                          batches=len(batches))
                await asyncio.sleep(1.0)
        self.last_store_error = None
        for batch in batches:
            self.live.update(batch)
            self._count(batch)
        self.accepted_batches += len(batches)
        for name, sink in self.sinks.items():
            try:
                await sink.on_batches(batches)
            except Exception:
                log.exception("sink failed", sink=name)

    def _count(self, batch: Batch) -> None:
        n = len(batch)
        bad = int(np.count_nonzero(batch.quality == Quality.BAD))
        self.accepted_values += n
        gstats = self.group_stats[batch.group]
        gstats.values += n
        gstats.bad_values += bad
        dstats = self.device_stats[batch.device]
        dstats.last_scan = batch.receive_ts
        dstats.values += n
        dstats.rate.append((batch.receive_ts, n))
        if n and bad == n:
            dstats.failed_scans += 1
        else:
            dstats.good_scans += 1
            dstats.last_good_scan = batch.receive_ts

    async def drain(self) -> None:
        """Commit every queued Batch (used at shutdown)."""
        batches = []
        while not self.queue.empty():
            batches.append(self.queue.get_nowait())
        if batches:
            await self._accept(batches)

    # ------------------------------------------------------------------ lifecycle

    async def connect_all(self) -> None:
        await asyncio.gather(*(d.connect() for d in self.drivers.values()),
                             return_exceptions=True)

    async def close_all(self) -> None:
        await asyncio.gather(*(d.close() for d in self.drivers.values()), return_exceptions=True)

    def scan_task_names(self) -> list[tuple[str, str]]:
        """(mode, group id) for every scan group."""
        return [(p.group.mode, gid) for gid, p in self.plans.items()]
