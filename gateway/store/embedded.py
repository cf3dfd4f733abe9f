"""The embedded store: the gateway's own history, and its store-and-forward buffer.

One SQLite file in the state directory. A scan counts as accepted only once its Batch is
committed here (``append`` returns its id then); the database writer drains it in id order
with ``pending``/``set_forwarded``. Writes go through one SQLite thread, reads through a
second connection (WAL lets them run side by side), so a long history query never delays
the next scan's append. Nothing here blocks the event loop.

One cohesive thing, kept in one module (~450 lines): the store's append, read, forwarding and
state methods share one connection pair and one bookkeeping of what is committed; its schema,
row codec and retention are in ``embedded_schema``, ``embedded_rows`` and ``embedded_retention``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import structlog

from drivers.batch import Batch
from gateway.store.embedded_retention import (
    Deleted,
    delete_older_than,
    delete_oldest_to_fit,
    delete_orphan_tag_sets,
    release_free_pages,
)
from gateway.store.embedded_rows import (
    StoredBatch,
    TagSetCache,
    TagSetIds,
    all_tags,
    insert_batches,
    newest_first,
    read_pending,
    read_tag_history,
)
from gateway.store.embedded_schema import (
    SCHEMA,
    SCHEMA_VERSION,
    MetaKey,
    ensure_incremental_vacuum,
    read_meta,
    write_meta,
)
from gateway.store.history import TagHistory, downsample
from gateway.store.latest import LatestTable, LatestValues
from gateway.store.sqlite_thread import SqliteThread
from gateway.store.tag_registry import SCHEMA as REGISTRY_SCHEMA
from gateway.store.tag_registry import TagRegistry

__all__ = ["Backlog", "EmbeddedStore", "StoreStats", "StoredBatch"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Source timestamps may lag or lead the gateway's scan start (device clocks, subscriptions);
# history looks this far beyond the requested window for scans holding in-window samples.
HISTORY_SCAN_MARGIN_S = 300.0
# Rebuilding the latest-value table at open reads newest-first until every known tag has a
# value or this many values were read (a tag dropped from the configuration stays unknown).
LATEST_REBUILD_MAX_VALUES = 2_000_000
# The WAL is truncated back to this size after checkpoints.
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
DEFAULT_RETENTION_INTERVAL_S = 60.0


@dataclass(frozen=True, slots=True)
class Backlog:
    """Batches and values appended but not yet forwarded to the database."""

    batches: int = 0
    values: int = 0


@dataclass(frozen=True, slots=True)
class StoreStats:
    """What ``stats()`` reports (as a dict with these keys)."""

    rows: int
    values: int
    bytes_on_disk: int
    oldest_ts: float | None
    newest_ts: float | None
    forwarding: bool
    forwarded_id: int
    backlog_batches: int
    backlog_values: int
    dropped_unforwarded_batches: int
    dropped_unforwarded_values: int


@dataclass(slots=True)
class _Counters:
    rows: int = 0
    values: int = 0
    backlog_batches: int = 0
    backlog_values: int = 0
    dropped_batches: int = 0
    dropped_values: int = 0
    forwarded_id: int = 0


class EmbeddedStore:
    """Local history and store-and-forward buffer of Batches in one SQLite file.

    ``retention_s`` and ``max_bytes`` bound what is kept (see ``enforce_retention``). With
    ``forwarding`` on, batches not yet forwarded are kept past their age and only lost when
    the size limit forces it, and every such loss is counted and logged.
    """

    def __init__(self, path: Path, retention_s: float, max_bytes: int, forwarding: bool = False,
                 durable: bool = False, tag_ids: Sequence[str] | None = None) -> None:
        """``tag_ids``: the catalog's tag ids in index order. Given, the store numbers tags
        stably across catalog edits (see ``tag_registry``); omitted, catalog indices are
        stored as they are."""
        self.path = Path(path)
        self._tag_ids = list(tag_ids) if tag_ids is not None else None
        self._registry: TagRegistry | None = None
        self.retention_s = retention_s
        self.max_bytes = max_bytes
        self.forwarding = forwarding
        self._writer = SqliteThread(self.path, SCHEMA + REGISTRY_SCHEMA, durable=durable, name="store-write")
        self._reader = SqliteThread(self.path, (), durable=durable, name="store-read")
        self._latest = LatestTable()
        self._counters = _Counters()
        self._tag_set_ids = TagSetIds()  # writer thread only
        self._read_tag_sets = TagSetCache()  # reader thread only

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Open (creating if needed) the file and rebuild the in-memory tables."""
        await self._writer.open()
        self._counters, self._latest = await self._writer.call(self._load)
        await self._reader.open()
        log.info("embedded_store.opened", path=str(self.path), rows=self._counters.rows,
                 values=self._counters.values, forwarded_id=self._counters.forwarded_id)

    async def bind_catalog(self, tag_ids: Sequence[str]) -> None:
        """Adopt a new catalog's tag ids (after a configuration reload), numbering new tags."""
        self._tag_ids = list(tag_ids)
        self._registry = await self._writer.transaction(
            lambda conn: TagRegistry.bind(conn, self._tag_ids))

    async def close(self) -> None:
        """Close both connections; every committed append is already on disk."""
        await self._reader.close()
        await self._writer.close()

    def _remove_unreadable(self, conn: sqlite3.Connection) -> None:
        """Remove batches whose tag set is missing (an earlier version could leave them after
        a full disk): they cannot be decoded, and kept they would stop every start. Those not
        yet forwarded count as dropped, like any other loss."""
        dangling = "FROM batch WHERE tag_set_id NOT IN (SELECT id FROM tag_set)"
        forwarded_id = read_meta(conn, MetaKey.FORWARDED_ID)
        batches, values, unforwarded_batches, unforwarded_values = conn.execute(
            f"SELECT count(*), coalesce(sum(n_values), 0), coalesce(sum(id > ?), 0),"
            f" coalesce(sum(CASE WHEN id > ? THEN n_values ELSE 0 END), 0) {dangling}",
            (forwarded_id, forwarded_id)).fetchone()
        if not batches:
            return
        conn.execute(f"DELETE {dangling}")
        if self.forwarding and unforwarded_batches:
            for key, lost in ((MetaKey.DROPPED_UNFORWARDED_BATCHES, unforwarded_batches),
                              (MetaKey.DROPPED_UNFORWARDED_VALUES, unforwarded_values)):
                write_meta(conn, key, read_meta(conn, key) + lost)
        log.error("embedded_store.unreadable_batches_removed", path=str(self.path),
                  batches=batches, values=values, unforwarded_batches=unforwarded_batches,
                  reason="their tag set is missing, so their values cannot be decoded")

    def _load(self, conn: sqlite3.Connection) -> tuple[_Counters, LatestTable]:
        ensure_incremental_vacuum(conn)
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        conn.execute("BEGIN IMMEDIATE")
        write_meta(conn, MetaKey.SCHEMA_VERSION, SCHEMA_VERSION)
        if self._tag_ids is not None:
            self._registry = TagRegistry.bind(conn, self._tag_ids)
        self._remove_unreadable(conn)
        conn.execute("COMMIT")
        counters = _Counters(
            forwarded_id=read_meta(conn, MetaKey.FORWARDED_ID),
            dropped_batches=read_meta(conn, MetaKey.DROPPED_UNFORWARDED_BATCHES),
            dropped_values=read_meta(conn, MetaKey.DROPPED_UNFORWARDED_VALUES))
        counters.rows, counters.values = conn.execute(
            "SELECT count(*), coalesce(sum(n_values), 0) FROM batch").fetchone()
        if self.forwarding:
            counters.backlog_batches, counters.backlog_values = conn.execute(
                "SELECT count(*), coalesce(sum(n_values), 0) FROM batch WHERE id > ?",
                (counters.forwarded_id,)).fetchone()
        return counters, _rebuild_latest(conn)

    # -- writes ----------------------------------------------------------------------------

    async def append(self, batch: Batch) -> int:
        """Commit one Batch; returns its sequence id (the scan is accepted from then on)."""
        return (await self.append_many([batch]))[0]

    async def append_many(self, batches: Sequence[Batch]) -> list[int]:
        """Commit several Batches in one transaction (cheaper when scans queue up)."""
        if not batches:
            return []
        if self._registry is not None:
            batches = [self._registry.batch_to_store(b) for b in batches]
        # A rolled-back append (a full disk fails the COMMIT) takes its new tag sets with it:
        # the writer's cache must not keep their ids, or later batches would point at nothing.
        ids = await self._writer.transaction(
            lambda conn: insert_batches(conn, batches, self._tag_set_ids),
            on_abort=self._tag_set_ids.clear)
        n_values = sum(len(batch) for batch in batches)
        for batch in batches:
            self._latest.update(batch)
        self._counters.rows += len(batches)
        self._counters.values += n_values
        if self.forwarding:
            self._counters.backlog_batches += len(batches)
            self._counters.backlog_values += n_values
        return ids

    async def put_state(self, key: str, value: bytes | str) -> None:
        """Persist a small named value for another module (alarm state, cursors)."""
        await self._writer.transaction(lambda conn: conn.execute(
            "INSERT INTO state (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value)))

    async def get_state(self, key: str) -> bytes | str | None:
        """The value last stored under ``key`` (same type as put), or None."""
        row = await self._reader.call(lambda conn: conn.execute(
            "SELECT value FROM state WHERE key = ?", (key,)).fetchone())
        return None if row is None else row[0]

    async def delete_state(self, key: str) -> None:
        """Forget ``key``."""
        await self._writer.transaction(
            lambda conn: conn.execute("DELETE FROM state WHERE key = ?", (key,)))

    # -- reads -----------------------------------------------------------------------------

    async def latest(self, tag_indices: np.ndarray | None = None) -> LatestValues:
        """Last known sample of each tag in ``tag_indices`` (default: every tag with one)."""
        reg = self._registry
        if reg is None:
            return self._latest.snapshot(tag_indices)
        if tag_indices is None:
            snap = self._latest.snapshot()
            catalog_index = reg.lookup_catalog(snap.tag_index)
            keep = catalog_index >= 0
            return LatestValues(catalog_index[keep], snap.source_ts[keep], snap.values[keep],
                                snap.quality[keep], snap.reason[keep])
        snap = self._latest.snapshot(reg.to_store[np.asarray(tag_indices)])
        return snap._replace(tag_index=np.asarray(tag_indices, dtype=np.int32))

    async def history(self, tag_index: int, start: float, end: float,
                      max_points: int | None = None) -> TagHistory:
        """Samples of one tag with source time in ``[start, end)``, ordered by time; reduced
        to at most ``max_points`` time buckets when there are more."""
        if max_points is not None and max_points < 1:
            raise ValueError(f"max_points must be at least 1, got {max_points}")

        catalog_index = tag_index
        if self._registry is not None:
            tag_index = int(self._registry.to_store[tag_index])

        def query(conn: sqlite3.Connection) -> TagHistory:
            raw = read_tag_history(conn, tag_index, start - HISTORY_SCAN_MARGIN_S,
                                   end + HISTORY_SCAN_MARGIN_S, self._read_tag_sets)
            ts = raw.source_ts
            keep = np.flatnonzero((ts >= start) & (ts < end))
            keep = keep[np.argsort(ts[keep], kind="stable")]
            history = TagHistory(catalog_index, ts[keep], raw.values[keep], raw.quality[keep],
                                 raw.reason[keep])
            return history if max_points is None else downsample(history, start, end, max_points)

        return await self._reader.call(_in_read_transaction(query))

    async def recent(self, limit: int, tag_indices: np.ndarray | None = None,
                     max_batches: int = 10_000) -> Batch | None:
        """The newest ``limit`` samples (of ``tag_indices``, default all tags), newest first,
        as one Batch-shaped set of columns — one reader call, reading newest batches only
        until enough samples are found (at most ``max_batches``)."""
        wanted = None if tag_indices is None else np.asarray(tag_indices, dtype=np.int64)
        if wanted is not None and self._registry is not None:
            wanted = self._registry.to_store[wanted].astype(np.int64)

        def query(conn: sqlite3.Connection) -> list[Batch]:
            out, found = [], 0
            for n, batch in enumerate(newest_first(conn, self._read_tag_sets)):
                if n >= max_batches or found >= limit:
                    break
                keep = (np.ones(len(batch), bool) if wanted is None
                        else np.isin(batch.tag_index, wanted))
                if keep.any():
                    out.append((batch, keep))
                    found += int(keep.sum())
            return out

        parts = await self._reader.call(_in_read_transaction(query))
        if not parts:
            return None
        idx = np.concatenate([b.tag_index[k] for b, k in parts])
        if self._registry is not None:
            idx = self._registry.lookup_catalog(idx)
        ts = np.concatenate([b.source_ts[k] for b, k in parts])
        values = np.concatenate([b.values[k] for b, k in parts])
        quality = np.concatenate([b.quality[k] for b, k in parts])
        reason = np.concatenate([b.reason[k] for b, k in parts])
        order = np.argsort(-ts, kind="stable")[:limit]
        order = order[idx[order] >= 0]
        first = parts[0][0]
        return Batch.build("recent", first.device, first.scan_start, first.receive_ts, idx[order],
                           values[order], quality[order], reason[order], ts[order])

    async def last_batch_id(self) -> int:
        """The id of the newest batch ever committed (0 for a new store). Ids are never reused,
        so it stays right after retention deleted rows; with ``pending`` it lets a reader
        (the Sparkplug node's replay) say where it is in the append order."""
        row = await self._reader.call(lambda conn: conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'batch'").fetchone())
        return 0 if row is None else int(row[0])

    async def count_values(self, start: float, end: float) -> int:
        """Values of the scans that started in ``[start, end)``."""
        return await self._reader.call(lambda conn: conn.execute(
            "SELECT coalesce(sum(n_values), 0) FROM batch WHERE scan_start >= ? AND scan_start < ?",
            (start, end)).fetchone()[0])

    async def stats(self) -> dict[str, object]:
        """Rows, values, bytes on disk, oldest/newest scan start, forwarding backlog, losses."""
        def query(conn: sqlite3.Connection) -> tuple[float | None, float | None, int]:
            oldest, newest = conn.execute(
                "SELECT min(scan_start), max(scan_start) FROM batch").fetchone()
            return oldest, newest, self._bytes_on_disk()

        oldest, newest, size = await self._reader.call(query)
        c = self._counters
        backlog = self.backlog
        return asdict(StoreStats(
            rows=c.rows, values=c.values, bytes_on_disk=size, oldest_ts=oldest, newest_ts=newest,
            forwarding=self.forwarding, forwarded_id=c.forwarded_id,
            backlog_batches=backlog.batches, backlog_values=backlog.values,
            dropped_unforwarded_batches=c.dropped_batches,
            dropped_unforwarded_values=c.dropped_values))

    def _bytes_on_disk(self) -> int:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            try:
                total += os.stat(f"{self.path}{suffix}").st_size
            except FileNotFoundError:
                pass
        return total

    # -- store and forward -----------------------------------------------------------------

    @property
    def forwarded_id(self) -> int:
        """Every batch with an id up to this one has been committed by the database."""
        return self._counters.forwarded_id

    @property
    def backlog(self) -> Backlog:
        """What is appended but not yet forwarded (zero when forwarding is off)."""
        if not self.forwarding:
            return Backlog()
        return Backlog(self._counters.backlog_batches, self._counters.backlog_values)

    async def pending(self, after_id: int, max_values: int) -> list[StoredBatch]:
        """Batches after ``after_id``, oldest first, up to ``max_values`` values (at least one
        batch when there is any, even a bigger one)."""
        stored = await self._reader.call(_in_read_transaction(
            lambda conn: read_pending(conn, after_id, max_values, self._read_tag_sets)))
        if self._registry is None:
            return stored
        # Values of tags that left the catalog cannot be forwarded (the database has no such
        # tag any more); their batches still advance the cursor, as empty batches.
        out = []
        for item in stored:
            batch = self._registry.batch_to_catalog(item.batch)
            if batch is None:
                batch = Batch.build(item.batch.group, item.batch.device, item.batch.scan_start,
                                    item.batch.receive_ts, np.empty(0, np.int32), np.empty(0),
                                    np.empty(0, np.uint8), np.empty(0, np.uint8))
            out.append(StoredBatch(item.id, batch))
        return out

    async def set_forwarded(self, upto_id: int) -> None:
        """Record that the database has committed every batch up to ``upto_id`` (persisted;
        the cursor never moves back)."""
        def advance(conn: sqlite3.Connection) -> tuple[int, int, int]:
            old = read_meta(conn, MetaKey.FORWARDED_ID)
            row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'batch'").fetchone()
            new = min(upto_id, row[0] if row else 0)  # ids not yet given cannot be forwarded
            if new <= old:
                return old, 0, 0
            batches, values = conn.execute(
                "SELECT count(*), coalesce(sum(n_values), 0) FROM batch WHERE id > ? AND id <= ?",
                (old, new)).fetchone()
            write_meta(conn, MetaKey.FORWARDED_ID, new)
            return new, batches, values

        new, batches, values = await self._writer.transaction(advance)
        self._counters.forwarded_id = new
        if self.forwarding:
            self._counters.backlog_batches -= batches
            self._counters.backlog_values -= values

    # -- retention -------------------------------------------------------------------------

    async def enforce_retention(self, now: float) -> Deleted:
        """Delete by age (``retention_s`` before ``now``) then by size (``max_bytes``), and
        give the freed space back to the file system. Meant to run periodically."""
        def trim(conn: sqlite3.Connection) -> Deleted:
            forwarded = read_meta(conn, MetaKey.FORWARDED_ID) if self.forwarding else None
            deleted = delete_older_than(conn, now - self.retention_s, forwarded)
            deleted += delete_oldest_to_fit(conn, self.max_bytes, forwarded)
            if deleted.batches:
                # Both steps may have dropped tag sets (the size step drops them as it goes).
                delete_orphan_tag_sets(conn)
                self._tag_set_ids.clear()
            if deleted.unforwarded_batches:
                write_meta(conn, MetaKey.DROPPED_UNFORWARDED_BATCHES,
                           read_meta(conn, MetaKey.DROPPED_UNFORWARDED_BATCHES)
                           + deleted.unforwarded_batches)
                write_meta(conn, MetaKey.DROPPED_UNFORWARDED_VALUES,
                           read_meta(conn, MetaKey.DROPPED_UNFORWARDED_VALUES)
                           + deleted.unforwarded_values)
            return deleted

        deleted = await self._writer.transaction(trim)
        if deleted.batches:
            await self._writer.call(release_free_pages)
        self._account_deleted(deleted)
        return deleted

    def _account_deleted(self, deleted: Deleted) -> None:
        c = self._counters
        c.rows -= deleted.batches
        c.values -= deleted.values
        if self.forwarding:
            c.backlog_batches -= deleted.unforwarded_batches
            c.backlog_values -= deleted.unforwarded_values
        if deleted.unforwarded_batches:
            c.dropped_batches += deleted.unforwarded_batches
            c.dropped_values += deleted.unforwarded_values
            log.warning("embedded_store.dropped_unforwarded", path=str(self.path),
                        batches=deleted.unforwarded_batches, values=deleted.unforwarded_values,
                        max_bytes=self.max_bytes, total_dropped_values=c.dropped_values)
        if deleted.batches:
            log.info("embedded_store.retention", batches=deleted.batches, values=deleted.values)

    async def run_retention(self, interval_s: float = DEFAULT_RETENTION_INTERVAL_S,
                            clock: Callable[[], float] = time.time) -> None:
        """Enforce retention every ``interval_s`` until cancelled (a supervised task)."""
        while True:
            await self.enforce_retention(clock())
            await asyncio.sleep(interval_s)


def _in_read_transaction(fn: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
    """Run ``fn`` in one read transaction, so its statements see one snapshot."""
    def wrapped(conn: sqlite3.Connection) -> T:
        conn.execute("BEGIN")
        result = fn(conn)
        conn.execute("COMMIT")
        return result
    return wrapped


def _rebuild_latest(conn: sqlite3.Connection) -> LatestTable:
    """The latest-value table from the newest stored batches."""
    table = LatestTable()
    wanted = len(all_tags(conn))
    read = 0
    with closing(newest_first(conn, TagSetCache())) as batches:
        for batch in batches:
            if table.known_count >= wanted or read >= LATEST_REBUILD_MAX_VALUES:
                break
            table.fill_missing(batch)
            read += len(batch)
    return table
