"""Row-level reads and writes of the embedded store, run on its SQLite threads.

Every function here takes the sqlite3 connection and is called through ``SqliteThread``; none
may be called from the event loop directly.
"""

from __future__ import annotations

import math
import sqlite3
import struct
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from drivers.batch import Batch
from drivers.quality import QUALITY_DTYPE, REASON_DTYPE
from gateway.store.batch_codec import decode_tag_index, pack, tag_set_digest, unpack
from gateway.store.history import TagHistory

TAG_SET_CACHE_SIZE = 1024
_TS_STRUCT = struct.Struct("<d")

_BATCH_COLUMNS = ("id, scan_group, device, scan_start, receive_ts, tag_set_id, source_ts_uniform,"
                  " source_ts_blob, value_blob, quality_blob, reason_blob, n_values")


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """A Batch as kept by the store, with its sequence id (append order)."""

    id: int
    batch: Batch


class TagSetCache:
    """Recently used tag sets (id -> int32 tag indices) of one connection's thread."""

    def __init__(self, capacity: int = TAG_SET_CACHE_SIZE) -> None:
        self._capacity = capacity
        self._by_id: OrderedDict[int, np.ndarray] = OrderedDict()

    def get(self, conn: sqlite3.Connection, tag_set_id: int) -> np.ndarray:
        """The tag indices of ``tag_set_id`` (read from the database on a miss)."""
        tags = self._by_id.get(tag_set_id)
        if tags is None:
            row = conn.execute("SELECT tag_index_blob FROM tag_set WHERE id = ?",
                               (tag_set_id,)).fetchone()
            if row is None:
                raise LookupError(f"embedded store: tag set {tag_set_id} is missing")
            tags = decode_tag_index(row[0])
            self._by_id[tag_set_id] = tags
            if len(self._by_id) > self._capacity:
                self._by_id.popitem(last=False)
        else:
            self._by_id.move_to_end(tag_set_id)
        return tags


class TagSetIds:
    """Digest -> tag set id for the writer, creating tag sets as new tag lists appear."""

    def __init__(self, capacity: int = TAG_SET_CACHE_SIZE) -> None:
        self._capacity = capacity
        self._by_digest: OrderedDict[bytes, int] = OrderedDict()

    def clear(self) -> None:
        """Forget everything (after retention deleted tag sets)."""
        self._by_digest.clear()

    def id_for(self, conn: sqlite3.Connection, tag_index_blob: bytes, n_tags: int) -> int:
        """The id of the tag set with these indices, inserting it if new."""
        digest = tag_set_digest(tag_index_blob)
        tag_set_id = self._by_digest.get(digest)
        if tag_set_id is not None:
            self._by_digest.move_to_end(digest)
            return tag_set_id
        row = conn.execute("SELECT id FROM tag_set WHERE digest = ?", (digest,)).fetchone()
        if row is None:
            tag_set_id = conn.execute(
                "INSERT INTO tag_set (digest, n_tags, tag_index_blob) VALUES (?, ?, ?)",
                (digest, n_tags, tag_index_blob)).lastrowid
        else:
            tag_set_id = row[0]
        self._by_digest[digest] = tag_set_id
        if len(self._by_digest) > self._capacity:
            self._by_digest.popitem(last=False)
        return tag_set_id


def insert_batches(conn: sqlite3.Connection, batches: Sequence[Batch],
                   tag_set_ids: TagSetIds) -> list[int]:
    """Insert one row per Batch (inside the caller's transaction); returns their ids."""
    ids = []
    for batch in batches:
        packed = pack(batch)
        tag_set_id = tag_set_ids.id_for(conn, packed.tag_index_blob, len(batch))
        cursor = conn.execute(
            "INSERT INTO batch (scan_group, device, scan_start, receive_ts, n_values, tag_set_id,"
            " source_ts_uniform, source_ts_blob, value_blob, quality_blob, reason_blob)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (batch.group, batch.device, batch.scan_start, batch.receive_ts, len(batch),
             tag_set_id, packed.source_ts_uniform, packed.source_ts_blob, packed.value_blob,
             packed.quality_blob, packed.reason_blob))
        ids.append(cursor.lastrowid)
    return ids


def _to_stored(row: tuple, tag_sets: TagSetCache, conn: sqlite3.Connection) -> StoredBatch:
    (batch_id, group, device, scan_start, receive_ts, tag_set_id, ts_uniform, ts_blob,
     value_blob, quality_blob, reason_blob, _n) = row
    batch = unpack(group, device, scan_start, receive_ts, tag_sets.get(conn, tag_set_id),
                   ts_uniform, ts_blob, value_blob, quality_blob, reason_blob)
    return StoredBatch(batch_id, batch)


def read_pending(conn: sqlite3.Connection, after_id: int, max_values: int,
                 tag_sets: TagSetCache) -> list[StoredBatch]:
    """Batches with ``id > after_id``, oldest first, up to ``max_values`` values in all
    (always at least one batch when any is there, however big)."""
    found: list[StoredBatch] = []
    total = 0
    rows = conn.execute(f"SELECT {_BATCH_COLUMNS} FROM batch WHERE id > ? ORDER BY id",
                        (after_id,))
    for row in rows:
        n_values = row[-1]
        if found and total + n_values > max_values:
            break
        found.append(_to_stored(row, tag_sets, conn))
        total += n_values
    return found


def newest_first(conn: sqlite3.Connection, tag_sets: TagSetCache) -> Iterator[Batch]:
    """Every stored Batch, newest first (for rebuilding the latest-value table)."""
    rows = conn.execute(f"SELECT {_BATCH_COLUMNS} FROM batch ORDER BY id DESC")
    for row in rows:
        yield _to_stored(row, tag_sets, conn).batch


def all_tags(conn: sqlite3.Connection) -> np.ndarray:
    """Every tag index that appears in a stored tag set."""
    tags = [decode_tag_index(blob) for (blob,) in conn.execute("SELECT tag_index_blob FROM tag_set")]
    return np.unique(np.concatenate(tags)) if tags else np.empty(0, dtype=np.int32)


def read_tag_history(conn: sqlite3.Connection, tag_index: int, scan_from: float,
                     scan_to: float, tag_sets: TagSetCache) -> TagHistory:
    """Raw samples of ``tag_index`` from the scans that started in ``[scan_from, scan_to)``,
    in (scan start, id) order; only the tag's bytes leave SQLite (``substr`` on the BLOBs)."""
    set_ids = [row[0] for row in conn.execute(
        "SELECT DISTINCT tag_set_id FROM batch WHERE scan_start >= ? AND scan_start < ?",
        (scan_from, scan_to))]
    rows: list[tuple] = []
    for tag_set_id in set_ids:
        where = np.flatnonzero(tag_sets.get(conn, tag_set_id) == tag_index)
        if not len(where):
            continue
        pos = int(where[-1])  # a tag listed twice in one scan: the later entry counts
        rows.extend(conn.execute(
            "SELECT scan_start, id, source_ts_uniform, substr(source_ts_blob, ?, 8),"
            " substr(value_blob, ?, 8), substr(quality_blob, ?, 1), substr(reason_blob, ?, 1)"
            " FROM batch WHERE tag_set_id = ? AND scan_start >= ? AND scan_start < ?",
            (pos * 8 + 1, pos * 8 + 1, pos + 1, pos + 1, tag_set_id, scan_from, scan_to)))
    rows.sort(key=lambda r: (r[0], r[1]))
    source_ts = np.array([_TS_STRUCT.unpack(r[3])[0] if r[3] is not None
                          else (math.nan if r[2] is None else r[2]) for r in rows],
                         dtype=np.float64)
    return TagHistory(
        tag_index=tag_index,
        source_ts=source_ts,
        values=np.frombuffer(b"".join(r[4] for r in rows), dtype="<f8").astype(np.float64),
        quality=np.frombuffer(b"".join(r[5] for r in rows), dtype=QUALITY_DTYPE).copy(),
        reason=np.frombuffer(b"".join(r[6] for r in rows), dtype=REASON_DTYPE).copy(),
    )
