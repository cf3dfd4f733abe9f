"""Pure conversions between asyncua's service types and the driver's numpy columns.

Kept free of sockets so the mapping of DataValues (value, StatusCode, source timestamp) and the
chunking of node lists can be tested on their own, and so a 10,000-node read costs a few list
comprehensions and vector operations rather than one Python call per value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from asyncua import ua

STATUS_DTYPE = np.uint32

# A NodeId no server resolves: an unparseable configured node id is sent as this, so the server
# answers BadNodeIdUnknown/Invalid for that slot and the rest of the group is still read.
NULL_NODE_ID = ua.NodeId(0, 0)


def parse_node_id(node_id: str) -> ua.NodeId:
    """Parse an OPC-UA node id string (``ns=2;s=HT-305.TI-306``); the null node when invalid."""
    try:
        return ua.NodeId.from_string(node_id)
    except Exception:  # asyncua raises several types for malformed strings
        return NULL_NODE_ID


def chunk_slices(count: int, max_per_call: int | None) -> list[slice]:
    """Split ``count`` items into consecutive slices of at most ``max_per_call`` items.

    ``None`` or 0 means the server sets no limit: one slice with everything.
    """
    if count <= 0:
        return []
    if not max_per_call or max_per_call >= count:
        return [slice(0, count)]
    return [slice(start, min(start + max_per_call, count)) for start in range(0, count, max_per_call)]


def read_parameters(node_ids: Sequence[ua.NodeId]) -> ua.ReadParameters:
    """A Read request for the Value attribute of ``node_ids``, asking only for source timestamps.

    MaxAge 0 asks the server for a fresh value from the device rather than a cached one.
    """
    params = ua.ReadParameters()
    params.MaxAge = 0
    params.TimestampsToReturn = ua.TimestampsToReturn.Source
    params.NodesToRead = [
        ua.ReadValueId(NodeId=node_id, AttributeId=ua.AttributeIds.Value) for node_id in node_ids
    ]
    return params


def _to_float(value: Any) -> float:
    """One value as float64; NaN for anything that is not a scalar number (strings, arrays, None)."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            return math.nan
    return math.nan


def values_to_float(raw: list[Any]) -> np.ndarray:
    """Variant payloads as a float64 column: numbers and booleans convert, everything else is NaN.

    The fast path is one numpy conversion (``None`` becomes NaN there); a list holding text,
    arrays or other non-numeric payloads falls back to converting value by value.
    """
    if not any(isinstance(v, str) for v in raw):
        try:
            return np.array(raw, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            pass
    return np.fromiter((_to_float(v) for v in raw), dtype=np.float64, count=len(raw))


def _epoch(ts: datetime | None, receive_ts: float) -> float:
    if ts is None:
        return receive_ts
    if ts.tzinfo is None:  # OPC-UA DateTime is UTC; older asyncua versions return naive values
        ts = ts.replace(tzinfo=UTC)
    return ts.timestamp()


def timestamps_to_epoch(stamps: list[datetime | None], receive_ts: float) -> np.ndarray:
    """Source timestamps as epoch seconds; the receive time where the server gave none.

    OPC-UA encodes "no timestamp" as DateTime 0 (1601-01-01), which lands far before 1970:
    anything not after the Unix epoch is treated as absent too.
    """
    epoch = np.fromiter((_epoch(ts, receive_ts) for ts in stamps), dtype=np.float64, count=len(stamps))
    epoch[~(epoch > 0)] = receive_ts
    return epoch


def decode_data_values(data_values: Sequence[ua.DataValue],
                       receive_ts: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split DataValues into (values float64, source_ts float64 epoch s, status uint32) columns.

    A DataValue without a StatusCode is Good (the encoding omits Good); one without a Variant
    has the value NaN.
    """
    raw = [None if dv.Value is None else dv.Value.Value for dv in data_values]
    status = np.array([0 if dv.StatusCode is None else dv.StatusCode.value for dv in data_values],
                      dtype=STATUS_DTYPE)
    source_ts = timestamps_to_epoch([dv.SourceTimestamp for dv in data_values], receive_ts)
    return values_to_float(raw), source_ts, status
