"""The simulator's register encoding, checked against `struct` for every type and byte order."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from plant.schema import ByteOrder, DataType, ModbusAddress, ModbusTable, OpcUaAddress, Tag, TagType
from simulator.modbus_codec import RegisterMap, encode

STRUCT_FORMAT = {DataType.INT16: ">h", DataType.UINT16: ">H", DataType.INT32: ">i",
                 DataType.UINT32: ">I", DataType.FLOAT32: ">f", DataType.FLOAT64: ">d"}
SAMPLES = {DataType.INT16: [-1234, 0, 32767], DataType.UINT16: [0, 1234, 65535],
           DataType.INT32: [-123456789, 0, 2147483647], DataType.UINT32: [0, 123456789, 4294967295],
           DataType.FLOAT32: [-1.5, 0.0, 351.25], DataType.FLOAT64: [-1.25e-3, 0.0, 17945.123456789]}


def expected_registers(value: float, data_type: DataType, order: ByteOrder) -> list[int]:
    """Registers by the textbook rule: big-endian bytes, then word swap / byte swap."""
    is_float = data_type in (DataType.FLOAT32, DataType.FLOAT64)
    raw = struct.pack(STRUCT_FORMAT[data_type], float(value) if is_float else int(value))
    words = [raw[i:i + 2] for i in range(0, len(raw), 2)]
    if order in (ByteOrder.CDAB, ByteOrder.DCBA):
        words.reverse()
    if order in (ByteOrder.BADC, ByteOrder.DCBA):
        words = [w[::-1] for w in words]
    return [struct.unpack(">H", w)[0] for w in words]


@pytest.mark.parametrize("order", list(ByteOrder))
@pytest.mark.parametrize("data_type", list(STRUCT_FORMAT))
def test_encoding_matches_struct_for_each_type_and_order(data_type, order):
    values = np.array(SAMPLES[data_type], dtype=np.float64)
    registers = encode(values, data_type, order)
    for value, row in zip(values, registers, strict=True):
        assert row.tolist() == expected_registers(value, data_type, order)


@pytest.mark.parametrize("order", list(ByteOrder))
@pytest.mark.parametrize("data_type", list(STRUCT_FORMAT))
def test_encoding_round_trips_through_struct_with_scale_and_offset(data_type, order):
    scale, offset = 0.1, 5.0
    values = np.array([5.0, 17.3, 123.4])
    registers = encode(values, data_type, order, scale, offset)
    for value, row in zip(values, registers, strict=True):
        words = [struct.pack(">H", r) for r in row.tolist()]
        if order in (ByteOrder.BADC, ByteOrder.DCBA):
            words = [w[::-1] for w in words]
        if order in (ByteOrder.CDAB, ByteOrder.DCBA):
            words.reverse()
        raw = struct.unpack(STRUCT_FORMAT[data_type], b"".join(words))[0]
        assert raw * scale + offset == pytest.approx(value, abs=scale / 2 + 1e-4)


def test_integer_values_are_rounded_and_clipped_to_the_type_range():
    assert encode(np.array([1.6, -40000.0, 40000.0]), DataType.INT16, ByteOrder.ABCD)[:, 0].tolist() == [
        2, 0x8000, 0x7FFF]
    assert encode(np.array([-5.0, 70000.0]), DataType.UINT16, ByteOrder.ABCD)[:, 0].tolist() == [0, 0xFFFF]


def _tag(tag_id: str, modbus: ModbusAddress) -> Tag:
    return Tag(id=tag_id, name=tag_id, engineering_units="", tag_type=TagType.ANALOG, normal_min=0,
               normal_max=1, opcua=OpcUaAddress(node_id=f"ns=2;s={tag_id}"), modbus=modbus)


def test_register_map_places_each_tag_at_its_address_and_table():
    tags = [
        _tag("A", ModbusAddress(table=ModbusTable.HOLDING, address=10, type=DataType.FLOAT32,
                                order=ByteOrder.CDAB)),
        _tag("B", ModbusAddress(table=ModbusTable.INPUT, address=3, type=DataType.INT16, scale=0.1)),
        _tag("C", ModbusAddress(table=ModbusTable.COIL, address=7, type=DataType.BOOL)),
        _tag("D", ModbusAddress(table=ModbusTable.DISCRETE, address=2, type=DataType.BOOL)),
    ]
    register_map = RegisterMap(tags)
    register_map.update(np.array([351.25, 12.3, 1.0, 0.0]))
    assert register_map.registers[ModbusTable.HOLDING][10:12].tolist() == expected_registers(
        351.25, DataType.FLOAT32, ByteOrder.CDAB)
    assert register_map.registers[ModbusTable.INPUT][3] == 123
    assert register_map.bits[ModbusTable.COIL][7]
    assert not register_map.bits[ModbusTable.DISCRETE][2]
    assert register_map.owner[ModbusTable.HOLDING][11] == 0


def _tables(register_map: RegisterMap) -> dict:
    return {**{t: a.copy() for t, a in register_map.registers.items()},
            **{t: a.copy() for t, a in register_map.bits.items()}}


def test_update_tag_encodes_one_tag_as_update_does_and_leaves_the_others():
    """After a write only the written tag is re-encoded: the tables must then be exactly what a
    full update of the same values gives, for every type and byte order, scale, offset and bit."""
    tags, address = [], 0
    for data_type in STRUCT_FORMAT:
        for order in ByteOrder:
            tags.append(_tag(f"R{len(tags)}", ModbusAddress(table=ModbusTable.HOLDING, address=address,
                                                           type=data_type, order=order, scale=0.5,
                                                           offset=3.0)))
            address += data_type.registers
    tags.append(_tag("C", ModbusAddress(table=ModbusTable.COIL, address=4, type=DataType.BOOL)))
    tags.append(_tag("D", ModbusAddress(table=ModbusTable.DISCRETE, address=9, type=DataType.BOOL)))
    tags.append(_tag("NONE", None))
    before = np.array([20.0 + k for k in range(len(tags) - 3)] + [0.0, 1.0, 7.0])
    incremental = RegisterMap(tags)
    incremental.update(before)
    for index in range(len(tags)):
        after = before.copy()
        after[index] = 1.0 if index >= len(tags) - 3 else 1234.5
        old = _tables(incremental)
        incremental.update_tag(after, index)
        full = RegisterMap(tags)
        full.update(after)
        for table, array in _tables(incremental).items():
            assert np.array_equal(array, _tables(full)[table]), (tags[index].id, table)
            owned = incremental.owner[table] == index
            assert np.array_equal(array[~owned], old[table][~owned]), (tags[index].id, table)
        incremental.update_tag(before, index)  # back, for the next tag
        assert all(np.array_equal(a, old[t]) for t, a in _tables(incremental).items())
