"""``GET /api/stream``: Server-Sent Events with live values and alarm transitions, for displays.

Events (``event:`` name, ``data:`` one JSON object):

* ``snapshot`` — once on connect: every plant tag's newest value;
* ``values`` — every ``interval_s``: the plant tags updated since the previous tick;
* ``alarm`` — each alarm transition as the alarm service journals it;
* a ``: keepalive`` comment when nothing else was sent for ``heartbeat_s``.

Each event is serialised once and shared by every client. Each client has its own bounded
queue: when a client reads slower than events arrive, its oldest queued events are dropped
(and counted, per client and in total) so one slow display can never grow the gateway's
memory; its ``values`` events are full replacements, so the next one repairs the picture.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from analytics.alarm_types import AlarmTransition
from drivers.quality import Quality
from gateway.northbound.http.deps import ctx_of
from gateway.northbound.http.errors import error
from gateway.northbound.http.openapi import EVENT_STREAM, Operation, add
from gateway.runtime.logs import get_logger
from plant.catalog import SYNTHETIC_PREFIX

if TYPE_CHECKING:
    from gateway.daemon import Gateway

log = get_logger("gateway.stream")

SERVICE_NAME = "stream"
ALARM_SERVICE = "alarms"
DEFAULT_INTERVAL_S = 1.0
DEFAULT_QUEUE_EVENTS = 64
DEFAULT_HEARTBEAT_S = 15.0
MAX_CLIENTS = 200
RETRY_MS = 3000


def encode_event(name: str, data: Any, event_id: int) -> bytes:
    """One SSE frame."""
    body = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return f"id: {event_id}\nevent: {name}\ndata: {body}\n\n".encode()


class StreamClient:
    """One connected display: a bounded drop-oldest queue of encoded events."""

    def __init__(self, max_events: int):
        self.queue: deque[bytes] = deque(maxlen=max_events)
        self.ready = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def put(self, frame: bytes) -> bool:
        """Queue a frame; returns False when the oldest one had to be dropped."""
        full = len(self.queue) == self.queue.maxlen
        if full:
            self.dropped += 1
        self.queue.append(frame)
        self.ready.set()
        return not full

    def close(self) -> None:
        self.closed = True
        self.ready.set()


class StreamHub:
    """The ``stream`` service: ticks live values out of the live cache, relays alarm
    transitions, and fans events out to the connected clients."""

    name = SERVICE_NAME

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S,
                 queue_events: int = DEFAULT_QUEUE_EVENTS,
                 heartbeat_s: float = DEFAULT_HEARTBEAT_S, max_clients: int = MAX_CLIENTS):
        self.interval_s = interval_s
        self.queue_events = queue_events
        self.heartbeat_s = heartbeat_s
        self.max_clients = max_clients
        self.clients: set[StreamClient] = set()
        self.dropped = 0
        self.events = 0
        self._seq = 0
        self._since = 0.0
        self._gateway: Any = None

    async def start(self, gateway: Gateway) -> None:
        self._gateway = gateway
        alarms = gateway.context.extras.get(ALARM_SERVICE)
        if alarms is not None:
            alarms.listeners.append(self.on_transitions)
        extras = gateway.context.extras
        extras.setdefault("metrics", {})[SERVICE_NAME] = self.metrics
        extras.setdefault("health_sections", {})[SERVICE_NAME] = self.report
        self._since = time.time()
        gateway.supervisor.start(SERVICE_NAME, self.run)

    async def stop(self) -> None:
        for client in list(self.clients):
            client.close()

    # -- events -----------------------------------------------------------------------------

    def _next_id(self) -> int:
        self._seq += 1
        return self._seq

    def publish(self, name: str, data: Any) -> None:
        """Encode once, queue for every client."""
        if not self.clients:
            return
        frame = encode_event(name, data, self._next_id())
        self.events += 1
        for client in self.clients:
            if not client.put(frame):
                self.dropped += 1

    def values(self, since: float | None = None) -> dict[str, Any]:
        """Plant tags received after ``since`` (all with None) as one event body."""
        ctx = self._gateway.context
        live = ctx.pipeline.live
        n = len(ctx.catalog)
        mask = np.ones(n, dtype=bool) if since is None else live.receive_ts[:n] > since
        rows = []
        for i in np.flatnonzero(mask).tolist():
            tag = ctx.catalog.tags[i]
            if tag.id.startswith(SYNTHETIC_PREFIX):
                continue
            value = float(live.values[i])
            quality = int(live.quality[i])
            rows.append({"tag_id": tag.id,
                         "value": value if math.isfinite(value) and quality >= Quality.DOUBTFUL
                         else None,
                         "quality": Quality(quality).name,
                         "source_ts": float(live.source_ts[i]) or None})
        return {"ts": time.time(), "values": rows}

    async def run(self) -> None:
        """Every ``interval_s``: publish the values received since the last tick."""
        while True:
            await asyncio.sleep(self.interval_s)
            now = time.time()
            if self.clients:
                body = self.values(self._since)
                if body["values"]:
                    self.publish("values", body)
            self._since = now

    async def on_transitions(self, transitions: list[AlarmTransition]) -> None:
        """Alarm service listener: one ``alarm`` event per transition."""
        for t in transitions:
            data = t.to_dict()
            for k, v in data.items():
                if isinstance(v, float) and not math.isfinite(v):
                    data[k] = None
            self.publish("alarm", data)

    # -- reporting --------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        return {"clients": len(self.clients), "events": self.events,
                "dropped_events": self.dropped}

    def metrics(self) -> Iterator[Any]:
        clients = GaugeMetricFamily("refineryiq_stream_clients", "Connected SSE clients")
        clients.add_metric([], len(self.clients))
        dropped = CounterMetricFamily("refineryiq_stream_dropped_events",
                                      "Events dropped for slow SSE clients")
        dropped.add_metric([], self.dropped)
        yield from (clients, dropped)


async def get_stream(request: web.Request) -> web.StreamResponse:
    """GET /api/stream: the event stream (see the module docstring)."""
    hub: StreamHub | None = ctx_of(request).extras.get(SERVICE_NAME)
    if hub is None:
        return error(503, "the stream service is not running")
    if len(hub.clients) >= hub.max_clients:
        return error(503, f"too many stream clients (at most {hub.max_clients})")
    response = web.StreamResponse(headers={"Content-Type": EVENT_STREAM,
                                           "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    client = StreamClient(hub.queue_events)
    hub.clients.add(client)
    try:
        await response.write(f"retry: {RETRY_MS}\n\n".encode())
        await response.write(encode_event("snapshot", hub.values(None), hub._next_id()))
        while not client.closed:
            try:
                await asyncio.wait_for(client.ready.wait(), hub.heartbeat_s)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            client.ready.clear()
            while client.queue:
                await response.write(client.queue.popleft())
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        hub.clients.discard(client)
        if client.dropped:
            log.info("stream client left with dropped events", dropped=client.dropped)
    return response


def setup(app: web.Application) -> None:
    add(app, Operation("GET", "/api/stream", get_stream,
                       "Live values and alarm transitions (Server-Sent Events)",
                       content_type=EVENT_STREAM, tag="gateway",
                       errors={503: "the stream service is not running or is full"}))
