"""Connections to the historian database, optionally confined to one schema.

A schema name puts every table of the historian in that schema (``search_path``), so several
gateways' test runs, or a staging and a production historian, can share one database.
``public`` stays on the path after it because the TimescaleDB functions live there.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

Executor = asyncpg.Connection | asyncpg.Pool

# The database-wide advisory lock key (``hashtext``) held for schema DDL: migrations
# (migrate.py) and creating or dropping schemas. TimescaleDB's catalog is shared by every
# schema, so hypertable DDL in two schemas at once can collide.
DDL_LOCK = "refineryiq.ddl"

_SCHEMA_NAME = r"^[a-z_][a-z0-9_]{0,62}$"


def _server_settings(schema: str | None) -> dict[str, str]:
    settings = {"application_name": "refineryiq-edge"}
    if schema is not None:
        settings["search_path"] = f'"{schema}", public'
    return settings


async def ensure_schema(url: str, schema: str) -> None:
    """Create ``schema`` if it does not exist (names: lower-case letters, digits, '_').

    Several gateways starting at once against a new schema would race on CREATE SCHEMA IF NOT
    EXISTS (a unique violation in pg_namespace): the creation holds the database-wide DDL
    lock (``migrate.DDL_LOCK``) and looks again under it."""
    if not re.match(_SCHEMA_NAME, schema):
        raise ValueError(f"database schema name {schema!r} must match {_SCHEMA_NAME}")
    conn = await asyncpg.connect(url)
    try:
        if await _schema_exists(conn, schema):
            return
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", DDL_LOCK)
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        await conn.close()


async def _schema_exists(conn: asyncpg.Connection, schema: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema))


async def connect(url: str, *, schema: str | None = None, create_schema: bool = True,
                  **kwargs: Any) -> asyncpg.Connection:
    """One connection whose search_path is ``schema`` (created if missing, unless
    ``create_schema`` is false: a reader) then public."""
    if schema is not None and create_schema:
        await ensure_schema(url, schema)
    return await asyncpg.connect(url, server_settings=_server_settings(schema), **kwargs)


async def create_pool(url: str, *, schema: str | None = None, min_size: int = 1,
                      max_size: int = 4, **kwargs: Any) -> asyncpg.Pool:
    """A connection pool whose connections all use ``schema`` (created if missing)."""
    if schema is not None:
        await ensure_schema(url, schema)
    return await asyncpg.create_pool(url, min_size=min_size, max_size=max_size,
                                     server_settings=_server_settings(schema), **kwargs)


@contextlib.asynccontextmanager
async def acquire(executor: Executor) -> AsyncIterator[asyncpg.Connection]:
    """A connection from a pool, or the given connection itself."""
    if isinstance(executor, asyncpg.Pool):
        async with executor.acquire() as conn:
            yield conn
    else:
        yield executor
