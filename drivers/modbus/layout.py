"""The register layout of one scan group: all responses of a scan decoded in one pass.

During a scan the connections only store each response (the request loop is latency bound:
any work between an answer and the next request slows the whole scan). Afterwards the register
responses are laid end to end in one buffer and each data type and byte order is decoded with a
single gather over the whole group, then quality and reason columns are spread from per-request
outcomes. Built once per scan group from the planner's requests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drivers.modbus.codec import byte_index, decode_bits, decode_gathered, registers_to_bytes
from drivers.modbus.planner import Request
from drivers.quality import QUALITY_DTYPE, REASON_DTYPE, Quality, Reason
from plant.schema import ByteOrder, DataType


@dataclass(frozen=True, eq=False)
class _Column:
    """Every value of one data type and byte order in the group, at its place in the buffer."""

    data_type: DataType
    byte_index: np.ndarray
    positions: np.ndarray
    scale: np.ndarray
    offset: np.ndarray


@dataclass(frozen=True, eq=False)
class ScanLayout:
    """Where each request's registers go in the scan buffer, and which tags each request feeds."""

    size: int  # number of tags in the group
    requests: tuple[Request, ...]
    register_base: tuple[int, ...]  # start of each request in the buffer (-1 for bit requests)
    buffer_registers: int
    columns: tuple[_Column, ...]
    position_request: np.ndarray  # for each tag, the index of the request that reads it

    @classmethod
    def build(cls, size: int, requests: list[Request] | tuple[Request, ...]) -> ScanLayout:
        bases: list[int] = []
        total = 0
        kinds: dict[tuple[DataType, ByteOrder], list[tuple[np.ndarray, ...]]] = {}
        position_request = np.full(size, -1, dtype=np.intp)
        for k, request in enumerate(requests):
            position_request[request.positions] = k
            if request.is_bits:
                bases.append(-1)
                continue
            bases.append(total)
            for field in request.fields:
                kinds.setdefault((field.data_type, field.order), []).append(
                    (field.offsets + total, field.positions, field.scale, field.offset))
            total += request.count
        if size and (position_request < 0).any():
            raise ValueError("every tag of the group must be read by one request")
        columns = []
        for (data_type, order), parts in kinds.items():
            offsets, positions, scale, offset = (np.concatenate(p) for p in zip(*parts, strict=True))
            columns.append(_Column(data_type, byte_index(offsets, data_type, order), positions,
                                   scale, offset))
        return cls(size=size, requests=tuple(requests), register_base=tuple(bases),
                   buffer_registers=total, columns=tuple(columns), position_request=position_request)

    def decode(self, responses: list[list[int] | list[bool] | None],
               outcomes: list[Reason]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(values, quality, reason) columns from each request's response and outcome.

        ``responses[k]`` is request k's registers or bits (None if it failed); ``outcomes[k]``
        is Reason.NONE for an answered request, else why it failed.
        """
        buffer = np.zeros(self.buffer_registers, dtype=np.uint16)
        values = np.empty(self.size, dtype=np.float64)
        for k, data in enumerate(responses):
            if data is None:
                continue
            request = self.requests[k]
            if request.is_bits:
                for field in request.fields:
                    values[field.positions] = decode_bits(data[: request.count], field.offsets,
                                                          field.scale, field.offset)
            else:
                base = self.register_base[k]
                buffer[base:base + request.count] = data
        wire = registers_to_bytes(buffer)
        for column in self.columns:
            values[column.positions] = decode_gathered(wire, column.byte_index, column.data_type,
                                                       column.scale, column.offset)
        reason = np.asarray(outcomes, dtype=REASON_DTYPE)[self.position_request]
        good = reason == Reason.NONE
        quality = np.where(good, QUALITY_DTYPE(Quality.GOOD), QUALITY_DTYPE(Quality.BAD))
        values[~good] = np.nan
        return values, quality, reason
