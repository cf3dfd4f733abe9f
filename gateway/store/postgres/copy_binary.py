"""PostgreSQL binary COPY encoding of Batch columns, built with numpy in one pass.

The staging table has only fixed-width columns (the tag as its catalog index, not its id),
so every row has the same byte layout and a whole chunk is one structured numpy array:
no Python object per value. Format: PostgreSQL docs, "COPY ... Binary Format".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from drivers.batch import Batch

# Columns of the staging table, in row order.
STAGING_COLUMNS = ("time", "tag_index", "value", "quality", "reason")
STAGING_DDL = """CREATE TEMP TABLE IF NOT EXISTS process_data_staging (
    time      timestamptz NOT NULL,
    tag_index integer NOT NULL,
    value     double precision NOT NULL,
    quality   smallint NOT NULL,
    reason    smallint NOT NULL
) ON COMMIT DELETE ROWS"""

_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
# timestamptz on the wire: int64 microseconds since 2000-01-01 00:00:00 UTC.
_PG_EPOCH_S = 946_684_800.0
_ROW = np.dtype([
    ("fields", ">i2"),
    ("time_len", ">i4"), ("time", ">i8"),
    ("tag_len", ">i4"), ("tag_index", ">i4"),
    ("value_len", ">i4"), ("value", ">f8"),
    ("quality_len", ">i4"), ("quality", ">i2"),
    ("reason_len", ">i4"), ("reason", ">i2"),
])


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
    def of(cls, batches: list[Batch]) -> Columns:
        """Concatenate ``batches``; a non-finite source time falls back to the receive time."""
        ts = np.concatenate([b.source_ts for b in batches]) if batches else np.empty(0)
        received = np.concatenate([np.full(len(b), b.receive_ts) for b in batches]) if batches else ts
        ts = np.where(np.isfinite(ts), ts, received)

        def cat(name: str, dtype: type) -> np.ndarray:
            if not batches:
                return np.empty(0, dtype=dtype)
            return np.concatenate([getattr(b, name) for b in batches])

        return cls(ts, cat("tag_index", np.int32), cat("values", np.float64),
                   cat("quality", np.uint8), cat("reason", np.uint8))


def encode(columns: Columns) -> bytes:
    """The chunk as a complete binary COPY stream for ``process_data_staging``."""
    rows = np.empty(len(columns), dtype=_ROW)
    rows["fields"] = len(STAGING_COLUMNS)
    rows["time_len"] = 8
    rows["time"] = np.rint((columns.source_ts - _PG_EPOCH_S) * 1e6).astype(np.int64)
    rows["tag_len"] = 4
    rows["tag_index"] = columns.tag_index
    rows["value_len"] = 8
    rows["value"] = columns.values
    rows["quality_len"] = 2
    rows["quality"] = columns.quality
    rows["reason_len"] = 2
    rows["reason"] = columns.reason
    return b"".join((_HEADER, rows.tobytes(), _TRAILER))
