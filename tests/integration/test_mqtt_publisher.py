"""The MQTT publisher against the real Mosquitto on 127.0.0.1:1883.

Each test uses its own site, so topics (and retained messages) never collide.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

from analytics.alarm_types import AlarmKind, AlarmState, AlarmTransition, Severity
from drivers.batch import Batch
from drivers.quality import Quality
from gateway.northbound.mqtt.publisher import MqttPublisher, MqttValuesConfig
from gateway.settings import MqttSettings
from plant.catalog import Catalog
from plant.load import load_plant
from tests.support.mqtt import BROKER, Subscriber
from tests.support.tcp_proxy import TcpProxy

REPO = Path(__file__).parents[2]
CATALOG = Catalog.build(load_plant(REPO / "config" / "plant.toml"))


def transitions(first_seq: int, count: int, tag_id: str = "TI-101") -> list[AlarmTransition]:
    return [AlarmTransition(
        seq=s, alarm_id=f"{tag_id}/PROCESS#{s}", key=f"{tag_id}/PROCESS", tag_id=tag_id,
        kind=AlarmKind.HI, from_state=AlarmState.NORMAL, to_state=AlarmState.UNACK,
        severity=Severity.MEDIUM, value=365.0, limit=360.0, time=1_700_000_000.0 + s,
        unit_id="CDU-101", message=f"TI-101 HI alarm {s}") for s in range(first_seq, first_seq + count)]


def publisher(tmp_path: Path, site: str, port: int = BROKER[1], **kwargs) -> MqttPublisher:
    return MqttPublisher(MqttSettings(host="127.0.0.1", port=port), gateway_id="edge-t", site=site,
                         state_dir=tmp_path, reconnect_max_s=1, **kwargs)


@pytest.fixture
def site() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def first_seen(seqs: list[int]) -> list[int]:
    """Delivery is at-least-once: keep the first arrival of each seq."""
    seen: dict[int, None] = {}
    for s in seqs:
        seen.setdefault(s, None)
    return list(seen)


async def test_status_online_is_retained(tmp_path, site):
    live = await Subscriber(f"refineryiq/{site}/edge-t/status").start()
    pub = publisher(tmp_path, site)
    await pub.start()
    try:
        _, status = await live.next()
        assert status["state"] == "online" and status["gateway_id"] == "edge-t"
        late = await Subscriber(f"refineryiq/{site}/edge-t/status").start()
        message = await asyncio.wait_for(late.messages.get(), 5)
        assert message.retain and json.loads(message.payload)["state"] == "online"
        await late.stop()
    finally:
        await pub.stop()
        await live.stop()


async def test_clean_stop_publishes_offline_retained(tmp_path, site):
    pub = publisher(tmp_path, site)
    await pub.start()
    assert await pub.wait_connected(5)
    await pub.stop()
    sub = await Subscriber(f"refineryiq/{site}/edge-t/status").start()
    _, status = await sub.next()
    assert status["state"] == "offline"
    await sub.stop()


async def test_one_message_per_transition_in_seq_order(tmp_path, site):
    sub = await Subscriber(f"refineryiq/{site}/edge-t/alarms/#").start()
    pub = publisher(tmp_path, site)
    await pub.start()
    try:
        await pub.publish_transitions(list(reversed(transitions(1, 20))))
        got = await sub.collect(20)
        assert [body["seq"] for _, body in got] == list(range(1, 21))
        topic, body = got[0]
        assert topic == f"refineryiq/{site}/edge-t/alarms/TI-101"
        assert (body["state"], body["severity"], body["value"], body["limit"], body["alarm_id"]) == (
            "ACTIVE_UNACK", "MEDIUM", 365.0, 360.0, "TI-101/PROCESS#1")
        assert await pub.wait_drained(5)
        assert (pub.outbox_depth, pub.published, pub.acked) == (0, 20, 20)
    finally:
        await pub.stop()
        await sub.stop()


async def test_transitions_queue_during_outage_and_arrive_in_order(tmp_path, site):
    proxy = await TcpProxy(*BROKER).start()
    sub = await Subscriber(f"refineryiq/{site}/edge-t/alarms/#").start()
    pub = publisher(tmp_path, site, port=proxy.port)
    await pub.start()
    try:
        assert await pub.wait_connected(5)
        await pub.publish_transitions(transitions(1, 5))
        assert await pub.wait_drained(5)
        proxy.cut()
        await pub.publish_transitions(transitions(6, 10))
        await asyncio.sleep(0.5)
        assert pub.outbox_depth == 10
        proxy.restore()
        assert await pub.wait_drained(10)
        seqs = []
        while len(set(seqs)) < 15:
            seqs.append((await sub.next(10))[1]["seq"])
        assert first_seen(seqs) == list(range(1, 16))
    finally:
        await pub.stop()
        await sub.stop()
        await proxy.close()


async def test_outbox_survives_a_publisher_restart(tmp_path, site):
    proxy = await TcpProxy(*BROKER).start()
    proxy.cut()  # the broker is unreachable for the first run
    first = publisher(tmp_path, site, port=proxy.port)
    await first.start()
    await first.publish_transitions(transitions(1, 5))
    await first.stop(deadline_s=0.3)
    assert first.outbox_depth == 5
    await proxy.close()

    sub = await Subscriber(f"refineryiq/{site}/edge-t/alarms/#").start()
    second = publisher(tmp_path, site)
    await second.start()
    try:
        assert await second.max_seq() == 5
        await second.publish_transitions(transitions(6, 2))
        got = await sub.collect(7)
        assert first_seen([body["seq"] for _, body in got]) == list(range(1, 8))
        assert await second.wait_drained(5)
    finally:
        await second.stop()
        await sub.stop()


async def test_last_will_reports_offline_after_sigkill(tmp_path, site):
    script = textwrap.dedent(f"""
        import asyncio
        from pathlib import Path
        from gateway.northbound.mqtt.publisher import MqttPublisher
        from gateway.settings import MqttSettings

        async def main():
            pub = MqttPublisher(MqttSettings(host="127.0.0.1", port={BROKER[1]}), gateway_id="edge-t",
                                site="{site}", state_dir=Path({str(tmp_path)!r}))
            await pub.start()
            assert await pub.wait_connected(5)
            print("connected", flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
    """)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, cwd=REPO, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        async def connected() -> None:  # log lines may come first
            while (line := await proc.stdout.readline()) and line.strip() != b"connected":
                pass
        await asyncio.wait_for(connected(), 15)
        sub = await Subscriber(f"refineryiq/{site}/edge-t/status").start()
        _, status = await sub.next()
        assert status["state"] == "online"
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        _, status = await sub.next(10)
        assert status["state"] == "offline"
        await sub.stop()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_values_are_published_by_exception(tmp_path, site):
    sub = await Subscriber(f"refineryiq/{site}/edge-t/values/#").start()
    pub = publisher(tmp_path, site, values=MqttValuesConfig(enabled=True, deadband_pct=1.0,
                                                            min_interval_s=0))
    await pub.start()
    try:
        assert await pub.wait_connected(5)
        tag = CATALOG.index["TI-101"]  # span 20: deadband 0.2 degC

        def batch(value: float, quality: Quality = Quality.GOOD) -> Batch:
            return Batch.build("g", "plc-1", 0, 0, np.array([tag]), np.array([value]),
                               np.array([quality]), np.array([0]))

        sent = [await pub.publish_values(batch(v, q), CATALOG, now=float(n)) for n, (v, q) in enumerate(
            [(350.0, Quality.GOOD), (350.1, Quality.GOOD), (350.3, Quality.GOOD),
             (350.3, Quality.DOUBTFUL)])]
        assert sent == [1, 0, 1, 1]
        got = await sub.collect(3)
        assert [(b["value"], b["quality"]) for _, b in got] == [(350.0, 192), (350.3, 192), (350.3, 128)]
        assert got[0][0] == f"refineryiq/{site}/edge-t/values/TI-101"
    finally:
        await pub.stop()
        await sub.stop()


async def test_values_respect_the_maximum_rate(tmp_path, site):
    pub = publisher(tmp_path, site, values=MqttValuesConfig(enabled=True, min_interval_s=10))
    await pub.start()
    try:
        assert await pub.wait_connected(5)
        tag = CATALOG.index["TI-101"]
        sent = []
        for n, v in enumerate([350.0, 355.0, 345.0]):
            b = Batch.build("g", "plc-1", 0, 0, np.array([tag]), np.array([v]),
                            np.array([Quality.GOOD]), np.array([0]))
            sent.append(await pub.publish_values(b, CATALOG, now=float(n * 6)))
        assert sent == [1, 0, 1]
    finally:
        await pub.stop()


async def test_values_are_off_by_default(tmp_path, site):
    pub = publisher(tmp_path, site)
    await pub.start()
    try:
        assert await pub.wait_connected(5)
        b = Batch.build("g", "plc-1", 0, 0, np.array([0]), np.array([1.0]),
                        np.array([Quality.GOOD]), np.array([0]))
        assert await pub.publish_values(b, CATALOG, now=0.0) == 0
    finally:
        await pub.stop()
