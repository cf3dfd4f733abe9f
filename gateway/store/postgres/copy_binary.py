"""PostgreSQL binary COPY encoding of Batch columns into process_data rows, with numpy.

Rows carry two text columns (gateway_id, tag_id) and a value that is NULL when not finite,
so rows differ in width. Rows of one width class (tag id length, value present or NULL)
share one byte layout, so each class is a single structured numpy array: no Python object
per value. Within a class rows are sorted by (tag_id bytes, time): a tag's rows land on
the same pages, which is what makes the block-range index on process_data selective
(migration 0005). Every row carries its time, so COPY order changes no result.
Format: PostgreSQL docs, "COPY ... Binary Format".
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from drivers.batch import Batch

# Columns of process_data written by the COPY, in row order.
ROW_COLUMNS = ("time", "gateway_id", "tag_id", "value", "quality", "reason", "chunk_seq")

_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
# timestamptz on the wire: int64 microseconds since 2000-01-01 00:00:00 UTC.
_PG_EPOCH_US = 946_684_800_000_000
_NULL = -1


@dataclass(frozen=True, slots=True)
class Columns:
    """The values of several Batches concatenated, ready to encode."""

    source_ts: np.ndarray
    tag_index: np.ndarray
    values: np.ndarray
    quality: np.ndarray
    reason: np.ndarray

    def __len__(self) -> int:
        return len(self.tag_index)

    @classmethod
    def of(cls, batches: Sequence[Batch]) -> Columns:
        """Concatenate ``batches``; a non-finite source time falls back to the receive time."""
        if not batches:
            return cls(np.empty(0), np.empty(0, np.int32), np.empty(0), np.empty(0, np.uint8),
                       np.empty(0, np.uint8))
        ts = np.concatenate([b.source_ts for b in batches])
        received = np.repeat([b.receive_ts for b in batches], [len(b) for b in batches])
        ts = np.where(np.isfinite(ts), ts, received)
        return cls(ts, np.concatenate([b.tag_index for b in batches]),
                   np.concatenate([b.values for b in batches]),
                   np.concatenate([b.quality for b in batches]),
                   np.concatenate([b.reason for b in batches]))

    def select(self, mask: np.ndarray) -> Columns:
        """The rows where ``mask`` is true."""
        return Columns(self.source_ts[mask], self.tag_index[mask], self.values[mask],
                       self.quality[mask], self.reason[mask])


class RowEncoder:
    """Encodes chunks of one gateway's values as binary COPY streams for process_data.

    ``tag_ids`` are the catalog's ids in index order; a row's tag_index must be within it.
    """

    def __init__(self, gateway_id: str, tag_ids: Sequence[str]) -> None:
        self._gateway = gateway_id.encode()
        encoded = [t.encode() for t in tag_ids]
        self._tag_len = np.array([len(t) for t in encoded], dtype=np.int32)
        width = max((len(t) for t in encoded), default=1)
        # Padded ids; a class of length L sends the first L bytes of each.
        self._tag_bytes = np.array(encoded, dtype=f"S{width}") if encoded else np.empty(0, "S1")
        # Position of each tag id in bytewise (COLLATE "C") order.
        self._rank = np.empty(len(encoded), dtype=np.int64)
        self._rank[np.argsort(self._tag_bytes, kind="stable")] = np.arange(len(encoded))
        self._dtypes: dict[tuple[int, bool], np.dtype] = {}

    def _dtype(self, tag_len: int, has_value: bool) -> np.dtype:
        key = (tag_len, has_value)
        if key not in self._dtypes:
            fields = [("fields", ">i2"), ("time_len", ">i4"), ("time", ">i8"),
                      ("gw_len", ">i4"), ("gw", f"S{len(self._gateway)}"),
                      ("tag_len", ">i4"), ("tag", f"S{tag_len}"), ("value_len", ">i4")]
            if has_value:
                fields.append(("value", ">f8"))
            fields += [("quality_len", ">i4"), ("quality", ">i2"), ("reason_len", ">i4"),
                       ("reason", ">i2"), ("seq_len", ">i4"), ("seq", ">i8")]
            self._dtypes[key] = np.dtype(fields)
        return self._dtypes[key]

    def encode(self, columns: Columns, chunk_seq: int) -> bytes:
        """The chunk as a complete binary COPY stream (columns ``ROW_COLUMNS``)."""
        parts = [_HEADER]
        tag_len = self._tag_len[columns.tag_index]
        finite = np.isfinite(columns.values)
        klass = tag_len.astype(np.int64) * 2 + finite
        order = np.lexsort((columns.source_ts, self._rank[columns.tag_index], klass))
        classes, starts = np.unique(klass[order], return_index=True)
        ends = [*starts[1:].tolist(), len(order)]
        for k, start, end in zip(classes.tolist(), starts.tolist(), ends, strict=True):
            parts.append(self._encode_class(columns, order[start:end], k // 2, bool(k % 2),
                                            chunk_seq))
        parts.append(_TRAILER)
        return b"".join(parts)

    def _encode_class(self, columns: Columns, rows: np.ndarray, tag_len: int,
                      has_value: bool, chunk_seq: int) -> bytes:
        tag_index = columns.tag_index[rows]
        out = np.empty(len(tag_index), dtype=self._dtype(tag_len, has_value))
        out["fields"] = len(ROW_COLUMNS)
        out["time_len"] = 8
        # Round the Unix microseconds first, so the stored instant is the one anyone rounding the
        # float epoch seconds gets (subtracting the epoch first rounds differently).
        out["time"] = np.rint(columns.source_ts[rows] * 1e6).astype(np.int64) - _PG_EPOCH_US
        out["gw_len"] = len(self._gateway)
        out["gw"] = self._gateway
        out["tag_len"] = tag_len
        out["tag"] = self._tag_bytes[tag_index]  # truncated to the class's length
        if has_value:
            out["value_len"] = 8
            out["value"] = columns.values[rows]
        else:
            out["value_len"] = _NULL
        out["quality_len"] = 2
        out["quality"] = columns.quality[rows]
        out["reason_len"] = 2
        out["reason"] = columns.reason[rows]
        out["seq_len"] = 8
        out["seq"] = chunk_seq
        return out.tobytes()
