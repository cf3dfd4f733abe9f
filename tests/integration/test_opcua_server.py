"""The northbound OPC-UA server: an asyncua client against `refineryiq run --simulate`.

The daemon runs as a subprocess with the server on a free loopback port; faults are injected
through the simulator's control API. A second part starts the server alone (in process) to
check Basic256Sha256 with user/password, and the settings' security rules.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from argon2 import PasswordHasher
from asyncua import Client, Server, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography.x509.oid import ExtendedKeyUsageOID

from drivers.batch import Batch
from drivers.quality import Quality, Reason
from gateway.ingest.live_cache import LiveCache
from gateway.northbound.opcua import address_space as opcua_server_space
from gateway.northbound.opcua import standard_nodes
from gateway.northbound.opcua.runtime import ChangeSource, NorthboundServer, ServerThread
from gateway.northbound.opcua.status import status_code
from gateway.settings import OpcUaServerSettings, load_config
from plant.catalog import Catalog
from plant.errors import ConfigError
from plant.load import load_plant
from tests.support.daemon import ROOT, DaemonProcess, free_port

SC = ua.StatusCodes
TI_101 = ["0:Objects", "2:RefineryIQ", "2:CDU-101", "2:FURNACE-100", "2:TI-101"]


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.status, json.loads(resp.read())


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    state = tmp_path_factory.mktemp("opcua_server") / "state"
    port = free_port()
    d = DaemonProcess(state, env={
        "REFINERYIQ_OPCUA_SERVER__PORT": str(port),
        "REFINERYIQ_OPCUA_SERVER__SUMMARY_INTERVAL_S": "0.5",
        "REFINERYIQ_ALARMS__BAD_QUALITY_DELAY_S": "0",
        "REFINERYIQ_ANALYTICS__FIRST_RUN_DELAY_S": "2",
        "REFINERYIQ_ANALYTICS__KPI_INTERVAL_S": "2"}).start()
    health = d.wait_healthy(timeout=90)
    d.wait_for(lambda: d.get("/health")[1]["opcua_server"]["state"] == "serving", 30,
               "the OPC-UA server serving")
    d.opcua_url = f"opc.tcp://127.0.0.1:{port}"
    d.control = f"http://127.0.0.1:{health['simulator']['control_port']}"
    yield d
    d.kill()


async def _wait(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while asyncio.get_running_loop().time() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


# --------------------------------------------------------------------------- the daemon


async def test_a_tag_is_browsed_under_its_unit_and_equipment(daemon):
    async with Client(daemon.opcua_url) as client:
        node = await client.nodes.root.get_child(TI_101)
        assert node.nodeid == ua.NodeId("TI-101", 2)
        assert (await node.read_display_name()).Text == "TI-101"


async def test_a_tag_carries_its_engineering_units_and_ranges(daemon):
    async with Client(daemon.opcua_url) as client:
        node = await client.nodes.root.get_child(TI_101)
        eu = await (await node.get_child("0:EngineeringUnits")).read_value()
        eu_range = await (await node.get_child("0:EURange")).read_value()
    assert eu.DisplayName.Text == "°C"
    assert (eu_range.Low, eu_range.High) == (340.0, 360.0)


async def test_tag_values_equal_the_live_api(daemon):
    async with Client(daemon.opcua_url) as client:
        async def compare():
            _, live = daemon.get("/api/tags/live")
            nodes = [client.get_node(ua.NodeId(t["tag_id"], 2)) for t in live]
            values = await client.read_attributes(nodes, ua.AttributeIds.Value)
            # The server flushes changed tags every 200 ms: compare only readings of the
            # same scan (same source timestamp), and insist that nearly all are.
            same = [(t, dv) for t, dv in zip(live, values, strict=True)
                    if t["source_timestamp"] and dv.SourceTimestamp is not None
                    and datetime.fromisoformat(t["source_timestamp"]) ==
                    dv.SourceTimestamp.replace(microsecond=dv.SourceTimestamp.microsecond // 1000 * 1000)]
            return same if len(same) >= 0.9 * len(live) else None

        same = await _wait(compare, 20, "OPC-UA readings of the same scans as /api/tags/live")
    for tag, dv in same:
        if tag["quality"] == Quality.GOOD:
            assert dv.StatusCode.is_good(), tag["tag_id"]
            assert dv.Value.Value == pytest.approx(tag["value"], rel=1e-12), tag["tag_id"]


async def test_an_out_of_range_value_reads_bad_out_of_range(daemon):
    status, _ = _post(f"{daemon.control}/faults",
                      {"tag_id": "TI-101", "kind": "out_of_range", "duration_s": 30})
    assert status == 200
    async with Client(daemon.opcua_url) as client:
        node = client.get_node(ua.NodeId("TI-101", 2))

        async def bad():
            dv = await node.read_data_value(raise_on_bad_status=False)
            return dv if dv.StatusCode.value == SC.BadOutOfRange else None

        dv = await _wait(bad, 20, "TI-101 BadOutOfRange")
    assert dv.Value.Value is None


async def test_a_device_reported_bad_value_reads_bad_sensor_failure(daemon):
    status, _ = _post(f"{daemon.control}/faults",
                      {"tag_id": "TI-306", "kind": "bad_quality", "duration_s": 30})
    assert status == 200
    async with Client(daemon.opcua_url) as client:
        node = client.get_node(ua.NodeId("TI-306", 2))

        async def bad():
            dv = await node.read_data_value(raise_on_bad_status=False)
            return dv.StatusCode.value == SC.BadSensorFailure

        await _wait(bad, 20, "TI-306 BadSensorFailure")


class _Events:
    def __init__(self):
        self.received = []

    def event_notification(self, event):
        self.received.append(event)


async def test_an_alarm_transition_arrives_as_an_alarm_condition_event(daemon):
    async with Client(daemon.opcua_url) as client:
        handler = _Events()
        subscription = await client.create_subscription(100, handler)
        await subscription.subscribe_events(client.nodes.server,
                                            ua.ObjectIds.AlarmConditionType)
        status, _ = _post(f"{daemon.control}/faults",
                          {"tag_id": "PI-103", "kind": "out_of_range", "duration_s": 30})
        assert status == 200

        async def arrived():
            return next((e for e in handler.received if e.SourceName == "PI-103"), None)

        event = await _wait(arrived, 20, "an alarm event for PI-103")
    assert event.ConditionName == "PI-103/BAD_QUALITY"
    assert event.Severity in (300, 500, 800)
    assert event.EventType == ua.NodeId(ua.ObjectIds.AlarmConditionType)
    assert event.Message.Text


async def test_the_active_alarm_list_names_a_standing_alarm(daemon):
    _post(f"{daemon.control}/faults", {"tag_id": "FI-102", "kind": "out_of_range", "duration_s": 30})
    async with Client(daemon.opcua_url) as client:
        node = await client.nodes.root.get_child(
            ["0:Objects", "2:RefineryIQ", "2:Alarms", "2:active_alarms"])

        async def listed():
            return [line for line in await node.read_value() or []
                    if line.startswith("FI-102/BAD_QUALITY|")]

        await _wait(listed, 20, "FI-102 in the active alarm list")


async def test_unit_kpis_and_gateway_health_are_published(daemon):
    async with Client(daemon.opcua_url) as client:
        oee = await client.nodes.root.get_child(
            ["0:Objects", "2:RefineryIQ", "2:CDU-101", "2:KPIs", "2:oee_pct"])
        status = await client.nodes.root.get_child(
            ["0:Objects", "2:RefineryIQ", "2:Gateway", "2:status"])

        async def published():
            dv = await oee.read_data_value(raise_on_bad_status=False)
            return dv if dv.StatusCode.is_good() else None

        dv = await _wait(published, 30, "CDU-101 OEE")
        assert 0.0 <= dv.Value.Value <= 100.0
        assert await status.read_value() in ("healthy", "degraded")


async def test_clients_cannot_write_a_tag(daemon):
    async with Client(daemon.opcua_url) as client:
        node = client.get_node(ua.NodeId("FI-402", 2))
        with pytest.raises(ua.UaStatusCodeError) as refused:
            await node.write_value(ua.DataValue(ua.Variant(1.0, ua.VariantType.Double)))
    assert refused.value.code in (SC.BadNotWritable, SC.BadUserAccessDenied)


async def test_each_tag_keeps_its_own_names_ranges_and_units(daemon):
    async with Client(daemon.opcua_url) as client:
        read = {}
        for tag_id in ("TI-101", "FI-102"):
            node = client.get_node(ua.NodeId(tag_id, 2))
            eu = await (await node.get_child("0:EngineeringUnits")).read_value()
            eu_range = await (await node.get_child("0:EURange")).read_value()
            read[tag_id] = ((await node.read_browse_name()).Name,
                            (await node.read_display_name()).Text,
                            (await node.read_description()).Text,
                            eu.DisplayName.Text, (eu_range.Low, eu_range.High))
    assert read["TI-101"] == ("TI-101", "TI-101", "TI-101", "°C", (340.0, 360.0))
    assert read["FI-102"] == ("FI-102", "FI-102", "FI-102", "bpd", (9800.0, 10200.0))


async def test_clients_cannot_write_a_property_or_a_name(daemon):
    async with Client(daemon.opcua_url) as client:
        tag = client.get_node(ua.NodeId("TI-101", 2))
        eu_range = await tag.get_child("0:EURange")
        with pytest.raises(ua.UaStatusCodeError) as refused_value:
            await eu_range.write_value(ua.DataValue(ua.Variant(ua.Range(Low=0.0, High=1.0))))
        with pytest.raises(ua.UaStatusCodeError) as refused_name:
            await tag.write_attribute(ua.AttributeIds.DisplayName,
                                      ua.DataValue(ua.Variant(ua.LocalizedText("renamed"))))
        assert (await tag.read_display_name()).Text == "TI-101"
    assert refused_value.value.code in (SC.BadNotWritable, SC.BadUserAccessDenied)
    assert refused_name.value.code in (SC.BadNotWritable, SC.BadUserAccessDenied)


# --------------------------------------------------------------------------- address space memory


async def test_nodes_share_their_constant_attributes_but_not_their_values():
    catalog = Catalog.build(load_plant(ROOT / "config/plant.toml"), synthetic_tags=20)
    server = Server()
    await server.init()
    assert await server.register_namespace(opcua_server_space.NAMESPACE_URI) == 2
    space = await opcua_server_space.build_address_space(server, catalog)
    nodes = server.iserver.aspace
    A = ua.AttributeIds

    def attribute(node_id: str, attribute_id: ua.AttributeIds):
        return nodes[ua.NodeId(node_id, 2)].attributes[attribute_id]

    assert len(space.tag_nodes) == len(catalog)
    first, last = catalog.tags[0].id, catalog.tags[-1].id
    assert attribute(first, A.AccessLevel) is attribute(last, A.AccessLevel)
    assert attribute(first, A.Value) is not attribute(last, A.Value)
    assert attribute(first, A.NodeId) is not attribute(last, A.NodeId)
    # Synthetic tags have equal ranges: one shared property value; plant tags differ.
    assert attribute("SYN-00001/EURange", A.Value) is attribute("SYN-00020/EURange", A.Value)
    assert attribute("TI-101/EURange", A.Value).value.Value.Value == ua.Range(Low=340.0, High=360.0)
    assert attribute("FI-102/EURange", A.Value).value.Value.Value == ua.Range(Low=9800.0, High=10200.0)
    # Nothing computed or read yet: every tag and figure is Bad, waiting (never a Good null).
    oee, plant_oee = space.figures[("CDU-101", "KPIs", "oee_pct")], space.figures[("KPIs", "oee_pct")]
    for node_id in (ua.NodeId(first, 2), oee, plant_oee, space.figures[("Gateway", "status")]):
        assert nodes.read_attribute_value(node_id, A.Value).StatusCode.value == SC.BadWaitingForInitialData
    assert nodes[oee].attributes[A.Value] is not nodes[plant_oee].attributes[A.Value]


async def test_tag_nodes_are_created_on_first_touch_with_their_live_value():
    catalog = Catalog.build(load_plant(ROOT / "config/plant.toml"), synthetic_tags=120)
    live = LiveCache(len(catalog))
    server = Server()
    await server.init()
    await server.register_namespace(opcua_server_space.NAMESPACE_URI)
    space = await opcua_server_space.build_address_space(server, catalog, live=live)
    nodes = server.iserver.aspace
    assert space.lazy is not None and space.lazy.created == 0
    assert all(attr is None for attr in space.tag_attrs)
    i = catalog.index["SYN-00060"]
    live.update(Batch.build("bench", "bench", 1_700_000_000.0, 1_700_000_000.0,
                            np.array([i], dtype=np.int32), np.array([42.5]),
                            np.array([Quality.GOOD]), np.array([Reason.NONE])))
    # A browse of its folder names every tag without creating one.
    folder = ua.NodeId("RefineryIQ/Synthetic/SYN-00051..00100", 2)
    browse = ua.BrowseDescription(NodeId=folder, BrowseDirection=ua.BrowseDirection.Forward,
                                  ReferenceTypeId=ua.NodeId(ua.ObjectIds.HierarchicalReferences),
                                  IncludeSubtypes=True, ResultMask=ua.BrowseResultMask.All)
    refs = server.iserver.view_service.browse(ua.BrowseParameters(NodesToBrowse=[browse]))[0].References
    assert [r.BrowseName.Name for r in refs] == [f"SYN-{n:05d}" for n in range(51, 101)]
    assert space.lazy.created == 0 and ua.NodeId("SYN-00060", 2) in nodes
    assert ua.NodeId("SYN-00060/Nope", 2) not in nodes and ua.NodeId("NOPE-1", 2) not in nodes
    # A read of one of its properties creates the tag, its properties, and its live Value.
    units = nodes.read_attribute_value(ua.NodeId("SYN-00060/EngineeringUnits", 2), ua.AttributeIds.Value)
    assert units.Value.Value.DisplayName.Text == "%"
    assert space.lazy.created == 1 and space.tag_attrs[i] is not None
    value = nodes.read_attribute_value(ua.NodeId("SYN-00060", 2), ua.AttributeIds.Value)
    assert (value.Value.Value, value.StatusCode.value) == (42.5, SC.Good)
    assert value.SourceTimestamp.timestamp() == 1_700_000_000.0
    tag = nodes[ua.NodeId("SYN-00060", 2)]
    assert sorted(r.BrowseName.Name for r in tag.references if r.IsForward
                  and r.ReferenceTypeId == ua.NodeId(ua.ObjectIds.HasProperty)) == [
        "EURange", "EngineeringUnits", "InstrumentRange"]
    # The folder still lists each tag once; other tags are still not created.
    refs = server.iserver.view_service.browse(ua.BrowseParameters(NodesToBrowse=[browse]))[0].References
    assert len(refs) == 50 and space.lazy.created == 1


async def test_the_standard_nodes_come_compressed_from_a_child_process():
    server = Server()
    assert await standard_nodes.install(server)
    await server.init()
    table = server.iserver.aspace._nodes
    assert isinstance(table, standard_nodes.CompactNodes)
    created = len(table)
    assert created < 1000 < len(table.source)  # most of the 6,174 standard nodes wait compressed
    assert len(table.zdict) > 0 and table.stored_bytes < 2_000_000  # against the shared dictionary
    node = server.get_node(ua.NodeId(ua.ObjectIds.AlarmConditionType))
    assert (await node.read_browse_name()).Name == "AlarmConditionType"
    assert len(table) > created


async def test_a_standard_node_written_after_sharing_keeps_the_others_unchanged():
    server = Server()
    await server.init()
    nodes = server.iserver.aspace
    event_notifier = ua.AttributeIds.EventNotifier
    objects, views = ua.NodeId(ua.ObjectIds.ObjectsFolder), ua.NodeId(ua.ObjectIds.ViewsFolder)
    opcua_server_space.share_standard_values(nodes)
    assert nodes[objects].attributes[event_notifier].value is nodes[views].attributes[event_notifier].value
    # What asyncua does to the Server object when an event generator starts.
    await server.write_attribute_value(objects, ua.DataValue(ua.Variant(1, ua.VariantType.Byte)),
                                       event_notifier)
    assert nodes.read_attribute_value(objects, event_notifier).Value.Value == 1
    assert nodes.read_attribute_value(views, event_notifier).Value.Value == 0


# --------------------------------------------------------------------------- mapping


@pytest.mark.parametrize(("quality", "reason", "code"), [
    (Quality.GOOD, Reason.NONE, SC.Good),
    (Quality.DOUBTFUL, Reason.STALE, SC.UncertainLastUsableValue),
    (Quality.DOUBTFUL, Reason.DEVICE_UNCERTAIN, SC.Uncertain),
    (Quality.BAD, Reason.TIMEOUT, SC.BadTimeout),
    (Quality.BAD, Reason.DISCONNECTED, SC.BadNotConnected),
    (Quality.BAD, Reason.OUT_OF_RANGE, SC.BadOutOfRange),
    (Quality.BAD, Reason.DEVICE_BAD, SC.BadSensorFailure),
    (Quality.BAD, Reason.NOT_READ, SC.BadWaitingForInitialData),
])
def test_quality_and_reason_map_to_a_status_code(quality, reason, code):
    assert status_code(quality, reason) == code


# --------------------------------------------------------------------------- security


def test_security_none_is_refused_beyond_loopback():
    with pytest.raises(ConfigError, match=r"opcua_server: .*loopback"):
        load_config(ROOT / "config/gateway.toml",
                    environ={"REFINERYIQ_OPCUA_SERVER__HOST": "0.0.0.0"})


def test_secure_mode_needs_users():
    with pytest.raises(ValueError, match="needs at least one entry in users"):
        OpcUaServerSettings(security="Basic256Sha256", host="0.0.0.0")


PASSWORD = "scada reader 2026"
# Cheap argon2 parameters: the test checks the flow, not the cost.
HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="module")
def secure_server(tmp_path_factory):
    state = tmp_path_factory.mktemp("secure")
    catalog = Catalog.build(load_plant(ROOT / "config/plant.toml"))
    live = LiveCache(len(catalog))
    live.update(Batch.build("g", "d", 1.0, 1.0, np.array([catalog.index["TI-101"]]),
                            np.array([351.5]), np.array([Quality.GOOD]), np.array([Reason.NONE])))
    settings = OpcUaServerSettings(
        host="127.0.0.1", port=0, security="Basic256Sha256",
        users=[{"username": "scada", "password_hash": HASHER.hash(PASSWORD)}])
    server = NorthboundServer(settings, catalog, ChangeSource(live), state)
    thread = ServerThread()
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), thread.loop).result(30)
    yield server, state
    asyncio.run_coroutine_threadsafe(server.stop(), thread.loop).result(10)
    asyncio.run(thread.stop())


async def _client_cert(state: Path) -> str:
    key, cert = state / "client-key.pem", state / "client-cert.der"
    await setup_self_signed_certificate(key, cert, "urn:refineryiq:test-client", "localhost",
                                        [ExtendedKeyUsageOID.CLIENT_AUTH], {"commonName": "test"})
    return f"Basic256Sha256,SignAndEncrypt,{cert},{key}"


def test_the_server_certificate_is_generated_in_the_state_dir(secure_server):
    _, state = secure_server
    assert (state / "pki/server/gateway-cert.der").exists()
    assert (state / "pki/server/gateway-key.pem").stat().st_mode & 0o077 == 0


async def test_a_user_reads_over_basic256sha256_sign_and_encrypt(secure_server):
    server, state = secure_server
    client = Client(server.endpoint)
    await client.set_security_string(await _client_cert(state))
    client.set_user("scada")
    client.set_password(PASSWORD)
    async with client:
        value = await client.get_node(ua.NodeId("TI-101", 2)).read_value()
    assert value == 351.5


async def test_a_wrong_password_is_refused(secure_server):
    server, state = secure_server
    client = Client(server.endpoint)
    await client.set_security_string(await _client_cert(state))
    client.set_user("scada")
    client.set_password("not the password")
    with pytest.raises(ua.UaStatusCodeError) as refused:
        async with client:
            pass
    assert refused.value.code == SC.BadUserAccessDenied


async def test_an_unencrypted_anonymous_client_is_refused(secure_server):
    server, _ = secure_server
    with pytest.raises(Exception):  # noqa: B017 - no endpoint offers security None
        async with Client(server.endpoint):
            pass
