"""Scenarios run through the real simulator servers at a high speed-up: each one makes the values
the servers serve cross the alarm limits of the shipped config/plant.toml."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from asyncua import Client

from drivers.base import GroupPlan
from drivers.modbus import ModbusDriver
from drivers.quality import Quality
from plant.catalog import Catalog
from plant.devices import ModbusDevice, ScanGroup
from plant.load import load_plant
from plant.schema import Tag
from simulator.run import parse_args, serve
from simulator.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
PLANT = ROOT / "config" / "plant.toml"
HANG_GUARD_S = 60.0  # only to fail instead of hanging; never a timing assertion
POLL_S = 0.05

pytestmark = [pytest.mark.timeout(180), pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.build(load_plant(PLANT))


@contextlib.asynccontextmanager
async def simulator(speed: float, scenario: str | None = None) -> AsyncIterator[dict]:
    ready: asyncio.Future = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(seed=7, speed=speed, synthetic_tags=0, opcua_port=0, modbus_port=0,
                                     plant_path=PLANT, control_port=0, on_ready=ready.set_result,
                                     scenario=scenario))
    done, _ = await asyncio.wait({task, ready}, timeout=HANG_GUARD_S, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    try:
        yield ready.result()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def modbus_reader(ready: dict, catalog: Catalog, tmp_path: Path) -> AsyncIterator[ModbusDriver]:
    """A driver only used for single reads of what the Modbus server serves."""
    device = ModbusDevice(id="plc", protocol="modbus", port=ready["modbus_port"], timeout_s=0.5)
    tags = tuple(t for t in catalog.tags if t.unit_id == "CDU-101")
    plan = GroupPlan(group=ScanGroup(id="cdu", device="plc"), tag_index=np.arange(len(tags), dtype=np.int32),
                     tags=tags)
    driver = ModbusDriver(device, {"cdu": plan}, tmp_path)
    await driver.connect()
    try:
        yield driver
    finally:
        await driver.close()


async def sim_time(ready: dict) -> float:
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{ready['control_port']}/state") as response:
        return (await response.json())["time_s"]


async def until(read: Callable[[], Awaitable[float]], passes: Callable[[float], bool]) -> float:
    """Poll ``read`` until its value ``passes``; returns that value (the guard only stops a hang)."""
    async with asyncio.timeout(HANG_GUARD_S):
        while True:
            value = await read()
            if passes(value):
                return value
            await asyncio.sleep(POLL_S)


def modbus_value(driver: ModbusDriver, tag: Tag) -> Callable[[], Awaitable[float]]:
    async def read() -> float:
        value, quality = await driver.read_tag(tag, 1.0)
        return value if quality == Quality.GOOD else float("nan")
    return read


def opcua_value(client: Client, tag: Tag) -> Callable[[], Awaitable[float]]:
    node = client.get_node(tag.opcua.node_id)

    async def read() -> float:
        return float(await node.read_value())
    return read


def opcua_url(ready: dict) -> str:
    return f"opc.tcp://127.0.0.1:{ready['opcua_port']}/refineryiq/simulator"


async def test_furnace_upset_takes_the_outlet_through_h_then_hh(catalog, tmp_path):
    outlet, skin = catalog.tag("TI-101"), catalog.tag("TI-109")
    async with simulator(speed=30.0, scenario="furnace-upset") as ready, \
            modbus_reader(ready, catalog, tmp_path) as plc, Client(opcua_url(ready)) as scada:
        assert await modbus_value(plc, outlet)() < outlet.normal_max  # it starts in the normal range
        await until(modbus_value(plc, outlet), lambda v: v > outlet.normal_max)
        at_h = await sim_time(ready)
        await until(modbus_value(plc, outlet), lambda v: v > outlet.hh)
        at_hh = await sim_time(ready)
        await until(opcua_value(scada, skin), lambda v: v > skin.normal_max)
        await until(opcua_value(scada, outlet), lambda v: v > outlet.hh)  # OPC-UA serves the same
    assert at_h < 60.0 and at_hh < 150.0  # simulated seconds: within one minute, and two


async def test_pump_bearing_wear_raises_vibration_and_bearing_temperature_past_their_limits(catalog, tmp_path):
    vibration, bearing, running = catalog.tag("VI-101"), catalog.tag("TI-107"), catalog.tag("XS-101")
    async with simulator(speed=600.0, scenario="pump-bearing-wear") as ready, Client(opcua_url(ready)) as scada:
        assert await opcua_value(scada, vibration)() < vibration.normal_max
        await until(opcua_value(scada, vibration), lambda v: v > vibration.normal_max)
        at_h = await sim_time(ready)
        await until(opcua_value(scada, bearing), lambda v: v > bearing.normal_max)
        await until(opcua_value(scada, vibration), lambda v: v > vibration.hh)
        await until(opcua_value(scada, running), lambda v: v == 0.0)  # worn out: the pump fails
        at_failure = await sim_time(ready)
    assert 30 * 60 < at_h < 70 * 60 and at_failure < 90 * 60


async def test_tank_overfill_takes_the_level_past_h_and_hh(catalog, tmp_path):
    level = catalog.tag("LI-1102")
    async with simulator(speed=120.0, scenario="tank-overfill") as ready, \
            modbus_reader(ready, catalog, tmp_path) as plc:
        await until(modbus_value(plc, level), lambda v: v > level.normal_max)
        await until(modbus_value(plc, level), lambda v: v > level.hh)
        at_hh = await sim_time(ready)
    assert at_hh <= 6 * 60 + 60  # full in 6 minutes (plus a step and a poll of slack)


async def test_device_dropout_silences_modbus_then_it_answers_again(catalog, tmp_path):
    feed = catalog.tag("FI-102")
    async with simulator(speed=30.0, scenario="device-dropout") as ready, \
            modbus_reader(ready, catalog, tmp_path) as plc, Client(opcua_url(ready)) as scada:
        value, quality = await plc.read_tag(feed, 0.5)
        assert (np.isnan(value), quality) == (True, Quality.BAD)  # no answer while silenced
        assert await opcua_value(scada, feed)() > feed.ll  # the OPC-UA server keeps answering
        await until(modbus_value(plc, feed), lambda v: v > feed.ll)
        back = await sim_time(ready)
    assert back >= 120.0


async def test_control_api_lists_and_starts_scenarios(catalog, tmp_path):
    outlet = catalog.tag("TI-101")
    async with simulator(speed=10.0) as ready, modbus_reader(ready, catalog, tmp_path) as plc:
        base = f"http://127.0.0.1:{ready['control_port']}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/scenarios") as response:
                listed = await response.json()
            assert [s["name"] for s in listed["scenarios"]] == list(SCENARIOS)
            assert all(s["description"] for s in listed["scenarios"]) and listed["started"] == []
            async with http.post(f"{base}/scenarios", json={"name": "meltdown"}) as response:
                assert response.status == 400
                refused = await response.json()
            assert refused["scenarios"] == list(SCENARIOS) and "meltdown" in refused["error"]
            async with http.post(f"{base}/scenarios", json={"name": "furnace-upset"}) as response:
                assert response.status == 200, await response.text()
            async with http.get(f"{base}/state") as response:
                assert [s["name"] for s in (await response.json())["scenarios"]] == ["furnace-upset"]
        await until(modbus_value(plc, outlet), lambda v: v > outlet.normal_max)


async def test_the_command_line_takes_a_scenario():
    assert parse_args(["--scenario", "tank-overfill"]).scenario == "tank-overfill"
    assert parse_args([]).scenario is None
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator", "--scenario", "meltdown", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), HANG_GUARD_S)
    assert process.returncode == 2
    assert "furnace-upset" in stderr.decode()
