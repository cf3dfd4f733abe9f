"""One TCP connection to a Modbus device, carrying one request (a read or a write) at a time.

pymodbus's client serializes requests on a connection (no pipelining), retries and reconnects
on its own, and waits out its full timeout on answers it cannot parse. A link turns all of that
into one bounded call: pymodbus's retries and reconnects are off, our timeout is the only one,
and the raw bytes are checked as they arrive (:mod:`drivers.modbus.frames`) so a malformed or
foreign answer fails the request at once instead of becoming a timeout.

Reads are the hot path (a 10,000-tag scan is 80 of them): the link builds the read frame itself,
sends it on pymodbus's connection and takes the answer's bytes from the receive hook, so a read
costs no PDU objects, framer pass or list of ints (the registers come back as one big-endian
numpy view of the answer). pymodbus keeps the connection, its transaction ids and the writes.
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException

from drivers.modbus.frames import Expectation, Verdict, answer_prefix, check_response, expectation_for
from drivers.modbus.planner import Request
from drivers.quality import Reason
from plant.schema import ModbusTable

# Late answers to requests we gave up on arrive with their old transaction id: skip them.
_STALE_MEMORY = 32
# pymodbus's own response timeout is set well past ours, so it never fires first.
_PYMODBUS_TIMEOUT_FACTOR = 4.0
# A read request: MBAP header (transaction id, protocol 0, length 6, unit id), function code,
# start address, count.
_READ_FRAME = struct.Struct(">HHHBBHH")
_READ_FUNCTION = {ModbusTable.COIL: 1, ModbusTable.DISCRETE: 2, ModbusTable.HOLDING: 3,
                  ModbusTable.INPUT: 4}
_EXCEPTION_BIT = 0x80
_REGISTERS = np.dtype(">u2")


# Exception codes (Modbus Application Protocol v1.1b3, section 7) by the names the write
# path reports them with.
EXCEPTION_NAMES = {
    0x01: "IllegalFunction",
    0x02: "IllegalDataAddress",
    0x03: "IllegalDataValue",
    0x04: "ServerDeviceFailure",
    0x05: "Acknowledge",
    0x06: "ServerDeviceBusy",
    0x08: "MemoryParityError",
    0x0A: "GatewayPathUnavailable",
    0x0B: "GatewayTargetDeviceFailedToRespond",
}


def exception_name(code: int) -> str:
    """The standard name of a Modbus exception code ("IllegalDataAddress"), or "Exception0xNN"."""
    return EXCEPTION_NAMES.get(code, f"Exception0x{code:02X}")


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a request returned no values; ``exception_code`` for Modbus exception responses.

    ``sent`` is False when the request never left (not connected): for a write, that means
    the device cannot have seen it.
    """

    reason: Reason
    detail: str
    exception_code: int | None = None
    sent: bool = True


class ModbusLink:
    """A pymodbus client for one connection, with a hard per-request timeout and frame checks.

    ``read`` never raises for device trouble; it returns the registers (or bits) or a Failure.
    A malformed or foreign answer closes the connection (the byte stream cannot be trusted) and
    ``on_lost`` is called, as it is when the device closes the connection.
    """

    def __init__(self, host: str, port: int, unit_id: int, timeout_s: float, name: str,
                 on_lost: Callable[[ModbusLink], None]) -> None:
        self.name = name
        self.unit_id = unit_id
        self.timeout_s = timeout_s
        self.consecutive_timeouts = 0
        self._on_lost = on_lost
        self._sent = b""  # the request frame in flight
        self._answer_prefix = b""
        self._answer_size = 0
        self._partial = False
        self._abort: Failure | None = None
        self._inflight: asyncio.Task | None = None
        self._stale: deque[int] = deque(maxlen=_STALE_MEMORY)
        self._frames_sent = 0
        self._answer: asyncio.Future[bytes] | None = None  # the read waiting for its answer
        self._expected: Expectation | None = None
        self._in_pymodbus = False  # a write is in pymodbus's hands: its hook logic applies
        self._one_at_a_time = asyncio.Lock()  # scan groups of one device may read concurrently
        self._client = AsyncModbusTcpClient(
            host, port=port, name=name, timeout=timeout_s * _PYMODBUS_TIMEOUT_FACTOR,
            retries=0, reconnect_delay=0, trace_packet=self._trace_packet,
            trace_connect=self._trace_connect)
        # A request that timed out must not count towards pymodbus closing the connection.
        self._client.set_max_no_responses(1 << 30)

    @property
    def connected(self) -> bool:
        return self._client.connected

    async def connect(self) -> bool:
        """One connection attempt bounded by the timeout; True when connected."""
        self._stale.clear()
        self.consecutive_timeouts = 0
        try:
            async with asyncio.timeout(self.timeout_s):
                return bool(await self._client.connect())
        except (TimeoutError, OSError):
            self._client.close()
            return False

    def close(self) -> None:
        """Close the connection (no reconnect is scheduled by the link itself)."""
        self._client.close()

    @property
    def busy(self) -> bool:
        """True while a request is in flight or waiting for this connection."""
        return self._one_at_a_time.locked()

    async def read(self, request: Request, timeout_s: float | None = None) -> np.ndarray | Failure:
        """Issue one read request and wait at most ``timeout_s`` (default: the link's, capped as
        for writes) for its answer: the registers (uint16, a big-endian view of the answer) or
        the bits (bool, a whole number of bytes' worth, the first ``request.count`` asked)."""
        timeout_s = self.timeout_s if timeout_s is None else min(timeout_s, self._longest_wait_s)
        async with self._one_at_a_time:
            return await self._read(request, timeout_s)

    async def write(self, table: ModbusTable, address: int, payload: list[int] | bool,
                    timeout_s: float) -> Failure | None:
        """Write registers (FC6 for one, FC16 for several) or one coil (FC5) and wait at most
        ``timeout_s`` for the answer; None when the device accepted it. Never retried.

        The wait is capped below pymodbus's own response timeout (a few times the link's), so
        our timeout is always the one that fires.
        """
        timeout_s = min(timeout_s, self._longest_wait_s)
        async with self._one_at_a_time:
            return await self._write(table, address, payload, timeout_s)

    @property
    def _longest_wait_s(self) -> float:
        return self.timeout_s * (_PYMODBUS_TIMEOUT_FACTOR - 1.0)

    async def _write(self, table: ModbusTable, address: int, payload: list[int] | bool,
                     timeout_s: float) -> Failure | None:
        what = f"{table.value} {address}"
        if not self._client.connected:
            return Failure(Reason.DISCONNECTED, f"{self.name}: not connected", sent=False)
        self._abort = None
        self._partial = False
        frames_before = self._frames_sent
        task = self._inflight = asyncio.current_task()
        self._in_pymodbus = True
        try:
            async with asyncio.timeout(timeout_s):
                if table == ModbusTable.COIL:
                    response = await self._client.write_coil(address, bool(payload), device_id=self.unit_id)
                elif isinstance(payload, list) and len(payload) == 1:
                    response = await self._client.write_register(address, payload[0], device_id=self.unit_id)
                else:
                    response = await self._client.write_registers(address, list(payload),  # type: ignore[arg-type]
                                                                  device_id=self.unit_id)
        except TimeoutError:
            failure = self._timed_out(timeout_s)
            return Failure(failure.reason, f"{failure.detail} writing {what}",
                           sent=self._frames_sent != frames_before)
        except asyncio.CancelledError:
            if self._abort is None or task is None or task.uncancel() > 0:
                raise
            failure = self._aborted()
            return Failure(failure.reason, f"{failure.detail} writing {what}",
                           sent=self._frames_sent != frames_before)
        except ConnectionException as exc:
            return Failure(Reason.DISCONNECTED, f"{self.name}: {exc} writing {what}",
                           sent=self._frames_sent != frames_before)
        except ModbusException as exc:
            return self._drop(Failure(Reason.PROTOCOL_ERROR, f"{self.name}: {type(exc).__name__}: {exc}"))
        except Exception as exc:  # noqa: BLE001 - a library bug must not escape as a crash
            return self._drop(Failure(Reason.MALFORMED_RESPONSE, f"{self.name}: {type(exc).__name__}: {exc}"))
        finally:
            self._inflight = None
            self._in_pymodbus = False
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            return Failure(Reason.MODBUS_EXCEPTION, f"{self.name}: exception code {code} "
                           f"({exception_name(code)}) writing {what}", exception_code=code)
        return None

    async def _read(self, request: Request, timeout_s: float) -> np.ndarray | Failure:
        ctx = self._client.ctx
        if not self._client.connected or ctx.transport is None:
            return Failure(Reason.DISCONNECTED, f"{self.name}: not connected", sent=False)
        self._abort = None
        self._partial = False
        # The frame hooks abort a request by cancelling the task awaiting it (no extra task per
        # request: each would cost event-loop turns on the hot path).
        task = self._inflight = asyncio.current_task()
        answer = self._answer = asyncio.get_running_loop().create_future()
        try:
            frame = _READ_FRAME.pack(ctx.getNextTID(), 0, 6, self.unit_id,
                                     _READ_FUNCTION[request.table], request.start, request.count)
            self._sent = frame
            self._frames_sent += 1
            self._answer_prefix, self._answer_size = answer_prefix(frame)
            self._expected = None
            ctx.send(frame)
            async with asyncio.timeout(timeout_s):
                received = await answer
        except TimeoutError:
            return self._timed_out(timeout_s)
        except asyncio.CancelledError:
            if self._abort is None or task is None or task.uncancel() > 0:
                raise  # cancelled from outside: shutdown
            return self._aborted()
        except Exception as exc:  # noqa: BLE001 - a library bug must not escape as a crash
            return self._drop(Failure(Reason.MALFORMED_RESPONSE, f"{self.name}: {type(exc).__name__}: {exc}"))
        finally:
            self._inflight = None
            self._answer = None
        return self._values(received, request)

    def _values(self, frame: bytes, request: Request) -> np.ndarray | Failure:
        """The registers or bits of a whole answer frame (checked by the receive hook)."""
        if frame[7] & _EXCEPTION_BIT:
            code = frame[8]
            return Failure(Reason.MODBUS_EXCEPTION,
                           f"{self.name}: exception code {code} reading {request.table.value} "
                           f"{request.start}+{request.count}", exception_code=code)
        payload = np.frombuffer(frame, dtype=np.uint8, offset=9)
        if request.is_bits:
            data = np.unpackbits(payload, bitorder="little").astype(bool)
            if len(data) < request.count:
                return self._drop(Failure(Reason.MALFORMED_RESPONSE,
                                          f"{self.name}: {len(data)} bits for {request.count} requested"))
            return data
        if len(payload) != 2 * request.count:
            return self._drop(Failure(Reason.MALFORMED_RESPONSE,
                                      f"{self.name}: {len(payload) // 2} values for {request.count} requested"))
        return payload.view(_REGISTERS)

    def _timed_out(self, timeout_s: float | None = None) -> Failure:
        waited = self.timeout_s if timeout_s is None else timeout_s
        if self._sent:
            self._stale.append(int.from_bytes(self._sent[0:2], "big"))
        if self._partial:
            return self._drop(Failure(Reason.MALFORMED_RESPONSE,
                                      f"{self.name}: incomplete frame after {waited} s"))
        return Failure(Reason.TIMEOUT, f"{self.name}: no answer within {waited} s")

    def _aborted(self) -> Failure:
        assert self._abort is not None
        if self._abort.reason in (Reason.MALFORMED_RESPONSE, Reason.PROTOCOL_ERROR):
            return self._drop(self._abort)
        return self._abort

    def _drop(self, failure: Failure) -> Failure:
        if self._client.connected:
            self._client.close()
            self._on_lost(self)
        return failure

    # pymodbus hooks: called synchronously from its protocol callbacks.

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if sending:
            self._sent = data
            self._frames_sent += 1
            self._answer_prefix, self._answer_size = answer_prefix(data)
            return data
        if not self._in_pymodbus:
            return self._take_answer(data)
        if len(data) == self._answer_size and data.startswith(self._answer_prefix):
            return data  # the usual case: exactly the answer we expect
        expected = expectation_for(self._sent)
        if expected is None or self._abort is not None:
            return data
        check = check_response(data, expected, self._stale)
        if check.verdict is Verdict.INCOMPLETE:
            self._partial = check.pending_bytes > 0
        elif check.verdict is Verdict.MALFORMED:
            self._fail(Failure(Reason.MALFORMED_RESPONSE, f"{self.name}: {check.detail}"))
            return b""  # keep pymodbus from parsing garbage
        elif check.verdict is Verdict.FOREIGN:
            self._fail(Failure(Reason.PROTOCOL_ERROR, f"{self.name}: {check.detail}"))
            return b""
        return data

    def _take_answer(self, data: bytes) -> bytes:
        """The receive hook for the link's own reads: ``data`` is everything received since
        the request was sent. A whole answer goes to the waiting read; pymodbus's framer is
        given nothing (``b""``), and its buffer is emptied once the answer is taken (a late
        answer to a read given up on is dropped the same way)."""
        answer = self._answer
        if answer is None or answer.done():
            self._client.ctx.recv_buffer = b""
            return b""
        if len(data) == self._answer_size and data.startswith(self._answer_prefix):
            answer.set_result(data)  # the usual case: exactly the answer we expect
            self._client.ctx.recv_buffer = b""
            return b""
        if self._abort is not None:
            return b""
        if self._expected is None:
            self._expected = expectation_for(self._sent)
        assert self._expected is not None
        check = check_response(data, self._expected, self._stale)
        if check.verdict is Verdict.ANSWER:
            answer.set_result(check.frame)  # an exception, or the answer after late ones
            self._client.ctx.recv_buffer = b""
        elif check.verdict is Verdict.INCOMPLETE:
            self._partial = check.pending_bytes > 0  # pymodbus keeps the bytes until more come
        elif check.verdict is Verdict.MALFORMED:
            self._fail(Failure(Reason.MALFORMED_RESPONSE, f"{self.name}: {check.detail}"))
        else:
            self._fail(Failure(Reason.PROTOCOL_ERROR, f"{self.name}: {check.detail}"))
        return b""

    def _trace_connect(self, connected: bool) -> None:
        if connected:
            return
        if self._partial:
            self._fail(Failure(Reason.MALFORMED_RESPONSE, f"{self.name}: connection closed mid-frame"))
        else:
            self._fail(Failure(Reason.DISCONNECTED, f"{self.name}: connection closed by the device"))
        self._on_lost(self)

    def _fail(self, failure: Failure) -> None:
        if self._abort is None and self._inflight is not None and not self._inflight.done():
            self._abort = failure
            self._inflight.cancel()
