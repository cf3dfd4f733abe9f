"""Historian ingest benchmark: the writer's sustained rate against raw COPY limits.

Measured in the same run, on the same database:
  * raw COPY (asyncpg ``copy_records_to_table``, records prebuilt) of process_data-shaped
    rows into an unindexed table: the usual "raw asyncpg COPY" limit;
  * raw binary COPY (numpy-encoded exactly as the writer does) of process_data rows into an
    unindexed table: the wire/parse limit;
  * the DatabaseWriter draining a backlog of N values (default 1,000,000) from an
    EmbeddedStore into process_data (daily partitions, (tag_id, time) btree, chunk_seq
    BRIN, forwarding cursor), then the maintenance fold of those rows into latest/rollups;
  * with --live-rate R (values/s, e.g. 100000): a live stream appended to the store at R for
    --live-seconds while the writer runs; reports the largest backlog and lag seen.

Usage: python bench/store.py [--values N] [--tags T] [--batch-rows B] [--live-rate R] [--url URL]
Results: bench/results/store-<timestamp>.json (and latest.json), keys with "ratio".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write_results  # noqa: E402
from drivers.batch import Batch  # noqa: E402
from drivers.quality import Quality, Reason  # noqa: E402
from gateway.store.embedded import EmbeddedStore  # noqa: E402
from gateway.store.postgres.connection import connect  # noqa: E402
from gateway.store.postgres.copy_binary import ROW_COLUMNS, Columns, RowEncoder  # noqa: E402
from gateway.store.postgres.derived import fold_new_chunks  # noqa: E402
from gateway.store.postgres.migrate import migrate  # noqa: E402
from gateway.store.postgres.policy import Backend  # noqa: E402
from gateway.store.postgres.writer import DatabaseWriter  # noqa: E402
from plant.catalog import Catalog  # noqa: E402
from plant.load import load_plant

ROOT = Path(__file__).resolve().parents[1]
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def scans(catalog: Catalog, n_tags: int, n_values: int) -> list[Batch]:
    """Scans of the last ``n_tags`` catalog tags at 1 s, deterministic values."""
    tags = np.arange(len(catalog) - n_tags, len(catalog), dtype=np.int32)
    out = []
    for j in range(n_values // n_tags):
        values = np.sin(tags * 0.01 + j * 0.1) * 50.0 + 50.0
        out.append(Batch.build("bench", "bench", START + j, START + j, tags, values,
                               np.full(n_tags, Quality.GOOD, dtype=np.uint8),
                               np.full(n_tags, Reason.NONE, dtype=np.uint8)))
    return out


@contextlib.asynccontextmanager
async def running(writer: DatabaseWriter, poll_s: float) -> AsyncIterator[None]:
    """The writer running as a task for the block, from its first connection; cancelled after."""
    task = asyncio.create_task(writer.run())
    try:
        while writer.stats.connects == 0:
            await asyncio.sleep(poll_s)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def raw_copy_records(conn: asyncpg.Connection, catalog: Catalog, batches: list[Batch]) -> float:
    await conn.execute("""CREATE TABLE raw_records (time timestamptz, gateway_id text, tag_id text,
                          value double precision, quality smallint, reason smallint)""")
    tag_ids = np.array([t.id for t in catalog.tags], dtype=object)
    records = []
    for b in batches:
        ts = datetime.fromtimestamp(b.scan_start, UTC)
        records.extend(zip([ts] * len(b), ["bench"] * len(b), tag_ids[b.tag_index].tolist(),
                           b.values.tolist(), b.quality.tolist(), b.reason.tolist(), strict=True))
    started = time.perf_counter()
    await conn.copy_records_to_table("raw_records", records=records)
    return len(records) / (time.perf_counter() - started)


async def raw_copy_binary(conn: asyncpg.Connection, catalog: Catalog, batches: list[Batch]) -> float:
    await conn.execute("""CREATE TABLE raw_binary (time timestamptz, gateway_id text, tag_id text,
                          value double precision, quality smallint, reason smallint,
                          chunk_seq bigint)""")
    payload = RowEncoder("bench", [t.id for t in catalog.tags]).encode(Columns.of(batches), 1)
    started = time.perf_counter()
    await conn.copy_to_table("raw_binary", source=memoryview(payload), columns=ROW_COLUMNS,
                             format="binary")
    return sum(len(b) for b in batches) / (time.perf_counter() - started)


async def writer_rate(url: str, schema: str, catalog: Catalog, batches: list[Batch],
                      batch_rows: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(Path(tmp) / "bench.sqlite", 86_400 * 365, 10_000_000_000, forwarding=True)
        await store.open()
        try:
            for b in batches:
                last = await store.append(b)
            writer = DatabaseWriter(url, store, catalog, "bench", batch_rows, schema=schema,
                                    timescale=False, idle_poll_s=0.01, fold_interval_s=3600)
            async with running(writer, poll_s=0.005):
                started = time.perf_counter()
                while store.forwarded_id < last:
                    await asyncio.sleep(0.005)
                elapsed = time.perf_counter() - started
        finally:
            await store.close()
    conn = await connect(url, schema=schema)
    try:
        started = time.perf_counter()
        folded = sum(r.rows for r in await fold_new_chunks(conn, Backend.PLAIN, "bench"))
        fold_s = time.perf_counter() - started
    finally:
        await conn.close()
    values = sum(len(b) for b in batches)
    return {"values": values, "seconds": elapsed, "values_per_s": values / elapsed,
            "rows_written": writer.stats.rows_written, "chunks": writer.stats.chunks_written,
            "fold_rows": folded, "fold_seconds": fold_s, "fold_values_per_s": folded / fold_s}


async def live_stream(url: str, schema: str, catalog: Catalog, n_tags: int, rate: float,
                      seconds: float, batch_rows: int) -> dict:
    """Append scans of ``n_tags`` tags at ``rate`` values/s while the writer forwards them."""
    tags = np.arange(len(catalog) - n_tags, len(catalog), dtype=np.int32)
    period = n_tags / rate
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(Path(tmp) / "live.sqlite", 86_400 * 365, 10_000_000_000, forwarding=True)
        await store.open()
        writer = DatabaseWriter(url, store, catalog, "bench-live", batch_rows, schema=schema,
                                timescale=False, idle_poll_s=0.05, fold_interval_s=3600)
        max_backlog, max_lag, appended = 0, 0.0, 0
        try:
            async with running(writer, poll_s=0.01):
                start = time.perf_counter()
                j = 0
                while (now := time.perf_counter()) - start < seconds:
                    due = start + j * period
                    if now < due:
                        await asyncio.sleep(due - now)
                    ts = time.time()  # live: the writer's lag is measured against the real clock
                    values = np.cos(tags * 0.01 + j * 0.1) * 50.0 + 50.0
                    last = await store.append(Batch.build(
                        "live", "bench", ts, ts, tags, values,
                        np.full(n_tags, Quality.GOOD, dtype=np.uint8),
                        np.full(n_tags, Reason.NONE, dtype=np.uint8)))
                    appended += n_tags
                    j += 1
                    max_backlog = max(max_backlog, store.backlog.values)
                    max_lag = max(max_lag, writer.stats.lag_s)
                achieved = appended / (time.perf_counter() - start)
                settle = time.perf_counter()
                while store.forwarded_id < last:
                    await asyncio.sleep(0.01)
                catch_up = time.perf_counter() - settle
        finally:
            await store.close()
    return {"target_values_per_s": rate, "appended_values_per_s": achieved, "seconds": seconds,
            "max_backlog_values": max_backlog, "max_lag_s": max_lag,
            "catch_up_after_stop_s": catch_up, "rows_written": writer.stats.rows_written}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=1_000_000)
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument("--live-rate", type=float, default=0.0)
    parser.add_argument("--live-seconds", type=float, default=10.0)
    parser.add_argument("--url", default=os.environ.get(
        "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()

    catalog = Catalog.build(load_plant(ROOT / "config" / "plant.toml"), synthetic_tags=args.tags)
    batches = scans(catalog, args.tags, args.values)
    schema = f"bench_store_{os.getpid()}"
    conn = await connect(args.url, schema=schema)
    try:
        await migrate(conn, timescale=False)
        records_rate = await raw_copy_records(conn, catalog, batches)
        binary_rate = await raw_copy_binary(conn, catalog, batches)
        writer = await writer_rate(args.url, schema, catalog, batches, args.batch_rows)
        live = (await live_stream(args.url, schema, catalog, args.tags, args.live_rate,
                                  args.live_seconds, args.batch_rows) if args.live_rate else None)
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()
    results = {
        "backend": "plain",
        "raw_copy_records_values_per_s": records_rate,
        "raw_copy_binary_values_per_s": binary_rate,
        "writer": writer,
        "ratio_writer_to_raw_copy_records": writer["values_per_s"] / records_rate,
        "ratio_writer_to_raw_copy_binary": writer["values_per_s"] / binary_rate,
        "target_ratio": 0.70,
        "batch_rows": args.batch_rows,
        "live": live,
    }
    path = write_results("store", results)
    print(f"raw COPY (records) {records_rate:,.0f}/s  raw COPY (binary) {binary_rate:,.0f}/s  "
          f"writer {writer['values_per_s']:,.0f}/s  ratio {results['ratio_writer_to_raw_copy_records']:.2f} "
          f"/ {results['ratio_writer_to_raw_copy_binary']:.2f}  fold {writer['fold_values_per_s']:,.0f}/s"
          + (f"  live {live['appended_values_per_s']:,.0f}/s max lag {live['max_lag_s']:.2f} s"
             f" max backlog {live['max_backlog_values']:,}" if live else "") + f"  -> {path}")


if __name__ == "__main__":
    asyncio.run(main())
