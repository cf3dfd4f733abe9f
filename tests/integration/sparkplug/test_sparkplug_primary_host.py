"""Primary host awareness (Sparkplug 3.0): with ``primary_host_id`` set, the node publishes
nothing until the host's STATE says online; when the host goes offline it sends NDEATH,
disconnects and holds; when the host returns it sends births, then every held value as a
historical metric, in order, once, then live data. Real Mosquitto, our own host client."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support.sparkplug_host import seq_gaps
from tests.support.sparkplug_node import NodeHarness

TI = "CDU-101/FURNACE-100/TI-101"




@pytest.fixture
async def node(tmp_path, group, host):
    harness = await NodeHarness(tmp_path, group, primary_host_id=host.host_id).start()
    yield harness
    await harness.stop()


async def wait_state(harness: NodeHarness, word: str) -> None:
    deadline = time.monotonic() + 15
    while harness.node.health()["state"] != word:
        assert time.monotonic() < deadline, harness.node.health()
        await asyncio.sleep(0.02)


async def feed_ti(harness: NodeHarness, values: range) -> None:
    for v in values:
        await harness.feed_values("plc-a", [float(v), 10000.0, 20.0, 50.0])


async def test_nothing_is_published_before_the_primary_host_is_online(node, host):
    await wait_state(node, "waiting_for_host")
    await feed_ti(node, range(300, 305))
    assert node.node.health()["births"] == 0
    assert host.messages == []
    host.publish_state(True)
    await host.wait_kind("DBIRTH", count=2)
    assert host.kinds()[:3] == ["NBIRTH", "DBIRTH", "DBIRTH"]


async def test_values_held_while_the_host_is_offline_arrive_once_in_order_as_history(node, host):
    host.publish_state(True)
    await host.wait_kind("DBIRTH", count=2)
    await feed_ti(node, range(300, 310))  # live
    await node.wait_caught_up()
    first_bd_seq = host.messages[0].metric("bdSeq").value

    host.publish_state(False)
    death = (await host.wait_kind("NDEATH"))[0]
    assert death.metric("bdSeq").value == first_bd_seq
    await wait_state(node, "waiting_for_host")
    mark = len(host.messages)
    await feed_ti(node, range(310, 340))  # held
    assert node.node.health()["held_batches"] == 30
    assert host.messages[mark:] == []

    host.publish_state(True)
    births = await host.wait_kind("NBIRTH", since=mark)
    assert births[0].metric("bdSeq").value == (first_bd_seq + 1) % 256
    await node.wait_caught_up()
    await feed_ti(node, range(340, 345))  # live again
    await node.wait_caught_up()
    await host.wait_for(lambda _: any(p.value == 344.0 for p in host.points() if p.name == TI))

    after = host.kinds(mark)
    assert after[:3] == ["NBIRTH", "DBIRTH", "DBIRTH"]
    ti = [p for p in host.points() if p.name == TI and p.kind == "DDATA"]
    assert [p.value for p in ti] == [float(v) for v in range(300, 345)]  # each once, in order
    assert [p.historical for p in ti] == [False] * 10 + [True] * 30 + [False] * 5
    assert [p.timestamp for p in ti] == sorted(p.timestamp for p in ti)
    # The held values come after the births and before any live value of the new session.
    kinds_after = [(m.kind, any(x.is_historical for x in m.metrics)) for m in host.messages[mark:]]
    first_live = next(i for i, (k, hist) in enumerate(kinds_after) if k == "DDATA" and not hist)
    assert all(hist for k, hist in kinds_after[3:first_live] if k == "DDATA")
    assert seq_gaps(host.messages) == []


async def test_a_stale_state_message_is_ignored(node, host):
    now = int(time.time() * 1000)
    host.publish_state(True, now)
    await host.wait_kind("DBIRTH", count=2)
    host.publish_state(False, now - 60_000)  # older than the online one: not the host's state
    host.rebirth("edge-t")  # a later message from the host, to know the STATE was handled
    await host.wait_kind("NBIRTH", count=2)
    assert node.node.health()["state"] == "online"
    assert "NDEATH" not in host.kinds()
