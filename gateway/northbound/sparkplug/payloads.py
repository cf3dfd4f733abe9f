"""Sparkplug B payloads built with the compiled schema (``sparkplug_b_pb2``): pure functions
of data and time, no I/O.

What each message carries follows the Eclipse Sparkplug 3.0 rules (chapter 6):

- every message but NDEATH has ``seq``; every metric of NBIRTH, DBIRTH, NDATA and DDATA has a
  timestamp (epoch milliseconds);
- births carry each metric's name, alias, datatype and current value; data messages carry the
  alias only, and no datatype;
- NDEATH carries exactly one metric, ``bdSeq``.

A value's quality travels as the metric's ``Quality`` property with the gateway's codes
(192 good, 128 doubtful, 64 bad). Births give it for every metric; data messages give it only
where it is not good, so a metric without the property in DDATA is good.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from drivers.quality import Quality, Reason
from gateway.northbound.sparkplug import sparkplug_b_pb2 as pb
from gateway.northbound.sparkplug.model import DeviceModel, MetricKind, NodeMetric, Property

Payload = pb.Payload
Metric = pb.Payload.Metric


class DataType:
    """The Sparkplug data types this node uses (the schema's ``DataType`` enum)."""

    INT32 = pb.Int32
    INT64 = pb.Int64
    UINT64 = pb.UInt64
    DOUBLE = pb.Double
    BOOLEAN = pb.Boolean
    STRING = pb.String


BD_SEQ = "bdSeq"


def ms(epoch_s: float) -> int:
    """Epoch seconds as the epoch milliseconds Sparkplug timestamps are."""
    return int(round(epoch_s * 1000.0))


# ------------------------------------------------------------------ node messages


def node_birth(seq: int, bd_seq: int, now_ms: int, metrics: Sequence[NodeMetric],
               values: Sequence[Any]) -> bytes:
    """NBIRTH: ``bdSeq`` (as in the will of this MQTT session), then every node metric
    (``Node Control/Rebirth`` = false among them) with its name, alias and value."""
    payload = Payload(timestamp=now_ms, seq=seq)
    for metric, value in zip(metrics, values, strict=True):
        m = payload.metrics.add(name=metric.name, alias=metric.alias, timestamp=now_ms,
                                datatype=metric.datatype)
        _set_value(m, metric.datatype, value)
    # bdSeq goes by name only: it is the one metric NDEATH carries, where there are no aliases
    # yet to resolve (it is the will of a session whose birth a host may never have seen).
    payload.metrics.add(name=BD_SEQ, timestamp=now_ms, datatype=DataType.INT64, long_value=bd_seq)
    return payload.SerializeToString()


def node_death(bd_seq: int, now_ms: int) -> bytes:
    """NDEATH (also the MQTT will): the ``bdSeq`` metric only, and no ``seq``."""
    payload = Payload(timestamp=now_ms)
    payload.metrics.add(name=BD_SEQ, timestamp=now_ms, datatype=DataType.INT64, long_value=bd_seq)
    return payload.SerializeToString()


def node_data(seq: int, now_ms: int, changed: Iterable[tuple[NodeMetric, Any]]) -> bytes:
    """NDATA: node metrics that changed, by alias."""
    payload = Payload(timestamp=now_ms, seq=seq)
    for metric, value in changed:
        _set_value(payload.metrics.add(alias=metric.alias, timestamp=now_ms), metric.datatype,
                   value)
    return payload.SerializeToString()


# ------------------------------------------------------------------ device messages


def device_birth(seq: int, now_ms: int, device: DeviceModel, values: np.ndarray,
                 quality: np.ndarray, reason: np.ndarray, source_ts: np.ndarray) -> bytes:
    """DBIRTH: every tag of the device with name, alias, datatype, current value, timestamp
    and its properties. The columns are parallel to ``device.tag_index``; a tag never read
    (source time 0) is stamped with ``now_ms``."""
    payload = Payload(timestamp=now_ms, seq=seq)
    stamps = np.where(source_ts > 0, np.rint(source_ts * 1000.0), now_ms).astype(np.int64)
    for j, definition in enumerate(device.metrics):
        m = payload.metrics.add(name=definition.name, alias=definition.alias,
                                timestamp=int(stamps[j]), datatype=definition.datatype)
        m.properties.CopyFrom(definition.properties)
        q = int(quality[j])
        _add_quality(m.properties, q, int(reason[j]))
        _set_tag_value(m, definition.kind, float(values[j]), q)
    return payload.SerializeToString()


def device_data(seq: int, now_ms: int, aliases: np.ndarray, kinds: np.ndarray,
                source_ts: np.ndarray, values: np.ndarray, quality: np.ndarray,
                reason: np.ndarray, historical: bool = False) -> bytes:
    """DDATA: the given changes by alias (parallel columns), each with its source timestamp;
    ``historical`` marks values replayed from the store (``is_historical``), which a host
    stores as history without taking them as the metric's current value."""
    payload = Payload(timestamp=now_ms, seq=seq)
    add = payload.metrics.add
    stamps = np.rint(source_ts * 1000.0).astype(np.int64).tolist()
    plain = (quality == Quality.GOOD) & (kinds == MetricKind.DOUBLE) & np.isfinite(values)
    # The common case (a good analog value) in one call per metric; the order of the columns
    # is kept, since one tag may change more than once in a message.
    for j, (a, t, v, p) in enumerate(zip(aliases.tolist(), stamps, values.tolist(),
                                         plain.tolist(), strict=True)):
        if p:
            m = add(alias=a, timestamp=t, double_value=v)
        else:
            m = add(alias=a, timestamp=t)
            q = int(quality[j])
            if q != Quality.GOOD:
                _add_quality(m.properties, q, int(reason[j]))
            _set_tag_value(m, MetricKind(int(kinds[j])), v, q)
        if historical:
            m.is_historical = True
    return payload.SerializeToString()


def device_death(seq: int, now_ms: int) -> bytes:
    """DDEATH: timestamp and ``seq``, no metrics."""
    return Payload(timestamp=now_ms, seq=seq).SerializeToString()


# ------------------------------------------------------------------ commands


@dataclass(frozen=True, slots=True)
class CommandMetric:
    """One metric of an NCMD or DCMD: by name or alias, with its value (None when null)."""

    name: str | None
    alias: int | None
    value: float | bool | int | str | None


def parse_command(data: bytes) -> list[CommandMetric]:
    """The metrics of an NCMD/DCMD payload; raises ValueError on a payload that is not one."""
    try:
        payload = Payload.FromString(data)
    except Exception as exc:  # protobuf's DecodeError, kept out of the callers' vocabulary
        raise ValueError(f"not a Sparkplug B payload: {exc}") from None
    out = []
    for m in payload.metrics:
        field = m.WhichOneof("value")
        value = None if m.is_null or field is None else getattr(m, field)
        out.append(CommandMetric(m.name if m.HasField("name") else None,
                                 m.alias if m.HasField("alias") else None, value))
    return out


# ------------------------------------------------------------------ helpers


def _add_quality(properties: Any, quality: int, reason: int) -> None:
    properties.keys.append(Property.QUALITY)
    properties.values.add(type=DataType.INT32, int_value=quality)
    if quality != Quality.GOOD and reason != Reason.NONE:
        properties.keys.append(Property.REASON)
        properties.values.add(type=DataType.STRING, string_value=_reason_word(reason))


def _reason_word(reason: int) -> str:
    try:
        return Reason(reason).name.lower()
    except ValueError:
        return str(reason)


def _set_tag_value(m: Any, kind: MetricKind, value: float, quality: int) -> None:
    """A bad value, or one that is not a number, is sent as null (``is_null``), never as a
    made-up number."""
    if quality == Quality.BAD or not math.isfinite(value):
        m.is_null = True
    elif kind == MetricKind.BOOLEAN:
        m.boolean_value = value != 0.0
    else:
        m.double_value = value


def _set_value(m: Any, datatype: int, value: Any) -> None:
    if value is None:
        m.is_null = True
    elif datatype == DataType.BOOLEAN:
        m.boolean_value = bool(value)
    elif datatype == DataType.STRING:
        m.string_value = str(value)
    elif datatype in (DataType.INT64, DataType.UINT64):
        m.long_value = int(value) & 0xFFFF_FFFF_FFFF_FFFF  # Int64 travels two's complement
    elif datatype == DataType.DOUBLE:
        v = float(value)
        if math.isfinite(v):
            m.double_value = v
        else:
            m.is_null = True
    else:
        raise ValueError(f"datatype {datatype} is not used by this node")
