"""One engineering value to what a Modbus write sends: registers for FC6/FC16, a state for FC5.

The inverse of the driver's decoding (:mod:`drivers.modbus.codec`): ``raw = (value - offset) /
scale``, laid out in the tag's type and byte order. Pure and refusing rather than guessing:
anything that cannot be written as asked raises :class:`drivers.base.WriteNotEncodable`
before a byte is sent.

Rounding rule for integer types (int16, uint16, int32, uint32): the raw value is taken to 12
significant digits, so that float noise of the division (``12.35 / 0.1 = 123.49999999999999``)
counts as the decimal it stands for (123.5), and then rounded half to even (123.5 -> 124,
122.5 -> 122). The write therefore lands within half a count (``0.5 * |scale|``) of the
request, which is the tag's default read-back tolerance. A raw value outside the type's range
is refused, never clipped. float32 rounds to the nearest float32 (IEEE round half to even);
a value beyond the float32 range is refused. A coil accepts exactly its two states: raw 0 or 1
(with the default scale and offset, the values 0 and 1).
"""

from __future__ import annotations

import math

import numpy as np

from drivers.base import WriteNotEncodable
from drivers.modbus.codec import encode as encode_registers
from plant.schema import DataType, ModbusAddress, ModbusTable

# Significant digits kept of a raw value before integer rounding (see the module docstring).
RAW_SIGNIFICANT_DIGITS = 12
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_INTEGER_RANGE: dict[DataType, tuple[int, int]] = {
    DataType.INT16: (-(1 << 15), (1 << 15) - 1),
    DataType.UINT16: (0, (1 << 16) - 1),
    DataType.INT32: (-(1 << 31), (1 << 31) - 1),
    DataType.UINT32: (0, (1 << 32) - 1),
}


def raw_value(address: ModbusAddress, value: float) -> float:
    """The raw register value for an engineering value: exact for floats, rounded for integers.

    Raises WriteNotEncodable when the value is not finite or does not fit the type.
    """
    if not math.isfinite(value):
        raise WriteNotEncodable(f"value {value} is not a finite number")
    raw = (value - address.offset) / address.scale
    where = _where(address)
    if address.type in _INTEGER_RANGE:
        lo, hi = _INTEGER_RANGE[address.type]
        rounded = float(round(float(f"{raw:.{RAW_SIGNIFICANT_DIGITS}g}")))  # round(): half to even
        if not lo <= rounded <= hi:
            raise WriteNotEncodable(
                f"value {value} is raw {raw:g} after scale {address.scale:g} and offset {address.offset:g}, "
                f"outside {address.type.value} ({lo}..{hi}) of {where}")
        return rounded
    if address.type == DataType.FLOAT32 and abs(raw) > _FLOAT32_MAX:
        raise WriteNotEncodable(f"value {value} is raw {raw:g}, beyond the float32 range of {where}")
    if not math.isfinite(raw):
        raise WriteNotEncodable(f"value {value} is raw {raw} after scale and offset, not finite ({where})")
    return raw


def encode_value(address: ModbusAddress, value: float) -> list[int]:
    """The registers (uint16, in wire order) a holding-register write of ``value`` sends."""
    if address.table != ModbusTable.HOLDING:
        raise WriteNotEncodable(f"{_where(address)} cannot be written with registers"
                                + ("" if address.table.is_writable else " (read-only table)"))
    raw = raw_value(address, value)
    return encode_registers([raw], address.type, address.order).tolist()


def encode_coil(address: ModbusAddress, value: float) -> bool:
    """The state a coil write (FC5) of ``value`` sends: raw 1 is on, raw 0 off, nothing else."""
    if address.table != ModbusTable.COIL:
        raise WriteNotEncodable(f"{_where(address)} is not a coil")
    if not math.isfinite(value):
        raise WriteNotEncodable(f"value {value} is not a finite number")
    if value == address.offset:
        return False
    if value == address.offset + address.scale:
        return True
    states = (address.offset, address.offset + address.scale)
    raise WriteNotEncodable(f"a coil is written {states[0]:g} or {states[1]:g}, not {value:g} ({_where(address)})")


def encode_write(address: ModbusAddress, value: float) -> list[int] | bool:
    """What to send for a write of ``value``: registers for a holding address, a state for a coil.

    Input registers and discrete inputs are refused (they cannot be written).
    """
    if address.table == ModbusTable.COIL:
        return encode_coil(address, value)
    if address.table == ModbusTable.HOLDING:
        return encode_value(address, value)
    raise WriteNotEncodable(f"{_where(address)}: {address.table.value} "
                            f"{'inputs' if address.table.is_bits else 'registers'} cannot be written")


def _where(address: ModbusAddress) -> str:
    return f"{address.table.value} {address.address} ({address.type.value})"
