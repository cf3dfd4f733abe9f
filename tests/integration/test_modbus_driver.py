"""ModbusDriver against real servers on free loopback ports: a pymodbus server with known
register contents, and a hostile raw server that misbehaves on demand."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import SimData, SimDevice
from pymodbus.simulator.simutils import DataType as SimType

from drivers.base import GroupPlan
from drivers.batch import Batch
from drivers.modbus import ModbusDriver, encode
from drivers.quality import Quality, Reason
from plant.devices import ModbusDevice, ScanGroup
from plant.schema import ModbusAddress, Tag, TagType
from tests.integration.hostile_modbus import HostileModbusServer, Mode

GROUP = "g"
UNIT_ID = 1
HANG_GUARD_S = 10.0  # only to fail instead of hanging; never a timing assertion


def make_tag(tag_id: str, table: str, address: int, type: str = "uint16", order: str = "ABCD",
             scale: float = 1.0, offset: float = 0.0, instrument_min: float | None = None,
             instrument_max: float | None = None) -> Tag:
    return Tag(id=tag_id, name=tag_id, engineering_units="-", tag_type=TagType.ANALOG,
               normal_min=0, normal_max=0, instrument_min=instrument_min, instrument_max=instrument_max,
               modbus=ModbusAddress(table=table, address=address, type=type, order=order,
                                    scale=scale, offset=offset))


# Tags with the engineering values the pymodbus server holds for them.
TYPED = [
    (make_tag("TI-1", "holding", 0, "int16", scale=0.1), -12.3),
    (make_tag("FI-2", "holding", 1, "uint16"), 65000.0),
    (make_tag("PI-3", "holding", 2, "int32", "CDAB"), -123456.0),
    (make_tag("JI-4", "holding", 4, "uint32", "BADC"), 3_000_000_000.0),
    (make_tag("TI-5", "holding", 6, "float32", "DCBA"), 341.25),
    (make_tag("FI-6", "holding", 8, "float64", "ABCD"), 9876.54321),
    (make_tag("LI-7", "holding", 40, "float32", "ABCD", scale=2.0, offset=100.0), 150.0),
    (make_tag("AI-8", "input", 5, "uint16", scale=0.5), 21.5),
    (make_tag("XS-9", "coil", 3, "bool"), 1.0),
    (make_tag("XS-10", "coil", 4, "bool"), 0.0),
    (make_tag("ZS-11", "discrete", 10, "bool"), 1.0),
]


def plant_registers() -> tuple[list[int], list[int], list[bool], list[bool]]:
    holding, inputs = [0] * 64, [0] * 16
    coils, discrete = [False] * 16, [False] * 16
    for tag, value in TYPED:
        m = tag.modbus
        if m.table.is_bits:
            (coils if m.table.value == "coil" else discrete)[m.address] = bool(value)
            continue
        registers = encode([value], m.type, m.order, m.scale, m.offset).tolist()
        target = holding if m.table.value == "holding" else inputs
        target[m.address:m.address + len(registers)] = registers
    return holding, inputs, coils, discrete


async def start_pymodbus(port: int = 0) -> tuple[ModbusTcpServer, int]:
    holding, inputs, coils, discrete = plant_registers()
    device = SimDevice(UNIT_ID, simdata=(
        [SimData(0, values=coils, datatype=SimType.BITS)],
        [SimData(0, values=discrete, datatype=SimType.BITS)],
        [SimData(0, values=holding, datatype=SimType.REGISTERS)],
        [SimData(0, values=inputs, datatype=SimType.REGISTERS)],
    ))
    server = ModbusTcpServer(device, address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    return server, server.transport.sockets[0].getsockname()[1]


def driver_for(port: int, tags: list[Tag], timeout_s: float = 0.5, max_concurrent: int = 2,
               tag_index_base: int = 100, **device: object) -> ModbusDriver:
    settings = ModbusDevice(id="plc-test", protocol="modbus", host="127.0.0.1", port=port,
                            unit_id=UNIT_ID, timeout_s=timeout_s, max_concurrent=max_concurrent, **device)
    plan = GroupPlan(group=ScanGroup(id=GROUP, device=settings.id),
                     tag_index=np.arange(len(tags), dtype=np.int32) + tag_index_base, tags=tuple(tags))
    return ModbusDriver(settings, {GROUP: plan}, Path("/nonexistent"))


async def read(driver: ModbusDriver) -> Batch:
    async with asyncio.timeout(HANG_GUARD_S):
        return await driver.read(GROUP, time.time())


async def eventually(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(HANG_GUARD_S):
        while not condition():
            await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def pymodbus_server() -> AsyncIterator[int]:
    server, port = await start_pymodbus()
    yield port
    await server.shutdown()


@pytest.fixture
async def hostile() -> AsyncIterator[HostileModbusServer]:
    server = await HostileModbusServer().start()
    yield server
    await server.close()


@contextlib.asynccontextmanager
async def connected(driver: ModbusDriver) -> AsyncIterator[ModbusDriver]:
    await driver.connect()
    try:
        yield driver
    finally:
        await driver.close()


def reasons_by_tag(batch: Batch, tags: list[Tag]) -> dict[str, Reason]:
    return {t.id: Reason(int(r)) for t, r in zip(tags, batch.reason, strict=True)}


# --------------------------------------------------------------------------- correct values


async def test_driver_reads_every_table_type_and_byte_order(pymodbus_server: int):
    tags = [t for t, _ in TYPED]
    async with connected(driver_for(pymodbus_server, tags)) as driver:
        batch = await read(driver)
    assert batch.quality.tolist() == [Quality.GOOD] * len(tags)
    np.testing.assert_allclose(batch.values, [v for _, v in TYPED], rtol=1e-6)


async def test_batch_carries_the_group_tag_indices_and_scan_times(pymodbus_server: int):
    tags = [t for t, _ in TYPED[:3]]
    async with connected(driver_for(pymodbus_server, tags, tag_index_base=500)) as driver:
        scan_start = time.time()
        batch = await driver.read(GROUP, scan_start)
    assert batch.tag_index.tolist() == [500, 501, 502]
    assert (batch.group, batch.device, batch.scan_start) == (GROUP, "plc-test", scan_start)
    assert batch.receive_ts >= scan_start


async def test_value_outside_the_instrument_range_is_bad(pymodbus_server: int):
    tags = [make_tag("TI-1", "holding", 0, "int16", scale=0.1, instrument_min=0.0, instrument_max=500.0)]
    async with connected(driver_for(pymodbus_server, tags)) as driver:
        batch = await read(driver)
    assert (batch.quality[0], batch.reason[0]) == (Quality.BAD, Reason.OUT_OF_RANGE)


async def test_modbus_exception_marks_only_the_tags_of_that_request(pymodbus_server: int):
    good = make_tag("FI-2", "holding", 1, "uint16")
    missing = make_tag("XX-1", "holding", 5000, "uint16")  # the server has no register 5000
    async with connected(driver_for(pymodbus_server, [good, missing])) as driver:
        batch = await read(driver)
        stats = driver.stats
    assert reasons_by_tag(batch, [good, missing]) == {"FI-2": Reason.NONE, "XX-1": Reason.MODBUS_EXCEPTION}
    assert batch.values[0] == 65000.0 and np.isnan(batch.values[1])
    assert sum(stats.exception_codes.values()) == 1 and stats.errors["MODBUS_EXCEPTION"] == 1


async def test_stats_count_requests_and_the_last_good_scan(pymodbus_server: int):
    tags = [t for t, _ in TYPED]
    async with connected(driver_for(pymodbus_server, tags)) as driver:
        batch = await read(driver)
        stats = driver.stats.as_dict()
    assert stats["requests"] == 5  # holding 0..9, holding 40..41, input, coil, discrete
    assert stats["errors"] == {} and stats["connected"] is True
    assert stats["last_good_scan"] == batch.receive_ts


# --------------------------------------------------------------------------- failures


async def test_unreachable_device_reads_as_disconnected_without_raising():
    tags = [make_tag("FI-2", "holding", 1)]
    async with connected(driver_for(free_port(), tags)) as driver:
        assert not driver.connected
        batch = await read(driver)
    assert (batch.quality[0], batch.reason[0]) == (Quality.BAD, Reason.DISCONNECTED)


HOSTILE_CASES = [
    (Mode.GARBAGE, Reason.MALFORMED_RESPONSE),
    (Mode.SHORT, Reason.MALFORMED_RESPONSE),
    (Mode.WRONG_BYTE_COUNT, Reason.MALFORMED_RESPONSE),
    (Mode.WRONG_TRANSACTION, Reason.PROTOCOL_ERROR),
    (Mode.EXCEPTION, Reason.MODBUS_EXCEPTION),
    (Mode.SILENT, Reason.TIMEOUT),
    (Mode.CLOSE, Reason.DISCONNECTED),
]


@pytest.mark.parametrize(("mode", "reason"), HOSTILE_CASES, ids=[m.value for m, _ in HOSTILE_CASES])
async def test_hostile_answer_becomes_bad_quality_with_its_reason(hostile: HostileModbusServer,
                                                                 mode: Mode, reason: Reason):
    hostile.mode = mode
    tags = [make_tag("FI-2", "holding", 1), make_tag("FI-3", "holding", 2)]
    async with connected(driver_for(hostile.port, tags, timeout_s=0.3, max_concurrent=1)) as driver:
        batch = await read(driver)
        stats = driver.stats
    assert batch.quality.tolist() == [Quality.BAD, Quality.BAD]
    assert batch.reason.tolist() == [reason, reason]
    assert stats.errors[reason.name] == 1 and stats.last_error


async def test_exception_code_is_kept_in_the_device_counters(hostile: HostileModbusServer):
    hostile.mode, hostile.exception_code = Mode.EXCEPTION, 4
    async with connected(driver_for(hostile.port, [make_tag("FI-2", "holding", 1)])) as driver:
        await read(driver)
        stats = driver.stats
    assert stats.exception_codes == {4: 1}
    assert "exception code 4" in stats.last_error


async def test_silent_request_times_out_only_its_own_tags(hostile: HostileModbusServer):
    hostile.modes[1000] = Mode.SILENT
    tags = [make_tag("FI-1", "holding", 0), make_tag("FI-2", "holding", 1000),
            make_tag("FI-3", "holding", 2000), make_tag("FI-4", "holding", 3000)]
    async with connected(driver_for(hostile.port, tags, timeout_s=0.3, max_concurrent=2)) as driver:
        batch = await read(driver)
    assert reasons_by_tag(batch, tags) == {"FI-1": Reason.NONE, "FI-2": Reason.TIMEOUT,
                                           "FI-3": Reason.NONE, "FI-4": Reason.NONE}
    assert batch.values[[0, 2, 3]].tolist() == [0.0, 2000.0, 3000.0]


async def test_late_answer_after_a_timeout_does_not_spoil_the_next_scan(hostile: HostileModbusServer):
    tags = [make_tag("FI-2", "holding", 7)]
    hostile.late_s = 0.5
    async with connected(driver_for(hostile.port, tags, timeout_s=0.3, max_concurrent=1)) as driver:
        hostile.mode = Mode.LATE
        assert (await read(driver)).reason[0] == Reason.TIMEOUT
        hostile.mode = Mode.ANSWER
        batch = await read(driver)
    assert (batch.quality[0], batch.values[0]) == (Quality.GOOD, 7.0)


async def test_driver_recovers_after_a_malformed_answer(hostile: HostileModbusServer):
    tags = [make_tag("FI-2", "holding", 9)]
    async with connected(driver_for(hostile.port, tags, max_concurrent=1)) as driver:
        hostile.mode = Mode.GARBAGE
        assert (await read(driver)).reason[0] == Reason.MALFORMED_RESPONSE
        hostile.mode = Mode.ANSWER
        await eventually(lambda: driver.connected)
        batch = await read(driver)
    assert (batch.quality[0], batch.values[0]) == (Quality.GOOD, 9.0)


async def test_driver_reconnects_unaided_after_the_server_restarts():
    server, port = await start_pymodbus()
    tags = [make_tag("FI-2", "holding", 1)]
    async with connected(driver_for(port, tags)) as driver:
        assert (await read(driver)).quality[0] == Quality.GOOD
        await server.shutdown()
        await eventually(lambda: not driver.connected)
        down = await read(driver)
        server, _ = await start_pymodbus(port)
        try:
            await eventually(lambda: driver.connected)
            up = await read(driver)
            reconnects = driver.stats.reconnects
        finally:
            await server.shutdown()
    assert (down.quality[0], down.reason[0]) == (Quality.BAD, Reason.DISCONNECTED)
    assert (up.quality[0], up.values[0]) == (Quality.GOOD, 65000.0)
    assert reconnects >= 1


async def test_a_device_found_down_at_start_is_connected_once_it_appears():
    hostile = HostileModbusServer()
    hostile.port = free_port()
    tags = [make_tag("FI-2", "holding", 3)]
    async with connected(driver_for(hostile.port, tags)) as driver:
        await hostile.start()
        try:
            await eventually(lambda: driver.connected)
            batch = await read(driver)
        finally:
            await hostile.close()
    assert (batch.quality[0], batch.values[0]) == (Quality.GOOD, 3.0)


async def test_subscribe_is_not_supported_for_modbus(pymodbus_server: int):
    driver = driver_for(pymodbus_server, [make_tag("FI-2", "holding", 1)])

    async def callback(batch: Batch) -> None: ...

    with pytest.raises(NotImplementedError):
        await driver.subscribe(GROUP, callback)


async def test_scan_groups_of_one_device_may_read_concurrently(pymodbus_server: int):
    settings = ModbusDevice(id="plc-test", protocol="modbus", port=pymodbus_server, max_concurrent=1)
    fast, slow = [make_tag("FI-2", "holding", 1)], [t for t, _ in TYPED]
    plans = {name: GroupPlan(group=ScanGroup(id=name, device=settings.id),
                             tag_index=np.arange(len(tags), dtype=np.int32), tags=tuple(tags))
             for name, tags in (("fast", fast), ("slow", slow))}
    async with connected(ModbusDriver(settings, plans, Path("/nonexistent"))) as driver:
        async with asyncio.timeout(HANG_GUARD_S):
            batches = await asyncio.gather(*(driver.read(g, time.time()) for g in ("fast", "slow") * 3))
    assert all((b.quality == Quality.GOOD).all() for b in batches)
    assert batches[0].values.tolist() == [65000.0]
