"""The embedded store's SQLite schema and the keys of its ``meta`` table.

``batch`` holds one row per scan (see ``batch_codec``); ids are AUTOINCREMENT so they never
repeat, even when retention deletes the newest rows: the forwarding cursor relies on
"id order = append order" for the life of the file. ``tag_set`` ids are never reused either,
so a cached tag set can never be confused with a later one.
"""

from __future__ import annotations

import sqlite3
from enum import StrEnum

SCHEMA_VERSION = 1

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS tag_set (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        digest BLOB NOT NULL UNIQUE,
        n_tags INTEGER NOT NULL,
        tag_index_blob BLOB NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS batch (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        scan_group TEXT NOT NULL,
        device TEXT NOT NULL,
        scan_start REAL NOT NULL,
        receive_ts REAL NOT NULL,
        n_values INTEGER NOT NULL,
        tag_set_id INTEGER NOT NULL REFERENCES tag_set(id),
        source_ts_uniform REAL,
        source_ts_blob BLOB,
        value_blob BLOB NOT NULL,
        quality_blob BLOB NOT NULL,
        reason_blob BLOB NOT NULL
    )""",
    # History of one tag: the scans of the tag sets that contain it, in a time range.
    "CREATE INDEX IF NOT EXISTS batch_by_tag_set_time ON batch (tag_set_id, scan_start)",
    # Age retention, oldest/newest, and "which tag sets were scanned in this range" (covering).
    "CREATE INDEX IF NOT EXISTS batch_by_time ON batch (scan_start, tag_set_id, n_values)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value NOT NULL) WITHOUT ROWID",
)


class MetaKey(StrEnum):
    """Keys of the store's own bookkeeping in ``meta``."""

    SCHEMA_VERSION = "schema_version"
    FORWARDED_ID = "forwarded_id"
    DROPPED_UNFORWARDED_BATCHES = "dropped_unforwarded_batches"
    DROPPED_UNFORWARDED_VALUES = "dropped_unforwarded_values"


def ensure_incremental_vacuum(conn: sqlite3.Connection) -> None:
    """Switch the file to ``auto_vacuum=INCREMENTAL`` once (needs a VACUUM after creation).

    The mode must be chosen before the first table exists, but the connection is already in
    WAL mode by then, which fixes the header; one VACUUM of the still-empty file applies it.
    """
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("VACUUM")


def read_meta(conn: sqlite3.Connection, key: MetaKey, default: int = 0) -> int:
    """An integer from ``meta``."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key.value,)).fetchone()
    return default if row is None else int(row[0])


def write_meta(conn: sqlite3.Connection, key: MetaKey, value: int) -> None:
    """Set an integer in ``meta`` (inside the caller's transaction)."""
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key.value, value))
