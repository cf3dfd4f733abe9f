"""An applied write republishes only the written tag, on both of the simulator's servers.

The front-ends run in this process without the simulation loop, so nothing but the writes
changes what they serve: a read right after a write must return the written value, the
tables and nodes of every other tag must be exactly as the last step left them, and the
Modbus tables must equal a full re-encode of the model (nothing stale, nothing extra).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from asyncua import Client, ua
from pymodbus.client import AsyncModbusTcpClient

from plant.catalog import Catalog
from plant.load import load_plant
from plant.schema import ModbusTable
from simulator.faults import Device
from simulator.modbus_codec import RegisterMap, encode
from simulator.modbus_server import ModbusFrontEnd
from simulator.model import PlantModel
from simulator.opcua_server import SYNTHETIC_SPREAD, OpcUaFrontEnd
from simulator.writes import Verdict, WriteDesk, WriteMode

ROOT = Path(__file__).resolve().parents[2]
HANG_GUARD_S = 20.0  # only to fail instead of hanging; never a timing assertion
# A value inside the instrument range per writable tag (its registers differ from the default).
WRITES = {"TIC-101.SP": 351.0, "FIC-102.SP": 10010.0, "HIC-401.SP": 41.0, "HS-101": 0.0,
          "XV-101": 0.0, "HS-305": 0.0}

pytestmark = [pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]


@dataclass
class Plant:
    model: PlantModel
    writes: WriteDesk
    modbus: ModbusFrontEnd
    opcua: OpcUaFrontEnd

    @property
    def url(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.opcua.port}/refineryiq/simulator"

    def step(self) -> None:
        """One tick of the simulation loop (simulator.run._loop), without subscriptions."""
        self.model.step(0.1)
        self.modbus.refresh()
        self.opcua.update()


@pytest_asyncio.fixture(loop_scope="module")
async def plant() -> AsyncIterator[Plant]:
    catalog = Catalog.build(load_plant(ROOT / "config" / "plant.toml"), synthetic_tags=30)
    model = PlantModel(catalog, seed=7)
    writes = WriteDesk(model)
    plant = Plant(model, writes, ModbusFrontEnd(model, port=0, writes=writes),
                  OpcUaFrontEnd(model, port=0, writes=writes))
    await plant.modbus.start()
    await plant.opcua.start()
    plant.step()
    try:
        yield plant
    finally:
        await plant.modbus.stop()
        await plant.opcua.stop()


def tables(modbus: ModbusFrontEnd) -> dict[ModbusTable, np.ndarray]:
    m = modbus.datastore.map
    return {**{t: a.copy() for t, a in m.registers.items()}, **{t: a.copy() for t, a in m.bits.items()}}


def full_encode(model: PlantModel) -> dict[ModbusTable, np.ndarray]:
    m = RegisterMap(model.catalog.tags)
    m.update(model.values)
    return {**m.registers, **m.bits}


def node_values(opcua: OpcUaFrontEnd) -> list:
    """(DataValue object, value, source timestamp) of every node, to tell which ones changed."""
    return [None if a is None else (a.value, a.value.Value.Value, a.value.SourceTimestamp)
            for a in opcua._attrs]


def assert_only_changed(before: list, after: list, index: int) -> None:
    for i, (b, a) in enumerate(zip(before, after, strict=True)):
        if i != index:
            assert a[0] is b[0] and a[1:] == b[1:], i


async def modbus_write(client: AsyncModbusTcpClient, model: PlantModel, tag_id: str, value: float):
    m = model.catalog.tags[model.catalog.index[tag_id]].modbus
    if m.table.is_bits:
        return await client.write_coil(m.address, bool(value), device_id=1)
    words = encode(np.array([value]), m.type, m.order, m.scale, m.offset)[0].tolist()
    return await client.write_registers(m.address, words, device_id=1)


async def modbus_read(client: AsyncModbusTcpClient, model: PlantModel, tag_id: str) -> list:
    m = model.catalog.tags[model.catalog.index[tag_id]].modbus
    if m.table.is_bits:
        return (await client.read_coils(m.address, count=1, device_id=1)).bits[:1]
    return (await client.read_holding_registers(m.address, count=m.count, device_id=1)).registers


async def test_a_modbus_write_re_encodes_the_written_tag_only(plant):
    model = plant.model
    client = AsyncModbusTcpClient("127.0.0.1", port=plant.modbus.port, timeout=HANG_GUARD_S)
    await client.connect()
    try:
        for tag_id, value in WRITES.items():
            index = model.catalog.index[tag_id]
            m = model.catalog.tags[index].modbus
            before, nodes_before = tables(plant.modbus), node_values(plant.opcua)
            answer = await modbus_write(client, model, tag_id, value)
            assert not answer.isError(), tag_id
            assert model.values[index] == value
            # The read-back right after the answer returns the written value.
            if m.table.is_bits:
                assert await modbus_read(client, model, tag_id) == [bool(value)], tag_id
            else:
                words = encode(np.array([value]), m.type, m.order, m.scale, m.offset)[0].tolist()
                assert await modbus_read(client, model, tag_id) == words, tag_id
            after = tables(plant.modbus)
            for table, array in full_encode(model).items():
                assert np.array_equal(after[table], array), (tag_id, table)
                other = plant.modbus.datastore.map.owner[table] != index
                assert np.array_equal(after[table][other], before[table][other]), (tag_id, table)
            # The same tag on OPC-UA shows the write too, and no other node was touched.
            assert plant.opcua._attrs[index].value.Value.Value == value
            assert_only_changed(nodes_before, node_values(plant.opcua), index)
    finally:
        client.close()
    plant.step()
    assert all(np.array_equal(tables(plant.modbus)[t], a) for t, a in full_encode(model).items())


async def test_an_opcua_write_publishes_the_written_node_only(plant):
    model = plant.model
    index = model.catalog.index["HIC-401.SP"]
    m = model.catalog.tags[index].modbus
    round_before = plant.opcua._round
    async with Client(plant.url, timeout=HANG_GUARD_S) as client:
        node = client.get_node(model.catalog.tags[index].opcua.node_id)
        for value in (42.5, 43.0):
            before, registers_before = node_values(plant.opcua), tables(plant.modbus)
            await node.write_value(ua.DataValue(ua.Variant(value, ua.VariantType.Double)))
            assert await node.read_value() == value
            assert_only_changed(before, node_values(plant.opcua), index)
            # Its Modbus registers follow; nothing else there moved.
            words = encode(np.array([value]), m.type, m.order, m.scale, m.offset)[0].tolist()
            holding = plant.modbus.datastore.map.registers[ModbusTable.HOLDING]
            assert holding[m.address:m.address + m.count].tolist() == words
            for table, array in tables(plant.modbus).items():
                other = plant.modbus.datastore.map.owner[table] != index
                assert np.array_equal(array[other], registers_before[table][other]), table
    # A write is not a step: the synthetic round-robin goes on from where the last step left it.
    assert plant.opcua._round == round_before
    plant.step()
    assert plant.opcua._round == (round_before + 1) % SYNTHETIC_SPREAD


class Changes:
    def __init__(self):
        self.values: dict[str, list[float]] = {}
        self.event = asyncio.Event()

    def datachange_notification(self, node, value, data):
        self.values.setdefault(node.nodeid.Identifier, []).append(value)
        self.event.set()


async def test_a_write_notifies_the_written_nodes_subscribers_only(plant):
    model = plant.model
    written, neighbour = "CDU-101.TIC-101.SP", "CDU-101.FIC-102.SP"
    changes = Changes()
    async with Client(plant.url, timeout=HANG_GUARD_S) as client:
        subscription = await client.create_subscription(20, changes)
        await subscription.subscribe_data_change([client.get_node(f"ns=2;s={written}"),
                                                  client.get_node(f"ns=2;s={neighbour}")])
        async with asyncio.timeout(HANG_GUARD_S):
            while set(changes.values) != {written, neighbour}:  # the initial values
                changes.event.clear()
                await changes.event.wait()
        changes.event.clear()
        assert plant.writes.receive(Device.OPCUA, model.catalog.index["TIC-101.SP"], 352.0) == Verdict.APPLIED
        async with asyncio.timeout(HANG_GUARD_S):
            while changes.values[written][-1] != 352.0:
                changes.event.clear()
                await changes.event.wait()
        await asyncio.sleep(0.2)  # a few publishing intervals: nothing else may arrive
        assert len(changes.values[neighbour]) == 1
        await subscription.delete()


@pytest.mark.parametrize(("mode", "apply", "applied"), [(WriteMode.REFUSE, False, False),
                                                        (WriteMode.TIMEOUT, False, False),
                                                        (WriteMode.TIMEOUT, True, True)])
async def test_only_an_applied_write_republishes(plant, mode, apply, applied):
    model = plant.model
    index = model.catalog.index["FIC-102.SP"]
    value = 10020.0 if model.values[index] != 10020.0 else 10030.0
    before, nodes_before = tables(plant.modbus), node_values(plant.opcua)
    plant.writes.set_mode(mode, Device.MODBUS, apply=apply)
    try:
        plant.writes.receive(Device.MODBUS, index, value)
    finally:
        plant.writes.set_mode(WriteMode.NORMAL)
    after, nodes_after = tables(plant.modbus), node_values(plant.opcua)
    changed = [t for t in after if not np.array_equal(after[t], before[t])]
    assert changed == ([ModbusTable.HOLDING] if applied else [])
    if applied:
        assert nodes_after[index][1] == value
        assert_only_changed(nodes_before, nodes_after, index)
    else:
        assert nodes_after == nodes_before
