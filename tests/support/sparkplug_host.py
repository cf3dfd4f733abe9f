"""A Sparkplug host application for tests, against the real Mosquitto on 127.0.0.1:1883.

It subscribes to one group (``spBv1.0/{group}/#``), decodes every message with the Sparkplug B
schema (the compiled ``sparkplug_b_pb2``), resolves aliases from the births as a host does, and
can act as the primary host: publish its STATE (Sparkplug 3.0 JSON, retained), an NCMD
rebirth or a DCMD. Messages are kept in arrival order for the tests to read.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho

from gateway.northbound.sparkplug import sparkplug_b_pb2 as pb

BROKER = ("127.0.0.1", 1883)


@dataclass(frozen=True)
class HostMetric:
    name: str | None
    alias: int | None
    datatype: int | None
    timestamp: int | None
    value: Any
    is_null: bool
    is_historical: bool
    properties: dict[str, Any]


@dataclass(frozen=True)
class HostMessage:
    topic: str
    kind: str  # NBIRTH, DDATA, ...
    device: str | None
    seq: int | None
    timestamp: int | None
    metrics: tuple[HostMetric, ...]
    size: int

    def metric(self, name: str) -> HostMetric:
        return next(m for m in self.metrics if m.name == name)


def decode(topic: str, data: bytes) -> HostMessage:
    """A Sparkplug message as a host reads it."""
    parts = topic.split("/")
    payload = pb.Payload.FromString(data)
    metrics = []
    for m in payload.metrics:
        which = m.WhichOneof("value")
        props = {}
        if m.HasField("properties"):
            for key, pv in zip(m.properties.keys, m.properties.values, strict=True):
                kind = pv.WhichOneof("value")
                props[key] = None if kind is None else getattr(pv, kind)
        metrics.append(HostMetric(
            name=m.name if m.HasField("name") else None,
            alias=m.alias if m.HasField("alias") else None,
            datatype=m.datatype if m.HasField("datatype") else None,
            timestamp=m.timestamp if m.HasField("timestamp") else None,
            value=None if which is None else getattr(m, which), is_null=m.is_null,
            is_historical=m.is_historical, properties=props))
    return HostMessage(topic=topic, kind=parts[2], device=parts[4] if len(parts) > 4 else None,
                       seq=payload.seq if payload.HasField("seq") else None,
                       timestamp=payload.timestamp if payload.HasField("timestamp") else None,
                       metrics=tuple(metrics), size=len(data))


@dataclass
class TagPoint:
    """One value of a tag as the host received it (live or historical)."""

    name: str
    value: Any
    timestamp: int
    historical: bool
    quality: int | None
    kind: str


@dataclass
class HostState:
    """What a host builds from the births: alias -> (device, name), per edge node."""

    names: dict[int, tuple[str | None, str]] = field(default_factory=dict)


class SparkplugHost:
    """Subscribes to a group; ``messages`` holds every decoded message in arrival order."""

    def __init__(self, group_id: str, host_id: str | None = None):
        self.group_id = group_id
        self.host_id = host_id or f"host-{uuid.uuid4().hex[:6]}"
        self.messages: list[HostMessage] = []  # the edge node's messages
        self.commands: list[HostMessage] = []
        self.state = HostState()
        self._changed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                   client_id=f"test-host-{uuid.uuid4().hex[:8]}")

    async def start(self) -> SparkplugHost:
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        subscribed = self._loop.create_future()
        self._client.on_connect = lambda c, *_: c.subscribe(f"spBv1.0/{self.group_id}/#", qos=1)
        self._client.on_subscribe = lambda *_: self._loop.call_soon_threadsafe(
            lambda: subscribed.done() or subscribed.set_result(None))
        self._client.on_message = lambda c, u, m: self._loop.call_soon_threadsafe(
            self._received, m.topic, bytes(m.payload))
        self._client.connect_async(*BROKER)
        self._client.loop_start()
        await asyncio.wait_for(subscribed, 5)
        return self

    async def stop(self) -> None:
        # A retained STATE left behind would hold the next test's node: clear it.
        info = self._client.publish(f"spBv1.0/STATE/{self.host_id}", b"", qos=1, retain=True)
        await asyncio.get_running_loop().run_in_executor(None, info.wait_for_publish, 5)
        self._client.disconnect()
        await asyncio.get_running_loop().run_in_executor(None, self._client.loop_stop)

    def _received(self, topic: str, data: bytes) -> None:
        if topic.startswith("spBv1.0/STATE/"):
            return
        message = decode(topic, data)
        if message.kind in ("NCMD", "DCMD"):  # what this host (or another) sent: not the node's
            self.commands.append(message)
            return
        if message.kind in ("NBIRTH", "DBIRTH"):
            for m in message.metrics:
                if m.alias is not None:
                    self.state.names[m.alias] = (message.device, m.name)
        self.messages.append(message)
        self._changed.set()

    # ------------------------------------------------------------------ waiting

    async def wait_for(self, predicate: Callable[[list[HostMessage]], Any], timeout: float = 15.0,
                       what: str = "messages") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = predicate(self.messages)
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                kinds = [(m.kind, m.device, m.seq) for m in self.messages[-30:]]
                raise AssertionError(f"timed out waiting for {what}; last messages: {kinds}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
            except TimeoutError:
                pass

    async def wait_kind(self, kind: str, count: int = 1, timeout: float = 15.0,
                        since: int = 0) -> list[HostMessage]:
        """Wait for ``count`` messages of ``kind`` after index ``since``; returns them."""
        def found(messages: list[HostMessage]) -> list[HostMessage] | None:
            hits = [m for m in messages[since:] if m.kind == kind]
            return hits if len(hits) >= count else None
        return await self.wait_for(found, timeout, f"{count} {kind}")

    def kinds(self, since: int = 0) -> list[str]:
        return [m.kind for m in self.messages[since:]]

    # ------------------------------------------------------------------ reading values

    def points(self, since: int = 0) -> list[TagPoint]:
        """Every tag value received (births, live and historical data), in arrival order,
        by metric name (aliases resolved from the births)."""
        out = []
        for message in self.messages[since:]:
            if message.kind not in ("DBIRTH", "DDATA"):
                continue
            for m in message.metrics:
                name = m.name or self.state.names.get(m.alias, (None, f"alias:{m.alias}"))[1]
                out.append(TagPoint(name, None if m.is_null else m.value, m.timestamp,
                                    m.is_historical, m.properties.get("Quality"), message.kind))
        return out

    # ------------------------------------------------------------------ acting as a host

    def publish_state(self, online: bool, timestamp_ms: int | None = None) -> None:
        """The 3.0 STATE of this host: JSON, QoS 1, retained."""
        body = json.dumps({"online": online,
                           "timestamp": timestamp_ms or int(time.time() * 1000)}).encode()
        self._client.publish(f"spBv1.0/STATE/{self.host_id}", body, qos=1, retain=True)

    def rebirth(self, edge_node_id: str) -> None:
        payload = pb.Payload(timestamp=int(time.time() * 1000))
        payload.metrics.add(name="Node Control/Rebirth", datatype=pb.Boolean, boolean_value=True)
        self._client.publish(f"spBv1.0/{self.group_id}/NCMD/{edge_node_id}",
                             payload.SerializeToString(), qos=0)

    def command(self, edge_node_id: str, device_id: str, alias: int, value: float) -> None:
        """A DCMD writing one metric by alias (as hosts do once they have the births)."""
        payload = pb.Payload(timestamp=int(time.time() * 1000))
        payload.metrics.add(alias=alias, timestamp=int(time.time() * 1000), double_value=value)
        self._client.publish(f"spBv1.0/{self.group_id}/DCMD/{edge_node_id}/{device_id}",
                             payload.SerializeToString(), qos=0)


def seq_gaps(messages: list[HostMessage]) -> list[tuple[int, int]]:
    """(previous, next) pairs where ``seq`` did not go up by one (mod 256) between messages of
    one edge node session; an NBIRTH starts again at 0, an NDEATH carries none."""
    gaps, last = [], None
    for m in messages:
        if m.kind == "NDEATH":
            last = None
            continue
        if m.kind == "NBIRTH":
            last = m.seq
            continue
        if last is not None and m.seq != (last + 1) % 256:
            gaps.append((last, m.seq))
        last = m.seq
    return gaps
