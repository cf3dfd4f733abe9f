"""MQTT backpressure against the real Mosquitto: a stalled path to the broker bounds what the
gateway queues, drops only live values (the newest per tag is kept), and loses no alarm."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from pathlib import Path

import numpy as np
import pytest

from drivers.batch import Batch
from drivers.quality import Quality
from gateway.northbound.mqtt.publisher import MqttPublisher, MqttValuesConfig
from gateway.settings import MqttSettings
from plant.catalog import Catalog
from plant.load import load_plant
from tests.integration.test_mqtt_publisher import first_seen, transitions
from tests.support.mqtt import BROKER, Subscriber

REPO = Path(__file__).parents[2]
CATALOG = Catalog.build(load_plant(REPO / "config" / "plant.toml"))
MAX_QUEUED = 50
TAGS = np.arange(len(CATALOG))


class StallingProxy:
    """Forwards loopback connections to the broker; ``stall()`` stops reading what the client
    sends (as a broker that stops consuming, or a congested link, does) until ``resume()``.
    Small buffers, so the client's socket fills after a few kilobytes."""

    def __init__(self) -> None:
        self.port = 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> StallingProxy:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by accepted sockets
        sock.bind(("127.0.0.1", 0))
        self._server = await asyncio.start_server(self._handle, sock=sock, limit=4096)
        self.port = sock.getsockname()[1]
        return self

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*BROKER)

        async def upstream() -> None:
            while True:
                await self._flowing.wait()
                data = await reader.read(4096)
                if not data:
                    break
                up_writer.write(data)
                await up_writer.drain()

        async def downstream() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()

        tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
        self._tasks.update(tasks)
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        writer.close()
        up_writer.close()

    async def close(self) -> None:
        self.resume()
        for t in list(self._tasks):
            t.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
def site() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def scan(value: float) -> Batch:
    """Every catalog tag at ``value``: beyond any deadband of the previous scan's value."""
    n = len(TAGS)
    return Batch.build("g", "plc-1", 0, 0, TAGS, np.full(n, value), np.full(n, Quality.GOOD),
                       np.zeros(n))


def publisher(tmp_path: Path, site: str, port: int) -> MqttPublisher:
    return MqttPublisher(MqttSettings(host="127.0.0.1", port=port), gateway_id="edge-t",
                         site=site, state_dir=tmp_path, reconnect_max_s=1, keepalive_s=120,
                         values=MqttValuesConfig(enabled=True, deadband_pct=0, min_interval_s=0,
                                                 max_queued=MAX_QUEUED))


async def stall_until_values_drop(pub: MqttPublisher, first_value: float) -> tuple[float, int]:
    """Publish scans until values are dropped; returns the last value sent and the most
    values seen queued in paho at once."""
    most_queued = 0
    value = first_value
    for value in np.arange(first_value, first_value + 20_000):
        await pub.publish_values(scan(float(value)), CATALOG, now=float(value))
        most_queued = max(most_queued, pub.values_queued)
        if pub.values_dropped > 0 and pub.values_waiting == len(CATALOG):
            break
        await asyncio.sleep(0)
    return float(value), most_queued


async def test_a_stalled_broker_bounds_queued_values_and_keeps_every_alarm(tmp_path, site):
    proxy = await StallingProxy().start()
    alarms = await Subscriber(f"refineryiq/{site}/edge-t/alarms/#").start()
    pub = publisher(tmp_path, site, proxy.port)
    await pub.start()
    try:
        assert await pub.wait_connected(5)
        proxy.stall()
        await pub.publish_transitions(transitions(1, 5))
        last, most_queued = await stall_until_values_drop(pub, 1000.0)
        assert pub.values_dropped > 0
        assert most_queued <= MAX_QUEUED
        assert pub.values_waiting == len(CATALOG)  # one value per tag, whatever arrived
        assert pub.connected and pub.outbox_depth == 5
        await pub.publish_transitions(transitions(6, 5))
        proxy.resume()
        assert await pub.wait_drained(15)
        seqs = []
        while len(set(seqs)) < 10:
            seqs.append((await alarms.next(10))[1]["seq"])
        assert first_seen(seqs) == list(range(1, 11))
    finally:
        await pub.stop()
        await alarms.stop()
        await proxy.close()


async def test_values_flow_again_once_the_broker_catches_up(tmp_path, site):
    proxy = await StallingProxy().start()
    pub = publisher(tmp_path, site, proxy.port)
    await pub.start()
    marker_tag = CATALOG.tags[0].id
    sub = await Subscriber(f"refineryiq/{site}/edge-t/values/{marker_tag}").start()
    try:
        assert await pub.wait_connected(5)
        proxy.stall()
        last, _ = await stall_until_values_drop(pub, 1000.0)
        dropped = pub.values_dropped
        proxy.resume()
        for _ in range(400):  # the backlog drains on its own, without new scans
            if pub.values_waiting == 0 and pub.values_queued == 0:
                break
            await asyncio.sleep(0.05)
        assert (pub.values_waiting, pub.values_queued) == (0, 0)
        assert pub.values_dropped == dropped
        marker = last + 1
        assert await pub.publish_values(scan(marker), CATALOG, now=marker) > 0
        while True:  # the newest parked value, then the marker, arrive in order
            _, body = await sub.next(10)
            if body["value"] == marker:
                break
            assert body["value"] <= last
    finally:
        await pub.stop()
        await sub.stop()
        await proxy.close()
