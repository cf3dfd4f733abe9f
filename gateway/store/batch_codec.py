"""Packing a Batch into one SQLite row: each numpy column becomes one little-endian BLOB.

One row per Batch (instead of one row per value) is what lets the embedded store take
100,000+ values/s on an edge box: a 10,000-tag scan is a single INSERT of a few BLOBs.
The tag index column is stored once per distinct tag list (a "tag set", shared by every
scan of a group) and referenced by id, so it costs nothing per scan.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from drivers.batch import Batch

# Fixed little-endian layouts so a store file moves between machines unchanged.
TAG_INDEX_LAYOUT = np.dtype("<i4")
TS_LAYOUT = np.dtype("<f8")
VALUE_LAYOUT = np.dtype("<f8")
QUALITY_LAYOUT = np.dtype("u1")
REASON_LAYOUT = np.dtype("u1")

_DIGEST_BYTES = 16


@dataclass(frozen=True, slots=True)
class PackedBatch:
    """A Batch's columns as bytes, ready for one INSERT.

    ``source_ts_blob`` is None when every value has the same source timestamp, which is then
    ``source_ts_uniform`` (the usual case for polled groups: one receive time per scan).
    """

    tag_index_blob: bytes
    source_ts_uniform: float | None
    source_ts_blob: bytes | None
    value_blob: bytes
    quality_blob: bytes
    reason_blob: bytes


def pack(batch: Batch) -> PackedBatch:
    """The BLOB columns of ``batch``."""
    source_ts = batch.source_ts
    uniform: float | None = None
    source_ts_blob: bytes | None = None
    if len(source_ts) and bool((source_ts == source_ts[0]).all()):
        uniform = float(source_ts[0])
    else:
        source_ts_blob = source_ts.astype(TS_LAYOUT, copy=False).tobytes()
    return PackedBatch(
        tag_index_blob=batch.tag_index.astype(TAG_INDEX_LAYOUT, copy=False).tobytes(),
        source_ts_uniform=uniform,
        source_ts_blob=source_ts_blob,
        value_blob=batch.values.astype(VALUE_LAYOUT, copy=False).tobytes(),
        quality_blob=batch.quality.astype(QUALITY_LAYOUT, copy=False).tobytes(),
        reason_blob=batch.reason.astype(REASON_LAYOUT, copy=False).tobytes(),
    )


def tag_set_digest(tag_index_blob: bytes) -> bytes:
    """Content address of a tag list: equal lists share one stored tag set."""
    return hashlib.blake2b(tag_index_blob, digest_size=_DIGEST_BYTES).digest()


def decode_tag_index(tag_index_blob: bytes) -> np.ndarray:
    """The int32 tag indices of a stored tag set (read-only view of the bytes)."""
    return np.frombuffer(tag_index_blob, dtype=TAG_INDEX_LAYOUT).astype(np.int32, copy=False)


def unpack(group: str, device: str, scan_start: float, receive_ts: float, tag_index: np.ndarray,
           source_ts_uniform: float | None, source_ts_blob: bytes | None, value_blob: bytes,
           quality_blob: bytes, reason_blob: bytes) -> Batch:
    """Rebuild the Batch stored in one row; arrays are views of the row's bytes."""
    n = len(tag_index)
    if source_ts_blob is None:
        source_ts = np.full(n, np.nan if source_ts_uniform is None else source_ts_uniform)
    else:
        source_ts = np.frombuffer(source_ts_blob, dtype=TS_LAYOUT).astype(np.float64, copy=False)
    return Batch(
        group=group, device=device, scan_start=scan_start, receive_ts=receive_ts,
        tag_index=tag_index,
        source_ts=source_ts,
        values=np.frombuffer(value_blob, dtype=VALUE_LAYOUT).astype(np.float64, copy=False),
        quality=np.frombuffer(quality_blob, dtype=QUALITY_LAYOUT),
        reason=np.frombuffer(reason_blob, dtype=REASON_LAYOUT),
    )
