"""The durable MQTT outbox: alarm messages are on disk before they are published.

Its own SQLite file in the state directory (``mqtt-outbox.sqlite``), reached only through
:class:`SqliteThread`. A message is deleted only once the broker has acknowledged it (PUBACK),
so broker outages and gateway restarts lose nothing; rows are read back in insertion order,
which is ``seq`` order, so they are re-sent oldest first.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from gateway.store.sqlite_thread import SqliteThread

OUTBOX_FILE = "mqtt-outbox.sqlite"

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        seq INTEGER NOT NULL,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL,
        qos INTEGER NOT NULL DEFAULT 1 CHECK (qos IN (0, 1, 2)),
        retain INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL
    )""",
    # The highest seq ever stored, kept after its row is acknowledged and deleted.
    "CREATE TABLE IF NOT EXISTS outbox_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
]


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One stored message; ``id`` is its position in the outbox (insertion order)."""

    id: int
    seq: int
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


class Outbox:
    """An ordered, durable queue of MQTT messages awaiting broker acknowledgement."""

    def __init__(self, path: Path, durable: bool = False):
        self.path = Path(path)
        self._db = SqliteThread(self.path, schema=_SCHEMA, durable=durable, name="mqtt-outbox")
        self._depth = 0

    async def open(self) -> None:
        await self._db.open()
        self._depth = await self._db.call(
            lambda conn: conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

    async def close(self) -> None:
        await self._db.close()

    @property
    def depth(self) -> int:
        """Messages stored and not yet acknowledged by the broker."""
        return self._depth

    async def put(self, messages: list[tuple[int, str, bytes]], created: float,
                  qos: int = 1) -> list[int]:
        """Store ``(seq, topic, payload)`` messages in one transaction; returns their ids."""
        if not messages:
            return []

        def insert(conn: sqlite3.Connection) -> list[int]:
            ids = []
            for seq, topic, payload in messages:
                cur = conn.execute(
                    "INSERT INTO outbox (seq, topic, payload, qos, created) VALUES (?, ?, ?, ?, ?)",
                    (seq, topic, payload, qos, created))
                ids.append(int(cur.lastrowid))
            conn.execute(
                "INSERT INTO outbox_meta (key, value) VALUES ('max_seq', ?) ON CONFLICT (key) "
                "DO UPDATE SET value = max(value, excluded.value)",
                (max(seq for seq, _, _ in messages),))
            return ids

        ids = await self._db.transaction(insert)
        self._depth += len(ids)
        return ids

    async def after(self, last_id: int, limit: int) -> list[OutboxMessage]:
        """Up to ``limit`` messages with ``id > last_id``, oldest first."""
        rows = await self._db.call(lambda conn: conn.execute(
            "SELECT id, seq, topic, payload, qos, retain FROM outbox WHERE id > ? ORDER BY id "
            "LIMIT ?", (last_id, limit)).fetchall())
        return [OutboxMessage(id=r[0], seq=r[1], topic=r[2], payload=bytes(r[3]), qos=r[4],
                              retain=bool(r[5])) for r in rows]

    async def remove(self, ids: list[int]) -> None:
        """Delete acknowledged messages."""
        if not ids:
            return

        def delete(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

        await self._db.transaction(delete)
        self._depth = max(self._depth - len(ids), 0)

    async def max_seq(self) -> int:
        """The highest ``seq`` ever stored here (0 when empty), for the alarm engine's restore."""
        row = await self._db.call(lambda conn: conn.execute(
            "SELECT value FROM outbox_meta WHERE key = 'max_seq'").fetchone())
        return 0 if row is None else int(row[0])
