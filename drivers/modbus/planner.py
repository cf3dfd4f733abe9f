"""Request planner: coalesce a scan group's addresses into the fewest Modbus read requests.

Pure and run once per scan group when a driver is built, never per scan. Addresses of one
table are sorted and packed greedily from the lowest, which gives the fewest requests for
a maximum request length: a request grows while the next value still fits in ``max_registers``
(``max_bits`` for coils and discrete inputs) and the unused gap before it is at most
``max_gap`` addresses. A multi-register value is never split across two requests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drivers.modbus.codec import byte_index
from plant.schema import ByteOrder, DataType, ModbusAddress, ModbusTable, Tag

# Protocol limits (Modbus Application Protocol v1.1b3, sections 6.1-6.4).
MAX_REGISTERS_PER_READ = 125
MAX_BITS_PER_READ = 2000


class PlanError(ValueError):
    """A tag cannot be read with the given limits (names the tag and its address)."""


@dataclass(frozen=True, eq=False)
class FieldGroup:
    """The values of one data type and byte order inside one request, decoded in one step.

    ``offsets`` are register (or bit) offsets within the response, ``positions`` the indices
    of those tags in the scan group's tag list; ``byte_index`` is precomputed for registers.
    """

    data_type: DataType
    order: ByteOrder
    offsets: np.ndarray
    positions: np.ndarray
    scale: np.ndarray
    offset: np.ndarray
    byte_index: np.ndarray | None


@dataclass(frozen=True, eq=False)
class Request:
    """One read request: ``count`` registers or bits of ``table`` from ``start``."""

    table: ModbusTable
    start: int
    count: int
    fields: tuple[FieldGroup, ...]
    positions: np.ndarray  # every group position this request answers, for marking failures

    @property
    def is_bits(self) -> bool:
        return self.table.is_bits


@dataclass(frozen=True)
class _Item:
    address: int
    width: int
    position: int
    modbus: ModbusAddress


def plan_requests(tags: list[Tag] | tuple[Tag, ...], max_registers: int = MAX_REGISTERS_PER_READ,
                  max_bits: int = MAX_BITS_PER_READ, max_gap: int = 0) -> list[Request]:
    """Requests that read every tag's Modbus address, ordered by table then start address."""
    if not 1 <= max_registers <= MAX_REGISTERS_PER_READ:
        raise PlanError(f"max_registers must be 1..{MAX_REGISTERS_PER_READ}, not {max_registers}")
    if not 1 <= max_bits <= MAX_BITS_PER_READ:
        raise PlanError(f"max_bits must be 1..{MAX_BITS_PER_READ}, not {max_bits}")
    if max_gap < 0:
        raise PlanError(f"max_gap must not be negative, not {max_gap}")
    by_table: dict[ModbusTable, list[_Item]] = {}
    for position, tag in enumerate(tags):
        if tag.modbus is None:
            raise PlanError(f"tag '{tag.id}' has no modbus address")
        m = tag.modbus
        by_table.setdefault(m.table, []).append(_Item(m.address, m.count, position, m))
    requests: list[Request] = []
    for table in ModbusTable:
        items = sorted(by_table.get(table, []), key=lambda item: (item.address, item.position))
        limit = max_bits if table.is_bits else max_registers
        requests += [_build(table, run) for run in _coalesce(items, limit, max_gap)]
    return requests


def _coalesce(items: list[_Item], limit: int, max_gap: int) -> list[list[_Item]]:
    runs: list[list[_Item]] = []
    start = end = 0  # current run: addresses [start, end)
    for item in items:
        if item.width > limit:
            raise PlanError(f"{item.modbus.table.value} {item.address} ({item.modbus.type.value}, "
                            f"{item.width} registers) does not fit a request of {limit}")
        item_end = item.address + item.width
        if runs and item.address - end <= max_gap and max(end, item_end) - start <= limit:
            runs[-1].append(item)
            end = max(end, item_end)
        else:
            runs.append([item])
            start, end = item.address, item_end
    return runs


def _build(table: ModbusTable, run: list[_Item]) -> Request:
    start = run[0].address
    count = max(item.address + item.width for item in run) - start
    kinds: dict[tuple[DataType, ByteOrder], list[_Item]] = {}
    for item in run:
        kinds.setdefault((item.modbus.type, item.modbus.order), []).append(item)
    fields = []
    for (data_type, order), members in kinds.items():
        offsets = np.array([m.address - start for m in members], dtype=np.intp)
        fields.append(FieldGroup(
            data_type=data_type,
            order=order,
            offsets=offsets,
            positions=np.array([m.position for m in members], dtype=np.intp),
            scale=np.array([m.modbus.scale for m in members], dtype=np.float64),
            offset=np.array([m.modbus.offset for m in members], dtype=np.float64),
            byte_index=None if table.is_bits else byte_index(offsets, data_type, order),
        ))
    positions = np.array([item.position for item in run], dtype=np.intp)
    return Request(table=table, start=start, count=count, fields=tuple(fields), positions=positions)
