"""Forwarding the gateway's own results to the historian: alarms, KPIs, energy, predictions.

One mechanism for every kind of row. A kind (:class:`OutboundKind`) reads its rows from the
gateway's state directory in the order of a *position* (the alarm journal's ``seq``, the time
a KPI run or a completed energy hour was stored, ...) and writes one row into the historian.
Per gateway and kind, ``outbound_cursor`` (migration 0008) holds the position up to which the
database has the rows; it advances in the same transaction as the rows it covers. So:

- while the database is away nothing is read past the cursor: the rows wait in the gateway's
  own files (within their retention) and go, in order, when it returns;
- a crash between the commit and anything after it replays nothing: the next session starts
  after the committed position (exactly once, without any mark in the gateway's files);
- N gateways into one database each move only their own cursor rows.

The advance names the position it expects to replace, so two forwarders for one gateway id
(a misconfiguration) fail instead of interleaving. A row the database refuses (a CHECK, a
foreign key to a catalog row the gateway does not have) is logged with the database's reason
and counted in ``rows_refused``; the cursor moves past it, so it never blocks the rows after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import structlog

from gateway.store.postgres.forwarding import CONNECTION_ERRORS, PeriodicForwarder

log = structlog.get_logger(__name__)

BATCH_ROWS = 500
# What a refused row raises: the row is wrong, not the connection.
REFUSALS = (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError)


@dataclass(frozen=True, slots=True)
class OutboundRow:
    """One row of a kind at its position in the gateway's store. Rows sharing a position
    (the units of one KPI run) are always read together."""

    position: float
    record: Any


class OutboundKind(Protocol):
    """A kind of row the gateway forwards: where it reads them, how it writes one."""

    name: str  # the kind's key in outbound_cursor, e.g. "alarm_journal"

    async def after(self, position: float, limit: int) -> Sequence[OutboundRow]:
        """Rows past ``position``, in position order: about ``limit`` of them, whole groups."""
        ...

    async def write(self, conn: asyncpg.Connection, gateway_id: str, record: Any) -> None:
        """Write one row (inside the forwarder's transaction)."""
        ...

    def describe(self, record: Any) -> str:
        """The row in a log line of a refusal."""
        ...

    async def last_position(self) -> float | None:
        """The newest position in the gateway's store (None when it holds no rows)."""
        ...


class OutboundCursorConflictError(Exception):
    """The cursor row moved under the forwarder: another gateway uses the same gateway id."""


@dataclass
class KindStats:
    rows_forwarded: int = 0
    rows_refused: int = 0
    position: float | None = None
    last_refusal: str | None = None
    # The gateway's store ends before the database's position: it was replaced (a new state
    # directory), and its rows up to that position are not forwarded.
    store_behind: bool = False


async def cursor_position(conn: asyncpg.Connection, gateway_id: str, kind: str) -> float:
    """The kind's committed position for the gateway (creating its row at 0)."""
    await conn.execute("INSERT INTO outbound_cursor (gateway_id, kind) VALUES ($1, $2) "
                       "ON CONFLICT (gateway_id, kind) DO NOTHING", gateway_id, kind)
    return await conn.fetchval("SELECT position FROM outbound_cursor WHERE gateway_id = $1 "
                               "AND kind = $2", gateway_id, kind)


async def _write_rows(conn: asyncpg.Connection, kind: OutboundKind, gateway_id: str,
                      rows: Sequence[OutboundRow], stats: KindStats) -> tuple[int, int]:
    """Write ``rows`` in the open transaction; returns (written, refused)."""
    try:
        async with conn.transaction():  # a savepoint: the common case is one round of rows
            for row in rows:
                await kind.write(conn, gateway_id, row.record)
        return len(rows), 0
    except REFUSALS:
        pass
    written = refused = 0
    for row in rows:  # one row per savepoint: find the refused ones, keep the others
        try:
            async with conn.transaction():
                await kind.write(conn, gateway_id, row.record)
            written += 1
        except REFUSALS as exc:
            refused += 1
            stats.last_refusal = f"{kind.describe(row.record)}: {type(exc).__name__}: {exc}"
            log.error("outbound.row_refused", kind=kind.name, gateway_id=gateway_id,
                      row=kind.describe(row.record), reason=f"{type(exc).__name__}: {exc}")
    return written, refused


async def forward_kind(conn: asyncpg.Connection, kind: OutboundKind, gateway_id: str,
                       stats: KindStats | None = None, batch_rows: int = BATCH_ROWS) -> int:
    """Forward every row of ``kind`` past the gateway's cursor; returns the rows written."""
    stats = stats if stats is not None else KindStats()
    position = await cursor_position(conn, gateway_id, kind.name)
    sent = 0
    while rows := await kind.after(position, batch_rows):
        new_position = rows[-1].position
        async with conn.transaction():
            written, refused = await _write_rows(conn, kind, gateway_id, rows, stats)
            status = await conn.execute(
                """UPDATE outbound_cursor SET position = $4, updated_at = now(),
                          rows_forwarded = rows_forwarded + $5, rows_refused = rows_refused + $6
                   WHERE gateway_id = $1 AND kind = $2 AND position = $3""",
                gateway_id, kind.name, position, new_position, written, refused)
            if status != "UPDATE 1":
                raise OutboundCursorConflictError(
                    f"outbound_cursor {kind.name!r} of gateway {gateway_id!r} is no longer at "
                    f"{position}: is another gateway running with the same gateway_id?")
        position = new_position
        sent += written
        stats.rows_forwarded += written
        stats.rows_refused += refused
        stats.position = position
        if len(rows) < batch_rows:
            break
    stats.position = position
    if not sent:
        last = await kind.last_position()
        behind = last is not None and last < position
        if behind and not stats.store_behind:
            log.warning("outbound.store_behind_cursor", kind=kind.name, gateway_id=gateway_id,
                        store_position=last, database_position=position,
                        hint="the gateway's store was replaced; its rows up to the database's "
                             "position are not forwarded (see docs/fleet.md)")
        stats.store_behind = behind
    return sent


@dataclass
class OutboundStats:
    kinds: dict[str, KindStats] = field(default_factory=dict)
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {name: {"rows_forwarded": s.rows_forwarded, "rows_refused": s.rows_refused,
                       "position": s.position, "last_refusal": s.last_refusal,
                       "store_behind": s.store_behind}
                for name, s in self.kinds.items()}


class OutboundForwarder(PeriodicForwarder):
    """Forwards every kind in turn every ``interval_s`` until cancelled, reconnecting with a
    growing pause while the database is away. ``ready`` is awaited first (the writer's
    migration of the schema and sync of the gateway's catalog, which the rows refer to)."""

    log_name = "outbound_forwarder"
    errors = (*CONNECTION_ERRORS, OutboundCursorConflictError)

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]],
                 kinds: Sequence[OutboundKind], gateway_id: str, site: str,
                 ready: Callable[[], Awaitable[None]], interval_s: float = 5.0,
                 retry_max_s: float = 30.0, batch_rows: int = BATCH_ROWS):
        super().__init__(connect, gateway_id, site, ready, interval_s, retry_max_s)
        self.kinds = list(kinds)
        self.batch_rows = batch_rows
        self.stats = OutboundStats({k.name: KindStats() for k in self.kinds})

    async def forward_once(self, conn: asyncpg.Connection) -> int:
        """One pass over every kind, in the order given; returns the rows written."""
        sent = 0
        for kind in self.kinds:
            sent += await forward_kind(conn, kind, self.gateway_id, self.stats.kinds[kind.name],
                                       self.batch_rows)
        return sent
