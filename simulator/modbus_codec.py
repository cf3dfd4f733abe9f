"""Engineering values to Modbus registers and bits, vectorized over every tag at once.

``raw = (value - offset) / scale``; integer types are rounded and clipped to their range.
Multi-register values are laid out by byte order, A being the most significant byte of the
big-endian value:

- ``ABCD``: big-endian words, big-endian bytes (the Modbus default);
- ``CDAB``: word order reversed, bytes inside each word big-endian ("word swap");
- ``BADC``: big-endian word order, bytes swapped inside each word ("byte swap");
- ``DCBA``: fully little-endian.

For 64-bit values the same rule holds over four words (CDAB = words in reverse order). A
single-register type has only the byte swap: CDAB reads as ABCD and DCBA as BADC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from plant.schema import ByteOrder, DataType, ModbusTable, Tag

ADDRESS_SPACE = 65536

_NUMPY_TYPE = {
    DataType.INT16: np.dtype(">i2"),
    DataType.UINT16: np.dtype(">u2"),
    DataType.INT32: np.dtype(">i4"),
    DataType.UINT32: np.dtype(">u4"),
    DataType.FLOAT32: np.dtype(">f4"),
    DataType.FLOAT64: np.dtype(">f8"),
}


def byte_permutation(data_type: DataType, order: ByteOrder) -> np.ndarray:
    """Positions of the big-endian value's bytes in register (wire) order."""
    words = data_type.registers
    perm = []
    word_order = range(words - 1, -1, -1) if order in (ByteOrder.CDAB, ByteOrder.DCBA) else range(words)
    for w in word_order:
        pair = [2 * w, 2 * w + 1]
        if order in (ByteOrder.BADC, ByteOrder.DCBA):
            pair.reverse()
        perm += pair
    return np.array(perm, dtype=np.int64)


def encode(values: np.ndarray, data_type: DataType, order: ByteOrder, scale: np.ndarray | float = 1.0,
           offset: np.ndarray | float = 0.0) -> np.ndarray:
    """Registers (uint16, shape (n, registers)) of ``values`` of one type and byte order."""
    dtype = _NUMPY_TYPE[data_type]
    raw = (np.asarray(values, dtype=np.float64) - offset) / scale
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        raw = np.clip(np.rint(np.nan_to_num(raw)), info.min, info.max)
    wire = raw.astype(dtype).view(np.uint8).reshape(len(raw), dtype.itemsize)
    wire = wire[:, byte_permutation(data_type, order)]
    return np.ascontiguousarray(wire).view(">u2").astype(np.uint16)


@dataclass(frozen=True)
class _Group:
    """Tags sharing table, type and byte order: encoded with one call."""

    table: ModbusTable
    data_type: DataType
    order: ByteOrder
    tag_index: np.ndarray
    scale: np.ndarray
    offset: np.ndarray
    registers: np.ndarray  # (n, count) addresses each tag's registers land on


class RegisterMap:
    """The four Modbus tables of one device, refreshed from a value column by :meth:`update`
    (every tag, after a model step) or :meth:`update_tag` (one tag, after a write)."""

    def __init__(self, tags: Sequence[Tag]):
        self._tags = list(tags)
        self.registers = {ModbusTable.HOLDING: np.zeros(ADDRESS_SPACE, dtype=np.uint16),
                          ModbusTable.INPUT: np.zeros(ADDRESS_SPACE, dtype=np.uint16)}
        self.bits = {ModbusTable.COIL: np.zeros(ADDRESS_SPACE, dtype=bool),
                     ModbusTable.DISCRETE: np.zeros(ADDRESS_SPACE, dtype=bool)}
        # Which tag owns each address (-1: none), to fail reads touching a bad-quality tag.
        self.owner = {t: np.full(ADDRESS_SPACE, -1, dtype=np.int32) for t in ModbusTable}
        keyed: dict[tuple[ModbusTable, DataType, ByteOrder], list[int]] = {}
        self._bit_tags: dict[ModbusTable, list[int]] = {ModbusTable.COIL: [], ModbusTable.DISCRETE: []}
        for i, tag in enumerate(tags):
            m = tag.modbus
            if m is None:
                continue
            self.owner[m.table][m.address:m.address + m.count] = i
            if m.table.is_bits:
                self._bit_tags[m.table].append(i)
            else:
                keyed.setdefault((m.table, m.type, m.order), []).append(i)
        self._groups = []
        for (table, data_type, order), idx in keyed.items():
            addr = np.array([tags[i].modbus.address for i in idx], dtype=np.int64)  # type: ignore[union-attr]
            self._groups.append(_Group(
                table=table, data_type=data_type, order=order,
                tag_index=np.array(idx, dtype=np.int64),
                scale=np.array([tags[i].modbus.scale for i in idx]),  # type: ignore[union-attr]
                offset=np.array([tags[i].modbus.offset for i in idx]),  # type: ignore[union-attr]
                registers=addr[:, None] + np.arange(data_type.registers)[None, :]))
        self._bits = {t: (np.array(idx, dtype=np.int64),
                          np.array([tags[i].modbus.address for i in idx], dtype=np.int64))  # type: ignore[union-attr]
                      for t, idx in self._bit_tags.items()}

    def update(self, values: np.ndarray) -> None:
        """Encode every tag's current value into the register and bit tables (in place)."""
        for g in self._groups:
            words = encode(values[g.tag_index], g.data_type, g.order, g.scale, g.offset)
            self.registers[g.table][g.registers] = words
        for table, (idx, addr) in self._bits.items():
            self.bits[table][addr] = values[idx] >= 0.5

    def update_tag(self, values: np.ndarray, index: int) -> None:
        """Encode tag ``index``'s current value only, exactly as :meth:`update` would."""
        m = self._tags[index].modbus
        if m is None:
            return
        if m.table.is_bits:
            self.bits[m.table][m.address] = values[index] >= 0.5
        else:
            words = encode(values[index:index + 1], m.type, m.order, m.scale, m.offset)
            self.registers[m.table][m.address:m.address + m.count] = words[0]


def decode(registers: Sequence[int], data_type: DataType, order: ByteOrder, scale: float = 1.0,
           offset: float = 0.0) -> float:
    """The engineering value of one tag's registers as written by a client (inverse of :func:`encode`)."""
    dtype = _NUMPY_TYPE[data_type]
    wire = np.asarray(registers, dtype=np.uint16).astype(">u2").view(np.uint8)
    # Each byte permutation is its own inverse: applied to wire order it gives big-endian order.
    big_endian = np.ascontiguousarray(wire[byte_permutation(data_type, order)])
    return float(big_endian.view(dtype)[0]) * scale + offset
