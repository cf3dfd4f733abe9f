"""DataValue decoding, timestamps and request chunking of the OPC-UA driver."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
from asyncua import ua

from drivers.opcua.codec import (
    NULL_NODE_ID,
    chunk_slices,
    decode_data_values,
    parse_node_id,
    read_parameters,
    timestamps_to_epoch,
    values_to_float,
)

RECEIVE_TS = 1_800_000_000.0


def dv(value, status=ua.StatusCodes.Good, source_ts=None) -> ua.DataValue:
    return ua.DataValue(ua.Variant(value), StatusCode=ua.StatusCode(status), SourceTimestamp=source_ts)


def test_chunking_splits_into_consecutive_slices_within_the_limit():
    assert chunk_slices(10_000, 4000) == [slice(0, 4000), slice(4000, 8000), slice(8000, 10_000)]


def test_chunking_without_a_server_limit_is_one_request():
    assert chunk_slices(25_000, None) == [slice(0, 25_000)]
    assert chunk_slices(25_000, 0) == [slice(0, 25_000)]


def test_chunking_of_an_exact_multiple_has_no_empty_tail():
    assert chunk_slices(6, 3) == [slice(0, 3), slice(3, 6)]


def test_chunking_nothing_gives_no_request():
    assert chunk_slices(0, 100) == []


def test_read_parameters_ask_for_values_and_source_timestamps_only():
    params = read_parameters([parse_node_id("ns=2;s=HT-305.TI-306")])
    assert params.TimestampsToReturn == ua.TimestampsToReturn.Source
    assert params.MaxAge == 0
    [item] = params.NodesToRead
    assert item.AttributeId == ua.AttributeIds.Value
    assert item.NodeId == ua.NodeId("HT-305.TI-306", 2)


def test_malformed_node_id_becomes_the_null_node():
    assert parse_node_id("not a node id;;") == NULL_NODE_ID


def test_numbers_and_booleans_convert_to_float():
    assert values_to_float([1, 2.5, True, False]).tolist() == [1.0, 2.5, 1.0, 0.0]


def test_missing_and_non_numeric_payloads_become_nan():
    out = values_to_float([None, "text", [1.0, 2.0], 4.0])
    assert np.isnan(out[:3]).all()
    assert out[3] == 4.0


def test_source_timestamp_converts_to_epoch_seconds():
    ts = datetime(2027, 1, 15, 12, 0, 0, 250_000, tzinfo=UTC)
    assert timestamps_to_epoch([ts], RECEIVE_TS)[0] == ts.timestamp()


def test_naive_source_timestamp_is_taken_as_utc():
    naive = datetime(2027, 1, 15, 12, 0, 0)
    assert timestamps_to_epoch([naive], RECEIVE_TS)[0] == naive.replace(tzinfo=UTC).timestamp()


def test_missing_source_timestamp_is_the_receive_time():
    assert timestamps_to_epoch([None], RECEIVE_TS)[0] == RECEIVE_TS


def test_opcua_zero_datetime_counts_as_missing():
    assert timestamps_to_epoch([datetime(1601, 1, 1, tzinfo=UTC)], RECEIVE_TS)[0] == RECEIVE_TS


def test_decode_splits_values_timestamps_and_status_codes():
    ts = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
    values, source_ts, status = decode_data_values(
        [dv(342.5, source_ts=ts), dv(None, ua.StatusCodes.BadNodeIdUnknown)], RECEIVE_TS)
    assert values[0] == 342.5 and math.isnan(values[1])
    assert source_ts.tolist() == [ts.timestamp(), RECEIVE_TS]
    assert status.dtype == np.uint32
    assert status.tolist() == [ua.StatusCodes.Good, ua.StatusCodes.BadNodeIdUnknown]


def test_decode_treats_an_absent_status_code_as_good():
    value = ua.DataValue(ua.Variant(1.0))
    value.StatusCode = None
    _, _, status = decode_data_values([value], RECEIVE_TS)
    assert status.tolist() == [0]
