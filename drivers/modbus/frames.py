"""Checks of raw Modbus TCP response bytes against the request they should answer.

pymodbus waits for a matching frame and silently skips or chokes on anything else, which turns
a hostile or broken server into a slow timeout. The driver runs these pure checks on every
received byte stream (pymodbus's ``trace_packet`` hook) to name the fault at once: a bad MBAP
header, a wrong function code or byte count, or a frame for a transaction we never sent.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from enum import Enum

MBAP_SIZE = 7  # transaction id (2), protocol id (2), length (2), unit id (1)
_MIN_LENGTH = 3  # unit id + function code + one byte (exception code or byte count)
_MAX_LENGTH = 254  # unit id + 253-byte PDU
_EXCEPTION_BIT = 0x80
_BIT_FUNCTIONS = frozenset({1, 2})  # read coils, read discrete inputs
_REGISTER_FUNCTIONS = frozenset({3, 4})  # read holding, read input registers


class Verdict(Enum):
    INCOMPLETE = "incomplete"  # no whole answer yet: keep waiting
    ANSWER = "answer"  # a well-formed answer (data or exception) to the request
    MALFORMED = "malformed"  # broken header, function code or byte count
    FOREIGN = "foreign"  # a frame for another transaction or unit


@dataclass(frozen=True)
class Expectation:
    """What the answer to one read request must look like."""

    transaction_id: int
    unit_id: int
    function_code: int
    byte_count: int


@dataclass(frozen=True)
class Check:
    verdict: Verdict
    detail: str = ""
    pending_bytes: int = 0  # INCOMPLETE: bytes of a frame begun but not yet whole
    frame: bytes = b""  # ANSWER: the answer's whole frame (MBAP header included)


def expectation_for(request_frame: bytes) -> Expectation | None:
    """The expected answer to a read request frame as sent, or None for other requests."""
    if len(request_frame) < MBAP_SIZE + 5:
        return None
    function_code = request_frame[7]
    count = int.from_bytes(request_frame[10:12], "big")
    if function_code in _REGISTER_FUNCTIONS:
        byte_count = 2 * count
    elif function_code in _BIT_FUNCTIONS:
        byte_count = (count + 7) // 8
    else:
        return None
    return Expectation(transaction_id=int.from_bytes(request_frame[0:2], "big"),
                       unit_id=request_frame[6], function_code=function_code, byte_count=byte_count)


def answer_prefix(request_frame: bytes) -> tuple[bytes, int]:
    """The exact first bytes and total size of a normal answer to a read request frame.

    A fast path: a buffer of that size starting with those bytes is a well-formed answer,
    checked with one comparison instead of a parse on every response.
    """
    function_code = request_frame[7]
    count = (request_frame[10] << 8) | request_frame[11]
    byte_count = 2 * count if function_code in _REGISTER_FUNCTIONS else (count + 7) // 8
    prefix = (request_frame[0:2] + b"\x00\x00" + (3 + byte_count).to_bytes(2, "big")
              + request_frame[6:8] + bytes((byte_count & 0xFF,)))
    return prefix, MBAP_SIZE + 2 + byte_count


def check_response(buffer: bytes, expected: Expectation, stale: Container[int] = ()) -> Check:
    """Judge the received bytes: frames of ``stale`` transactions (late answers to requests
    we gave up on) are skipped; the first other frame decides."""
    rest = memoryview(buffer)
    while len(rest) >= MBAP_SIZE + 1:
        transaction_id = int.from_bytes(rest[0:2], "big")
        protocol_id = int.from_bytes(rest[2:4], "big")
        length = int.from_bytes(rest[4:6], "big")
        if protocol_id != 0:
            return Check(Verdict.MALFORMED, f"protocol id {protocol_id} in MBAP header")
        if not _MIN_LENGTH <= length <= _MAX_LENGTH:
            return Check(Verdict.MALFORMED, f"MBAP length {length}")
        if len(rest) < 6 + length:
            return Check(Verdict.INCOMPLETE, pending_bytes=len(rest))
        frame, rest = rest[: 6 + length], rest[6 + length:]
        if transaction_id != expected.transaction_id:
            if transaction_id in stale:
                continue
            return Check(Verdict.FOREIGN, f"transaction id {transaction_id}, "
                                          f"expected {expected.transaction_id}")
        check = _check_answer(frame, length, expected)
        return Check(Verdict.ANSWER, frame=bytes(frame)) if check.verdict is Verdict.ANSWER else check
    return Check(Verdict.INCOMPLETE, pending_bytes=len(rest))


def _check_answer(frame: memoryview, length: int, expected: Expectation) -> Check:
    unit_id, function_code = frame[6], frame[7]
    if unit_id != expected.unit_id:
        return Check(Verdict.FOREIGN, f"unit id {unit_id}, expected {expected.unit_id}")
    if function_code == expected.function_code | _EXCEPTION_BIT:
        if length != _MIN_LENGTH:
            return Check(Verdict.MALFORMED, f"exception response of length {length}")
        return Check(Verdict.ANSWER)
    if function_code != expected.function_code:
        return Check(Verdict.MALFORMED, f"function code {function_code}, "
                                        f"expected {expected.function_code}")
    byte_count = frame[8]
    if byte_count != expected.byte_count or length != 3 + byte_count:
        return Check(Verdict.MALFORMED, f"byte count {byte_count} in a frame of length {length}, "
                                        f"expected {expected.byte_count}")
    return Check(Verdict.ANSWER)
