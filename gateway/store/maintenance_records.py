"""The plant's failure / work-order records, kept in the state directory.

One SQLite file (``<state_dir>/maintenance.sqlite``) written by ``refineryiq maintenance
import`` and read by ``refineryiq train --from-history``; the daemon does not open it. Both are
command-line programs without an event loop, so this module uses a plain sqlite3 connection
(short transactions, WAL, a busy timeout so a reader and an import never fail on each other).

A record is one failure: (equipment id, failure time) is its key, so importing the same file
twice adds nothing, and importing a corrected file (a repair end filled in, a failure mode
reworded) updates the records it names. Every import is logged with the file's name and
SHA-256, and each record remembers the digest of the file it last came from.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from analytics.pdm.records import FailureRecord

FILE_NAME = "maintenance.sqlite"

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS failure_record (
    equipment_id TEXT NOT NULL,
    failure_s REAL NOT NULL,
    failure_mode TEXT NOT NULL,
    repair_end_s REAL,
    source_file TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    source_row INTEGER NOT NULL,
    imported_at REAL NOT NULL,
    PRIMARY KEY (equipment_id, failure_s)
)""",
    """CREATE TABLE IF NOT EXISTS record_import (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    imported_at REAL NOT NULL,
    rows INTEGER NOT NULL,
    added INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    unchanged INTEGER NOT NULL,
    skipped_bad INTEGER NOT NULL
)""",
)


@dataclass(frozen=True)
class ImportResult:
    added: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class StoredRecord:
    """A record with where it came from."""

    record: FailureRecord
    source_file: str
    source_sha256: str
    imported_at: float


class MaintenanceRecords:
    """The record table of one state directory (``with MaintenanceRecords(path) as db: ...``)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> MaintenanceRecords:
        return cls(Path(state_dir) / FILE_NAME)

    def open(self) -> MaintenanceRecords:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("BEGIN IMMEDIATE")
        for statement in SCHEMA:
            conn.execute(statement)
        conn.execute("COMMIT")
        self._conn = conn
        return self

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> MaintenanceRecords:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"maintenance records {self.path} are not open")
        return self._conn

    def import_records(self, records: Sequence[FailureRecord], file: str, sha256: str,
                       rows: int = 0, skipped_bad: int = 0, now: float | None = None) -> ImportResult:
        """Add new records, update changed ones, in one transaction; log the import."""
        now = time.time() if now is None else now
        added = updated = unchanged = 0
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for r in records:
                old = conn.execute(
                    "SELECT failure_mode, repair_end_s FROM failure_record "
                    "WHERE equipment_id = ? AND failure_s = ?", (r.equipment_id, r.failure_s)).fetchone()
                if old is None:
                    added += 1
                elif tuple(old) == (r.failure_mode, r.repair_end_s):
                    unchanged += 1
                    continue
                else:
                    updated += 1
                conn.execute(
                    "INSERT INTO failure_record (equipment_id, failure_s, failure_mode, repair_end_s,"
                    " source_file, source_sha256, source_row, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (equipment_id, failure_s) DO UPDATE SET"
                    " failure_mode = excluded.failure_mode, repair_end_s = excluded.repair_end_s,"
                    " source_file = excluded.source_file, source_sha256 = excluded.source_sha256,"
                    " source_row = excluded.source_row, imported_at = excluded.imported_at",
                    (r.equipment_id, r.failure_s, r.failure_mode, r.repair_end_s, file, sha256, r.row, now))
            conn.execute(
                "INSERT INTO record_import (file, sha256, imported_at, rows, added, updated, unchanged,"
                " skipped_bad) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (file, sha256, now, rows, added, updated, unchanged, skipped_bad))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return ImportResult(added, updated, unchanged)

    def records(self, equipment_id: str | None = None) -> list[StoredRecord]:
        """Every record (of one equipment), by equipment then failure time."""
        query = ("SELECT equipment_id, failure_s, failure_mode, repair_end_s, source_row, source_file,"
                 " source_sha256, imported_at FROM failure_record")
        args: tuple = ()
        if equipment_id is not None:
            query += " WHERE equipment_id = ?"
            args = (equipment_id,)
        rows = self.conn.execute(query + " ORDER BY equipment_id, failure_s", args).fetchall()
        return [StoredRecord(FailureRecord(r[0], float(r[1]), r[2], None if r[3] is None else float(r[3]),
                                           int(r[4])), r[5], r[6], float(r[7])) for r in rows]

    def imports(self) -> list[dict[str, object]]:
        """The import log, oldest first."""
        cursor = self.conn.execute(
            "SELECT file, sha256, imported_at, rows, added, updated, unchanged, skipped_bad"
            " FROM record_import ORDER BY id")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
