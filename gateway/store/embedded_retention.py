"""Retention of the embedded store (SQLite): by age, then by file size, with an explicit overflow policy.

These functions run on the store's SQLite thread inside one write transaction. Policy:

* Age: batches whose scan started before ``cutoff`` go. With forwarding on, only batches the
  database writer has already forwarded go; the rest wait for the writer.
* Size: when the pages in use exceed ``max_bytes``, the oldest batches go (forwarded or not)
  until use is under ``LOW_WATER`` of the limit, so trimming is not repeated on every call.
  Unforwarded batches lost this way are counted: that is the buffer's overflow policy, and
  the only way a value accepted by the gateway can be lost.
* Freed pages are returned to the file system with ``PRAGMA incremental_vacuum`` (the store
  runs with ``auto_vacuum=INCREMENTAL``), so the file shrinks instead of keeping its peak.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

# Trim to this fraction of max_bytes, so a full store is not trimmed again on every call.
LOW_WATER = 0.9
# Per-row bytes beyond the BLOBs themselves (record header, scalars, index entries).
ROW_OVERHEAD_BYTES = 96
# Size trimming re-measures after each delete; the estimate converges in one or two rounds.
MAX_TRIM_ROUNDS = 8


@dataclass(frozen=True, slots=True)
class Deleted:
    """What a retention step removed; ``unforwarded_*`` are losses (never forwarded)."""

    batches: int = 0
    values: int = 0
    unforwarded_batches: int = 0
    unforwarded_values: int = 0

    def __add__(self, other: Deleted) -> Deleted:
        return Deleted(self.batches + other.batches, self.values + other.values,
                       self.unforwarded_batches + other.unforwarded_batches,
                       self.unforwarded_values + other.unforwarded_values)


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of the database's pages that hold data (excluding free pages)."""
    page_count = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    return (page_count - free) * page_size


def delete_older_than(conn: sqlite3.Connection, cutoff: float,
                      forwarded_id: int | None) -> Deleted:
    """Delete batches that started before ``cutoff``; when ``forwarded_id`` is given (forwarding
    on), only those with ``id <= forwarded_id``."""
    where = "scan_start < ?"
    params: tuple[float, ...] = (cutoff,)
    if forwarded_id is not None:
        where += " AND id <= ?"
        params = (cutoff, forwarded_id)
    batches, values = conn.execute(
        f"SELECT count(*), coalesce(sum(n_values), 0) FROM batch WHERE {where}", params).fetchone()
    if batches:
        conn.execute(f"DELETE FROM batch WHERE {where}", params)
    # Age never removes unforwarded batches, and without forwarding nothing is "unforwarded".
    return Deleted(batches, values)


def delete_oldest_to_fit(conn: sqlite3.Connection, max_bytes: int,
                         forwarded_id: int | None) -> Deleted:
    """Delete the oldest batches until the pages in use are under ``LOW_WATER * max_bytes``."""
    deleted = Deleted()
    used = used_bytes(conn)
    if used <= max_bytes:
        return deleted
    target = int(max_bytes * LOW_WATER)
    for _ in range(MAX_TRIM_ROUNDS):
        if used <= target:
            break
        upto_id = _oldest_covering(conn, used - target)
        if upto_id is None:
            break
        deleted += _delete_upto(conn, upto_id, forwarded_id)
        delete_orphan_tag_sets(conn)
        used = used_bytes(conn)
    return deleted


def delete_orphan_tag_sets(conn: sqlite3.Connection) -> int:
    """Drop tag sets no batch refers to any more; returns how many."""
    cursor = conn.execute(
        "DELETE FROM tag_set WHERE NOT EXISTS "
        "(SELECT 1 FROM batch WHERE batch.tag_set_id = tag_set.id)")
    return cursor.rowcount


def release_free_pages(conn: sqlite3.Connection) -> None:
    """Give free pages back to the file system (the file shrinks). Outside any transaction.

    Python's ``execute`` steps this pragma once, which frees a single page; ``executescript``
    runs it to completion (and would commit an open transaction, hence the precondition).
    The checkpoint then moves the shrunken pages into the file and empties the WAL.
    """
    if conn.in_transaction:
        raise RuntimeError("release_free_pages must run outside a transaction")
    conn.executescript("PRAGMA incremental_vacuum;")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def _oldest_covering(conn: sqlite3.Connection, excess: int) -> int | None:
    """The id up to which the oldest batches add up to at least ``excess`` bytes."""
    total = 0
    last_id = None
    rows = conn.execute(
        "SELECT id, length(value_blob) + length(quality_blob) + length(reason_blob)"
        " + coalesce(length(source_ts_blob), 0) FROM batch ORDER BY id")
    for batch_id, size in rows:
        last_id = batch_id
        total += size + ROW_OVERHEAD_BYTES
        if total >= excess:
            break
    return last_id


def _delete_upto(conn: sqlite3.Connection, upto_id: int, forwarded_id: int | None) -> Deleted:
    batches, values = conn.execute(
        "SELECT count(*), coalesce(sum(n_values), 0) FROM batch WHERE id <= ?",
        (upto_id,)).fetchone()
    lost_batches = lost_values = 0
    if forwarded_id is not None:
        lost_batches, lost_values = conn.execute(
            "SELECT count(*), coalesce(sum(n_values), 0) FROM batch WHERE id <= ? AND id > ?",
            (upto_id, forwarded_id)).fetchone()
    conn.execute("DELETE FROM batch WHERE id <= ?", (upto_id,))
    return Deleted(batches, values, lost_batches, lost_values)
