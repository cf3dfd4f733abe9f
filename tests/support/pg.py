"""Fixtures for integration tests against the real PostgreSQL: one fresh schema per test.

Test modules take the fixtures with ``from tests.support.pg import *  # noqa: F403``
(pytest finds fixtures by name in the module), and the helpers by explicit import.
TEST_DATABASE_URL overrides the default loopback database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from drivers.batch import Batch
from drivers.quality import Quality, Reason
from gateway.store.embedded import EmbeddedStore
from gateway.store.postgres.connection import DDL_LOCK, connect
from gateway.store.postgres.migrate import migrate
from gateway.store.postgres.writer import DatabaseWriter
from plant.catalog import Catalog
from plant.load import load_plant

__all__ = ["catalog", "pg_conn", "pg_migrated", "pg_schema", "store"]

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
# The gateway id of drain()'s writer (DatabaseReads of its rows use it).
GATEWAY_ID = "edge-test"
PLANT_FILE = Path(__file__).resolve().parents[2] / "config" / "plant.toml"


@contextlib.asynccontextmanager
async def temporary_schema(prefix: str = "test") -> AsyncIterator[str]:
    """A unique schema name starting with ``prefix``; the schema (if created) is dropped on exit."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        await drop_schema(schema)


async def drop_schema(schema: str) -> None:
    """DROP SCHEMA ... CASCADE under the database-wide DDL lock: TimescaleDB's catalog is shared
    by every schema, so dropping hypertables while another test's migration creates some fails
    with 'tuple concurrently deleted'. Schemas are created under the same lock
    (connection.ensure_schema) and migrations hold it (migrate.ddl_lock)."""
    conn = await asyncpg.connect(TEST_DATABASE_URL)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", DDL_LOCK)
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    """A unique schema name; the schema (if created) is dropped after the test."""
    async with temporary_schema() as schema:
        yield schema


@pytest.fixture
async def pg_conn(pg_schema: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection whose search_path is the test's own schema (empty)."""
    conn = await connect(TEST_DATABASE_URL, schema=pg_schema)
    yield conn
    await conn.close()


@pytest.fixture
async def pg_migrated(pg_conn: asyncpg.Connection) -> asyncpg.Connection:
    """The test's schema migrated for plain PostgreSQL."""
    await migrate(pg_conn, timescale=False)
    return pg_conn


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The plant catalog from config/plant.toml plus 100 synthetic tags."""
    return Catalog.build(load_plant(PLANT_FILE), synthetic_tags=100)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EmbeddedStore]:
    """An embedded store with forwarding on, in the test's temporary directory."""
    store = EmbeddedStore(tmp_path / "store.sqlite", retention_s=86_400 * 365,
                          max_bytes=1_000_000_000, forwarding=True)
    await store.open()
    yield store
    await store.close()


def scan(tag_index: np.ndarray, ts: float, values: np.ndarray, quality: np.ndarray | None = None,
         group: str = "test-group") -> Batch:
    """A Batch of one scan at ``ts`` (good quality unless given)."""
    n = len(tag_index)
    if quality is None:
        quality = np.full(n, Quality.GOOD, dtype=np.uint8)
    reason = np.where(quality == Quality.GOOD, Reason.NONE, Reason.DEVICE_BAD).astype(np.uint8)
    return Batch.build(group, "test-device", ts, ts, np.asarray(tag_index, dtype=np.int32),
                       np.asarray(values, dtype=np.float64), quality, reason)


def ramp_scans(tag_index: np.ndarray, start: float, count: int, period_s: float = 1.0) -> list[Batch]:
    """``count`` scans of ``tag_index``; tag k at scan j has value 1000*k + j."""
    return [scan(tag_index, start + j * period_s, 1000.0 * tag_index + j) for j in range(count)]


async def drain(store: EmbeddedStore, catalog: Catalog, schema: str, batch_rows: int = 2,
                timescale: bool = False, gateway_id: str = GATEWAY_ID,
                site: str = "") -> DatabaseWriter:
    """Run a writer (plain back-end unless ``timescale``) until everything in ``store`` is forwarded."""
    writer = DatabaseWriter(TEST_DATABASE_URL, store, catalog, gateway_id, batch_rows, site=site,
                            schema=schema, timescale=timescale, idle_poll_s=0.02)
    last = store.forwarded_id + store.backlog.batches  # ids are consecutive from 1
    task = asyncio.create_task(writer.run())
    try:
        while store.forwarded_id < last:
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return writer
