"""Register codec and response-frame checks, against bytes packed independently with struct."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from drivers.modbus.codec import decode, decode_bits, encode
from drivers.modbus.frames import Expectation, Verdict, check_response, expectation_for
from plant.schema import ByteOrder, DataType

FORMATS = {DataType.INT16: "h", DataType.UINT16: "H", DataType.INT32: "i", DataType.UINT32: "I",
           DataType.FLOAT32: "f", DataType.FLOAT64: "d"}
SAMPLES = {
    DataType.INT16: [0, 1, -1, 12345, -32768, 32767],
    DataType.UINT16: [0, 1, 0x1234, 65535],
    DataType.INT32: [0, -1, 123456789, -2147483648, 2147483647],
    DataType.UINT32: [0, 1, 0xDEADBEEF, 4294967295],
    DataType.FLOAT32: [0.0, 1.5, -273.15, 3.4e38, 1e-30],
    DataType.FLOAT64: [0.0, math.pi, -1e300, 6.02214076e23],
}
ALL_CASES = [(t, o) for t in FORMATS for o in ByteOrder]


def wire_registers(value: float, data_type: DataType, order: ByteOrder) -> list[int]:
    """The registers a device using ``order`` sends for ``value``, built by hand from struct."""
    big = struct.pack(">" + FORMATS[data_type], value)
    words = [big[i:i + 2] for i in range(0, len(big), 2)]
    if order in (ByteOrder.CDAB, ByteOrder.DCBA):
        words.reverse()
    if order in (ByteOrder.BADC, ByteOrder.DCBA):
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


def expected_value(value: float, data_type: DataType) -> float:
    if data_type is DataType.FLOAT32:
        return struct.unpack(">f", struct.pack(">f", value))[0]
    return float(value)


@pytest.mark.parametrize(("data_type", "order"), ALL_CASES)
def test_decode_reads_every_type_in_every_byte_order(data_type: DataType, order: ByteOrder):
    samples = SAMPLES[data_type]
    registers = [r for v in samples for r in wire_registers(v, data_type, order)]
    decoded = decode(registers, data_type, order)
    assert decoded.dtype == np.float64
    assert decoded.tolist() == [expected_value(v, data_type) for v in samples]


@pytest.mark.parametrize(("data_type", "order"), ALL_CASES)
def test_encode_produces_the_registers_a_device_sends(data_type: DataType, order: ByteOrder):
    samples = SAMPLES[data_type]
    expected = [r for v in samples for r in wire_registers(v, data_type, order)]
    assert encode(samples, data_type, order).tolist() == expected


def test_abcd_int32_is_big_endian_words_and_bytes():
    assert wire_registers(0x01020304, DataType.INT32, ByteOrder.ABCD) == [0x0102, 0x0304]
    assert decode([0x0102, 0x0304], DataType.INT32, ByteOrder.ABCD).tolist() == [0x01020304]


def test_cdab_swaps_words_only():
    assert decode([0x0304, 0x0102], DataType.UINT32, ByteOrder.CDAB).tolist() == [0x01020304]


def test_badc_swaps_bytes_inside_words_only():
    assert decode([0x0201, 0x0403], DataType.UINT32, ByteOrder.BADC).tolist() == [0x01020304]


def test_dcba_is_fully_little_endian():
    assert decode([0x0403, 0x0201], DataType.UINT32, ByteOrder.DCBA).tolist() == [0x01020304]


def test_scale_and_offset_give_engineering_values():
    assert decode([12345], DataType.INT16, scale=0.01, offset=-5.0).tolist() == pytest.approx([118.45])


def test_scale_and_offset_may_differ_per_value():
    values = decode([10, 20], DataType.UINT16, scale=np.array([0.5, 2.0]), offset=np.array([1.0, 0.0]))
    assert values.tolist() == [6.0, 40.0]


def test_encode_inverts_scale_and_offset():
    registers = encode([118.45, -300.0], DataType.INT16, scale=0.01)
    assert registers.tolist() == [11845, (-30000) & 0xFFFF]


def test_encode_round_trips_through_decode():
    values = np.array([-123.4, 0.0, 99.99])
    for order in ByteOrder:
        back = decode(encode(values, DataType.INT32, order, 0.001, 10.0), DataType.INT32, order, 0.001, 10.0)
        np.testing.assert_allclose(back, values, atol=1e-9)


def test_encode_rejects_values_that_do_not_fit_the_type():
    with pytest.raises(ValueError, match="int16"):
        encode([40000], DataType.INT16)


def test_decode_rejects_a_partial_value():
    with pytest.raises(ValueError):
        decode([1, 2, 3], DataType.FLOAT32)


def test_decode_bits_picks_offsets_and_scales():
    bits = [True, False, True, True, False, False, False, False]  # padded to a byte, as sent
    assert decode_bits(bits, [0, 1, 3]).tolist() == [1.0, 0.0, 1.0]


def test_registers_are_taken_as_unsigned_16_bit():
    assert decode([0xFFFF], DataType.INT16).tolist() == [-1.0]
    assert decode(np.array([0xFFFF], dtype=np.uint16), DataType.UINT16).tolist() == [65535.0]


# --------------------------------------------------------------------------- response frames


def mbap(transaction_id: int, pdu: bytes, unit_id: int = 1, protocol_id: int = 0,
         length: int | None = None) -> bytes:
    length = len(pdu) + 1 if length is None else length
    return struct.pack(">HHHB", transaction_id, protocol_id, length, unit_id) + pdu


READ_3_HOLDING = Expectation(transaction_id=7, unit_id=1, function_code=3, byte_count=6)
GOOD_ANSWER = mbap(7, bytes([3, 6, 0, 1, 0, 2, 0, 3]))


def test_expectation_is_read_from_the_request_as_sent():
    request = mbap(7, struct.pack(">BHH", 3, 100, 3))
    assert expectation_for(request) == READ_3_HOLDING


def test_expectation_counts_bytes_of_bits_rounded_up():
    request = mbap(9, struct.pack(">BHH", 1, 0, 10))
    assert expectation_for(request).byte_count == 2


def test_a_well_formed_answer_is_accepted():
    assert check_response(GOOD_ANSWER, READ_3_HOLDING).verdict is Verdict.ANSWER


def test_an_exception_response_is_an_answer():
    assert check_response(mbap(7, bytes([0x83, 2])), READ_3_HOLDING).verdict is Verdict.ANSWER


def test_a_partial_frame_is_incomplete_with_its_pending_bytes():
    check = check_response(GOOD_ANSWER[:10], READ_3_HOLDING)
    assert (check.verdict, check.pending_bytes) == (Verdict.INCOMPLETE, 10)


def test_a_nonzero_protocol_id_is_malformed():
    assert check_response(mbap(7, bytes([3, 6]) + bytes(6), protocol_id=5),
                          READ_3_HOLDING).verdict is Verdict.MALFORMED


def test_an_impossible_length_is_malformed():
    assert check_response(mbap(7, bytes([3, 6]), length=1000), READ_3_HOLDING).verdict is Verdict.MALFORMED


def test_a_wrong_byte_count_is_malformed():
    short = mbap(7, bytes([3, 4, 0, 1, 0, 2]))
    assert check_response(short, READ_3_HOLDING).verdict is Verdict.MALFORMED


def test_a_byte_count_disagreeing_with_the_length_is_malformed():
    lying = mbap(7, bytes([3, 6, 0, 1, 0, 2]))
    assert check_response(lying, READ_3_HOLDING).verdict is Verdict.MALFORMED


def test_a_wrong_function_code_is_malformed():
    assert check_response(mbap(7, bytes([4, 6]) + bytes(6)), READ_3_HOLDING).verdict is Verdict.MALFORMED


def test_an_unknown_transaction_id_is_foreign():
    assert check_response(mbap(8, bytes([3, 6]) + bytes(6)), READ_3_HOLDING).verdict is Verdict.FOREIGN


def test_a_wrong_unit_id_is_foreign():
    assert check_response(mbap(7, bytes([3, 6]) + bytes(6), unit_id=9),
                          READ_3_HOLDING).verdict is Verdict.FOREIGN


def test_a_late_answer_to_an_abandoned_request_is_skipped():
    late = mbap(6, bytes([3, 2, 0, 9]))
    assert check_response(late + GOOD_ANSWER, READ_3_HOLDING, stale={6}).verdict is Verdict.ANSWER


def test_an_answer_after_a_late_one_carries_its_own_frame():
    late = mbap(6, bytes([3, 2, 0, 9]))
    check = check_response(late + GOOD_ANSWER + b"\x00", READ_3_HOLDING, stale={6})
    assert check.frame == GOOD_ANSWER
