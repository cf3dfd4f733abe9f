"""The alarm journal: every alarm transition, on disk, queryable newest first.

Its own SQLite file in the state directory (``alarms.sqlite``), reached only through
:class:`SqliteThread`. One row per :class:`AlarmTransition`, keyed by its ``seq`` (strictly
increasing over the engine's life), so appending the same transition twice is harmless.
Rows older than the retention are deleted, like the embedded store's history.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from analytics.alarm_types import AlarmKind, AlarmState, AlarmTransition, Severity
from gateway.store.sqlite_thread import SqliteThread

JOURNAL_FILE = "alarms.sqlite"
MAX_QUERY_ROWS = 1000

_COLUMNS = ("seq", "time", "alarm_id", "alarm_key", "tag_id", "kind", "from_state", "to_state",
            "severity", "value", "limit_value", "user_name", "comment", "automatic", "doubtful",
            "unit_id", "device_id", "message")

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS journal (
        seq INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        alarm_id TEXT NOT NULL,
        alarm_key TEXT NOT NULL,
        tag_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        severity TEXT NOT NULL,
        value REAL,
        limit_value REAL,
        user_name TEXT,
        comment TEXT,
        automatic INTEGER NOT NULL DEFAULT 0,
        doubtful INTEGER NOT NULL DEFAULT 0,
        unit_id TEXT,
        device_id TEXT,
        message TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX IF NOT EXISTS journal_time ON journal (time)",
    "CREATE INDEX IF NOT EXISTS journal_tag ON journal (tag_id, seq)",
    "CREATE INDEX IF NOT EXISTS journal_key ON journal (alarm_key, seq)",
]

# ISA-18.2 operator actions that are not alarm transitions (a setpoint write, a command): the
# alarm system's own record of what operators did, beside the transitions (IEC 62682 11.6: the
# journal holds alarm events and operator actions). Kept apart from ``journal`` so its rows never
# enter an alarm query, a KPI or the MQTT outbox; ``time`` orders the two together.
_ACTIONS_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS operator_actions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        source TEXT NOT NULL,
        unit_id TEXT,
        user_name TEXT NOT NULL,
        origin TEXT NOT NULL,
        action TEXT NOT NULL,
        outcome TEXT NOT NULL,
        ref TEXT,
        message TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX IF NOT EXISTS operator_actions_time ON operator_actions (time)",
    "CREATE INDEX IF NOT EXISTS operator_actions_source ON operator_actions (source, id)",
]
_SCHEMA += _ACTIONS_SCHEMA
_ACTION_COLUMNS = ("id", "time", "source", "unit_id", "user_name", "origin", "action", "outcome",
                   "ref", "message")

_ACTIVE = (AlarmState.UNACK.value, AlarmState.ACKED.value)


@dataclass(frozen=True, slots=True)
class OperatorAction:
    """One operator action journaled by the alarm system (e.g. a tag write and its outcome).

    ``source`` is the tag (or device) acted on, ``origin`` the front door (http, opcua, ...),
    ``ref`` what the action refers to elsewhere (``write:<id>`` in the write journal)."""

    time: float
    source: str
    user: str
    origin: str
    action: str
    outcome: str
    message: str = ""
    ref: str | None = None
    unit_id: str | None = None
    id: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "time": self.time, "source": self.source, "unit_id": self.unit_id,
                "user": self.user, "origin": self.origin, "action": self.action,
                "outcome": self.outcome, "ref": self.ref, "message": self.message}


@dataclass(frozen=True, slots=True)
class JournalFilter:
    """Which transitions a journal query returns (None: any)."""

    tag_id: str | None = None
    severity: Severity | None = None
    kind: AlarmKind | None = None
    since: float | None = None  # epoch s, inclusive
    until: float | None = None  # epoch s, exclusive

    def where(self) -> tuple[str, list[object]]:
        clauses: list[str] = []
        args: list[object] = []
        for column, value in (("tag_id", self.tag_id), ("severity", self.severity),
                              ("kind", self.kind)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(str(value))
        if self.since is not None:
            clauses.append("time >= ?")
            args.append(self.since)
        if self.until is not None:
            clauses.append("time < ?")
            args.append(self.until)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


class AlarmJournal:
    """Append-only record of alarm transitions, with the queries the API and KPIs need."""

    def __init__(self, path: Path, retention_s: float, durable: bool = False):
        self.path = Path(path)
        self.retention_s = retention_s
        self._db = SqliteThread(self.path, schema=_SCHEMA, durable=durable, name="alarm-journal")

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    async def append(self, transitions: Sequence[AlarmTransition]) -> None:
        """Journal transitions in one transaction (a ``seq`` already present is kept)."""
        if not transitions:
            return
        rows = [_row(t) for t in transitions]
        placeholders = ", ".join("?" * len(_COLUMNS))
        sql = f"INSERT OR IGNORE INTO journal ({', '.join(_COLUMNS)}) VALUES ({placeholders})"
        await self._db.transaction(lambda conn: conn.executemany(sql, rows))

    async def query(self, where: JournalFilter = JournalFilter(), limit: int = 100,
                    offset: int = 0) -> list[AlarmTransition]:
        """Matching transitions, newest first, at most ``limit`` (capped at 1000)."""
        limit = max(0, min(limit, MAX_QUERY_ROWS))
        clause, args = where.where()
        sql = (f"SELECT {', '.join(_COLUMNS)} FROM journal{clause} ORDER BY seq DESC "
               "LIMIT ? OFFSET ?")
        rows = await self._db.call(
            lambda conn: conn.execute(sql, [*args, limit, max(offset, 0)]).fetchall())
        return [_transition(r) for r in rows]

    async def count(self, where: JournalFilter = JournalFilter()) -> int:
        """How many transitions match (for paging)."""
        clause, args = where.where()
        return await self._db.call(
            lambda conn: conn.execute(f"SELECT count(*) FROM journal{clause}", args).fetchone()[0])

    async def kpi_window(self, start: float, end: float) -> list[AlarmTransition]:
        """What :func:`analytics.alarm_kpis.alarm_kpis` needs for ``[start, end)``: every
        transition in the window, plus, for alarms already standing at ``start``, their last
        transition and their activation before it (so standing/stale alarms are known without
        reading the whole journal)."""
        def read(conn: sqlite3.Connection) -> list[tuple]:
            cols = ", ".join(_COLUMNS)
            rows = conn.execute(f"SELECT {cols} FROM journal WHERE time >= ? AND time < ?",
                                (start, end)).fetchall()
            last_before = conn.execute(
                f"SELECT {cols} FROM journal WHERE seq IN (SELECT max(seq) FROM journal "
                "WHERE time < ? GROUP BY alarm_key) AND to_state IN (?, ?)",
                (start, *_ACTIVE)).fetchall()
            for row in last_before:
                activation = conn.execute(
                    f"SELECT {cols} FROM journal WHERE alarm_key = ? AND seq <= ? AND "
                    "to_state = ? AND from_state NOT IN (?, ?) ORDER BY seq DESC LIMIT 1",
                    (row[3], row[0], AlarmState.UNACK.value, *_ACTIVE)).fetchone()
                if activation is not None and activation[0] != row[0]:
                    rows.append(activation)
                rows.append(row)
            return rows

        rows = await self._db.call(read)
        return sorted((_transition(r) for r in rows), key=lambda t: t.seq)

    async def max_seq(self) -> int:
        """The highest ``seq`` journaled (0 when empty): the engine must continue above it."""
        row = await self._db.call(
            lambda conn: conn.execute("SELECT max(seq) FROM journal").fetchone())
        return 0 if row is None or row[0] is None else int(row[0])

    async def append_action(self, action: OperatorAction) -> OperatorAction:
        """Journal one operator action; returns it with its id."""
        row = (action.time, action.source, action.unit_id, action.user, action.origin,
               action.action, action.outcome, action.ref, action.message)
        new_id = await self._db.transaction(lambda conn: conn.execute(
            "INSERT INTO operator_actions (time, source, unit_id, user_name, origin, action, "
            "outcome, ref, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row).lastrowid)
        return OperatorAction(**{**_action_fields(action), "id": new_id})

    async def actions(self, source: str | None = None, since: float | None = None,
                      until: float | None = None, limit: int = 100,
                      offset: int = 0) -> list[OperatorAction]:
        """Journaled operator actions, newest first, at most ``limit`` (capped at 1000)."""
        clauses, args = [], []
        for clause, value in (("source = ?", source), ("time >= ?", since), ("time < ?", until)):
            if value is not None:
                clauses.append(clause)
                args.append(value)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        sql = (f"SELECT {', '.join(_ACTION_COLUMNS)} FROM operator_actions{where} "
               "ORDER BY id DESC LIMIT ? OFFSET ?")
        rows = await self._db.call(lambda conn: conn.execute(
            sql, [*args, max(0, min(limit, MAX_QUERY_ROWS)), max(offset, 0)]).fetchall())
        return [OperatorAction(id=r[0], time=r[1], source=r[2], unit_id=r[3], user=r[4],
                               origin=r[5], action=r[6], outcome=r[7], ref=r[8], message=r[9])
                for r in rows]

    async def enforce_action_retention(self, now: float) -> int:
        """Delete operator actions older than the retention; returns how many were deleted."""
        cutoff = now - self.retention_s
        return await self._db.transaction(lambda conn: conn.execute(
            "DELETE FROM operator_actions WHERE time < ?", (cutoff,)).rowcount)

    async def enforce_retention(self, now: float) -> int:
        """Delete transitions older than the retention; returns how many were deleted."""
        cutoff = now - self.retention_s
        return await self._db.transaction(
            lambda conn: conn.execute("DELETE FROM journal WHERE time < ?", (cutoff,)).rowcount)


def _action_fields(a: OperatorAction) -> dict[str, object]:
    return {"time": a.time, "source": a.source, "user": a.user, "origin": a.origin,
            "action": a.action, "outcome": a.outcome, "message": a.message, "ref": a.ref,
            "unit_id": a.unit_id}


def _row(t: AlarmTransition) -> tuple:
    return (t.seq, t.time, t.alarm_id, t.key, t.tag_id, t.kind.value, t.from_state.value,
            t.to_state.value, t.severity.value, _finite(t.value), _finite(t.limit), t.user,
            t.comment, int(t.automatic), int(t.doubtful), t.unit_id, t.device_id, t.message)


def _transition(r: Iterable) -> AlarmTransition:
    (seq, time, alarm_id, key, tag_id, kind, from_state, to_state, severity, value, limit,
     user, comment, automatic, doubtful, unit_id, device_id, message) = r
    return AlarmTransition(
        seq=seq, alarm_id=alarm_id, key=key, tag_id=tag_id, kind=AlarmKind(kind),
        from_state=AlarmState(from_state), to_state=AlarmState(to_state),
        severity=Severity(severity), value=value, limit=limit, time=time, user=user,
        comment=comment, automatic=bool(automatic), doubtful=bool(doubtful), unit_id=unit_id,
        device_id=device_id, message=message)


def _finite(x: float | None) -> float | None:
    # SQLite stores NaN as NULL anyway; be explicit so a round trip gives None, not NaN.
    return None if x is None or x != x else x
