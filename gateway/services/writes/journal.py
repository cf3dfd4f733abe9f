"""The write journal: every write request and its outcome, on disk before and after the write.

Its own SQLite file in the state directory (``writes.sqlite``), reached only through
:class:`SqliteThread`, opened with ``synchronous=FULL``: each commit is on disk (fsync) before
the write goes on, so a write sent to a device always has its request row, even after a power
loss. A request is one row, inserted when it arrives with no outcome (``pending``) and
completed once the outcome is known; a refusal is inserted complete. A row still pending when
the journal is opened again belonged to a gateway that died mid-write: it becomes ``unknown``.

``journal_id`` (made once, kept in the file) names this journal to the historian, so rows
forwarded to ``tag_writes`` are keyed by (gateway, journal, row id): forwarding twice is
harmless, and a new state directory never collides with an old one.
"""

from __future__ import annotations

import math
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.services.writes.records import Outcome, Refusal, WriteRecord, WriteRequest
from gateway.store.sqlite_thread import SqliteThread

WRITES_FILE = "writes.sqlite"
MAX_QUERY_ROWS = 1000

_COLUMNS = ("id", "tag_id", "user_name", "role", "origin", "client", "reason", "requested_value",
            "old_value", "old_quality", "read_back_value", "read_back_quality", "outcome",
            "refusal", "device_id", "device_status", "detail", "requested_at", "finished_at")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM writes"

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS writes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tag_id TEXT NOT NULL,
        user_name TEXT NOT NULL,
        role TEXT,
        origin TEXT NOT NULL,
        client TEXT,
        reason TEXT,
        requested_value REAL,
        old_value REAL,
        old_quality INTEGER,
        read_back_value REAL,
        read_back_quality INTEGER,
        outcome TEXT CHECK (outcome IS NULL OR outcome IN
            ('confirmed', 'rejected', 'failed', 'unconfirmed', 'unknown')),
        refusal TEXT,
        device_id TEXT,
        device_status TEXT,
        detail TEXT NOT NULL DEFAULT '',
        requested_at REAL NOT NULL,
        finished_at REAL,
        forwarded INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS writes_tag ON writes (tag_id, id)",
    "CREATE INDEX IF NOT EXISTS writes_time ON writes (requested_at)",
    "CREATE INDEX IF NOT EXISTS writes_pending ON writes (id) WHERE outcome IS NULL",
    "CREATE INDEX IF NOT EXISTS writes_unforwarded ON writes (id) "
    "WHERE forwarded = 0 AND outcome IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
]


@dataclass(frozen=True, slots=True)
class WriteFilter:
    """Which rows a journal query returns (None: any)."""

    tag_id: str | None = None
    outcome: Outcome | None = None
    user: str | None = None
    since: float | None = None  # epoch s, inclusive (requested_at)
    until: float | None = None  # epoch s, exclusive

    def where(self) -> tuple[str, list[object]]:
        clauses: list[str] = []
        args: list[object] = []
        if self.tag_id is not None:
            clauses.append("tag_id = ?")
            args.append(self.tag_id)
        if self.outcome is Outcome.PENDING:
            clauses.append("outcome IS NULL")
        elif self.outcome is not None:
            clauses.append("outcome = ?")
            args.append(self.outcome.value)
        if self.user is not None:
            clauses.append("user_name = ?")
            args.append(self.user)
        if self.since is not None:
            clauses.append("requested_at >= ?")
            args.append(self.since)
        if self.until is not None:
            clauses.append("requested_at < ?")
            args.append(self.until)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


class WriteJournal:
    """The durable record of writes, with the queries the API and the historian need."""

    def __init__(self, path: Path, retention_s: float):
        self.path = Path(path)
        self.retention_s = retention_s
        self.journal_id = ""
        self._db = SqliteThread(self.path, schema=_SCHEMA, durable=True, name="write-journal")

    async def open(self) -> None:
        await self._db.open()
        self.journal_id = await self._db.transaction(_journal_id)

    async def close(self) -> None:
        await self._db.close()

    # ------------------------------------------------------------------ rows

    async def request(self, req: WriteRequest, old_value: float | None,
                      old_quality: int | None, now: float) -> WriteRecord:
        """Journal a request that will be carried out (outcome pending); on disk on return."""
        return await self._insert(req, old_value, old_quality, now, None, None, "")

    async def reject(self, req: WriteRequest, refusal: Refusal, detail: str,
                     old_value: float | None, old_quality: int | None,
                     now: float) -> WriteRecord:
        """Journal a refused request, complete (nothing was sent)."""
        return await self._insert(req, old_value, old_quality, now, Outcome.REJECTED, refusal,
                                  detail)

    async def _insert(self, req: WriteRequest, old_value: float | None,
                      old_quality: int | None, now: float, outcome: Outcome | None,
                      refusal: Refusal | None, detail: str) -> WriteRecord:
        row = (req.tag_id, req.user, None if req.role is None else req.role.label, req.origin,
               req.client, req.reason, _real(req.value), _real(old_value), old_quality,
               None if outcome is None else outcome.value,
               None if refusal is None else refusal.value, detail, now,
               None if outcome is None else now)

        def insert(conn: sqlite3.Connection) -> tuple:
            cur = conn.execute(
                "INSERT INTO writes (tag_id, user_name, role, origin, client, reason, "
                "requested_value, old_value, old_quality, outcome, refusal, detail, "
                "requested_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row)
            return conn.execute(f"{_SELECT} WHERE id = ?", (cur.lastrowid,)).fetchone()

        return _record(await self._db.transaction(insert))

    async def finish(self, write_id: int, outcome: Outcome, detail: str, now: float, *,
                     refusal: Refusal | None = None, device_id: str | None = None,
                     device_status: str | None = None, read_back: float | None = None,
                     read_back_quality: int | None = None, old_value: float | None = None,
                     old_quality: int | None = None) -> WriteRecord:
        """Complete a pending row with its outcome (a row already complete is left as it is)."""
        args = (outcome.value, None if refusal is None else refusal.value, detail, device_id,
                device_status, _real(read_back), read_back_quality, _real(old_value),
                old_quality, now, write_id)

        def update(conn: sqlite3.Connection) -> tuple:
            conn.execute(
                "UPDATE writes SET outcome = ?, refusal = ?, detail = ?, device_id = ?, "
                "device_status = ?, read_back_value = ?, read_back_quality = ?, "
                "old_value = coalesce(?, old_value), old_quality = coalesce(?, old_quality), "
                "finished_at = ? WHERE id = ? AND outcome IS NULL", args)
            return conn.execute(f"{_SELECT} WHERE id = ?", (write_id,)).fetchone()

        return _record(await self._db.transaction(update))

    async def settle_pending(self, outcome: Outcome, detail: str, now: float,
                             ids: Sequence[int] | None = None,
                             refusal: Refusal | None = None) -> list[WriteRecord]:
        """Give every pending row (or those of ``ids``) this outcome; returns them."""
        def settle(conn: sqlite3.Connection) -> list[tuple]:
            if ids is None:
                chosen = [r[0] for r in conn.execute(
                    "SELECT id FROM writes WHERE outcome IS NULL ORDER BY id")]
            else:
                chosen = list(ids)
            conn.executemany(
                "UPDATE writes SET outcome = ?, refusal = ?, detail = ?, finished_at = ? "
                "WHERE id = ? AND outcome IS NULL",
                [(outcome.value, None if refusal is None else refusal.value, detail, now, i)
                 for i in chosen])
            if not chosen:
                return []
            marks = ", ".join("?" * len(chosen))
            return conn.execute(f"{_SELECT} WHERE id IN ({marks}) ORDER BY id",
                                chosen).fetchall()

        return [_record(r) for r in await self._db.transaction(settle)]

    # ------------------------------------------------------------------ reads

    async def get(self, write_id: int) -> WriteRecord | None:
        row = await self._db.call(
            lambda conn: conn.execute(f"{_SELECT} WHERE id = ?", (write_id,)).fetchone())
        return None if row is None else _record(row)

    async def query(self, where: WriteFilter = WriteFilter(), limit: int = 100,
                    offset: int = 0) -> list[WriteRecord]:
        """Matching rows, newest first, at most ``limit`` (capped at 1000)."""
        limit = max(0, min(limit, MAX_QUERY_ROWS))
        clause, args = where.where()
        sql = f"{_SELECT}{clause} ORDER BY id DESC LIMIT ? OFFSET ?"
        rows = await self._db.call(
            lambda conn: conn.execute(sql, [*args, limit, max(offset, 0)]).fetchall())
        return [_record(r) for r in rows]

    async def count(self, where: WriteFilter = WriteFilter()) -> int:
        clause, args = where.where()
        return await self._db.call(
            lambda conn: conn.execute(f"SELECT count(*) FROM writes{clause}", args).fetchone()[0])

    # ------------------------------------------------------------------ the historian

    async def unforwarded(self, limit: int) -> list[WriteRecord]:
        """Finished rows not yet forwarded to the historian, oldest first."""
        rows = await self._db.call(lambda conn: conn.execute(
            f"{_SELECT} WHERE forwarded = 0 AND outcome IS NOT NULL ORDER BY id LIMIT ?",
            (limit,)).fetchall())
        return [_record(r) for r in rows]

    async def mark_forwarded(self, ids: Sequence[int]) -> None:
        """Called only after the historian committed these rows."""
        if ids:
            await self._db.transaction(lambda conn: conn.executemany(
                "UPDATE writes SET forwarded = 1 WHERE id = ?", [(i,) for i in ids]))

    async def enforce_retention(self, now: float) -> int:
        """Delete finished rows requested before the retention; returns how many went."""
        cutoff = now - self.retention_s
        return await self._db.transaction(lambda conn: conn.execute(
            "DELETE FROM writes WHERE requested_at < ? AND outcome IS NOT NULL",
            (cutoff,)).rowcount)


def _journal_id(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT value FROM meta WHERE key = 'journal_id'").fetchone()
    if row is not None:
        return row[0]
    value = uuid.uuid4().hex
    conn.execute("INSERT INTO meta (key, value) VALUES ('journal_id', ?)", (value,))
    return value


def _real(x: float | None) -> float | None:
    # NaN is not a value SQLite keeps (it stores NULL); infinities are kept as they are.
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _record(r: tuple) -> WriteRecord:
    (id_, tag_id, user, role, origin, client, reason, requested, old, old_q, read_back,
     read_back_q, outcome, refusal, device_id, device_status, detail, requested_at,
     finished_at) = r
    return WriteRecord(
        id=id_, tag_id=tag_id, user=user, role=role, origin=origin, client=client,
        reason=reason, requested_value=requested, old_value=old, old_quality=old_q,
        read_back_value=read_back, read_back_quality=read_back_q,
        outcome=Outcome.PENDING if outcome is None else Outcome(outcome),
        refusal=None if refusal is None else Refusal(refusal), device_id=device_id,
        device_status=device_status, detail=detail, requested_at=requested_at,
        finished_at=finished_at)
