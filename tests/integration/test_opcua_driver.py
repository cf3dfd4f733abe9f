"""The OPC-UA driver against a real asyncua server on a free loopback port."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from asyncua import Server, ua
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager
from cryptography.x509.oid import ExtendedKeyUsageOID
from pydantic import SecretStr

from drivers.base import GroupPlan
from drivers.batch import Batch
from drivers.opcua import OpcUaDriver
from drivers.opcua.security import client_certificate_paths, trusted_server_certificate_path
from drivers.quality import Quality, Reason
from plant.catalog import OPCUA_NAMESPACE_URI
from plant.devices import OpcUaDevice, ScanGroup
from plant.schema import OpcUaAddress, Tag, TagType
from tests.support.tcp_proxy import TcpProxy

# One event loop for the module so the servers (2 s to build asyncua's address space) are shared.
pytestmark = [pytest.mark.timeout(60), pytest.mark.asyncio(loop_scope="module")]
logging.getLogger("asyncua").setLevel(logging.ERROR)

HT_305 = {"TI-306": 342.5, "FI-300": 6010.0, "PI-301": 48.2}
SOURCE_TS = datetime(2027, 1, 15, 8, 30, 0, tzinfo=UTC)
USERNAME, PASSWORD = "gateway", "s3cret-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tag(tag_id: str, node: str | None = None) -> Tag:
    return Tag(id=tag_id, name=tag_id, unit_id=None, engineering_units="x", tag_type=TagType.ANALOG,
               normal_min=0, normal_max=10_000, instrument_min=-100, instrument_max=20_000,
               opcua=OpcUaAddress(node_id=node or f"ns=2;s=HT-305.{tag_id}"))


def plan(group_id: str, tags: list[Tag], **group: object) -> GroupPlan:
    return GroupPlan(group=ScanGroup(id=group_id, device="scada-ht", **group),
                     tag_index=np.arange(len(tags), dtype=np.int32), tags=tuple(tags))


class _Users(UserManager):
    def get_user(self, iserver, username=None, password=None, certificate=None):
        if username == USERNAME and password == PASSWORD:
            return User(role=UserRole.User)
        return None


class PlantServer:
    """An asyncua server with HT-305 variables as ``ns=2;s=HT-305.<tag>``; restartable on its port.

    ``stop`` closes the listening socket and every session (their subscriptions go with them);
    ``start`` listens again on the same port, as a restarted server would.
    """

    def __init__(self, port: int, pki: Path | None = None):
        self.port = port
        self.pki = pki
        self.server: Server | None = None
        self.running = False
        self.nodes: dict[str, object] = {}

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/"

    async def start(self) -> PlantServer:
        if self.server is None:
            self.server = await self._build()
        await self.server.start()
        self.running = True
        return self

    async def _build(self) -> Server:
        server = Server(user_manager=_Users()) if self.pki else Server()
        await server.init()
        server.disable_clock()  # its 1 s clock task would delay every stop by up to 1 s
        server.set_endpoint(self.endpoint)
        if self.pki:
            key, cert = self.pki / "server-key.pem", self.pki / "server-cert.der"
            await cert_gen.setup_self_signed_certificate(
                key, cert, server.get_application_uri(), "localhost",
                [ExtendedKeyUsageOID.SERVER_AUTH], {})
            await server.load_certificate(str(cert))
            await server.load_private_key(str(key))
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
            server.set_identity_tokens([ua.UserNameIdentityToken])
        ns = await server.register_namespace(OPCUA_NAMESPACE_URI)
        unit = await server.nodes.objects.add_object(ns, "HT-305")
        for tag_id, value in HT_305.items():
            node = await unit.add_variable(ua.NodeId(f"HT-305.{tag_id}", ns), tag_id, value)
            await node.write_value(ua.DataValue(ua.Variant(value, ua.VariantType.Double),
                                                SourceTimestamp=SOURCE_TS))
            self.nodes[tag_id] = node
        return server

    async def write(self, tag_id: str, value: float, status: int = ua.StatusCodes.Good) -> None:
        await self.nodes[tag_id].write_value(ua.DataValue(
            ua.Variant(value, ua.VariantType.Double), StatusCode=ua.StatusCode(status),
            SourceTimestamp=datetime.now(UTC)))

    async def reset(self) -> None:
        for tag_id, value in HT_305.items():
            await self.nodes[tag_id].write_value(ua.DataValue(ua.Variant(value, ua.VariantType.Double),
                                                              SourceTimestamp=SOURCE_TS))

    async def stop(self) -> None:
        if self.server is not None and self.running:
            self.running = False
            await self.server.stop()


async def eventually(check: Callable[[], bool | Awaitable[bool]], within: float = 20.0) -> None:
    """Wait until ``check`` holds (a bound on waiting, not a timing assertion)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_server():
    server = await PlantServer(free_port()).start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def plant_server(shared_server):
    """The shared plain server with its variables back at their initial values."""
    await shared_server.reset()
    return shared_server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def secure_server(tmp_path_factory):
    """A server offering only Basic256Sha256 SignAndEncrypt with username/password login."""
    pki = tmp_path_factory.mktemp("server-pki")
    server = await PlantServer(free_port(), pki=pki).start()
    yield server
    await server.stop()


def device(server: PlantServer, **overrides: object) -> OpcUaDevice:
    return OpcUaDevice(id="scada-ht", protocol="opcua", endpoint=server.endpoint, timeout_s=2.0,
                       **overrides)


@pytest_asyncio.fixture(loop_scope="module")
async def make_driver(tmp_path):
    drivers: list[OpcUaDriver] = []

    async def make(dev: OpcUaDevice, plans: dict[str, GroupPlan]) -> OpcUaDriver:
        driver = OpcUaDriver(dev, plans, tmp_path / "state", backoff_initial_s=0.1, backoff_max_s=0.5,
                             watchdog_interval_s=0.5)
        drivers.append(driver)
        await driver.connect()
        return driver

    yield make
    for driver in drivers:
        await driver.close()


class Collector:
    """A subscription callback that keeps every Batch it receives."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []

    async def __call__(self, batch: Batch) -> None:
        self.batches.append(batch)

    def latest(self, tag_index: int) -> tuple[float, int, int] | None:
        for batch in reversed(self.batches):
            hits = np.flatnonzero(batch.tag_index == tag_index)
            if len(hits):
                i = hits[-1]
                return float(batch.values[i]), int(batch.quality[i]), int(batch.reason[i])
        return None


POLL = "ht-poll"


async def test_poll_reads_values_with_their_source_timestamps(plant_server, make_driver):
    tags = [tag(t) for t in HT_305]
    driver = await make_driver(device(plant_server), {POLL: plan(POLL, tags)})
    batch = await driver.read(POLL, time.time())
    assert batch.values.tolist() == list(HT_305.values())
    assert (batch.quality == Quality.GOOD).all()
    assert (batch.source_ts == SOURCE_TS.timestamp()).all()
    assert driver.stats.last_good_scan is not None


async def test_poll_reads_in_chunks_of_the_configured_node_limit(plant_server, make_driver):
    tags = [tag(t) for t in HT_305]
    driver = await make_driver(device(plant_server, max_nodes_per_read=2), {POLL: plan(POLL, tags)})
    batch = await driver.read(POLL, time.time())
    assert batch.values.tolist() == list(HT_305.values())
    assert len(driver._groups[POLL].read_requests(driver.max_nodes_per_read)) == 2


async def test_server_operation_limit_is_read_at_connect(plant_server, make_driver):
    driver = await make_driver(device(plant_server), {POLL: plan(POLL, [tag("TI-306")])})
    assert driver.max_nodes_per_read == 10_000  # asyncua's default OperationLimits


async def test_variable_with_bad_status_reads_bad_from_the_device(plant_server, make_driver):
    await plant_server.write("TI-306", 0.0, ua.StatusCodes.BadSensorFailure)
    driver = await make_driver(device(plant_server), {POLL: plan(POLL, [tag("TI-306"), tag("FI-300")])})
    batch = await driver.read(POLL, time.time())
    assert (batch.quality[0], batch.reason[0]) == (Quality.BAD, Reason.DEVICE_BAD)
    assert batch.quality[1] == Quality.GOOD


async def test_unknown_node_is_bad_and_the_rest_of_the_group_still_good(plant_server, make_driver):
    tags = [tag("TI-306"), tag("TI-999", "ns=2;s=HT-305.TI-999"), tag("FI-300")]
    driver = await make_driver(device(plant_server), {POLL: plan(POLL, tags)})
    batch = await driver.read(POLL, time.time())
    assert batch.quality.tolist() == [Quality.GOOD, Quality.BAD, Quality.GOOD]
    assert batch.reason[1] == Reason.DEVICE_BAD
    assert driver.stats.bad_values[Reason.DEVICE_BAD] == 1


async def test_namespace_uris_resolve_to_the_servers_index(plant_server, make_driver):
    # The server registers the plant namespace at index 2; the configuration names it by URI.
    tags = [tag("TI-306", f"nsu={OPCUA_NAMESPACE_URI};s=HT-305.TI-306"),
            tag("FI-300", "ns=2;s=HT-305.FI-300"),
            tag("TI-307", "nsu=urn:no-such-namespace;s=HT-305.TI-306")]
    driver = await make_driver(device(plant_server), {POLL: plan(POLL, tags)})
    batch = await driver.read(POLL, time.time())
    assert batch.values[:2].tolist() == [HT_305["TI-306"], HT_305["FI-300"]]
    assert batch.quality.tolist() == [Quality.GOOD, Quality.GOOD, Quality.BAD]
    assert batch.reason[2] == Reason.DEVICE_BAD


async def test_subscribed_namespace_uri_nodes_deliver_values(plant_server, make_driver):
    tags = [tag("TI-306", f"nsu={OPCUA_NAMESPACE_URI};s=HT-305.TI-306")]
    driver = await make_driver(device(plant_server), {"ht-sub": plan("ht-sub", tags, mode="subscribe",
                                                                    interval_ms=50)})
    received = Collector()
    await driver.subscribe("ht-sub", received)
    await plant_server.write("TI-306", 123.5)
    await eventually(lambda: received.latest(0) is not None and received.latest(0)[0] == 123.5)
    assert received.latest(0)[1] == Quality.GOOD


async def test_read_without_a_server_is_disconnected_not_an_exception(make_driver):
    dev = OpcUaDevice(id="scada-ht", protocol="opcua", endpoint=f"opc.tcp://127.0.0.1:{free_port()}/")
    driver = await make_driver(dev, {POLL: plan(POLL, [tag("TI-306")])})
    batch = await driver.read(POLL, time.time())
    assert not driver.connected
    assert (batch.quality[0], batch.reason[0]) == (Quality.BAD, Reason.DISCONNECTED)
    assert driver.stats.last_error is not None


async def test_subscription_delivers_changes(plant_server, make_driver):
    tags = [tag("TI-306"), tag("FI-300")]
    driver = await make_driver(device(plant_server), {"ht-sub": plan("ht-sub", tags, mode="subscribe",
                                                                    interval_ms=50)})
    received = Collector()
    await driver.subscribe("ht-sub", received)
    await eventually(lambda: received.latest(0) is not None)
    await plant_server.write("TI-306", 351.0)
    await eventually(lambda: received.latest(0) == (351.0, Quality.GOOD, Reason.NONE))


async def test_subscription_deadband_suppresses_small_changes(plant_server, make_driver):
    driver = await make_driver(device(plant_server), {"ht-sub": plan(
        "ht-sub", [tag("TI-306")], mode="subscribe", interval_ms=50, deadband=5.0)})
    received = Collector()
    await driver.subscribe("ht-sub", received)
    await eventually(lambda: received.latest(0) is not None)
    await plant_server.write("TI-306", 343.0)  # within 5 of 342.5
    await plant_server.write("TI-306", 360.0)
    await eventually(lambda: received.latest(0) == (360.0, Quality.GOOD, Reason.NONE))
    assert 343.0 not in [v for b in received.batches for v in b.values.tolist()]


async def test_subscribed_unknown_node_is_delivered_bad(plant_server, make_driver):
    tags = [tag("TI-306"), tag("TI-999", "ns=2;s=HT-305.TI-999")]
    driver = await make_driver(device(plant_server), {"ht-sub": plan("ht-sub", tags, mode="subscribe",
                                                                    interval_ms=50)})
    received = Collector()
    await driver.subscribe("ht-sub", received)
    await eventually(lambda: received.latest(1) is not None)
    assert received.latest(1)[1:] == (Quality.BAD, Reason.DEVICE_BAD)


async def test_server_restart_reconnects_and_subscriptions_resume(make_driver):
    plant_server = await PlantServer(free_port()).start()
    driver = await make_driver(device(plant_server), {
        POLL: plan(POLL, [tag("FI-300")]),
        "ht-sub": plan("ht-sub", [tag("TI-306")], mode="subscribe", interval_ms=50)})
    received = Collector()
    await driver.subscribe("ht-sub", received)
    await eventually(lambda: received.latest(0) is not None)

    await plant_server.stop()
    await eventually(lambda: not driver.connected)
    await eventually(lambda: received.latest(0)[1:] == (Quality.BAD, Reason.DISCONNECTED))
    batch = await driver.read(POLL, time.time())
    assert batch.reason[0] == Reason.DISCONNECTED

    await plant_server.start()
    await eventually(lambda: driver.connected)
    await plant_server.write("TI-306", 355.0)
    await eventually(lambda: received.latest(0) == (355.0, Quality.GOOD, Reason.NONE))
    batch = await driver.read(POLL, time.time())
    assert batch.quality[0] == Quality.GOOD
    assert driver.stats.connects >= 2
    await driver.close()
    await plant_server.stop()


async def test_network_cut_reads_disconnected_then_recovers_unaided(plant_server, make_driver):
    proxy = await TcpProxy("127.0.0.1", plant_server.port).start()
    try:
        dev = OpcUaDevice(id="scada-ht", protocol="opcua", endpoint=f"opc.tcp://127.0.0.1:{proxy.port}/",
                          timeout_s=2.0)
        driver = await make_driver(dev, {POLL: plan(POLL, [tag("TI-306")])})
        assert driver.connected
        proxy.cut()
        await eventually(lambda: not driver.connected)
        assert (await driver.read(POLL, time.time())).reason[0] == Reason.DISCONNECTED
        proxy.restore()
        await eventually(lambda: driver.connected)
        batch = await driver.read(POLL, time.time())
        assert batch.quality[0] == Quality.GOOD
        assert driver.stats.errors[Reason.DISCONNECTED] >= 1
    finally:
        await proxy.close()


async def test_signed_and_encrypted_session_with_username_and_password(secure_server, tmp_path,
                                                                      make_driver):
    dev = device(secure_server, security_policy="Basic256Sha256", security_mode="SignAndEncrypt",
                 username=USERNAME, password=SecretStr(PASSWORD))
    driver = await make_driver(dev, {POLL: plan(POLL, [tag("TI-306")])})
    assert driver.connected, driver.stats.last_error
    batch = await driver.read(POLL, time.time())
    assert batch.values.tolist() == [HT_305["TI-306"]]


async def test_first_secure_connect_creates_our_certificate_and_pins_the_servers(
        secure_server, tmp_path, make_driver):
    dev = device(secure_server, security_policy="Basic256Sha256", username=USERNAME,
                 password=SecretStr(PASSWORD))
    await make_driver(dev, {POLL: plan(POLL, [tag("TI-306")])})
    state = tmp_path / "state"
    assert all(p.is_file() for p in client_certificate_paths(state))
    assert trusted_server_certificate_path(state, "scada-ht").read_bytes() == \
        (secure_server.pki / "server-cert.der").read_bytes()


async def test_wrong_password_is_refused_and_reads_disconnected(secure_server, make_driver):
    dev = device(secure_server, security_policy="Basic256Sha256", username=USERNAME,
                 password=SecretStr("wrong"))
    driver = await make_driver(dev, {POLL: plan(POLL, [tag("TI-306")])})
    batch = await driver.read(POLL, time.time())
    assert not driver.connected
    assert batch.reason[0] == Reason.DISCONNECTED


async def test_server_presenting_another_certificate_is_not_trusted(secure_server, tmp_path,
                                                                   make_driver):
    pinned = trusted_server_certificate_path(tmp_path / "state", "scada-ht")
    pinned.parent.mkdir(parents=True)
    pinned.write_bytes(b"\x30\x82\x00\x01\x00")  # some other certificate
    dev = device(secure_server, security_policy="Basic256Sha256", username=USERNAME,
                 password=SecretStr(PASSWORD))
    driver = await make_driver(dev, {POLL: plan(POLL, [tag("TI-306")])})
    assert not driver.connected
    assert "differs from the trusted one" in driver.stats.last_error
