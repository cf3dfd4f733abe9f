"""The historian writer: drains the embedded store into PostgreSQL/TimescaleDB, in order.

Each chunk of pending batches is COPYed (binary) into a temporary staging table and moved
into process_data by one INSERT ... ON CONFLICT DO NOTHING in the same transaction; only
after that commit does the embedded store's forwarded cursor advance. A crash between the
commit and ``set_forwarded`` therefore replays a chunk that the key turns into a no-op:
nothing is lost (the store keeps unforwarded batches) and nothing is duplicated.
While the database is unreachable the writer retries with exponential backoff and keeps
the counters /health reports (state, backlog, lag, last error).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

import asyncpg
import numpy as np
import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from gateway.catalog import Catalog
from gateway.store.embedded_rows import StoredBatch
from gateway.store.postgres.catalog_sync import sync_catalog
from gateway.store.postgres.connection import connect
from gateway.store.postgres.copy_binary import STAGING_COLUMNS, STAGING_DDL, Columns, encode
from gateway.store.postgres.ingest_sql import TAG_MAP_DDL, ingest_statement
from gateway.store.postgres.migrate import migrate, storage_backend
from gateway.store.postgres.policy import DEFAULT_RETENTION, Backend, RetentionPolicy
from gateway.store.postgres.retention import ensure_partitions, maintain

log = structlog.get_logger(__name__)

_DAY_S = 86_400.0


class ForwardBuffer(Protocol):
    """What the writer needs of the embedded store (gateway.store.embedded.EmbeddedStore)."""

    @property
    def forwarded_id(self) -> int: ...

    @property
    def backlog(self): ...  # has .batches and .values

    async def pending(self, after_id: int, max_values: int) -> list[StoredBatch]: ...

    async def set_forwarded(self, upto_id: int) -> None: ...


class WriterState(StrEnum):
    STARTING = "starting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    STOPPED = "stopped"


@dataclass
class WriterStats:
    """Counters for /health and /metrics. Times are epoch seconds."""

    state: WriterState = WriterState.STARTING
    backend: str | None = None
    backlog_batches: int = 0
    backlog_values: int = 0
    lag_s: float = 0.0  # now - scan start of the oldest unforwarded batch
    rows_written: int = 0  # rows new to process_data
    rows_duplicate: int = 0  # rows already there (replays after a crash)
    rows_unmapped: int = 0  # tag indices outside the catalog (dropped, logged)
    chunks_written: int = 0
    forwarded_id: int = 0
    connects: int = 0
    last_commit_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# Errors after which the session is abandoned and the writer reconnects.
_SESSION_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
                   ConnectionError)


class DatabaseWriter:
    """Forwards the embedded store's batches to the historian until cancelled."""

    def __init__(self, url: str, store: ForwardBuffer, catalog: Catalog, gateway_id: str,
                 batch_rows: int = 50_000, *, site: str = "", schema: str | None = None,
                 migrate_on_start: bool = True, timescale: bool | None = None,
                 retention: RetentionPolicy = DEFAULT_RETENTION, idle_poll_s: float = 0.2,
                 idle_check_s: float = 5.0, retry_initial_s: float = 0.5,
                 retry_max_s: float = 30.0, command_timeout_s: float = 60.0,
                 maintenance_interval_s: float = 3600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.store = store
        self.catalog = catalog
        self.gateway_id = gateway_id
        self.batch_rows = batch_rows
        self.site = site
        self.schema = schema
        self.stats = WriterStats()
        self._migrate_on_start = migrate_on_start
        self._timescale = timescale
        self._retention = retention
        self._idle_poll_s = idle_poll_s
        self._idle_check_s = idle_check_s
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._command_timeout_s = command_timeout_s
        self._maintenance_interval_s = maintenance_interval_s
        self._clock = clock
        self._tag_ids = np.array([t.id for t in catalog.tags], dtype=object)
        self._backend: Backend | None = None
        self._sql = ""
        self._partition_days: set[int] = set()
        self._next_maintenance = 0.0
        self._failures = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, drain, reconnect on failure; returns only by cancellation."""
        try:
            while True:
                conn = await self._connect_with_backoff()
                try:
                    await self._drain(conn)
                except _SESSION_ERRORS as exc:
                    self._failed(exc)
                finally:
                    with contextlib.suppress(Exception):
                        conn.terminate()
                if self._failures:
                    await asyncio.sleep(self._backoff(self._failures))
        finally:
            self.stats.state = WriterState.STOPPED

    def _backoff(self, attempt: int) -> float:
        return min(self._retry_max_s, self._retry_initial_s * 2 ** max(0, attempt - 1))

    def _failed(self, exc: BaseException) -> None:
        self._failures += 1
        self.stats.state = WriterState.DISCONNECTED
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        self.stats.last_error_at = self._clock()
        log.warning("historian_writer.failed", error=self.stats.last_error,
                    backlog_values=self.stats.backlog_values, lag_s=round(self.stats.lag_s, 1))

    async def _before_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None:
            self._failed(exc)
        await self._refresh_backlog()

    async def _connect_with_backoff(self) -> asyncpg.Connection:
        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=self._retry_initial_s, max=self._retry_max_s),
            retry=retry_if_exception_type(_SESSION_ERRORS), before_sleep=self._before_retry,
            reraise=True)
        async for attempt in retrying:
            with attempt:
                return await self._open_session()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _open_session(self) -> asyncpg.Connection:
        conn = await connect(self.url, schema=self.schema, timeout=self._command_timeout_s,
                             command_timeout=self._command_timeout_s)
        try:
            if self._migrate_on_start:
                await migrate(conn, timescale=self._timescale, retention=self._retention)
            self._backend = await storage_backend(conn)
            self._sql = ingest_statement(self._backend)
            await sync_catalog(conn, self.catalog, gateway_id=self.gateway_id, site=self.site)
            await conn.execute(STAGING_DDL)
            await conn.execute(TAG_MAP_DDL)
            await conn.execute("TRUNCATE tag_map")
            await conn.copy_records_to_table(
                "tag_map", records=list(enumerate(self._tag_ids.tolist())),
                columns=("tag_index", "tag_id"))
            await conn.execute("ANALYZE tag_map")
            self._partition_days.clear()
            await self._maintain(conn, force=True)
        except BaseException:
            conn.terminate()
            raise
        self.stats.connects += 1
        self.stats.backend = self._backend.value
        self.stats.state = WriterState.CONNECTED
        log.info("historian_writer.connected", backend=self._backend.value,
                 gateway_id=self.gateway_id, forwarded_id=self.store.forwarded_id)
        return conn

    # -- draining --------------------------------------------------------------------------

    async def _drain(self, conn: asyncpg.Connection) -> None:
        idle_since = self._clock()
        while True:
            pending = await self.store.pending(self.store.forwarded_id, self.batch_rows)
            self._note_backlog(pending)
            if not pending:
                now = self._clock()
                if now - idle_since >= self._idle_check_s:
                    await conn.execute("SELECT 1")  # notice a dead connection while idle
                    await self._maintain(conn)
                    idle_since = now
                await asyncio.sleep(self._idle_poll_s)
                continue
            await self._write_chunk(conn, pending)
            await self._mark_forwarded(pending[-1].id)
            await self._maintain(conn)
            idle_since = self._clock()

    async def _write_chunk(self, conn: asyncpg.Connection, pending: list[StoredBatch]) -> None:
        columns = Columns.of([sb.batch for sb in pending])
        known = (columns.tag_index >= 0) & (columns.tag_index < len(self._tag_ids))
        if not known.all():
            unmapped = int((~known).sum())
            self.stats.rows_unmapped += unmapped
            log.error("historian_writer.unmapped_tags", values=unmapped,
                      batch_ids=(pending[0].id, pending[-1].id))
            columns = Columns(*(getattr(columns, f)[known] for f in
                                ("source_ts", "tag_index", "values", "quality", "reason")))
        if len(columns) == 0:
            return
        if self._backend is Backend.PLAIN:
            await self._ensure_partitions(conn, columns.source_ts)
        payload = encode(columns)
        async with conn.transaction():
            await conn.copy_to_table("process_data_staging", source=memoryview(payload),
                                     columns=STAGING_COLUMNS, format="binary")
            inserted = await conn.fetchval(self._sql, self.gateway_id)
        self.stats.rows_written += inserted
        self.stats.rows_duplicate += len(columns) - inserted
        self.stats.chunks_written += 1
        self.stats.last_commit_at = self._clock()
        self._failures = 0

    async def _mark_forwarded(self, upto_id: int) -> None:
        """Advance the store's cursor; called only after the chunk's commit."""
        await self.store.set_forwarded(upto_id)
        self.stats.forwarded_id = upto_id

    async def _ensure_partitions(self, conn: asyncpg.Connection, source_ts: np.ndarray) -> None:
        days = {int(d) for d in np.unique(np.floor(source_ts / _DAY_S))} - self._partition_days
        for day in sorted(days):
            start = datetime.fromtimestamp(day * _DAY_S, UTC)
            await ensure_partitions(conn, start, start)
            self._partition_days.add(day)

    async def _maintain(self, conn: asyncpg.Connection, force: bool = False) -> None:
        now = self._clock()
        if self._backend is not Backend.PLAIN or (not force and now < self._next_maintenance):
            return
        report = await maintain(conn)
        self._next_maintenance = now + self._maintenance_interval_s
        if report.partitions_dropped:
            # A dropped day may be written again by a late backlog: create it anew then.
            self._partition_days.clear()
        log.info("historian_writer.maintenance", **asdict(report))

    # -- counters --------------------------------------------------------------------------

    def _note_backlog(self, pending: list[StoredBatch]) -> None:
        backlog = self.store.backlog
        self.stats.backlog_batches = int(backlog.batches)
        self.stats.backlog_values = int(backlog.values)
        self.stats.forwarded_id = self.store.forwarded_id
        self.stats.lag_s = max(0.0, self._clock() - pending[0].batch.scan_start) if pending else 0.0

    async def _refresh_backlog(self) -> None:
        with contextlib.suppress(Exception):
            self._note_backlog(await self.store.pending(self.store.forwarded_id, 1))
