"""The Sparkplug B edge node against the real Mosquitto on 127.0.0.1:1883, read by a host
application of our own (tests/support/sparkplug_host.py) decoding with the Sparkplug schema.

Each test uses its own group id, so topics never collide. The node is fed as the pipeline
feeds it (tests/support/sparkplug_node.py): commit to a real embedded store, live cache, sink.
"""

from __future__ import annotations

import pytest

from drivers.quality import Quality
from gateway.northbound.sparkplug import sparkplug_b_pb2 as pb
from plant.catalog import Catalog
from tests.support.sparkplug_host import SparkplugHost, seq_gaps
from tests.support.sparkplug_node import EDGE_NODE, NodeHarness, plant_catalog


@pytest.fixture
async def node(tmp_path, group, host):  # the host listens before the node is born
    harness = await NodeHarness(tmp_path, group).start()
    await harness.wait_born()
    yield harness
    await harness.stop()


def dbirth_aliases(host: SparkplugHost, device: str) -> dict[int, str]:
    birth = [m for m in host.messages if m.kind == "DBIRTH" and m.device == device][-1]
    return {m.alias: m.name for m in birth.metrics}


async def test_births_come_first_node_then_each_device(node, host):
    await node.feed_values("plc-a", [350.0, 10000.0, 20.0, 50.0])
    await host.wait_kind("DDATA")
    kinds = host.kinds()
    assert kinds[:3] == ["NBIRTH", "DBIRTH", "DBIRTH"]
    assert {m.device for m in host.messages[1:3]} == {"plc-a", "plc-b"}
    nbirth = host.messages[0]
    assert nbirth.seq == 0
    rebirth = nbirth.metric("Node Control/Rebirth")
    assert (rebirth.datatype, rebirth.value) == (pb.Boolean, False)
    assert nbirth.metric("bdSeq").datatype == pb.Int64
    assert nbirth.metric("Gateway/Health").value == "healthy"
    assert nbirth.metric("Gateway/Values per second").value == 7.0
    assert all(m.timestamp for m in nbirth.metrics)


async def test_dbirth_lists_every_tag_with_alias_datatype_value_timestamp_and_properties(node, host):
    await node.feed_values("plc-a", [350.0, 10000.0, 20.0, 50.0])
    await node.node.reload(None, node.catalog)  # births again, now with values
    births = await host.wait_kind("DBIRTH", count=4)
    birth = [m for m in births if m.device == "plc-a"][-1]
    ti = birth.metric("CDU-101/FURNACE-100/TI-101")
    assert ti.alias is not None and ti.datatype == pb.Double and ti.value == 350.0
    assert ti.timestamp > 0
    assert ti.properties["engUnit"] == "°C"
    assert (ti.properties["normalLow"], ti.properties["normalHigh"]) == (340.0, 360.0)
    assert ti.properties["description"]
    assert ti.properties["Quality"] == Quality.GOOD
    assert [m.name.split("/")[-1] for m in birth.metrics] == ["TI-101", "FI-102", "PI-103", "II-999"]
    aliases = [m.alias for b in births[-2:] for m in b.metrics]
    assert len(aliases) == len(set(aliases))  # unique across the edge node


async def test_a_tag_never_read_is_born_null_with_bad_quality(node, host):
    await host.wait_kind("DBIRTH", count=2)
    birth = next(m for m in host.messages if m.kind == "DBIRTH" and m.device == "plc-b")
    level = birth.metric("HT-305/LI-305")
    assert level.is_null and level.properties["Quality"] == Quality.BAD


async def test_seq_runs_over_every_message_and_wraps_after_255(node, host):
    for n in range(300):
        await node.feed_values("plc-a", [350.0 + n, 10000.0, 20.0, 50.0])
        await node.wait_caught_up()  # one DDATA per scan
    await host.wait_kind("DDATA", count=300)
    seqs = [m.seq for m in host.messages]
    assert 255 in seqs and seqs[seqs.index(255) + 1] == 0
    assert seq_gaps(host.messages) == []


async def test_ddata_carries_aliases_from_the_births_only(node, host):
    await node.feed_values("plc-a", [351.0, 10001.0, 21.0, 51.0])
    await node.feed_values("plc-b", [50.0, 330.0, 90.0])
    data = await host.wait_kind("DDATA", count=2)
    for message in data:
        aliases = dbirth_aliases(host, message.device)
        assert message.metrics
        for m in message.metrics:
            assert m.name is None and m.datatype is None  # aliases only, no datatype
            assert m.alias in aliases
            assert m.timestamp > 0
    points = {p.name: p.value for p in host.points() if p.kind == "DDATA"}
    assert points["CDU-101/FURNACE-100/TI-101"] == 351.0
    assert points["ALK-400/AI-400"] == 90.0


async def test_quality_rides_as_the_quality_property(node, host):
    for quality in (Quality.GOOD, Quality.DOUBTFUL, Quality.BAD):
        value = 350.0 if quality != Quality.BAD else float("nan")
        await node.feed_values("plc-a", [value] * 4, quality=quality)
        await node.wait_caught_up()  # one DDATA per scan
    data = await host.wait_kind("DDATA", count=3)
    good, doubtful, bad = data
    assert all("Quality" not in m.properties for m in good.metrics)  # absent: good
    assert {m.properties["Quality"] for m in doubtful.metrics} == {Quality.DOUBTFUL}
    assert [m.value for m in doubtful.metrics] == [350.0] * 4
    assert {m.properties["Quality"] for m in bad.metrics} == {Quality.BAD}
    assert all(m.is_null for m in bad.metrics)


async def test_rebirth_on_ncmd_node_control_rebirth(node, host):
    await host.wait_kind("DBIRTH", count=2)
    bd_seq = host.messages[0].metric("bdSeq").value
    mark = len(host.messages)
    host.rebirth(EDGE_NODE)
    await host.wait_kind("DBIRTH", count=2, since=mark)
    assert host.kinds(mark)[:3] == ["NBIRTH", "DBIRTH", "DBIRTH"]
    again = host.messages[mark]
    assert again.seq == 0 and again.metric("bdSeq").value == bd_seq  # same MQTT session
    await node.feed_values("plc-a", [352.0, 10000.0, 20.0, 50.0])
    data = (await host.wait_kind("DDATA", since=mark))[0]
    assert {m.alias for m in data.metrics} <= set(dbirth_aliases(host, "plc-a"))


async def test_ddeath_when_a_device_is_lost_and_dbirth_when_it_returns(node, host):
    await node.feed_values("plc-a", [350.0, 10000.0, 20.0, 50.0])
    await host.wait_kind("DDATA")
    node.connected["plc-a"] = False
    await node.feed_values("plc-a", [float("nan")] * 4, quality=Quality.BAD)
    await host.wait_kind("DDEATH")
    mark = len(host.messages)
    node.connected["plc-a"] = True
    await node.feed_values("plc-a", [355.0, 10000.0, 20.0, 50.0])
    birth = (await host.wait_kind("DBIRTH", since=mark))[0]
    assert birth.device == "plc-a"
    death_at = host.kinds().index("DDEATH")
    after_death = host.messages[death_at + 1:mark]
    assert not [m for m in after_death if m.kind == "DDATA" and m.device == "plc-a"]
    assert seq_gaps(host.messages) == []


async def test_clean_stop_publishes_ndeath_with_the_births_bdseq(tmp_path, group, host):
    harness = await NodeHarness(tmp_path, group).start()
    await harness.wait_born()
    await host.wait_kind("NBIRTH")
    await harness.stop()
    death = (await host.wait_kind("NDEATH"))[0]
    assert death.seq is None
    assert [m.name for m in death.metrics] == ["bdSeq"]
    assert death.metric("bdSeq").value == host.messages[0].metric("bdSeq").value


def catalog_with_deadband(tag_id: str, deadband: float) -> Catalog:
    plant = plant_catalog().plant
    tags = [t.model_copy(update={"deadband": deadband}) if t.id == tag_id else t for t in plant.tags]
    return Catalog.build(plant.model_copy(update={"tags": tags}))


async def test_deadband_of_the_catalog_is_honoured(tmp_path, group, host):
    # TI-101 has its own deadband of 1 °C; the others use deadband_pct of their normal span.
    harness = NodeHarness(tmp_path, group, catalog=catalog_with_deadband("TI-101", 1.0),
                          deadband_pct=10.0)
    await harness.start()
    try:
        await harness.wait_born()
        # FI-102's span is 400 bpd: 10 % is 40 bpd.
        for ti, fi in [(350.0, 10000.0), (350.6, 10030.0), (351.2, 10041.0), (351.3, 10042.0)]:
            await harness.feed_values("plc-a", [ti, fi, 20.0, 50.0])
        await harness.feed_values("plc-a", [351.3, 10042.0, 20.0, 50.0], quality=Quality.DOUBTFUL)
        await harness.wait_caught_up()
        await host.wait_kind("DDATA", count=2)
        sent = [(p.name.split("/")[-1], p.value, p.quality)
                for p in host.points() if p.kind == "DDATA" and not p.historical]
        # The first scan is reported whole (the births had no values yet); then TI moves
        # 1.2 > 1 at the third scan and FI 41 > 40; then only the quality change of every tag.
        assert [n for n, _, _ in sent[:4]] == ["TI-101", "FI-102", "PI-103", "II-999"]
        assert sent[4:6] == [("TI-101", 351.2, None), ("FI-102", 10041.0, None)]
        assert {(n, q) for n, _, q in sent[6:]} == {(t, Quality.DOUBTFUL) for t in
                                                      ("TI-101", "FI-102", "PI-103", "II-999")}
    finally:
        await harness.stop()
