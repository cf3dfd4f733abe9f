"""The Sparkplug B edge node: the gateway's devices and tags for Sparkplug host applications.

A service and a pipeline sink. ``on_batches`` only numbers and queues the accepted Batches;
one task publishes, in store order, so the accept path never waits on MQTT. The session rules
are Eclipse Sparkplug 3.0's:

1. Connect (a new ``bdSeq`` in the NDEATH will each time, :mod:`.client`), subscribe to NCMD,
   DCMD and, with a primary host, ``spBv1.0/STATE/{host}``.
2. With a primary host, wait until its STATE says online. Until then nothing is published:
   the values accepted meanwhile are *held* (they are in the embedded store).
3. NBIRTH (``seq`` 0, ``bdSeq``, ``Node Control/Rebirth``, node metrics), then a DBIRTH per
   connected device with every tag's current value.
4. The held values, as historical metrics (``is_historical``) in store order, then live DDATA
   by exception. A DDEATH when a device's connection is lost, a DBIRTH when it returns.
5. On NCMD ``Node Control/Rebirth``: births again (same ``bdSeq``). On a STATE that says the
   host went offline: NDEATH, disconnect, and start over at 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from drivers.batch import Batch
from gateway.ingest.live_cache import LiveCache
from gateway.northbound.sparkplug import payloads
from gateway.northbound.sparkplug.client import Handlers, NodeClient
from gateway.northbound.sparkplug.commands import Commands, DeviceCommands
from gateway.northbound.sparkplug.exception import ExceptionFilter, deadbands
from gateway.northbound.sparkplug.model import (
    REBIRTH,
    DeviceModel,
    NodeMetrics,
    build_devices,
)
from gateway.northbound.sparkplug.session import Sequence as SeqCounter
from gateway.northbound.sparkplug.session import SessionFile
from gateway.northbound.sparkplug.stream import BatchStream, ReplayStore
from gateway.northbound.sparkplug.topics import MessageType, check_id, parse, state_topic, topic
from gateway.settings.mqtt import MqttSettings
from gateway.settings.sparkplug import SparkplugSettings
from plant.catalog import Catalog

log = structlog.get_logger(__name__)

SERVICE_NAME = "sparkplug"
# Values per DDATA message at most, and per read from the store while replaying.
MAX_METRICS_PER_MESSAGE = 20_000
# Replay waits for paho to have written each chunk before reading the next (bounded memory).
SENT_TIMEOUT_S = 30.0
CURSOR_SAVE_EVERY_S = 5.0
STOP_DEADLINE_S = 3.0
TICK_S = 1.0  # device connections are looked at least this often


DeviceTags = Mapping[str, Sequence[int]] | Callable[[], Mapping[str, Sequence[int]]]


class SparkplugNode:
    """The edge node ``spBv1.0/{group}/.../{edge_node}`` with one Sparkplug device per
    southbound device."""

    name = SERVICE_NAME

    def __init__(self, settings: SparkplugSettings, mqtt: MqttSettings, gateway_id: str,
                 site: str, catalog: Catalog, live: LiveCache | Callable[[], LiveCache],
                 state_dir: Path,
                 device_connections: Callable[[], Iterable[tuple[str, bool]]],
                 device_tags: DeviceTags, store: ReplayStore, *,
                 health_status: Callable[[], str] | None = None,
                 values_per_s: Callable[[], float] | None = None,
                 store_backlog: Callable[[], int] | None = None,
                 commands: Commands | None = None,
                 clock: Callable[[], float] = time.time, client_id: str | None = None):
        self.settings = settings
        self.group_id = check_id("sparkplug.group_id", settings.group_id or site)
        self.edge_node_id = check_id("sparkplug.edge_node_id", settings.edge_node_id or gateway_id)
        self.catalog = catalog
        self._live = live
        self.device_connections = device_connections
        self._device_tags = device_tags
        self.clock = clock
        self._figures = {NodeMetrics.HEALTH: health_status, NodeMetrics.VALUES_PER_S: values_per_s,
                         NodeMetrics.STORE_BACKLOG: store_backlog}
        self.session = SessionFile(state_dir)
        self.stream = BatchStream(store, self.session.cursor)
        self._seq = SeqCounter()
        host = settings.primary_host_id
        self.state_topic = state_topic(host) if host else None
        subscriptions = [topic(self.group_id, MessageType.NCMD, self.edge_node_id),
                         topic(self.group_id, MessageType.DCMD, self.edge_node_id, "+")]
        if self.state_topic:
            subscriptions.append(self.state_topic)
        self.client = NodeClient(
            mqtt, client_id or f"refineryiq-spb-{self.group_id}-{self.edge_node_id}",
            topic(self.group_id, MessageType.NDEATH, self.edge_node_id), subscriptions,
            self.session, Handlers(self._on_ready, self._on_lost, self._on_message))
        self.commands = DeviceCommands(
            commands if settings.allow_commands else None,
            user=f"sparkplug:{host}" if host else "sparkplug-host")
        self._bind(catalog)
        # Session state, all on the event loop.
        self._bd_seq: int | None = None  # bdSeq of the current MQTT session, once subscribed
        self._host_online = self.state_topic is None
        self._host_state_ts = -1
        self._born = False
        self._rebirth = False
        self._end_session = False
        self._born_devices: set[str] = set()
        self._live_from: int | None = None  # ids below were accepted before the births
        self._device_live_from: dict[str, int | None] = {}
        self._node_values: dict[Any, Any] = {}
        self._next_node_metrics = 0.0
        self._next_publish = 0.0
        self._next_cursor_save = 0.0
        self._saved_cursor = self.session.cursor
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Counters for /health and /metrics.
        self.births = 0
        self.values_published = 0
        self.historical_published = 0
        self.ddata_messages = 0

    @property
    def live(self) -> LiveCache:
        """The pipeline's live cache (a callable is asked each time: a reload replaces it)."""
        return self._live() if callable(self._live) else self._live

    def _bind(self, catalog: Catalog) -> None:
        tags = self._device_tags() if callable(self._device_tags) else self._device_tags
        self.catalog = catalog
        self.devices: dict[str, DeviceModel] = build_devices(catalog, tags)
        self._columns = {d: m.alias_columns(len(catalog)) for d, m in self.devices.items()}
        self._deadband = deadbands(catalog, self.settings.deadband_pct)
        self._live_filter = ExceptionFilter(self._deadband)
        self._hist_filter = ExceptionFilter(self._deadband)
        self.commands.bind(self.devices)

    # ------------------------------------------------------------------ service

    async def start(self) -> None:
        """Start publishing (connects in the background; never waits for the broker)."""
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="sparkplug")
        await self.client.start()
        log.info("sparkplug starting", group_id=self.group_id, edge_node_id=self.edge_node_id,
                 primary_host=self.settings.primary_host_id, devices=len(self.devices),
                 cursor=self.stream.cursor)

    async def stop(self, deadline_s: float = STOP_DEADLINE_S) -> None:
        """NDEATH (so hosts need not wait for the will), disconnect, keep the cursor."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.commands.stop()
        if self.client.connected and self._bd_seq is not None:
            mid = self.client.publish(self._death_topic(), payloads.node_death(
                self._bd_seq, payloads.ms(self.clock())), qos=1)
            await self.client.sent(mid, deadline_s)
        await self.client.stop()
        await self._save_cursor(force=True)
        log.info("sparkplug stopped", cursor=self.stream.cursor, births=self.births,
                 values_published=self.values_published)

    async def reload(self, settings: Any, catalog: Catalog) -> None:
        """A new catalog (SIGHUP): new device models, then births announce them."""
        self._bind(catalog)
        self._rebirth = True
        self._wake.set()

    async def on_batches(self, batches: list[Batch]) -> None:
        """Pipeline sink: number the accepted Batches and wake the publisher."""
        await self.stream.accept(batches, keep=self._born)
        if self._live_from is None and self._born:
            self._live_from = self.stream.first_seen
        for d, mark in self._device_live_from.items():
            if mark is None:
                self._device_live_from[d] = self.stream.first_seen
        self._wake.set()

    # ------------------------------------------------------------------ health

    @property
    def holding(self) -> bool:
        """True while values are kept back: no session, or the primary host is offline."""
        return not self._born

    def health(self) -> dict[str, Any]:
        """The ``sparkplug`` part of /health."""
        return {"state": self._state_word(), "group_id": self.group_id,
                "edge_node_id": self.edge_node_id, "bd_seq": self._bd_seq,
                "primary_host_id": self.settings.primary_host_id,
                "primary_host_online": self._host_online, "devices_born": sorted(self._born_devices),
                "held_batches": self.stream.behind, "births": self.births,
                "batches_lost_to_retention": self.stream.skipped,
                "values_published": self.values_published,
                "historical_published": self.historical_published,
                "bytes_sent": self.client.bytes_sent, "commands": self.commands.counters.as_dict()}

    def problem(self) -> str | None:
        """Health check: values are being held because the broker or the host is away."""
        if self._born or self.stream.behind == 0:
            return None
        why = ("broker unreachable" if not self.client.connected else
               f"primary host {self.settings.primary_host_id} offline")
        return f"sparkplug: {why}; {self.stream.behind} accepted scans held for replay"

    def _state_word(self) -> str:
        if not self.client.connected:
            return "disconnected"
        if not self._host_online:
            return "waiting_for_host"
        return "online" if self._born else "connecting"

    def metrics(self) -> Iterator[Any]:
        online = GaugeMetricFamily("refineryiq_sparkplug_online",
                                   "1 while the Sparkplug node session is established")
        online.add_metric([], 1.0 if self._born else 0.0)
        yield online
        held = GaugeMetricFamily("refineryiq_sparkplug_held_batches",
                                 "Accepted scans not yet published over Sparkplug")
        held.add_metric([], self.stream.behind)
        yield held
        values = CounterMetricFamily("refineryiq_sparkplug_values",
                                     "Values published in DDATA", labels=["kind"])
        values.add_metric(["live"], self.values_published - self.historical_published)
        values.add_metric(["historical"], self.historical_published)
        yield values
        sent = CounterMetricFamily("refineryiq_sparkplug_sent_bytes",
                                   "Bytes of topic and payload handed to the broker")
        sent.add_metric([], self.client.bytes_sent)
        yield sent

    # ------------------------------------------------------------------ MQTT events

    def _on_ready(self, bd_seq: int) -> None:
        self._bd_seq = bd_seq
        self._born = False
        self._wake.set()

    def _on_lost(self) -> None:
        self._bd_seq = None
        self._end_session_state()
        self._wake.set()

    def _end_session_state(self) -> None:
        self._born = False
        self._born_devices.clear()
        self._device_live_from.clear()
        self.stream.drop_queue()
        if self.state_topic is not None:
            self._host_online = False  # until the (retained) STATE of the next session says

    def _on_message(self, name: str, data: bytes) -> None:
        if self.state_topic is not None and name == self.state_topic:
            self._on_host_state(data)
            return
        parsed = parse(name)
        if parsed is None or parsed.group_id != self.group_id or parsed.edge_node_id != self.edge_node_id:
            return
        try:
            metrics = payloads.parse_command(data)
        except ValueError as exc:
            log.warning("sparkplug command ignored", topic=name, error=str(exc))
            return
        if parsed.message_type == MessageType.NCMD:
            if any((m.name == REBIRTH or m.alias == NodeMetrics.REBIRTH.alias) and m.value
                   for m in metrics):
                log.info("sparkplug rebirth requested", topic=name)
                self._rebirth = True
                self._wake.set()
        elif parsed.message_type == MessageType.DCMD and parsed.device_id is not None:
            self.commands.handle(parsed.device_id, name, metrics)

    def _on_host_state(self, data: bytes) -> None:
        """Sparkplug 3.0 STATE: JSON ``{"online": bool, "timestamp": ms}``; one older than the
        last one taken is ignored (a stale retained message, section 5.7)."""
        try:
            body = json.loads(data)
            online, stamp = bool(body["online"]), int(body["timestamp"])
        except (ValueError, KeyError, TypeError):
            log.warning("sparkplug STATE payload not understood", topic=self.state_topic)
            return
        if stamp < self._host_state_ts:
            return
        self._host_state_ts = stamp
        if online == self._host_online:
            return
        log.info("sparkplug primary host " + ("online" if online else "offline"),
                 host=self.settings.primary_host_id)
        self._host_online = online
        if not online and self._born:
            # NDEATH and disconnect (section 5.10); nothing more is published meanwhile, so
            # what is accepted from now on is held for the host's return.
            self._end_session = True
            self._born = False
        self._wake.set()

    # ------------------------------------------------------------------ the publisher task

    async def _run(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as its timeout expires, and stop() would wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._wait_s()):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sparkplug publisher failed; retrying")
                await asyncio.sleep(1.0)

    def _wait_s(self) -> float:
        if not self._born:
            return TICK_S  # events (connection, STATE) wake the task; nothing is due by time
        now = self.clock()
        due = [now + TICK_S, self._next_node_metrics]
        if self.stream.behind:
            due.append(self._next_publish)
        return min(max(min(due) - now, 0.01), TICK_S)

    async def _step(self) -> None:
        if self._bd_seq is None or not self.client.connected:
            return
        if self._end_session:
            await self._disconnect_for_host()
            return
        if not self._host_online:
            return
        if not self._born or self._rebirth:
            self._births()
        self._check_devices()
        now = self.clock()
        if now >= self._next_publish:
            await self._publish_pending()
            self._next_publish = now + self.settings.publish_period_s
        if now >= self._next_node_metrics:
            self._publish_node_metrics()
            self._next_node_metrics = now + self.settings.node_metrics_period_s
        await self._save_cursor()

    async def _disconnect_for_host(self) -> None:
        self._end_session = False
        mid = self.client.publish(self._death_topic(), payloads.node_death(
            self._bd_seq, payloads.ms(self.clock())), qos=1)
        await self.client.sent(mid, STOP_DEADLINE_S)
        self._end_session_state()
        await self._save_cursor(force=True)
        await self.client.reconnect()

    # ------------------------------------------------------------------ births and deaths

    def _births(self) -> None:
        now_ms = payloads.ms(self.clock())
        values = [False, *(self._node_figure(m) for m in NodeMetrics.ALL[1:])]
        self._node_values = dict(zip(NodeMetrics.ALL, values, strict=True))
        self._publish(topic(self.group_id, MessageType.NBIRTH, self.edge_node_id),
                      payloads.node_birth(self._seq.birth(), self._bd_seq, now_ms,
                                          NodeMetrics.ALL, values))
        self._born, self._rebirth = True, False
        self.births += 1
        # What the host has of each tag's history is what was reported live before; the live
        # reports start again from the DBIRTH values.
        self._hist_filter = self._live_filter.copy()
        self._live_filter = ExceptionFilter(self._deadband)
        self._live_from = self.stream.next_id
        self._born_devices.clear()
        self._device_live_from.clear()
        self._next_node_metrics = self.clock() + self.settings.node_metrics_period_s
        log.info("sparkplug NBIRTH", bd_seq=self._bd_seq, held_batches=self.stream.behind)

    def _check_devices(self) -> None:
        connected = dict(self.device_connections())
        for device_id, model in self.devices.items():
            up = connected.get(device_id)
            if device_id in self._born_devices and up is not True:
                self._publish(topic(self.group_id, MessageType.DDEATH, self.edge_node_id, device_id),
                              payloads.device_death(self._seq.next(), payloads.ms(self.clock())))
                self._born_devices.discard(device_id)
                log.info("sparkplug DDEATH", device=device_id)
            elif device_id not in self._born_devices and up is True:
                self._device_birth(model)
        for device_id in list(self._born_devices - set(self.devices)):
            self._born_devices.discard(device_id)  # gone from the configuration (reload)

    def _device_birth(self, model: DeviceModel) -> None:
        idx = model.tag_index
        live = self.live
        values, quality = live.values[idx].copy(), live.quality[idx].copy()
        self._publish(topic(self.group_id, MessageType.DBIRTH, self.edge_node_id, model.device_id),
                      payloads.device_birth(self._seq.next(), payloads.ms(self.clock()), model,
                                            values, quality, live.reason[idx], live.source_ts[idx]))
        self._live_filter.remember(idx, values, quality)
        self._born_devices.add(model.device_id)
        self._device_live_from[model.device_id] = self.stream.next_id

    # ------------------------------------------------------------------ data

    async def _publish_pending(self) -> None:
        """Everything accepted and not yet dealt with, in store order: held values as
        historical metrics first, then live ones, a bounded chunk at a time."""
        while self._born and self.client.connected:
            items = await self.stream.take(MAX_METRICS_PER_MESSAGE)
            if not items or not self._born:
                return
            mid = self._publish_items(items)
            self.stream.done(items[-1][0])
            if mid is not None and len(items) > 1:
                await self.client.sent(mid, SENT_TIMEOUT_S)

    def _publish_items(self, items: list[tuple[int, Batch]]) -> int | None:
        # One DDATA per (device, historical) run, in the order the Batches come.
        runs: list[tuple[str, bool, list[tuple[Batch, np.ndarray]]]] = []
        for id_, batch in items:
            device_id = batch.device
            if device_id not in self._born_devices or len(batch) == 0:
                continue
            marks = [m for m in (self._live_from, self._device_live_from.get(device_id)) if m is not None]
            historical = bool(marks) and id_ < max(marks)
            alias, _ = self._columns[device_id]
            known = alias[batch.tag_index] >= 0
            flt = self._hist_filter if historical else self._live_filter
            report = np.zeros(len(batch), dtype=bool)
            report[known] = flt.select(batch.tag_index[known], batch.values[known],
                                       batch.quality[known])
            if not report.any():
                continue
            if runs and runs[-1][0] == device_id and runs[-1][1] == historical:
                runs[-1][2].append((batch, report))
            else:
                runs.append((device_id, historical, [(batch, report)]))
        mid = None
        for device_id, historical, parts in runs:
            mid = self._publish_ddata(device_id, historical, parts)
        return mid

    def _publish_ddata(self, device_id: str, historical: bool,
                       parts: list[tuple[Batch, np.ndarray]]) -> int | None:
        def cat(column: str) -> np.ndarray:
            return np.concatenate([getattr(b, column)[r] for b, r in parts])

        idx = cat("tag_index")
        alias, kind = self._columns[device_id]
        body = payloads.device_data(self._seq.next(), payloads.ms(self.clock()), alias[idx],
                                    kind[idx], cat("source_ts"), cat("values"), cat("quality"),
                                    cat("reason"), historical)
        self.values_published += len(idx)
        self.ddata_messages += 1
        if historical:
            self.historical_published += len(idx)
        return self._publish(topic(self.group_id, MessageType.DDATA, self.edge_node_id, device_id), body)

    def _publish_node_metrics(self) -> None:
        changed = []
        for metric in NodeMetrics.ALL[1:]:
            value = self._node_figure(metric)
            if value != self._node_values.get(metric):
                changed.append((metric, value))
                self._node_values[metric] = value
        if changed:
            self._publish(topic(self.group_id, MessageType.NDATA, self.edge_node_id),
                          payloads.node_data(self._seq.next(), payloads.ms(self.clock()), changed))

    def _node_figure(self, metric: Any) -> Any:
        source = self._figures.get(metric)
        if source is None:
            return None
        try:
            value = source()
        except Exception:
            log.exception("sparkplug node metric failed", metric=metric.name)
            return None
        if metric is NodeMetrics.VALUES_PER_S and value is not None:
            return round(float(value), 1)
        return value

    def _publish(self, name: str, body: bytes) -> int | None:
        return self.client.publish(name, body, qos=0)

    def _death_topic(self) -> str:
        return topic(self.group_id, MessageType.NDEATH, self.edge_node_id)

    async def _save_cursor(self, force: bool = False) -> None:
        now = self.clock()
        cursor = self.stream.cursor
        if cursor == self._saved_cursor or (not force and now < self._next_cursor_save):
            return
        self._next_cursor_save = now + CURSOR_SAVE_EVERY_S
        self._saved_cursor = cursor
        await asyncio.get_running_loop().run_in_executor(None, self.session.save_cursor, cursor)
