"""The write encoders: Modbus registers and coil states, OPC-UA Variants, and what they refuse."""

from __future__ import annotations

import math

import numpy as np
import pytest
from asyncua import ua

from drivers.base import WriteNotEncodable
from drivers.modbus import decode
from drivers.modbus.encoder import encode_coil, encode_value, encode_write, raw_value
from drivers.opcua.encoder import encode_variant, variant_type_for
from plant.schema import ByteOrder, DataType, ModbusAddress, ModbusTable

REGISTER_TYPES = [t for t in DataType if t != DataType.BOOL]

# Per type: (scale, offset, values that must survive encode -> existing decode).
ROUND_TRIP = {
    DataType.INT16: (0.1, 0.0, [-3276.8, -12.3, 0.0, 341.5, 3276.7]),
    DataType.UINT16: (1.0, 0.0, [0.0, 1.0, 42.0, 65535.0]),
    DataType.INT32: (1.0, -50.0, [-2147483698.0, -123456.0, 0.0, 2147483597.0]),
    DataType.UINT32: (0.5, 100.0, [100.0, 2_000_000_100.5, 2147483747.5]),
    DataType.FLOAT32: (1.0, 0.0, [-1.5e10, -341.25, 0.0, 0.1, 3.4e38]),
    DataType.FLOAT64: (2.0, 10.0, [-1e300, -9876.54321, 10.0, math.pi, 1e300]),
}


def holding(data_type: DataType, order: ByteOrder = ByteOrder.ABCD, scale: float = 1.0,
            offset: float = 0.0, address: int = 10) -> ModbusAddress:
    return ModbusAddress(table=ModbusTable.HOLDING, address=address, type=data_type, order=order,
                         scale=scale, offset=offset)


def round_trip(address: ModbusAddress, value: float) -> float:
    registers = encode_value(address, value)
    assert len(registers) == address.type.registers
    assert all(0 <= r <= 0xFFFF for r in registers)
    return float(decode(registers, address.type, address.order, address.scale, address.offset)[0])


@pytest.mark.parametrize("order", list(ByteOrder))
@pytest.mark.parametrize("data_type", REGISTER_TYPES)
def test_encode_then_the_drivers_decoder_gives_the_value_back(data_type, order):
    scale, offset, values = ROUND_TRIP[data_type]
    address = holding(data_type, order, scale, offset)
    for value in values:
        back = round_trip(address, value)
        if data_type == DataType.FLOAT32:
            assert back == float(np.float32(value))
        else:
            assert back == pytest.approx(value, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("order", list(ByteOrder))
def test_byte_order_changes_the_wire_layout_not_the_value(order):
    address = holding(DataType.UINT32, order)
    registers = encode_value(address, 0x11223344)
    expected = {ByteOrder.ABCD: [0x1122, 0x3344], ByteOrder.CDAB: [0x3344, 0x1122],
                ByteOrder.BADC: [0x2211, 0x4433], ByteOrder.DCBA: [0x4433, 0x2211]}[order]
    assert registers == expected


@pytest.mark.parametrize("value, raw", [
    (12.35, 124.0),  # 123.49999999999999 in float64 stands for 123.5: half to even -> 124
    (12.25, 122.0),  # 122.5 -> 122 (even)
    (12.34, 123.0),
    (12.36, 124.0),
    (-0.05, -0.0),  # -0.5 -> -0 (even)
    (-0.15, -2.0),  # -1.5 -> -2 (even)
])
def test_integer_registers_round_half_to_even_of_the_decimal_raw_value(value, raw):
    assert raw_value(holding(DataType.INT16, scale=0.1), value) == raw


def test_rounding_stays_within_half_a_count():
    address = holding(DataType.INT16, scale=0.1)
    for value in np.linspace(-100, 100, 2001) + 0.0123:
        assert abs(round_trip(address, float(value)) - value) <= 0.05 + 1e-9


@pytest.mark.parametrize("data_type, value", [
    (DataType.INT16, 32768.0), (DataType.INT16, -32769.0), (DataType.UINT16, -1.0),
    (DataType.UINT16, 65536.0), (DataType.INT32, 2.0 ** 31), (DataType.UINT32, 2.0 ** 32),
    (DataType.UINT32, -0.6),
])
def test_integer_values_outside_the_type_are_refused_not_clipped(data_type, value):
    with pytest.raises(WriteNotEncodable, match=data_type.value):
        encode_value(holding(data_type), value)


def test_out_of_type_after_scale_and_offset_is_refused():
    with pytest.raises(WriteNotEncodable, match="after scale 0.1"):
        encode_value(holding(DataType.INT16, scale=0.1), 3300.0)  # raw 33000
    with pytest.raises(WriteNotEncodable):
        encode_value(holding(DataType.UINT16, offset=100.0), 50.0)  # raw -50


def test_half_a_count_below_zero_rounds_to_zero_for_unsigned():
    assert raw_value(holding(DataType.UINT16), -0.5) == 0.0


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("data_type", REGISTER_TYPES)
def test_non_finite_values_are_refused(data_type, value):
    with pytest.raises(WriteNotEncodable, match="finite"):
        encode_value(holding(data_type), value)


def test_float32_beyond_its_range_is_refused():
    with pytest.raises(WriteNotEncodable, match="float32"):
        encode_value(holding(DataType.FLOAT32), 3.5e38)
    with pytest.raises(WriteNotEncodable, match="float32"):
        encode_value(holding(DataType.FLOAT32, scale=1e-10), 1e30)


def test_float64_that_overflows_after_scale_is_refused():
    with pytest.raises(WriteNotEncodable, match="not finite"):
        encode_value(holding(DataType.FLOAT64, scale=1e-300), 1e300)


def test_a_coil_takes_0_and_1_only():
    coil = ModbusAddress(table=ModbusTable.COIL, address=3, type=DataType.BOOL)
    assert encode_coil(coil, 1.0) is True
    assert encode_coil(coil, 0.0) is False
    assert encode_write(coil, 1.0) is True
    for value in (0.5, 2.0, -1.0, math.nan):
        with pytest.raises(WriteNotEncodable):
            encode_coil(coil, value)


def test_a_scaled_coil_takes_its_two_engineering_states():
    coil = ModbusAddress(table=ModbusTable.COIL, address=3, type=DataType.BOOL, scale=100.0, offset=5.0)
    assert (encode_coil(coil, 5.0), encode_coil(coil, 105.0)) == (False, True)
    with pytest.raises(WriteNotEncodable, match="5 or 105"):
        encode_coil(coil, 1.0)


@pytest.mark.parametrize("table, data_type", [(ModbusTable.INPUT, DataType.FLOAT32),
                                              (ModbusTable.DISCRETE, DataType.BOOL)])
def test_input_tables_cannot_be_written(table, data_type):
    address = ModbusAddress(table=table, address=0, type=data_type)
    with pytest.raises(WriteNotEncodable, match="cannot be written"):
        encode_write(address, 1.0)


def test_registers_are_not_sent_to_a_coil_nor_a_state_to_registers():
    with pytest.raises(WriteNotEncodable):
        encode_value(ModbusAddress(table=ModbusTable.COIL, address=0, type=DataType.BOOL), 1.0)
    with pytest.raises(WriteNotEncodable):
        encode_coil(holding(DataType.UINT16), 1.0)


# ---------------------------------------------------------------------- OPC-UA


@pytest.mark.parametrize("identifier, variant_type", [
    (ua.ObjectIds.Double, ua.VariantType.Double), (ua.ObjectIds.Float, ua.VariantType.Float),
    (ua.ObjectIds.Int16, ua.VariantType.Int16), (ua.ObjectIds.UInt32, ua.VariantType.UInt32),
    (ua.ObjectIds.Boolean, ua.VariantType.Boolean), (ua.ObjectIds.Duration, ua.VariantType.Double),
    (ua.ObjectIds.BaseDataType, ua.VariantType.Double), (ua.ObjectIds.Integer, ua.VariantType.Int64),
])
def test_numeric_data_types_map_to_their_variant_type(identifier, variant_type):
    assert variant_type_for(ua.NodeId(identifier, 0)) == variant_type


@pytest.mark.parametrize("data_type", [ua.NodeId(ua.ObjectIds.String, 0), ua.NodeId(ua.ObjectIds.DateTime, 0),
                                       ua.NodeId(3001, 2)])
def test_other_data_types_are_not_written(data_type):
    assert variant_type_for(data_type) is None


def test_variants_carry_the_nodes_type():
    assert encode_variant(341.25, ua.VariantType.Double) == ua.Variant(341.25, ua.VariantType.Double)
    assert encode_variant(0.1, ua.VariantType.Float).Value == float(np.float32(0.1))
    assert encode_variant(-7.0, ua.VariantType.Int16) == ua.Variant(-7, ua.VariantType.Int16)
    assert encode_variant(1.0, ua.VariantType.Boolean) == ua.Variant(True, ua.VariantType.Boolean)


@pytest.mark.parametrize("value, variant_type, match", [
    (12.3, ua.VariantType.Int32, "whole numbers"),
    (40000.0, ua.VariantType.Int16, "outside"),
    (-1.0, ua.VariantType.UInt16, "outside"),
    (0.5, ua.VariantType.Boolean, "0 or 1"),
    (1e39, ua.VariantType.Float, "Float"),
    (math.nan, ua.VariantType.Double, "finite"),
    (1.0, ua.VariantType.String, "not a number type"),
])
def test_variants_refuse_what_the_type_cannot_hold(value, variant_type, match):
    with pytest.raises(WriteNotEncodable, match=match):
        encode_variant(value, variant_type)
