"""Register codec: Modbus registers <-> engineering values, vectorized with numpy.

Engineering value = raw * scale + offset (the catalog's convention). Decoding gathers the
bytes of every value of one data type and byte order with a single fancy index, views them
as the big-endian numpy type, and scales the whole column at once: no per-value Python work.
``encode`` is the exact inverse, shared with tests and simulators.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from drivers.modbus.byte_order import wire_to_big_endian
from plant.schema import ByteOrder, DataType

# Big-endian numpy types: after the byte permutation every value is most significant byte first.
_NUMPY_TYPE: dict[DataType, np.dtype] = {
    DataType.INT16: np.dtype(">i2"),
    DataType.UINT16: np.dtype(">u2"),
    DataType.INT32: np.dtype(">i4"),
    DataType.UINT32: np.dtype(">u4"),
    DataType.FLOAT32: np.dtype(">f4"),
    DataType.FLOAT64: np.dtype(">f8"),
}
_REGISTER = np.dtype(">u2")


def register_type(data_type: DataType) -> np.dtype:
    """The big-endian numpy type of a register data type (not ``bool``)."""
    try:
        return _NUMPY_TYPE[data_type]
    except KeyError:
        raise ValueError(f"{data_type.value} is not a register data type") from None


def byte_index(offsets: ArrayLike, data_type: DataType, order: ByteOrder) -> np.ndarray:
    """For values starting at register ``offsets`` of a response, the response byte indices
    of each value's bytes, most significant first: shape (len(offsets), 2 * registers)."""
    offsets = np.asarray(offsets, dtype=np.intp)
    permutation = wire_to_big_endian(data_type.registers, order)
    return offsets[:, None] * 2 + permutation[None, :]


def registers_to_bytes(registers: ArrayLike) -> np.ndarray:
    """The bytes of a response's registers in wire order (uint8, two per register)."""
    return np.asarray(registers, dtype=np.uint16).astype(_REGISTER).view(np.uint8)


def decode_gathered(wire_bytes: np.ndarray, index: np.ndarray, data_type: DataType,
                    scale: ArrayLike = 1.0, offset: ArrayLike = 0.0) -> np.ndarray:
    """Decode the values whose bytes ``index`` (from :func:`byte_index`) selects, as float64."""
    raw = wire_bytes[index].view(register_type(data_type)).reshape(len(index))
    return raw.astype(np.float64) * scale + offset


def decode(registers: ArrayLike, data_type: DataType, order: ByteOrder = ByteOrder.ABCD,
           scale: ArrayLike = 1.0, offset: ArrayLike = 0.0) -> np.ndarray:
    """Decode back-to-back values of one type and order from a run of registers."""
    registers = np.asarray(registers, dtype=np.uint16)
    width = data_type.registers
    if len(registers) % width:
        raise ValueError(f"{len(registers)} registers do not hold whole {data_type.value} values")
    offsets = np.arange(0, len(registers), width)
    return decode_gathered(registers_to_bytes(registers), byte_index(offsets, data_type, order),
                           data_type, scale, offset)


def decode_bits(bits: ArrayLike, offsets: ArrayLike, scale: ArrayLike = 1.0,
                offset: ArrayLike = 0.0) -> np.ndarray:
    """Coil or discrete-input states at ``offsets`` of a response, as float64 (0/1 scaled)."""
    states = np.asarray(bits, dtype=bool)[np.asarray(offsets, dtype=np.intp)]
    return states.astype(np.float64) * scale + offset


def encode(values: ArrayLike, data_type: DataType, order: ByteOrder = ByteOrder.ABCD,
           scale: ArrayLike = 1.0, offset: ArrayLike = 0.0) -> np.ndarray:
    """Registers (uint16, back to back) that decode to ``values``: the inverse of :func:`decode`.

    Integer types are rounded to the nearest raw count and must fit the type (ValueError if not).
    """
    numpy_type = register_type(data_type)
    raw = (np.atleast_1d(np.asarray(values, dtype=np.float64)) - offset) / scale
    if numpy_type.kind in "iu":
        raw = np.rint(raw)
        info = np.iinfo(numpy_type)
        if raw.size and (raw.min() < info.min or raw.max() > info.max):
            raise ValueError(f"values do not fit {data_type.value} after scale and offset")
    big_endian = raw.astype(numpy_type).view(np.uint8).reshape(len(raw), numpy_type.itemsize)
    wire = big_endian[:, wire_to_big_endian(data_type.registers, order)]
    return np.ascontiguousarray(wire).view(_REGISTER).ravel().astype(np.uint16)
