"""The ``stream`` service behind ``GET /api/stream`` (:mod:`.stream`): live values and alarm
transitions fanned out to the connected displays as Server-Sent Events.

Each event is serialised once and shared by every client. Each client has its own bounded
queue: when a client reads slower than events arrive, its oldest queued events are dropped
(and counted, per client and in total) so one slow display can never grow the gateway's
memory; its ``values`` events are full replacements, so the next one repairs the picture.

The hub registers itself nowhere: the daemon attaches :meth:`StreamHub.on_transitions` as an
alarm listener, :meth:`StreamHub.report` as the ``stream`` section of /health and
:meth:`StreamHub.metrics` to /metrics.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from analytics.alarm_types import AlarmTransition
from drivers.quality import Quality
from gateway.runtime.logs import get_logger
from plant.catalog import SYNTHETIC_PREFIX, Catalog

if TYPE_CHECKING:
    from gateway.ingest.pipeline import Pipeline
    from gateway.services.base import Tasks

__all__ = ["SERVICE_NAME", "DEFAULT_INTERVAL_S", "DEFAULT_QUEUE_EVENTS", "DEFAULT_HEARTBEAT_S",
           "MAX_CLIENTS", "LiveSource", "encode_event", "StreamClient", "StreamHub"]

log = get_logger("gateway.stream")

SERVICE_NAME = "stream"
DEFAULT_INTERVAL_S = 1.0
DEFAULT_QUEUE_EVENTS = 64
DEFAULT_HEARTBEAT_S = 15.0
MAX_CLIENTS = 200


class LiveSource(Protocol):
    """What the hub reads values from: the HTTP layer's ``ApiDeps`` (not imported here, since
    ``ApiDeps`` names the hub's type: the two modules would import each other)."""

    catalog: Catalog
    pipeline: Pipeline


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
    """The ``stream`` service (implements ``gateway.services.base.Service``): ticks live values
    out of ``deps.pipeline.live`` every ``interval_s``, relays alarm transitions, and fans
    events out to at most ``max_clients`` clients of ``queue_events`` queued events each.

    It reads ``deps.catalog`` at every tick, so a reload that replaces the catalog is seen at
    once; ``tasks`` runs its ticker (the daemon's supervisor).
    """

    name = SERVICE_NAME

    def __init__(self, deps: LiveSource, tasks: Tasks, interval_s: float = DEFAULT_INTERVAL_S,
                 queue_events: int = DEFAULT_QUEUE_EVENTS,
                 heartbeat_s: float = DEFAULT_HEARTBEAT_S, max_clients: int = MAX_CLIENTS):
        self.deps = deps
        self.tasks = tasks
        self.interval_s = interval_s
        self.queue_events = queue_events
        self.heartbeat_s = heartbeat_s
        self.max_clients = max_clients
        self.clients: set[StreamClient] = set()
        self.dropped = 0
        self.events = 0
        self._seq = 0
        self._since = 0.0

    async def start(self) -> None:
        self._since = time.time()
        self.tasks.start(SERVICE_NAME, self.run)

    async def stop(self) -> None:
        for client in list(self.clients):
            client.close()

    # -- clients ----------------------------------------------------------------------------

    @property
    def full(self) -> bool:
        """No room for another client."""
        return len(self.clients) >= self.max_clients

    def connect(self) -> StreamClient:
        """A new client, receiving every event published from now on."""
        client = StreamClient(self.queue_events)
        self.clients.add(client)
        return client

    def disconnect(self, client: StreamClient) -> None:
        self.clients.discard(client)
        if client.dropped:
            log.info("stream client left with dropped events", dropped=client.dropped)

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

    def snapshot(self) -> bytes:
        """The ``snapshot`` frame a client gets first: every plant tag's newest value."""
        return encode_event("snapshot", self.values(None), self._next_id())

    def values(self, since: float | None = None) -> dict[str, Any]:
        """Plant tags received after ``since`` (all with None) as one event body."""
        catalog = self.deps.catalog
        live = self.deps.pipeline.live
        n = len(catalog)
        mask = np.ones(n, dtype=bool) if since is None else live.receive_ts[:n] > since
        rows = []
        for i in np.flatnonzero(mask).tolist():
            tag = catalog.tags[i]
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
        """The ``stream`` section of /health."""
        return {"clients": len(self.clients), "events": self.events,
                "dropped_events": self.dropped}

    def metrics(self) -> Iterator[Any]:
        """The stream's /metrics families."""
        clients = GaugeMetricFamily("refineryiq_stream_clients", "Connected SSE clients")
        clients.add_metric([], len(self.clients))
        dropped = CounterMetricFamily("refineryiq_stream_dropped_events",
                                      "Events dropped for slow SSE clients")
        dropped.add_metric([], self.dropped)
        yield from (clients, dropped)
