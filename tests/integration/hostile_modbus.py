"""A raw asyncio Modbus TCP server that misbehaves on demand, for driver fault tests.

It answers read requests (function codes 1-4) correctly by default, with register ``a`` holding
``a & 0xFFFF`` and coil/discrete input ``a`` set when ``a`` is odd. ``mode`` (or a per-start-
address override in ``modes``) turns an answer into garbage, a short frame, a wrong byte count,
a wrong transaction id, an exception response, a late answer, silence, or a closed connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from enum import Enum

_MBAP = struct.Struct(">HHHB")
_GARBAGE = bytes.fromhex("deadbeef00ff13371337c0ffee")


class Mode(Enum):
    ANSWER = "answer"
    GARBAGE = "garbage"  # bytes that are not a Modbus frame
    SHORT = "short"  # a frame cut in the middle, then nothing
    WRONG_BYTE_COUNT = "wrong_byte_count"  # a whole frame with fewer registers than asked
    WRONG_TRANSACTION = "wrong_transaction"  # a correct answer under another transaction id
    EXCEPTION = "exception"  # a Modbus exception response with ``exception_code``
    SILENT = "silent"  # accept the request and never answer
    LATE = "late"  # a correct answer, but only after ``late_s`` seconds
    CLOSE = "close"  # close the connection on the request


class HostileModbusServer:
    """Listens on a free loopback port (``port`` after ``start``)."""

    def __init__(self, mode: Mode = Mode.ANSWER, exception_code: int = 2, late_s: float = 0.5) -> None:
        self.mode = mode
        self.late_s = late_s
        self.modes: dict[int, Mode] = {}
        self.exception_code = exception_code
        self.port = 0
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> HostileModbusServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                header = await reader.readexactly(_MBAP.size)
                transaction_id, _, length, unit_id = _MBAP.unpack(header)
                pdu = await reader.readexactly(length - 1)
                self.requests += 1
                function_code, start, count = struct.unpack(">BHH", pdu[:5])
                mode = self.modes.get(start, self.mode)
                if mode is Mode.CLOSE:
                    break
                if mode is Mode.SILENT:
                    continue
                if mode is Mode.LATE:
                    await asyncio.sleep(self.late_s)
                writer.write(self._reply(mode, transaction_id, unit_id, function_code, start, count))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _reply(self, mode: Mode, transaction_id: int, unit_id: int, function_code: int,
               start: int, count: int) -> bytes:
        if mode is Mode.GARBAGE:
            return _GARBAGE
        if mode is Mode.EXCEPTION:
            return _frame(transaction_id, unit_id, bytes([function_code | 0x80, self.exception_code]))
        data = _data(function_code, start, count)
        if mode is Mode.WRONG_BYTE_COUNT:
            data = data[: len(data) // 2]
        pdu = bytes([function_code, len(data)]) + data
        if mode is Mode.WRONG_TRANSACTION:
            return _frame((transaction_id + 100) & 0xFFFF, unit_id, pdu)
        frame = _frame(transaction_id, unit_id, pdu)
        if mode is Mode.SHORT:
            return frame[: len(frame) // 2]
        return frame


def _frame(transaction_id: int, unit_id: int, pdu: bytes) -> bytes:
    return _MBAP.pack(transaction_id, 0, len(pdu) + 1, unit_id) + pdu


def _data(function_code: int, start: int, count: int) -> bytes:
    if function_code in (3, 4):
        return b"".join(struct.pack(">H", (start + i) & 0xFFFF) for i in range(count))
    packed = bytearray((count + 7) // 8)
    for i in range(count):
        if (start + i) % 2:
            packed[i // 8] |= 1 << (i % 8)
    return bytes(packed)
