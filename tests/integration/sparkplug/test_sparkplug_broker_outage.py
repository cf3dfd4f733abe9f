"""A broker outage (the connection cut by a TCP proxy in front of the real Mosquitto): the will
tells the host, the values accepted meanwhile are replayed as history after the new births,
and a restarted gateway replays what it had not published before it stopped."""

from __future__ import annotations

from gateway.settings.mqtt import MqttSettings
from tests.support.mqtt import BROKER
from tests.support.sparkplug_fixtures import until as _until
from tests.support.sparkplug_host import SparkplugHost, seq_gaps
from tests.support.sparkplug_node import NodeHarness
from tests.support.tcp_proxy import TcpProxy

TI = "CDU-101/FURNACE-100/TI-101"






def ti_values(host: SparkplugHost) -> list[tuple[float, bool]]:
    return [(p.value, p.historical) for p in host.points() if p.name == TI and p.kind == "DDATA"]


async def feed_ti(harness: NodeHarness, values: range) -> None:
    for v in values:
        await harness.feed_values("plc-a", [float(v), 10000.0, 20.0, 50.0])


async def test_values_accepted_while_the_broker_is_away_are_replayed_after_the_births(tmp_path, group, host):
    proxy = await TcpProxy(*BROKER).start()
    harness = await NodeHarness(tmp_path, group, mqtt=MqttSettings(host="127.0.0.1", port=proxy.port)).start()
    try:
        await harness.wait_born()
        await feed_ti(harness, range(100, 105))
        await harness.wait_caught_up()
        await until(lambda: len(ti_values(host)) == 5, "the live values")
        proxy.cut()
        await host.wait_kind("NDEATH", timeout=60)  # the will, from the broker
        await until(lambda: harness.node.health()["state"] == "disconnected", "the lost connection")
        await feed_ti(harness, range(105, 120))
        proxy.restore()
        await until(lambda: any(v == 119.0 for v, _ in ti_values(host)), "the replay", timeout=60)
        await feed_ti(harness, range(120, 123))
        await until(lambda: any(v == 122.0 for v, _ in ti_values(host)), "live values again")
    finally:
        await harness.stop()
        await proxy.close()
    assert ti_values(host) == ([(float(v), False) for v in range(100, 105)]
                               + [(float(v), True) for v in range(105, 120)]
                               + [(float(v), False) for v in range(120, 123)])
    # Every CONNECT attempt during the outage took the next bdSeq; the will ended the first.
    births = [m.metric("bdSeq").value for m in host.messages if m.kind == "NBIRTH"]
    death = next(m for m in host.messages if m.kind == "NDEATH")
    assert len(births) == 2 and births[1] != births[0]
    assert death.metric("bdSeq").value == births[0]
    assert seq_gaps(host.messages) == []


async def test_a_restart_replays_what_was_accepted_but_not_yet_published(tmp_path, group, host):
    proxy = await TcpProxy(*BROKER).start()
    proxy.cut()  # the first run never reaches the broker
    first = await NodeHarness(tmp_path, group, mqtt=MqttSettings(host="127.0.0.1", port=proxy.port)).start()
    await feed_ti(first, range(200, 210))
    await first.stop()
    await proxy.close()

    second = await NodeHarness(tmp_path, group).start()
    try:
        await second.wait_caught_up()
        await feed_ti(second, range(210, 212))
        await until(lambda: any(v == 211.0 for v, _ in ti_values(host)), "the live values")
    finally:
        await second.stop()
    assert ti_values(host) == ([(float(v), True) for v in range(200, 210)]
                               + [(float(v), False) for v in range(210, 212)])


async def until(predicate, what: str, timeout: float = 20.0) -> None:
    await _until(predicate, what, timeout)
