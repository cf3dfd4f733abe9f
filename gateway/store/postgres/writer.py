"""The historian writer: drains the embedded store into PostgreSQL/TimescaleDB, in order.

Each chunk of pending batches is binary-COPYed straight into process_data (into its day's
partition when it holds one day) in one transaction that also advances the gateway's
``forwarding_cursor`` row (cursor.py). Only after that commit does the embedded store's
forwarded id advance; at every (re)connect the writer first tells the store what the
cursor says is committed. Nothing is lost (the store keeps unforwarded batches) and
nothing is written twice (no chunk is sent past the cursor), without a unique key.

The next chunk is read and encoded (in a worker thread) while the current one is being
COPYed. While a COPY waits (a stalled historian) the look-ahead is prepared again as the
store fills, so a full chunk is ready when the COPY commits; a look-ahead that found nothing
is followed by a fresh read at once, never by an idle poll. Latest values and rollups are folded in by ``run_maintenance`` (derived.py), on
its own connection, so the write transaction is only the COPY.

One cohesive thing, kept in one module (~430 lines): the forwarding loop, its reconnects and
its statistics are one state machine over one connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

import asyncpg
import numpy as np
import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from gateway.store.embedded_rows import StoredBatch
from gateway.store.postgres import cursor as fwd
from gateway.store.postgres.catalog_sync import GatewayIdentityError, sync_catalog
from gateway.store.postgres.connection import connect
from gateway.store.postgres.copy_binary import ROW_COLUMNS, Columns, RowEncoder
from gateway.store.postgres.derived import fold_new_chunks
from gateway.store.postgres.migrate import migrate, storage_backend
from gateway.store.postgres.policy import DEFAULT_RETENTION, Backend, RetentionPolicy
from gateway.store.postgres.retention import ensure_partitions, maintain
from plant.catalog import Catalog

log = structlog.get_logger(__name__)

_DAY_S = 86_400.0
# Key under which the embedded store keeps its identity for the forwarding cursor.
STORE_ID_KEY = "historian.store_id"
# Window over which the write rate is reported.
RATE_WINDOW_S = 10.0


class ForwardBuffer(Protocol):
    """What the writer needs of the embedded store (gateway.store.embedded.EmbeddedStore)."""

    @property
    def forwarded_id(self) -> int: ...

    @property
    def backlog(self): ...  # has .batches and .values

    async def pending(self, after_id: int, max_values: int) -> list[StoredBatch]: ...

    async def set_forwarded(self, upto_id: int) -> None: ...

    async def get_state(self, key: str) -> bytes | str | None: ...

    async def put_state(self, key: str, value: bytes | str) -> None: ...


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
    rows_written: int = 0  # rows COPYed into process_data
    rows_duplicate: int = 0  # values the cursor showed already committed (crash recovery)
    rows_unmapped: int = 0  # tag indices outside the catalog (dropped, logged)
    values_per_s: float = 0.0  # rows written over the last RATE_WINDOW_S
    chunks_written: int = 0
    forwarded_id: int = 0
    connects: int = 0
    last_commit_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    rows_folded: int = 0  # raw rows folded into latest/rollups by maintenance
    last_fold_at: float | None = None
    maintenance_error: str | None = None
    # Cumulative wall seconds by forwarding stage (the read and encode of the next chunk
    # overlap the current COPY, so they need not add up to the elapsed time).
    read_s: float = 0.0  # embedded store: pending batches read
    encode_s: float = 0.0  # binary COPY stream built (worker thread)
    copy_s: float = 0.0  # transaction: cursor advance, COPY, commit
    mark_s: float = 0.0  # embedded store: forwarded id advanced

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Pending batches read and encoded, ready to COPY."""

    last_id: int
    chunk_seq: int
    oldest_scan_start: float
    rows: int
    unmapped: int
    payload: bytes
    days: tuple[int, ...]  # UTC days (epoch s // 86400) of the rows


# Errors after which the session is abandoned and the writer reconnects.
_SESSION_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
                   ConnectionError, fwd.CursorConflictError, GatewayIdentityError)


class DatabaseWriter:
    """Forwards the embedded store's batches to the historian until cancelled."""

    def __init__(self, url: str, store: ForwardBuffer, catalog: Catalog, gateway_id: str,
                 batch_rows: int = 100_000, *, site: str = "", schema: str | None = None,
                 migrate_on_start: bool = True, timescale: bool | None = None,
                 retention: RetentionPolicy = DEFAULT_RETENTION, idle_poll_s: float = 0.2,
                 idle_check_s: float = 5.0, retry_initial_s: float = 0.5,
                 retry_max_s: float = 30.0, command_timeout_s: float = 60.0,
                 fold_interval_s: float = 60.0, maintenance_interval_s: float = 3600.0,
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
        self._fold_interval_s = fold_interval_s
        self._maintenance_interval_s = maintenance_interval_s
        self._clock = clock
        self._n_tags = len(catalog.tags)
        self._encoder = RowEncoder(gateway_id, [t.id for t in catalog.tags])
        self._backend: Backend | None = None
        self._store_id: str | None = None
        self._cursor: fwd.Cursor | None = None
        self._partition_days: set[int] = set()
        self._failures = 0
        self._commits: deque[tuple[float, int]] = deque()
        self._migrated = asyncio.Event()
        self._catalog_synced = asyncio.Event()

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

    async def _connect(self) -> asyncpg.Connection:
        return await connect(self.url, schema=self.schema, timeout=self._command_timeout_s,
                             command_timeout=self._command_timeout_s)

    async def _open_session(self, migrate_schema: bool = True) -> asyncpg.Connection:
        conn = await self._connect()
        try:
            if self._migrate_on_start and migrate_schema:
                await migrate(conn, timescale=self._timescale, retention=self._retention,
                              gateway_id=self.gateway_id, site=self.site)
            self._backend = await storage_backend(conn)
            self._migrated.set()
            await sync_catalog(conn, self.catalog, gateway_id=self.gateway_id, site=self.site)
            self._catalog_synced.set()
            self._partition_days.clear()
            await self._resume(conn)
        except BaseException:
            conn.terminate()
            raise
        self.stats.connects += 1
        self.stats.backend = self._backend.value
        self.stats.state = WriterState.CONNECTED
        log.info("historian_writer.connected", backend=self._backend.value,
                 gateway_id=self.gateway_id, forwarded_id=self.store.forwarded_id)
        return conn

    async def flush(self, timeout_s: float) -> bool:
        """Forward what is still pending, for at most ``timeout_s`` (at shutdown, after
        ``run`` was cancelled). True if nothing is left; otherwise the store keeps the rest
        for the next start."""
        async def drain_all() -> None:
            conn = await self._open_session(migrate_schema=False)
            try:
                assert self._cursor is not None
                while chunk := await self._prepare(self._cursor.batch_id,
                                                   self._cursor.chunk_seq + 1):
                    await self._write_chunk(conn, chunk)
                    await self._mark_forwarded(chunk.last_id)
            finally:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1.0)
        try:
            await asyncio.wait_for(drain_all(), timeout_s)
        except (TimeoutError, *_SESSION_ERRORS) as exc:
            log.warning("historian_writer.flush_incomplete", error=f"{type(exc).__name__}: {exc}",
                        backlog_values=self.store.backlog.values)
            return False
        finally:
            self.stats.state = WriterState.STOPPED
        return True

    async def wait_migrated(self) -> None:
        """Return once this writer has migrated (or found migrated) the historian schema."""
        await self._migrated.wait()

    async def wait_catalog_synced(self) -> None:
        """Return once this writer has also synced the gateway's catalog (units, tags,
        equipment: what the forwarded KPI, alarm and prediction rows refer to)."""
        await self._catalog_synced.wait()

    async def _store_identity(self) -> str:
        """The embedded store's identity, made once and kept in the store itself."""
        if self._store_id is None:
            stored = await self.store.get_state(STORE_ID_KEY)
            if stored is None:
                stored = f"{socket.gethostname()}:{time.time_ns()}"
                await self.store.put_state(STORE_ID_KEY, stored)
            self._store_id = stored.decode() if isinstance(stored, bytes) else stored
        return self._store_id

    async def _resume(self, conn: asyncpg.Connection) -> None:
        """Adopt the cursor row; batches it shows committed are marked forwarded here."""
        forwarded = self.store.forwarded_id
        self._cursor = await fwd.adopt(conn, self.gateway_id, await self._store_identity(),
                                       forwarded)
        if self._cursor.adoption in (fwd.Adoption.NEW_STORE, fwd.Adoption.DATABASE_BEHIND):
            log.warning("historian_writer.cursor_reset", adoption=self._cursor.adoption.value,
                        gateway_id=self.gateway_id, store_forwarded_id=forwarded)
        if self._cursor.batch_id > forwarded:
            before = self.store.backlog.values
            await self._mark_forwarded(self._cursor.batch_id)
            skipped = int(before - self.store.backlog.values)
            self.stats.rows_duplicate += skipped
            log.info("historian_writer.skipped_committed", upto_id=self._cursor.batch_id,
                     values=skipped)

    # -- draining --------------------------------------------------------------------------

    async def _drain(self, conn: asyncpg.Connection) -> None:
        assert self._cursor is not None
        idle_since = self._clock()
        ahead: asyncio.Task[_Chunk | None] | None = None
        try:
            while True:
                looked_ahead = ahead is not None
                chunk = await (ahead or self._prepare(self._cursor.batch_id,
                                                      self._cursor.chunk_seq + 1))
                ahead = None
                if chunk is None and looked_ahead:
                    # The look-ahead read the store when the last COPY began; after a long
                    # COPY (a stalled historian) a backlog waits: read again now, not after
                    # an idle poll.
                    chunk = await self._prepare(self._cursor.batch_id, self._cursor.chunk_seq + 1)
                if chunk is None:
                    self._note_idle()
                    now = self._clock()
                    if now - idle_since >= self._idle_check_s:
                        await conn.execute("SELECT 1")  # notice a dead connection while idle
                        idle_since = now
                    await asyncio.sleep(self._idle_poll_s)
                    continue
                self._note_lag(chunk.oldest_scan_start)
                # Read and encode the next chunk while this one is COPYed.
                copied = asyncio.Event()
                ahead = asyncio.create_task(self._look_ahead(
                    chunk.last_id, chunk.chunk_seq + 1, copied, chunk.rows + chunk.unmapped))
                try:
                    await self._write_chunk(conn, chunk)
                finally:
                    copied.set()
                await self._mark_forwarded(chunk.last_id)
                idle_since = self._clock()
        finally:
            if ahead is not None:
                ahead.cancel()
                with contextlib.suppress(BaseException):
                    await ahead

    async def _look_ahead(self, after_id: int, chunk_seq: int, copied: asyncio.Event,
                          in_flight: int) -> _Chunk | None:
        """The chunk after ``after_id``, prepared while the one before it (``in_flight``
        values) is COPYed. While that COPY has not committed (a stalled historian) and the
        chunk is short of ``batch_rows``, it is prepared again whenever the store has
        gathered twice as many values, so that a full chunk is ready when the COPY ends
        (at most about twice the final chunk's read and encode work)."""
        seen = self.store.backlog.values - in_flight  # values waiting behind the COPY
        chunk = await self._prepare(after_id, chunk_seq)
        while chunk is None or chunk.rows + chunk.unmapped < self.batch_rows:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(copied.wait(), self._idle_poll_s)
            if copied.is_set():
                break
            waiting = self.store.backlog.values - in_flight
            if waiting >= max(2 * seen, 1):
                seen = waiting
                chunk = await self._prepare(after_id, chunk_seq)
        return chunk

    async def _prepare(self, after_id: int, chunk_seq: int) -> _Chunk | None:
        started = time.perf_counter()
        pending = await self.store.pending(after_id, self.batch_rows)
        self.stats.read_s += time.perf_counter() - started
        self._note_backlog()
        if not pending:
            return None
        return await asyncio.to_thread(self._encode, pending, chunk_seq)

    def _encode(self, pending: list[StoredBatch], chunk_seq: int) -> _Chunk:
        started = time.perf_counter()
        try:
            return self._encode_chunk(pending, chunk_seq)
        finally:
            self.stats.encode_s += time.perf_counter() - started

    def _encode_chunk(self, pending: list[StoredBatch], chunk_seq: int) -> _Chunk:
        columns = Columns.of([sb.batch for sb in pending])
        known = (columns.tag_index >= 0) & (columns.tag_index < self._n_tags)
        unmapped = int(len(known) - np.count_nonzero(known))
        if unmapped:
            columns = columns.select(known)
        days = tuple(int(d) for d in np.unique(np.floor(columns.source_ts / _DAY_S)))
        return _Chunk(pending[-1].id, chunk_seq, pending[0].batch.scan_start, len(columns),
                      unmapped, self._encoder.encode(columns, chunk_seq), days)

    async def _write_chunk(self, conn: asyncpg.Connection, chunk: _Chunk) -> None:
        assert self._cursor is not None
        if chunk.unmapped:
            self.stats.rows_unmapped += chunk.unmapped
            log.error("historian_writer.unmapped_tags", values=chunk.unmapped,
                      upto_batch_id=chunk.last_id)
        target = "process_data"
        if self._backend is Backend.PLAIN and chunk.rows:
            await self._ensure_partitions(conn, chunk.days)
            if len(chunk.days) == 1:  # skip per-row partition routing
                target = datetime.fromtimestamp(chunk.days[0] * _DAY_S, UTC).strftime(
                    "process_data_%Y%m%d")
        started = time.perf_counter()
        async with conn.transaction():
            cursor = await fwd.advance(conn, self.gateway_id, await self._store_identity(),
                                       self._cursor, chunk.last_id)
            if chunk.rows:
                await conn.copy_to_table(target, source=memoryview(chunk.payload),
                                         columns=ROW_COLUMNS, format="binary")
        self.stats.copy_s += time.perf_counter() - started
        self._cursor = cursor
        now = self._clock()
        self.stats.rows_written += chunk.rows
        self.stats.chunks_written += 1
        self.stats.last_commit_at = now
        self._note_rate(now, chunk.rows)
        self._failures = 0

    async def _mark_forwarded(self, upto_id: int) -> None:
        """Advance the store's cursor; called only after the chunk's commit."""
        started = time.perf_counter()
        await self.store.set_forwarded(upto_id)
        self.stats.mark_s += time.perf_counter() - started
        self._note_backlog()

    async def _ensure_partitions(self, conn: asyncpg.Connection, days: tuple[int, ...]) -> None:
        for day in sorted(set(days) - self._partition_days):
            start = datetime.fromtimestamp(day * _DAY_S, UTC)
            await ensure_partitions(conn, start, start)
            self._partition_days.add(day)

    # -- maintenance -----------------------------------------------------------------------

    async def fold_once(self, conn: asyncpg.Connection) -> int:
        """Fold this gateway's new chunks into the latest-value table and rollups now."""
        backend = self._backend or await storage_backend(conn)
        reports = await fold_new_chunks(conn, backend, self.gateway_id)
        rows = sum(r.rows for r in reports)
        self.stats.rows_folded += rows
        self.stats.last_fold_at = self._clock()
        return rows

    async def run_maintenance(self) -> None:
        """Every ``fold_interval_s``, fold new chunks (derived.py); every
        ``maintenance_interval_s``, apply retention and create partitions ahead. On its own
        connection; waits until the writer has migrated the schema; returns only by
        cancellation."""
        await self._migrated.wait()
        next_retention = 0.0
        while True:
            try:
                conn = await self._connect()
                try:
                    while True:
                        await self.fold_once(conn)
                        if self._clock() >= next_retention:
                            report = await maintain(conn)
                            next_retention = self._clock() + self._maintenance_interval_s
                            if report.partitions_dropped:
                                self._partition_days.clear()  # a late backlog recreates them
                            log.info("historian_writer.maintenance", **asdict(report))
                        self.stats.maintenance_error = None
                        await asyncio.sleep(self._fold_interval_s)
                finally:
                    with contextlib.suppress(Exception):
                        conn.terminate()
            except _SESSION_ERRORS as exc:
                self.stats.maintenance_error = f"{type(exc).__name__}: {exc}"
                log.warning("historian_maintenance.failed", error=self.stats.maintenance_error)
                await asyncio.sleep(min(self._fold_interval_s, self._retry_max_s))

    # -- counters --------------------------------------------------------------------------

    def _note_rate(self, now: float, rows: int) -> None:
        self._commits.append((now, rows))
        while self._commits and self._commits[0][0] < now - RATE_WINDOW_S:
            self._commits.popleft()
        self.stats.values_per_s = sum(r for _, r in self._commits) / RATE_WINDOW_S

    def _note_idle(self) -> None:
        self.stats.lag_s = 0.0
        self._note_rate(self._clock(), 0)

    def _note_backlog(self) -> None:
        backlog = self.store.backlog
        self.stats.backlog_batches = int(backlog.batches)
        self.stats.backlog_values = int(backlog.values)
        self.stats.forwarded_id = self.store.forwarded_id

    def _note_lag(self, oldest_scan_start: float) -> None:
        self.stats.lag_s = max(0.0, self._clock() - oldest_scan_start)

    async def _refresh_backlog(self) -> None:
        with contextlib.suppress(Exception):
            pending = await self.store.pending(self.store.forwarded_id, 1)
            self._note_backlog()
            if pending:
                self._note_lag(pending[0].batch.scan_start)
