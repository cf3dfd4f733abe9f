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

_SCHEMA_NAME = r"^[a-z_][a-z0-9_]{0,62}$"


def _server_settings(schema: str | None) -> dict[str, str]:
    settings = {"application_name": "refineryiq-edge"}
    if schema is not None:
        settings["search_path"] = f'"{schema}", public'
    return settings


async def ensure_schema(url: str, schema: str) -> None:
    """Create ``schema`` if it does not exist (names: lower-case letters, digits, '_')."""
    if not re.match(_SCHEMA_NAME, schema):
        raise ValueError(f"database schema name {schema!r} must match {_SCHEMA_NAME}")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        await conn.close()


async def connect(url: str, *, schema: str | None = None, **kwargs: Any) -> asyncpg.Connection:
    """One connection whose search_path is ``schema`` (created if missing) then public."""
    if schema is not None:
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
