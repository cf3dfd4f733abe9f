"""Forwarding the write journal to the historian's ``tag_writes`` table (migration 0006).

A journaled write is forwarded once it has its outcome. The journal marks rows forwarded
only after the database committed them; a crash or reconnect in between sends those rows again,
and the primary key (gateway, journal id, row id) with ``ON CONFLICT DO NOTHING`` makes that
harmless: no duplicates, nothing lost. The forwarder runs beside the historian writer on its
own connection, so a burst of writes never waits for a COPY of scan data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import asyncpg
import structlog

from gateway.store.postgres.forwarding import PeriodicForwarder

log = structlog.get_logger(__name__)

BATCH_ROWS = 500
_COLUMNS = ("gateway_id", "site", "journal_id", "write_id", "tag_id", "user_name", "role",
            "origin", "client", "reason", "requested_value", "old_value", "old_quality",
            "read_back_value", "read_back_quality", "outcome", "refusal", "device_id",
            "device_status", "detail", "requested_at", "finished_at")
_INSERT = (f"INSERT INTO tag_writes ({', '.join(_COLUMNS)}) VALUES "
           f"({', '.join(f'${i}' for i in range(1, len(_COLUMNS) + 1))}) "
           "ON CONFLICT (gateway_id, journal_id, write_id) DO NOTHING")


class TagWriteRow(Protocol):
    """A finished row of the write journal (``gateway.services.writes.records.WriteRecord``)."""

    id: int
    tag_id: str
    user: str
    role: str | None
    origin: str
    client: str | None
    reason: str | None
    requested_value: float | None
    old_value: float | None
    old_quality: int | None
    read_back_value: float | None
    read_back_quality: int | None
    outcome: str
    refusal: str | None
    device_id: str | None
    device_status: str | None
    detail: str
    requested_at: float
    finished_at: float | None


class TagWriteSource(Protocol):
    """The write journal as the forwarder reads it (``WriteJournal``)."""

    journal_id: str

    async def unforwarded(self, limit: int) -> Sequence[TagWriteRow]: ...

    async def mark_forwarded(self, ids: Sequence[int]) -> None: ...


def _when(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _record(row: TagWriteRow, gateway_id: str, site: str, journal_id: str) -> tuple:
    return (gateway_id, site, journal_id, row.id, row.tag_id, row.user, row.role, row.origin,
            row.client, row.reason, row.requested_value, row.old_value, row.old_quality,
            row.read_back_value, row.read_back_quality, str(row.outcome),
            None if row.refusal is None else str(row.refusal), row.device_id, row.device_status,
            row.detail, _when(row.requested_at), _when(row.finished_at))


async def forward_tag_writes(conn: asyncpg.Connection, source: TagWriteSource, gateway_id: str,
                             site: str = "", batch_rows: int = BATCH_ROWS) -> int:
    """Forward every finished, unforwarded journal row; returns how many rows were sent."""
    sent = 0
    while rows := await source.unforwarded(batch_rows):
        records = [_record(r, gateway_id, site, source.journal_id) for r in rows]
        async with conn.transaction():
            await conn.executemany(_INSERT, records)
        await source.mark_forwarded([r.id for r in rows])  # only after the commit
        sent += len(rows)
        if len(rows) < batch_rows:
            break
    return sent


@dataclass
class ForwarderStats:
    rows_forwarded: int = 0
    last_error: str | None = None


class TagWritesForwarder(PeriodicForwarder):
    """Forwards the write journal every ``interval_s`` until cancelled, reconnecting with a
    growing pause while the database is away. ``ready`` is awaited first (the writer's
    migration of the schema)."""

    log_name = "tag_writes_forwarder"

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]], source: TagWriteSource,
                 gateway_id: str, site: str, ready: Callable[[], Awaitable[None]],
                 interval_s: float = 1.0, retry_max_s: float = 30.0):
        super().__init__(connect, gateway_id, site, ready, interval_s, retry_max_s)
        self.source = source
        self.stats = ForwarderStats()

    async def forward_once(self, conn: asyncpg.Connection) -> int:
        sent = await forward_tag_writes(conn, self.source, self.gateway_id, self.site)
        self.stats.rows_forwarded += sent
        return sent
