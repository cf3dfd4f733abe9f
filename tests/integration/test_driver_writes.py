"""Writes through the Modbus and OPC-UA drivers to the real simulator servers, read back from them.

A plant of its own (every Modbus type and byte order, a coil, read-only tags) is served by the
simulator on free loopback ports; what the device received is checked through the simulator's
control API (``GET /writes``), what it holds through the drivers' own read-back and scans.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio

from drivers.base import GroupPlan, WriteNotConnected, WriteNotEncodable, WriteRefused, WriteTimeout
from drivers.modbus import ModbusDriver, decode
from drivers.modbus.encoder import encode_value
from drivers.opcua import OpcUaDriver
from drivers.quality import Quality
from plant.catalog import Catalog
from plant.devices import ModbusDevice, OpcUaDevice, ScanGroup
from plant.load import load_plant
from plant.schema import ByteOrder, DataType, Tag
from simulator.run import serve

pytestmark = [pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]

HANG_GUARD_S = 20.0  # only to fail instead of hanging; never a timing assertion
WRITE_TIMEOUT_S = 2.0

# (type, scale, offset, value written) per register type; every one is written in all four orders.
REGISTER_CASES = {
    DataType.INT16: (0.1, 0.0, -1234.5),
    DataType.UINT16: (1.0, 0.0, 65000.0),
    DataType.INT32: (1.0, -50.0, -123456.0),
    DataType.UINT32: (0.5, 100.0, 2_000_000_100.5),
    DataType.FLOAT32: (1.0, 0.0, 341.25),
    DataType.FLOAT64: (2.0, 10.0, 9876.54321),
}


def _register_tags() -> tuple[str, dict[str, float]]:
    """TOML of a writable tag per type and byte order, and the value each test writes to it."""
    lines, values, address = [], {}, 0
    for data_type, (scale, offset, value) in REGISTER_CASES.items():
        for order in ByteOrder:
            tag_id = f"W-{data_type.value}-{order.value}"
            values[tag_id] = value
            lines.append(f"""
[[tags]]
id = "{tag_id}"
name = "{tag_id}"
unit_id = "U-1"
engineering_units = "-"
tag_type = "ANALOG"
normal_min = -100
normal_max = 100
instrument_min = -5000000000
instrument_max = 5000000000
opcua = {{ node_id = "ns=2;s=U-1.{tag_id}" }}
modbus = {{ table = "holding", address = {address}, type = "{data_type.value}", order = "{order.value}", scale = {scale}, offset = {offset} }}
writable = true
sim = {{ setpoint = {offset if data_type in (DataType.UINT16, DataType.UINT32) else 0.0} }}
""")
            address += data_type.registers
    return "".join(lines), values


PLANT_HEAD = """
name = "Write test plant"

[[units]]
id = "U-1"
name = "Unit 1"
type = "TEST"
capacity_bpd = 1000
"""

OTHER_TAGS = """
[[tags]]
id = "W-COIL"
name = "W-COIL"
unit_id = "U-1"
engineering_units = "on/off"
tag_type = "STATUS"
normal_min = 1
normal_max = 1
instrument_min = 0
instrument_max = 1
opcua = { node_id = "ns=2;s=U-1.W-COIL" }
modbus = { table = "coil", address = 0, type = "bool" }
writable = true
sim = { setpoint = 1 }

[[tags]]
id = "W-RANGED"
name = "W-RANGED"
unit_id = "U-1"
engineering_units = "%"
tag_type = "ANALOG"
normal_min = 20
normal_max = 80
instrument_min = 0
instrument_max = 100
opcua = { node_id = "ns=2;s=U-1.W-RANGED" }
modbus = { table = "holding", address = 200, type = "float32" }
writable = true
write_min = 0
write_max = 100

[[tags]]
id = "R-HOLDING"
name = "R-HOLDING"
unit_id = "U-1"
engineering_units = "%"
tag_type = "ANALOG"
normal_min = 20
normal_max = 80
instrument_min = 0
instrument_max = 100
opcua = { node_id = "ns=2;s=U-1.R-HOLDING" }
modbus = { table = "holding", address = 210, type = "float32" }

[[tags]]
id = "R-INPUT"
name = "R-INPUT"
unit_id = "U-1"
engineering_units = "%"
tag_type = "ANALOG"
normal_min = 20
normal_max = 80
instrument_min = 0
instrument_max = 100
opcua = { node_id = "ns=2;s=U-1.R-INPUT" }
modbus = { table = "input", address = 0, type = "float32" }
"""


@pytest.fixture(scope="module")
def plant_file(tmp_path_factory) -> Path:
    register_tags, _ = _register_tags()
    path = tmp_path_factory.mktemp("plant") / "plant.toml"
    path.write_text(PLANT_HEAD + register_tags + OTHER_TAGS, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def catalog(plant_file) -> Catalog:
    return Catalog.build(load_plant(plant_file))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def simulator(plant_file) -> AsyncIterator[dict]:
    ready: asyncio.Future = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(seed=3, speed=1.0, synthetic_tags=0, opcua_port=0, modbus_port=0,
                                     plant_path=plant_file, control_port=0, on_ready=ready.set_result))
    done, _ = await asyncio.wait({task, ready}, timeout=HANG_GUARD_S, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    yield ready.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def plans(catalog: Catalog, protocol: str, device_id: str) -> dict[str, GroupPlan]:
    tags = [t for t in catalog.tags if getattr(t, protocol) is not None]
    group = ScanGroup(id="all", device=device_id)
    return {"all": GroupPlan(group=group, tag_index=np.arange(len(tags), dtype=np.int32), tags=tuple(tags))}


@pytest_asyncio.fixture(loop_scope="module")
async def modbus(simulator, catalog, tmp_path) -> AsyncIterator[ModbusDriver]:
    device = ModbusDevice(id="plc", protocol="modbus", port=simulator["modbus_port"], timeout_s=1.0)
    driver = ModbusDriver(device, plans(catalog, "modbus", "plc"), tmp_path)
    await driver.connect()
    yield driver
    await driver.close()


@pytest_asyncio.fixture(loop_scope="module")
async def opcua(simulator, catalog, tmp_path) -> AsyncIterator[OpcUaDriver]:
    device = OpcUaDevice(id="scada", protocol="opcua", timeout_s=2.0,
                         endpoint=f"opc.tcp://127.0.0.1:{simulator['opcua_port']}/refineryiq/simulator")
    driver = OpcUaDriver(device, plans(catalog, "opcua", "scada"), tmp_path)
    await driver.connect()
    yield driver
    await driver.close()


async def control(simulator: dict, method: str, path: str, body: dict | None = None) -> dict:
    url = f"http://127.0.0.1:{simulator['control_port']}{path}"
    async with aiohttp.ClientSession() as http, http.request(method, url, json=body) as response:
        assert response.status == 200, await response.text()
        return await response.json()


@pytest_asyncio.fixture(loop_scope="module")
async def writes(simulator) -> AsyncIterator[None]:
    """Each test starts with normal write handling and an empty write log, and leaves it so."""
    await control(simulator, "POST", "/writes", {"mode": "normal"})
    await control(simulator, "DELETE", "/writes")
    yield
    await control(simulator, "POST", "/writes", {"mode": "normal"})


async def received(simulator: dict, tag_id: str) -> list[dict]:
    log = await control(simulator, "GET", "/writes")
    return [w for w in log["writes"] if w["tag_id"] == tag_id]


# ---------------------------------------------------------------------- Modbus


@pytest.mark.parametrize("data_type", list(REGISTER_CASES))
@pytest.mark.parametrize("order", list(ByteOrder))
async def test_every_register_type_and_byte_order_round_trips(simulator, catalog, modbus, writes,
                                                              data_type, order):
    tag = catalog.tag(f"W-{data_type.value}-{order.value}")
    value = REGISTER_CASES[data_type][2]
    await modbus.write(tag, value, WRITE_TIMEOUT_S)
    seen = await received(simulator, tag.id)
    assert [(w["device"], w["outcome"]) for w in seen] == [("modbus", "applied")]
    assert seen[0]["value"] == pytest.approx(value, abs=tag.read_back_tolerance())
    read_back, quality = await modbus.read_tag(tag, WRITE_TIMEOUT_S)
    m = tag.modbus
    # Exactly what the registers sent decode to (the device kept them), and within tolerance.
    sent = decode(encode_value(m, value), m.type, m.order, m.scale, m.offset)[0]
    assert (read_back, quality) == (pytest.approx(sent, rel=1e-12), Quality.GOOD)
    assert abs(read_back - value) <= 0.5 * abs(m.scale) + abs(value) * 2.0 ** -23


async def test_a_write_shows_in_the_next_scan(catalog, modbus, writes):
    tag = catalog.tag("W-RANGED")
    await modbus.write(tag, 12.5, WRITE_TIMEOUT_S)
    batch = await modbus.read("all", 0.0)
    position = int(np.flatnonzero(batch.tag_index == catalog.index["W-RANGED"])[0])
    assert (batch.values[position], batch.quality[position]) == (12.5, Quality.GOOD)


async def test_a_coil_is_written_on_and_off(simulator, catalog, modbus, writes):
    tag = catalog.tag("W-COIL")
    await modbus.write(tag, 0.0, WRITE_TIMEOUT_S)
    assert await modbus.read_tag(tag, WRITE_TIMEOUT_S) == (0.0, Quality.GOOD)
    await modbus.write(tag, 1.0, WRITE_TIMEOUT_S)
    assert await modbus.read_tag(tag, WRITE_TIMEOUT_S) == (1.0, Quality.GOOD)
    assert [w["value"] for w in await received(simulator, tag.id)] == [0.0, 1.0]


async def test_a_coil_refuses_anything_but_0_and_1_before_sending(simulator, catalog, modbus, writes):
    with pytest.raises(WriteNotEncodable, match="coil"):
        await modbus.write(catalog.tag("W-COIL"), 0.5, WRITE_TIMEOUT_S)
    assert await received(simulator, "W-COIL") == []


async def test_a_value_outside_the_register_type_is_refused_before_sending(simulator, catalog, modbus, writes):
    tag = catalog.tag("W-int16-ABCD")  # scale 0.1: -3276.8 .. 3276.7
    with pytest.raises(WriteNotEncodable, match="int16"):
        await modbus.write(tag, 4000.0, WRITE_TIMEOUT_S)
    with pytest.raises(WriteNotEncodable, match="finite"):
        await modbus.write(tag, math.nan, WRITE_TIMEOUT_S)
    assert await received(simulator, tag.id) == []


async def test_an_input_register_is_refused_before_sending(catalog, modbus, writes):
    with pytest.raises(WriteNotEncodable, match="cannot be written"):
        await modbus.write(catalog.tag("R-INPUT"), 50.0, WRITE_TIMEOUT_S)


async def test_a_read_only_register_answers_illegal_data_address(simulator, catalog, modbus, writes):
    tag = catalog.tag("R-HOLDING")
    before, _ = await modbus.read_tag(tag, WRITE_TIMEOUT_S)
    with pytest.raises(WriteRefused) as refused:
        await modbus.write(tag, 50.0, WRITE_TIMEOUT_S)
    assert refused.value.status == "IllegalDataAddress"
    assert [w["outcome"] for w in await received(simulator, tag.id)] == ["not_writable"]
    after, _ = await modbus.read_tag(tag, WRITE_TIMEOUT_S)
    assert after != 50.0 and abs(after - before) < 20


async def test_a_value_outside_the_instrument_range_answers_illegal_data_value(catalog, modbus, writes):
    with pytest.raises(WriteRefused) as refused:
        await modbus.write(catalog.tag("W-RANGED"), 150.0, WRITE_TIMEOUT_S)
    assert refused.value.status == "IllegalDataValue"


async def test_a_refusing_device_answers_server_device_failure(simulator, catalog, modbus, writes):
    tag = catalog.tag("W-RANGED")
    await modbus.write(tag, 30.0, WRITE_TIMEOUT_S)
    await control(simulator, "POST", "/writes", {"mode": "refuse", "device": "modbus"})
    with pytest.raises(WriteRefused) as refused:
        await modbus.write(tag, 40.0, WRITE_TIMEOUT_S)
    assert refused.value.status == "ServerDeviceFailure"
    assert await modbus.read_tag(tag, WRITE_TIMEOUT_S) == (30.0, Quality.GOOD)
    assert [w["outcome"] for w in await received(simulator, tag.id)] == ["applied", "refused"]


async def test_an_unanswered_write_times_out_once_and_scans_go_on(simulator, catalog, modbus, writes):
    tag = catalog.tag("W-RANGED")
    await modbus.write(tag, 30.0, WRITE_TIMEOUT_S)
    await control(simulator, "POST", "/writes", {"mode": "timeout", "device": "modbus"})
    with pytest.raises(WriteTimeout, match="may have reached"):
        await modbus.write(tag, 45.0, 0.5)
    batch = await modbus.read("all", 0.0)  # the same connections keep answering reads
    assert (batch.quality == Quality.GOOD).all()
    assert [(w["value"], w["outcome"], w["applied"]) for w in await received(simulator, tag.id)] == \
        [(30.0, "applied", True), (45.0, "unanswered", False)]
    assert await modbus.read_tag(tag, WRITE_TIMEOUT_S) == (30.0, Quality.GOOD)


async def test_an_unanswered_write_may_still_take_effect(simulator, catalog, modbus, writes):
    tag = catalog.tag("W-RANGED")
    await control(simulator, "POST", "/writes", {"mode": "timeout", "device": "modbus", "apply": True})
    with pytest.raises(WriteTimeout):
        await modbus.write(tag, 55.0, 0.5)
    assert await modbus.read_tag(tag, WRITE_TIMEOUT_S) == (55.0, Quality.GOOD)


async def test_writes_and_scans_share_the_connections(simulator, catalog, modbus, writes):
    tag = catalog.tag("W-RANGED")
    results = await asyncio.gather(*(modbus.read("all", 0.0) for _ in range(5)),
                                   *(modbus.write(tag, 60.0 + k, WRITE_TIMEOUT_S) for k in range(5)))
    assert all((batch.quality == Quality.GOOD).all() for batch in results[:5])
    value, quality = await modbus.read_tag(tag, WRITE_TIMEOUT_S)
    assert quality == Quality.GOOD and value in {60.0, 61.0, 62.0, 63.0, 64.0}
    assert sorted(w["value"] for w in await received(simulator, tag.id)) == [60.0, 61.0, 62.0, 63.0, 64.0]


async def test_a_device_that_is_down_sends_nothing(simulator, catalog, tmp_path, writes):
    device = ModbusDevice(id="plc", protocol="modbus", port=simulator["modbus_port"], timeout_s=1.0)
    driver = ModbusDriver(device, plans(catalog, "modbus", "plc"), tmp_path)  # never connected
    tag = catalog.tag("W-RANGED")
    with pytest.raises(WriteNotConnected):
        await driver.write(tag, 20.0, WRITE_TIMEOUT_S)
    value, quality = await driver.read_tag(tag, WRITE_TIMEOUT_S)
    assert math.isnan(value) and quality == Quality.BAD
    await driver.close()
    assert await received(simulator, tag.id) == []


# ---------------------------------------------------------------------- OPC-UA


async def test_opcua_write_of_a_writable_node_reads_back(simulator, catalog, opcua, writes):
    tag = catalog.tag("W-RANGED")
    await opcua.write(tag, 33.25, WRITE_TIMEOUT_S)
    assert await opcua.read_tag(tag, WRITE_TIMEOUT_S) == (33.25, Quality.GOOD)
    assert [(w["device"], w["value"], w["outcome"]) for w in await received(simulator, tag.id)] == \
        [("opcua", 33.25, "applied")]


async def test_opcua_read_only_node_answers_bad_not_writable(catalog, opcua, writes):
    with pytest.raises(WriteRefused) as refused:
        await opcua.write(catalog.tag("R-HOLDING"), 50.0, WRITE_TIMEOUT_S)
    assert refused.value.status == "BadNotWritable"


async def test_opcua_value_outside_the_instrument_range_answers_bad_out_of_range(catalog, opcua, writes):
    with pytest.raises(WriteRefused) as refused:
        await opcua.write(catalog.tag("W-RANGED"), -5.0, WRITE_TIMEOUT_S)
    assert refused.value.status == "BadOutOfRange"


async def test_opcua_refusing_device_answers_bad_not_writable(simulator, catalog, opcua, writes):
    await control(simulator, "POST", "/writes", {"mode": "refuse", "device": "opcua"})
    with pytest.raises(WriteRefused) as refused:
        await opcua.write(catalog.tag("W-RANGED"), 50.0, WRITE_TIMEOUT_S)
    assert refused.value.status == "BadNotWritable"


async def test_opcua_unanswered_write_times_out_and_reads_go_on(simulator, catalog, opcua, writes):
    tag = catalog.tag("W-RANGED")
    await opcua.write(tag, 21.0, WRITE_TIMEOUT_S)
    await control(simulator, "POST", "/writes", {"mode": "timeout", "device": "opcua"})
    with pytest.raises(WriteTimeout, match="may have reached"):
        await opcua.write(tag, 22.0, 0.5)
    batch = await opcua.read("all", 0.0)  # the session still answers everything else
    assert (batch.quality == Quality.GOOD).all()
    assert opcua.connected
    assert [w["outcome"] for w in await received(simulator, tag.id)] == ["applied", "unanswered"]
    await control(simulator, "POST", "/writes", {"mode": "normal"})
    await opcua.write(tag, 23.0, WRITE_TIMEOUT_S)
    assert await opcua.read_tag(tag, WRITE_TIMEOUT_S) == (23.0, Quality.GOOD)


async def test_opcua_refuses_before_sending_what_the_node_type_cannot_hold(simulator, catalog, opcua, writes):
    with pytest.raises(WriteNotEncodable, match="finite"):
        await opcua.write(catalog.tag("W-RANGED"), math.inf, WRITE_TIMEOUT_S)
    assert await received(simulator, "W-RANGED") == []


async def test_opcua_device_that_is_down_sends_nothing(catalog, tmp_path):
    device = OpcUaDevice(id="scada", protocol="opcua", endpoint="opc.tcp://127.0.0.1:9/none", timeout_s=0.5)
    driver = OpcUaDriver(device, plans(catalog, "opcua", "scada"), tmp_path)
    tag: Tag = catalog.tag("W-RANGED")
    with pytest.raises(WriteNotConnected):
        await driver.write(tag, 20.0, WRITE_TIMEOUT_S)
    value, quality = await driver.read_tag(tag, WRITE_TIMEOUT_S)
    assert math.isnan(value) and quality == Quality.BAD


# ---------------------------------------------------------------------- the shipped plant

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "plant.toml"


@contextlib.asynccontextmanager
async def shipped_simulator(speed: float) -> AsyncIterator[dict]:
    ready: asyncio.Future = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(seed=7, speed=speed, synthetic_tags=0, opcua_port=0, modbus_port=0,
                                     plant_path=SHIPPED, control_port=0, on_ready=ready.set_result))
    done, _ = await asyncio.wait({task, ready}, timeout=HANG_GUARD_S, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    try:
        yield ready.result()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def settles(read, passes) -> None:
    """Poll until ``passes(value)``; the guard only stops a hang."""
    async with asyncio.timeout(HANG_GUARD_S):
        while not passes(await read()):
            await asyncio.sleep(0.05)


async def test_setpoint_and_pump_writes_move_the_simulated_process(tmp_path):
    shipped = Catalog.build(load_plant(SHIPPED))
    async with shipped_simulator(speed=30.0) as ready:
        plc = ModbusDriver(ModbusDevice(id="plc", protocol="modbus", port=ready["modbus_port"]),
                           plans(shipped, "modbus", "plc"), tmp_path)
        scada = OpcUaDriver(OpcUaDevice(id="scada", protocol="opcua", endpoint=f"opc.tcp://127.0.0.1:"
                                        f"{ready['opcua_port']}/refineryiq/simulator"),
                            plans(shipped, "opcua", "scada"), tmp_path)
        await plc.connect()
        await scada.connect()
        try:
            outlet = shipped.tag("TI-101")

            async def outlet_now() -> float:
                return (await plc.read_tag(outlet, WRITE_TIMEOUT_S))[0]

            await plc.write(shipped.tag("TIC-101.SP"), 368.0, WRITE_TIMEOUT_S)  # int16 x 0.1, FC6
            assert await plc.read_tag(shipped.tag("TIC-101.SP"), WRITE_TIMEOUT_S) == (368.0, Quality.GOOD)
            await settles(outlet_now, lambda v: v > 364.0)  # the outlet follows with its lag

            await plc.write(shipped.tag("FIC-102.SP"), 10400.0, WRITE_TIMEOUT_S)  # uint32 x 0.1, FC16
            feed = shipped.tag("FI-102")
            await settles(lambda: plc.read_tag(feed, WRITE_TIMEOUT_S), lambda r: r[0] > 10300.0)

            await plc.write(shipped.tag("XV-101"), 0.0, WRITE_TIMEOUT_S)  # coil, FC5: dead-head the pump
            await settles(lambda: plc.read_tag(feed, WRITE_TIMEOUT_S), lambda r: r[0] < 1000.0)
            await plc.write(shipped.tag("XV-101"), 1.0, WRITE_TIMEOUT_S)

            await scada.write(shipped.tag("HS-305"), 0.0, WRITE_TIMEOUT_S)  # stop PUMP-305 over OPC-UA
            status = shipped.tag("XS-305")
            await settles(lambda: scada.read_tag(status, WRITE_TIMEOUT_S), lambda r: r == (0.0, Quality.GOOD))

            await scada.write(shipped.tag("HIC-401.SP"), 80.0, WRITE_TIMEOUT_S)
            demand = shipped.tag("ZC-401")
            await settles(lambda: scada.read_tag(demand, WRITE_TIMEOUT_S), lambda r: r[0] > 72.0)
        finally:
            await plc.close()
            await scada.close()
