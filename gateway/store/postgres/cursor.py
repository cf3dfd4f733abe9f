"""The forwarding cursor: which embedded-store batches the database has committed.

One ``forwarding_cursor`` row per gateway holds its embedded store's identity, the last
store batch id committed and a counter of write transactions (chunk_seq). The writer
advances it in the same transaction as the COPY of the batches, so the database alone
knows exactly what it holds: after a crash between the commit and the store's own
``set_forwarded``, the writer reads the row at reconnect and skips what is already there.
The advance names the values it expects to replace, so a second writer for the same
gateway (a misconfiguration) fails its transaction instead of interleaving chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import asyncpg


class CursorConflictError(Exception):
    """The cursor row moved under the writer: another writer uses the same gateway id."""


class Adoption(StrEnum):
    """How the writer's session started from the cursor row."""

    NEW = "new"  # no row yet: first run of this gateway against this database
    RESUMED = "resumed"  # same store: continue after the row's batch id
    NEW_STORE = "new_store"  # the gateway's embedded store was replaced: its numbering restarts
    DATABASE_BEHIND = "database_behind"  # the row is older than the store's own cursor


@dataclass(frozen=True)
class Cursor:
    """The cursor as adopted by one writer session."""

    batch_id: int
    chunk_seq: int
    adoption: Adoption


async def adopt(conn: asyncpg.Connection, gateway_id: str, store_id: str,
                store_forwarded_id: int) -> Cursor:
    """Read (creating or re-pointing it if needed) the gateway's cursor row.

    ``batch_id`` of the result is where draining resumes: at least ``store_forwarded_id``,
    more when the database committed batches the store did not yet record as forwarded.
    """
    async with conn.transaction():
        # Insert-or-nothing first: two sessions adopting a new gateway's row at once (one
        # gateway restarted over itself) then queue on the row instead of one failing on the
        # primary key. Each gateway touches only its own row, so N gateways never wait on
        # each other here.
        created = await conn.fetchval(
            """INSERT INTO forwarding_cursor (gateway_id, store_id, batch_id)
               VALUES ($1, $2, $3) ON CONFLICT (gateway_id) DO NOTHING RETURNING true""",
            gateway_id, store_id, store_forwarded_id)
        if created:
            return Cursor(store_forwarded_id, 0, Adoption.NEW)
        row = await conn.fetchrow(
            """SELECT store_id, batch_id, chunk_seq FROM forwarding_cursor
               WHERE gateway_id = $1 FOR UPDATE""", gateway_id)
        if row["store_id"] == store_id and row["batch_id"] >= store_forwarded_id:
            return Cursor(row["batch_id"], row["chunk_seq"], Adoption.RESUMED)
        adoption = Adoption.NEW_STORE if row["store_id"] != store_id else Adoption.DATABASE_BEHIND
        await conn.execute(
            """UPDATE forwarding_cursor SET store_id = $2, batch_id = $3, updated_at = now()
               WHERE gateway_id = $1""", gateway_id, store_id, store_forwarded_id)
        return Cursor(store_forwarded_id, row["chunk_seq"], adoption)


async def advance(conn: asyncpg.Connection, gateway_id: str, store_id: str, previous: Cursor,
                  batch_id: int) -> Cursor:
    """Move the cursor to ``batch_id`` and the next chunk_seq; call inside the transaction
    that writes the chunk. Raises CursorConflictError if the row is not at ``previous``."""
    status = await conn.execute(
        """UPDATE forwarding_cursor SET batch_id = $3, chunk_seq = $4, updated_at = now()
           WHERE gateway_id = $1 AND store_id = $2 AND batch_id = $5 AND chunk_seq = $6""",
        gateway_id, store_id, batch_id, previous.chunk_seq + 1, previous.batch_id,
        previous.chunk_seq)
    if status != "UPDATE 1":
        raise CursorConflictError(
            f"forwarding_cursor of gateway {gateway_id!r} is no longer at batch "
            f"{previous.batch_id} / chunk {previous.chunk_seq}: is another gateway running "
            f"with the same gateway_id?")
    return Cursor(batch_id, previous.chunk_seq + 1, Adoption.RESUMED)
