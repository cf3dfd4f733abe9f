"""Historian ingest benchmark: the writer's sustained rate against raw COPY limits.

Measured in the same run, on the same database:
  * raw COPY (asyncpg ``copy_records_to_table``, records prebuilt) of process_data-shaped
    rows into an unindexed table: the usual "raw asyncpg COPY" limit;
  * raw binary COPY (numpy-encoded, as the writer does) into an unindexed staging-shaped
    table: the wire/parse limit;
  * the DatabaseWriter draining a backlog of N values (default 1,000,000) from an
    EmbeddedStore into process_data (partitioned, keyed, tag FK, rollups and latest table).

Usage: python bench/store.py [--values N] [--tags T] [--url URL]
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
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write_results  # noqa: E402
from drivers.batch import Batch  # noqa: E402
from drivers.quality import Quality, Reason  # noqa: E402
from gateway.catalog import Catalog  # noqa: E402
from gateway.settings import load_plant  # noqa: E402
from gateway.store.embedded import EmbeddedStore  # noqa: E402
from gateway.store.postgres.connection import connect  # noqa: E402
from gateway.store.postgres.copy_binary import STAGING_COLUMNS, Columns, encode  # noqa: E402
from gateway.store.postgres.migrate import migrate  # noqa: E402
from gateway.store.postgres.writer import DatabaseWriter  # noqa: E402

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


async def raw_copy_binary(conn: asyncpg.Connection, batches: list[Batch]) -> float:
    await conn.execute("""CREATE TABLE raw_binary (time timestamptz, tag_index integer,
                          value double precision, quality smallint, reason smallint)""")
    payload = encode(Columns.of(batches))
    started = time.perf_counter()
    await conn.copy_to_table("raw_binary", source=memoryview(payload), columns=STAGING_COLUMNS,
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
                                    timescale=False, idle_poll_s=0.01)
            task = asyncio.create_task(writer.run())
            try:
                while writer.stats.connects == 0:
                    await asyncio.sleep(0.005)
                started = time.perf_counter()
                while store.forwarded_id < last:
                    await asyncio.sleep(0.005)
                elapsed = time.perf_counter() - started
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            await store.close()
    values = sum(len(b) for b in batches)
    return {"values": values, "seconds": elapsed, "values_per_s": values / elapsed,
            "rows_written": writer.stats.rows_written, "chunks": writer.stats.chunks_written}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=1_000_000)
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--batch-rows", type=int, default=50_000)
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
        binary_rate = await raw_copy_binary(conn, batches)
        writer = await writer_rate(args.url, schema, catalog, batches, args.batch_rows)
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
    }
    path = write_results("store", results)
    print(f"raw COPY (records) {records_rate:,.0f}/s  raw COPY (binary) {binary_rate:,.0f}/s  "
          f"writer {writer['values_per_s']:,.0f}/s  ratio {results['ratio_writer_to_raw_copy_records']:.2f} "
          f"/ {results['ratio_writer_to_raw_copy_binary']:.2f}  -> {path}")


if __name__ == "__main__":
    asyncio.run(main())
