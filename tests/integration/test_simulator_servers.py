"""The simulator's OPC-UA, Modbus and control front-ends, read with plain protocol clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from asyncua import Client, ua
from pymodbus.client import AsyncModbusTcpClient

from drivers.modbus import decode
from plant.catalog import OPCUA_NAMESPACE_URI, Catalog
from plant.load import load_plant
from plant.schema import ModbusTable
from simulator.run import serve

ROOT = Path(__file__).resolve().parents[2]
PLANT = ROOT / "config" / "plant.toml"
HANG_GUARD_S = 20.0  # only to fail instead of hanging; never a timing assertion

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.build(load_plant(PLANT), synthetic_tags=30)


async def start_simulator() -> tuple[asyncio.Task, dict]:
    ready: asyncio.Future = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(seed=7, speed=1.0, synthetic_tags=30, opcua_port=0, modbus_port=0,
                                     plant_path=PLANT, control_port=0, on_ready=ready.set_result))
    done, _ = await asyncio.wait({task, ready}, timeout=HANG_GUARD_S, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    return task, ready.result()


async def stop_simulator(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def simulator() -> AsyncIterator[dict]:
    """One simulator shared by the tests that only read or fault distinct tags (start-up of an
    asyncua server costs seconds)."""
    task, ready = await start_simulator()
    yield ready
    await stop_simulator(task)


@pytest_asyncio.fixture(loop_scope="module")
async def own_simulator() -> AsyncIterator[dict]:
    """A simulator of the test's own, for faults that affect more than one tag."""
    task, ready = await start_simulator()
    yield ready
    await stop_simulator(task)


async def post(port: int, path: str, body: dict) -> dict:
    async with aiohttp.ClientSession() as http, http.post(f"http://127.0.0.1:{port}{path}", json=body) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_opcua_values_sit_in_the_catalog_ranges(simulator, catalog):
    url = f"opc.tcp://127.0.0.1:{simulator['opcua_port']}/refineryiq/simulator"
    async with Client(url) as client:
        assert await client.get_namespace_index(OPCUA_NAMESPACE_URI) == 2
        nodes = [client.get_node(t.opcua.node_id) for t in catalog.tags]
        values = [await n.read_data_value() for n in nodes]
    v = np.array([dv.Value.Value for dv in values])
    assert all(dv.StatusCode.is_good() for dv in values)
    assert all(dv.SourceTimestamp is not None for dv in values)
    assert ((v >= catalog.normal_min) & (v <= catalog.normal_max)).all()


async def test_opcua_address_space_is_unit_equipment_tag(simulator):
    url = f"opc.tcp://127.0.0.1:{simulator['opcua_port']}/refineryiq/simulator"
    async with Client(url) as client:
        cdu = await client.nodes.objects.get_child(["2:CDU-101", "2:PUMP-101", "2:VI-101"])
        assert cdu.nodeid == ua.NodeId.from_string("ns=2;s=CDU-101.VI-101")
        power = await client.nodes.objects.get_child(["2:CDU-101", "2:JI-100"])
        assert await power.read_data_type_as_variant_type() == ua.VariantType.Double


async def test_modbus_values_decode_to_the_catalog_ranges(simulator, catalog):
    client = AsyncModbusTcpClient("127.0.0.1", port=simulator["modbus_port"])
    await client.connect()
    try:
        for i, tag in enumerate(catalog.tags):
            m = tag.modbus
            if m.table == ModbusTable.HOLDING:
                r = await client.read_holding_registers(m.address, count=m.count, device_id=1)
            elif m.table == ModbusTable.INPUT:
                r = await client.read_input_registers(m.address, count=m.count, device_id=1)
            elif m.table == ModbusTable.COIL:
                r = await client.read_coils(m.address, count=1, device_id=1)
            else:
                r = await client.read_discrete_inputs(m.address, count=1, device_id=1)
            assert not r.isError(), tag.id
            if m.table.is_bits:
                value = float(r.bits[0])
            else:
                value = float(decode(r.registers, m.type, m.order, m.scale, m.offset)[0])
            assert catalog.normal_min[i] <= value <= catalog.normal_max[i], tag.id
    finally:
        client.close()


async def test_modbus_answers_a_full_125_register_read(simulator):
    client = AsyncModbusTcpClient("127.0.0.1", port=simulator["modbus_port"])
    await client.connect()
    try:
        r = await client.read_holding_registers(0, count=125, device_id=1)
        assert len(r.registers) == 125
    finally:
        client.close()


async def test_injected_bad_quality_shows_as_bad_status_on_opcua(simulator):
    await post(simulator["control_port"], "/faults", {"tag_id": "TI-101", "kind": "bad_quality",
                                                      "duration_s": 30})
    url = f"opc.tcp://127.0.0.1:{simulator['opcua_port']}/refineryiq/simulator"
    async with Client(url) as client:
        node = client.get_node("ns=2;s=CDU-101.TI-101")
        dv = await node.read_data_value(raise_on_bad_status=False)
        assert dv.StatusCode.value == ua.StatusCodes.BadSensorFailure
        neighbour = await client.get_node("ns=2;s=CDU-101.FI-102").read_data_value()
        assert neighbour.StatusCode.is_good()


async def test_injected_bad_quality_answers_modbus_reads_with_an_exception(simulator):
    await post(simulator["control_port"], "/faults", {"tag_id": "TI-104", "kind": "bad_quality",
                                                      "duration_s": 30})
    client = AsyncModbusTcpClient("127.0.0.1", port=simulator["modbus_port"])
    await client.connect()
    try:
        r = await client.read_holding_registers(10, count=3, device_id=1)  # TI-109 and TI-104
        assert r.isError() and r.exception_code == 0x04
        assert not (await client.read_holding_registers(10, count=2, device_id=1)).isError()
    finally:
        client.close()


async def test_silenced_modbus_device_does_not_answer(own_simulator):
    simulator = own_simulator
    await post(simulator["control_port"], "/faults", {"device": "modbus", "kind": "silence",
                                                      "duration_s": 60})
    client = AsyncModbusTcpClient("127.0.0.1", port=simulator["modbus_port"], timeout=0.5, retries=0)
    await client.connect()
    try:
        with pytest.raises(Exception):  # noqa: B017 - pymodbus raises ModbusIOException on timeout
            r = await client.read_holding_registers(0, count=1, device_id=1)
            assert r.isError()
    finally:
        client.close()


async def test_forced_degradation_is_visible_in_state(own_simulator):
    port = own_simulator["control_port"]
    await post(port, "/equipment/PUMP-101/degrade", {"health": 0.2})
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/state") as r:
        state = await r.json()
    pump = next(e for e in state["equipment"] if e["id"] == "PUMP-101")
    assert pump["health"] <= 0.21


async def test_control_api_rejects_unknown_tags(simulator):
    port = simulator["control_port"]
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://127.0.0.1:{port}/faults", json={"tag_id": "XX-1", "kind": "stuck"}) as r:
            assert r.status == 404
        async with http.post(f"http://127.0.0.1:{port}/faults", json={"kind": "stuck"}) as r:
            assert r.status == 400


async def test_module_entry_point_prints_ready_with_the_chosen_ports():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator", "--opcua-port", "0", "--modbus-port", "0", "--plant", str(PLANT),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), HANG_GUARD_S)
        ready = json.loads(line)
        assert ready["event"] == "ready"
        assert ready["opcua_port"] > 0 and ready["modbus_port"] > 0 and ready["control_port"] is None
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), HANG_GUARD_S) == 0


async def test_secure_mode_serves_basic256sha256_with_username_and_refuses_none(tmp_path):
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from simulator.model import PlantModel
    from simulator.opcua_server import OpcUaFrontEnd, SecurityOptions

    security = SecurityOptions("Basic256Sha256", tmp_path / "server", "operator", "s3cret")
    front = OpcUaFrontEnd(PlantModel(Catalog.build(load_plant(PLANT)), seed=1), port=0, security=security)
    port = await front.start()
    try:
        await setup_self_signed_certificate(tmp_path / "key.pem", tmp_path / "cert.der", "urn:test:client",
                                            "localhost", [ExtendedKeyUsageOID.CLIENT_AUTH], {"commonName": "t"})
        url = f"opc.tcp://127.0.0.1:{port}/refineryiq/simulator"
        client = Client(url)
        client.application_uri = "urn:test:client"
        await client.set_security_string(
            f"Basic256Sha256,SignAndEncrypt,{tmp_path / 'cert.der'},{tmp_path / 'key.pem'}")
        client.set_user("operator")
        client.set_password("s3cret")
        async with client:
            assert await client.get_node("ns=2;s=CDU-101.TI-101").read_value() > 0
        with pytest.raises(Exception):  # noqa: B017 - asyncua raises UaError subclasses
            async with Client(url):
                pass
    finally:
        await front.stop()
