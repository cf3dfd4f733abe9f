"""MQTT sink: alarm transitions (QoS 1, through a durable outbox), live values by exception,
and the gateway's retained status with a last-will.

Topics, under ``refineryiq/{site}/{gateway_id}/``:
  ``status``          retained ``{"state": "online", ...}``; the broker publishes the retained
                      last-will ``{"state": "offline"}`` if the gateway dies, and a clean
                      shutdown publishes it itself.
  ``alarms/{tag_id}`` one JSON message per alarm transition, QoS 1, in ``seq`` order; ``seq``
                      and ``alarm_id`` let consumers de-duplicate (delivery is at-least-once).
                      For COMM_LOSS the source is the device: ``alarms/{device_id}``.
  ``values/{tag_id}`` live values by exception (deadband, maximum rate); off by default.

Backpressure: paho queues QoS 0 messages without limit, so a stalled broker or network would
grow the gateway's memory without end. Alarms are bounded by the outbox window (``inflight``)
and wait on disk; live values are handed to paho only while fewer than
``[mqtt.values] max_queued`` of them are unsent, the rest wait in a per-tag backlog
(:mod:`gateway.northbound.mqtt.backlog`) where a newer value replaces the older one, which is
dropped and counted (``values_dropped`` in /health, ``refineryiq_mqtt_values_dropped_total``
in /metrics). A warning is logged when dropping starts and a line when it stops (at most one
pair a minute).

paho-mqtt runs its network loop on its own thread (``loop_start``); its callbacks are handed
to the event loop with ``call_soon_threadsafe``, so nothing here blocks asyncio. paho keeps
QoS 1 messages that are in flight and re-sends them itself after a reconnect (same message
ids, DUP flag); the outbox covers what paho cannot: messages not yet handed to it, and a
restart of the gateway, after which everything unacknowledged is sent again, oldest first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as paho
import structlog

from analytics.alarm_types import AlarmTransition
from drivers.batch import Batch
from gateway.northbound.mqtt.backlog import ValueBacklog
from gateway.northbound.mqtt.outbox import OUTBOX_FILE, Outbox
from gateway.settings import GatewaySettings, MqttSettings, MqttValuesConfig
from plant.catalog import Catalog

log = structlog.get_logger(__name__)

TOPIC_ROOT = "refineryiq"
STATUS_ONLINE = "online"
STATUS_OFFLINE = "offline"
ALARM_QOS = 1
# How often parked values are retried while paho's queue is full.
BACKLOG_RETRY_S = 0.05
# At most one "dropping values" warning (and its "caught up" line) per this many seconds.
DROP_LOG_EVERY_S = 60.0
# Room in paho's queue of QoS 1/2 messages beyond the alarm window and the values' bound:
# paho's own limit is a backstop that the gateway's bounds keep from ever refusing an alarm.
PAHO_QUEUE_MARGIN = 16


class MqttPublisher:
    """Publishes alarm transitions, values and status for one gateway to one broker."""

    def __init__(self, mqtt: MqttSettings, gateway_id: str, site: str, state_dir: Path,
                 values: MqttValuesConfig | None = None, *, keepalive_s: int = 30,
                 reconnect_max_s: int = 10, inflight: int = 100, client_id: str | None = None):
        if mqtt.host is None:
            raise ValueError("mqtt.host is not set: MQTT is off")
        self.settings = mqtt
        self.gateway_id = gateway_id
        self.site = site
        self.values_config = values or MqttValuesConfig()
        self.prefix = f"{TOPIC_ROOT}/{site}/{gateway_id}"
        self.status_topic = f"{self.prefix}/status"
        self.client_id = client_id or f"refineryiq-{site}-{gateway_id}"
        self._keepalive_s = keepalive_s
        self._reconnect_max_s = reconnect_max_s
        self._inflight_max = inflight
        self._outbox = Outbox(Path(state_dir) / OUTBOX_FILE)
        self._client: paho.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._connected = False
        self._inflight: dict[int, int] = {}  # paho mid -> outbox id
        self._acked_ids: list[int] = []
        self._last_sent_id = 0
        self._waiters: dict[int, asyncio.Future] = {}
        self._last_value: np.ndarray | None = None
        self._last_quality: np.ndarray | None = None
        self._last_time: np.ndarray | None = None
        self._backlog: ValueBacklog | None = None
        self._value_infos: deque[paho.MQTTMessageInfo] = deque()
        self._backlog_task: asyncio.Task | None = None
        self._done_mids: deque[int] = deque()  # appended on paho's thread
        self._done_scheduled = False
        self._values_catalog: Catalog | None = None
        self._drop_episode_start: int | None = None  # drop count when this episode began
        self._drops_seen = 0
        self._drop_logged_at = -math.inf
        self._drop_episode_logged = False
        self._drop_episodes_unlogged = 0
        self.published = 0
        self.acked = 0
        self.values_published = 0

    @classmethod
    def from_settings(cls, settings: GatewaySettings, **kwargs: Any) -> MqttPublisher | None:
        """The publisher the daemon's settings describe, or None when MQTT is off."""
        if settings.mqtt.host is None:
            return None
        return cls(settings.mqtt, settings.gateway_id, settings.site, settings.state_dir, **kwargs)

    # ------------------------------------------------------------------ lifecycle

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def outbox_depth(self) -> int:
        """Alarm messages stored and not yet acknowledged by the broker."""
        return self._outbox.depth

    @property
    def values_queued(self) -> int:
        """Live values handed to paho and not yet written to the socket (QoS 0) or
        acknowledged (QoS 1): at most ``[mqtt.values] max_queued``."""
        infos = self._value_infos
        while infos and infos[0].is_published():
            infos.popleft()
        return len(infos)

    @property
    def values_waiting(self) -> int:
        """Tags whose newest value waits for room in paho's queue."""
        return 0 if self._backlog is None else len(self._backlog)

    @property
    def values_dropped(self) -> int:
        """Live values never sent: replaced by a newer value of their tag while waiting,
        or waiting when the connection was lost."""
        return 0 if self._backlog is None else self._backlog.dropped

    def status(self) -> dict[str, Any]:
        """The ``mqtt`` part of /health."""
        return {"state": "connected" if self.connected else "disconnected",
                "outbox_depth": self.outbox_depth, "published": self.published,
                "acked": self.acked, "values_published": self.values_published,
                "values_queued": self.values_queued, "values_waiting": self.values_waiting,
                "values_dropped": self.values_dropped}

    async def max_seq(self) -> int:
        """Highest alarm ``seq`` ever queued (feed it to ``AlarmEngine.restore(min_seq=...)``)."""
        return await self._outbox.max_seq()

    async def start(self) -> None:
        """Open the outbox and connect in the background (never waits for the broker)."""
        self._loop = asyncio.get_running_loop()
        await self._outbox.open()
        # Building the client may read TLS files: keep that off the event loop.
        self._client = await self._loop.run_in_executor(None, self._make_client)
        self._client.connect_async(self.settings.host, self.settings.port, self._keepalive_s)
        self._client.loop_start()
        self._task = asyncio.create_task(self._drain(), name="mqtt-outbox")
        log.info("mqtt starting", host=self.settings.host, port=self.settings.port,
                 prefix=self.prefix, outbox_depth=self.outbox_depth)

    def _make_client(self) -> paho.Client:
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             clean_session=True)
        s = self.settings
        if s.username is not None:
            client.username_pw_set(s.username, s.password.get_secret_value() if s.password else None)
        if s.tls:
            client.tls_set(ca_certs=_path(s.ca_file), certfile=_path(s.cert_file),
                           keyfile=_path(s.key_file))
        client.will_set(self.status_topic, self._status_payload(STATUS_OFFLINE), qos=1,
                        retain=True)
        client.max_inflight_messages_set(self._inflight_max)
        client.max_queued_messages_set(self._inflight_max + self.values_config.max_queued
                                       + PAHO_QUEUE_MARGIN)
        client.reconnect_delay_set(min_delay=1, max_delay=self._reconnect_max_s)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    async def stop(self, deadline_s: float = 5.0) -> None:
        """Flush the outbox (within the deadline), publish ``offline``, disconnect cleanly.

        What the broker has not acknowledged by the deadline stays in the outbox for the
        next start.
        """
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_s
        if self._client is None:
            return
        await self.wait_drained(timeout=max(end - loop.time(), 0))
        if self._connected:
            info = self._client.publish(self.status_topic, self._status_payload(STATUS_OFFLINE),
                                        qos=1, retain=True)
            waiter = loop.create_future()
            self._waiters[info.mid] = waiter
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(waiter, timeout=max(end - loop.time(), 0.1))
        if self._backlog_task is not None:
            self._backlog_task.cancel()
            self._backlog_task = None
        client, self._client = self._client, None
        client.disconnect()
        await loop.run_in_executor(None, client.loop_stop)
        self._connected = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._outbox.remove(self._take_acked())
        await self._outbox.close()
        log.info("mqtt stopped", outbox_depth=self.outbox_depth, published=self.published,
                 acked=self.acked)

    async def wait_connected(self, timeout: float) -> bool:
        """True once connected to the broker (tests and start-up logs use it)."""
        return await self._wait_for(lambda: self._connected, timeout)

    async def wait_drained(self, timeout: float) -> bool:
        """True once every stored alarm message has been acknowledged by the broker."""
        return await self._wait_for(lambda: self._outbox.depth == 0, timeout)

    async def _wait_for(self, predicate: Any, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not predicate():
            remaining = end - loop.time()
            if remaining <= 0:
                return False
            self._progress.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._progress.wait(), timeout=remaining)
        return True

    # ------------------------------------------------------------------ alarms

    async def publish_transitions(self, transitions: Iterable[AlarmTransition]) -> None:
        """Store transitions durably (in ``seq`` order), then let the outbox drain them.

        Returns once they are on disk, not when the broker has them.
        """
        ordered = sorted(transitions, key=lambda t: t.seq)
        if not ordered:
            return
        messages = [(t.seq, f"{self.prefix}/alarms/{t.tag_id}", self._alarm_payload(t))
                    for t in ordered]
        await self._outbox.put(messages, created=ordered[-1].time, qos=ALARM_QOS)
        self._wake.set()

    def _alarm_payload(self, t: AlarmTransition) -> bytes:
        body = t.to_dict()
        body["state"] = body.pop("to_state")
        body["time_iso"] = _iso(t.time)
        body["gateway_id"] = self.gateway_id
        body["site"] = self.site
        return json.dumps(body, ensure_ascii=False, allow_nan=False).encode()

    async def _drain(self) -> None:
        """Hand stored messages to paho in order, a bounded window at a time; delete acked."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            acked = self._take_acked()
            if acked:
                await self._outbox.remove(acked)
                self._progress.set()
            if not self._connected or self._client is None:
                continue
            room = self._inflight_max - len(self._inflight)
            if room <= 0:
                continue
            batch = await self._outbox.after(self._last_sent_id, room)
            for message in batch:
                if self._client is None:
                    break
                info = self._client.publish(message.topic, message.payload, qos=message.qos,
                                            retain=message.retain)
                if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
                    # Still in the outbox: tried again shortly.
                    log.warning("mqtt publish refused", topic=message.topic, rc=info.rc)
                    asyncio.get_running_loop().call_later(1.0, self._wake.set)
                    break
                # NO_CONN: paho keeps a QoS 1 message and sends it on reconnect.
                self._inflight[info.mid] = message.id
                self._last_sent_id = message.id
                self.published += 1
            if len(batch) == room:
                self._wake.set()

    def _take_acked(self) -> list[int]:
        acked, self._acked_ids = self._acked_ids, []
        return acked

    # ------------------------------------------------------------------ values

    async def publish_values(self, batch: Batch, catalog: Catalog,
                             now: float | None = None) -> int:
        """Publish the batch's values that changed beyond the deadband; returns how many were
        handed to paho now (the others wait in the backlog, see the module's docstring).

        Values are live data, not a record: they are not stored and are skipped while the
        broker is away (the historian keeps the history).
        """
        cfg = self.values_config
        if not cfg.enabled or not self._connected or self._client is None or len(batch) == 0:
            return 0
        now = batch.receive_ts if now is None else now
        if self._last_value is None or len(self._last_value) != len(catalog):
            self._last_value = np.full(len(catalog), np.nan)
            self._last_quality = np.zeros(len(catalog), dtype=np.int16)
            self._last_time = np.full(len(catalog), -np.inf)
            self._backlog = ValueBacklog(len(catalog))
        self._values_catalog = catalog
        idx = batch.tag_index
        deadband = (catalog.normal_max[idx] - catalog.normal_min[idx]) * cfg.deadband_pct / 100.0
        with np.errstate(invalid="ignore"):
            moved = ~(np.abs(batch.values - self._last_value[idx]) <= deadband)
        changed = moved | (batch.quality != self._last_quality[idx])
        due = changed & (now - self._last_time[idx] >= cfg.min_interval_s)
        chosen = idx[due]
        self._last_value[chosen] = batch.values[due]
        self._last_quality[chosen] = batch.quality[due]
        self._last_time[chosen] = now
        backlog = self._backlog
        assert backlog is not None
        room = cfg.max_queued - self.values_queued
        if len(backlog) == 0 and len(chosen) <= room:
            sent = self._send_values(catalog, chosen, batch.values[due], batch.quality[due],
                                     batch.reason[due], batch.source_ts[due])
        else:
            backlog.put(chosen, batch.values[due], batch.quality[due], batch.reason[due],
                        batch.source_ts[due], now)
            sent = self._send_backlog(catalog, room)
        self._values_backpressure()
        return sent

    def _send_values(self, catalog: Catalog, tags: np.ndarray, values: np.ndarray,
                     quality: np.ndarray, reason: np.ndarray, source_ts: np.ndarray) -> int:
        """Hand one message per tag to paho; returns how many."""
        client = self._client
        if client is None:
            return 0
        cfg = self.values_config
        infos = self._value_infos
        sent = 0
        for t, value, q, r, ts in zip(tags.tolist(), values.tolist(), quality.tolist(),
                                      reason.tolist(), source_ts.tolist(), strict=True):
            tag = catalog.tags[t]
            payload = {"tag_id": tag.id, "value": value if math.isfinite(value) else None,
                       "quality": q, "reason": r, "ts": ts, "ts_iso": _iso(ts),
                       "eu": tag.engineering_units}
            info = client.publish(f"{self.prefix}/values/{tag.id}",
                                  json.dumps(payload, ensure_ascii=False), qos=cfg.qos,
                                  retain=cfg.retain)
            # QoS 0 without a connection is not queued at all; QoS 1 is, and sent on reconnect.
            if info.rc == paho.MQTT_ERR_SUCCESS or (cfg.qos > 0 and info.rc == paho.MQTT_ERR_NO_CONN):
                infos.append(info)
                sent += 1
            elif self._backlog is not None:
                self._backlog.dropped += 1
        self.values_published += sent
        return sent

    def _send_backlog(self, catalog: Catalog, room: int) -> int:
        backlog = self._backlog
        if backlog is None or room <= 0 or len(backlog) == 0:
            return 0
        tags = backlog.take(room)
        return self._send_values(catalog, tags, backlog.value[tags], backlog.quality[tags],
                                 backlog.reason[tags], backlog.source_ts[tags])

    def _values_backpressure(self) -> None:
        """Retry parked values shortly, and log when dropping starts and stops."""
        backlog = self._backlog
        if backlog is None:
            return
        if len(backlog) and self._backlog_task is None:
            self._backlog_task = asyncio.get_running_loop().create_task(
                self._retry_backlog(), name="mqtt-values-backlog")
        if self._drop_episode_start is None:
            if backlog.dropped > self._drops_seen:
                self._drop_episode_start = self._drops_seen
                now = time.monotonic()
                self._drop_episode_logged = now - self._drop_logged_at >= DROP_LOG_EVERY_S
                if self._drop_episode_logged:
                    self._drop_logged_at = now
                    log.warning("mqtt values falling behind: only the newest value of each "
                                "waiting tag is kept", max_queued=self.values_config.max_queued,
                                waiting=len(backlog), dropped_total=backlog.dropped,
                                episodes_not_logged=self._drop_episodes_unlogged)
                    self._drop_episodes_unlogged = 0
                else:
                    self._drop_episodes_unlogged += 1
        elif len(backlog) == 0:
            if self._drop_episode_logged:
                log.info("mqtt values caught up",
                         dropped=backlog.dropped - self._drop_episode_start,
                         dropped_total=backlog.dropped)
            self._drop_episode_start = None
        self._drops_seen = backlog.dropped

    async def _retry_backlog(self) -> None:
        try:
            while self._backlog is not None and len(self._backlog) and self._connected:
                await asyncio.sleep(BACKLOG_RETRY_S)
                if self._values_catalog is None:
                    break
                self._send_backlog(self._values_catalog,
                                   self.values_config.max_queued - self.values_queued)
        finally:
            self._backlog_task = None
        self._values_backpressure()

    # ------------------------------------------------------------------ paho callbacks
    # These run on paho's network thread: hand everything to the event loop.

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if reason_code.is_failure:
            self._to_loop(self._connection_failed, str(reason_code))
            return
        client.publish(self.status_topic, self._status_payload(STATUS_ONLINE), qos=1, retain=True)
        self._to_loop(self._set_connected, True)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        self._to_loop(self._set_connected, False)

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason_code: Any,
                    properties: Any) -> None:
        # Called for every message (QoS 0 once written): hand them over in batches, one
        # event-loop callback for however many arrive before the loop runs it.
        self._done_mids.append(mid)
        if not self._done_scheduled:
            self._done_scheduled = True
            self._to_loop(self._published)

    def _to_loop(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # loop closing during shutdown
            loop.call_soon_threadsafe(fn, *args)

    def _set_connected(self, connected: bool) -> None:
        if connected != self._connected:
            log.info("mqtt connected" if connected else "mqtt disconnected",
                     host=self.settings.host, port=self.settings.port)
        self._connected = connected
        if not connected and self._backlog is not None:
            self._backlog.clear()  # live values are not kept while the broker is away
            self._values_backpressure()
        self._wake.set()
        self._progress.set()

    def _connection_failed(self, reason: str) -> None:
        log.warning("mqtt connection refused", host=self.settings.host, reason=reason)

    def _published(self) -> None:
        # Cleared before taking: a mid appended after this is covered by a new callback.
        self._done_scheduled = False
        mids = self._done_mids
        while mids:
            self._puback(mids.popleft())

    def _puback(self, mid: int) -> None:
        outbox_id = self._inflight.pop(mid, None)
        if outbox_id is not None:
            self._acked_ids.append(outbox_id)
            self.acked += 1
            self._wake.set()
        if self._waiters:
            waiter = self._waiters.pop(mid, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _status_payload(self, state: str) -> bytes:
        # The last-will is composed at start: its time is when this session began.
        return json.dumps({"state": state, "gateway_id": self.gateway_id, "site": self.site,
                           "time": _iso(time.time())}).encode()


def _path(p: Path | None) -> str | None:
    return None if p is None else str(p)


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")
