"""Northbound OPC-UA server benchmark: the cost of publishing 10,000 tags.

    .venv/bin/python bench/opcua_server.py [--tags 10000] [--flushes 20] [--monitored 1000]

In process, no daemon: the plant catalog plus ``--tags`` synthetic tags, a LiveCache, and the
real :class:`NorthboundServer` on its own thread (security None, a free loopback port).
Measured:

1. **Build**: time to create the address space (tags with EURange/EngineeringUnits).
2. **Flush**: one flush writes every tag (all changed); per flush and per value, with no
   client and with a client monitoring ``--monitored`` tags (datachange path). The raw limit
   is asyncua's own server-side path, ``Server.write_attribute_value`` with a new DataValue
   per node, measured on the same nodes in the same run: ``ratio_to_write_attribute_value``.
3. **Ingestion side**: what the pipeline sink costs per 10,000-tag Batch (marking changes),
   and the event-loop lag of the ingestion loop (a 1 ms ticker, p99) while the server flushes
   every 200 ms, against the same ticker with the server idle.

Results: bench/results/opcua_server-<time>.json and bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asyncua import Client, ua  # noqa: E402

from bench.common import quiet_library_logs, write_results  # noqa: E402
from drivers.batch import Batch  # noqa: E402
from drivers.quality import Quality, Reason  # noqa: E402
from gateway.ingest.live_cache import LiveCache  # noqa: E402
from gateway.northbound.opcua.runtime import ChangeSource, NorthboundServer, ServerThread  # noqa: E402
from gateway.settings import OpcUaServerSettings  # noqa: E402
from plant.catalog import Catalog  # noqa: E402
from plant.load import load_plant  # noqa: E402


def scan(catalog: Catalog, step: int) -> Batch:
    """A deterministic scan of every tag (values move with ``step``)."""
    n = len(catalog)
    index = np.arange(n, dtype=np.int32)
    values = 50.0 + np.sin(index * 0.01 + step) * 10.0
    now = time.time()
    return Batch.build("bench", "bench", now, now, index, values,
                       np.full(n, Quality.GOOD), np.full(n, Reason.NONE))


def call(thread: ServerThread, coro, timeout: float = 300.0):
    return asyncio.run_coroutine_threadsafe(coro, thread.loop).result(timeout)


async def timed_flushes(server: NorthboundServer, live: LiveCache, changes: ChangeSource,
                        catalog: Catalog, flushes: int) -> list[float]:
    """Per-flush seconds, each flush writing every tag (runs on the server loop)."""
    out = []
    for step in range(flushes):
        batch = scan(catalog, step)
        live.update(batch)
        changes.mark(batch.tag_index)
        started = time.perf_counter()
        written = await server.flush()
        out.append(time.perf_counter() - started)
        assert written == len(catalog), written
    return out


async def raw_writes(server: NorthboundServer, catalog: Catalog, rounds: int) -> list[float]:
    """Per-round seconds of write_attribute_value on every tag node (the raw limit)."""
    assert server.server is not None and server.space is not None
    out = []
    for step in range(rounds):
        now = dt.datetime.now(dt.UTC)
        values = (50.0 + np.sin(np.arange(len(catalog)) * 0.01 + step) * 10.0).tolist()
        started = time.perf_counter()
        for node_id, value in zip(server.space.tag_nodes, values, strict=True):
            await server.server.write_attribute_value(node_id, ua.DataValue(
                ua.Variant(value, ua.VariantType.Double), SourceTimestamp=now, ServerTimestamp=now))
        out.append(time.perf_counter() - started)
    return out


async def loop_lag(seconds: float) -> float:
    """p99 lateness (s) of a 1 ms ticker on this loop: what a scan loop would suffer."""
    late = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        due = loop.time() + 0.001
        await asyncio.sleep(0.001)
        late.append(loop.time() - due)
    return float(np.percentile(late, 99))


async def monitor(endpoint: str, nodes: list[ua.NodeId]):
    client = Client(endpoint)
    await client.connect()

    class Handler:
        changes = 0

        def datachange_notification(self, node, val, data):
            Handler.changes += 1

    sub = await client.create_subscription(200, Handler())
    await sub.subscribe_data_change([client.get_node(n) for n in nodes])
    return client, Handler


def percentile_ms(samples: list[float], q: float) -> float:
    return round(float(np.percentile(samples, q)) * 1000, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--flushes", type=int, default=20)
    parser.add_argument("--monitored", type=int, default=1000)
    parser.add_argument("--lag-s", type=float, default=3.0)
    args = parser.parse_args()
    quiet_library_logs()

    catalog = Catalog.build(load_plant(ROOT / "config/plant.toml"), synthetic_tags=args.tags)
    live = LiveCache(len(catalog))
    changes = ChangeSource(live)
    settings = OpcUaServerSettings(host="127.0.0.1", port=0)
    state = Path(tempfile.mkdtemp(prefix="bench-opcua-"))
    server = NorthboundServer(settings, catalog, changes, state)
    thread = ServerThread()
    thread.start()
    started = time.perf_counter()
    call(thread, server.start())
    build_s = time.perf_counter() - started
    print(f"address space of {len(catalog)} tags built in {build_s:.2f} s")

    # Stop the periodic flush: the benchmark calls flush itself.
    assert server._flush_task is not None
    thread.loop.call_soon_threadsafe(server._flush_task.cancel)
    time.sleep(0.1)

    plain = call(thread, timed_flushes(server, live, changes, catalog, args.flushes))
    raw = call(thread, raw_writes(server, catalog, max(3, args.flushes // 4)))

    async def monitored_run():
        client, handler = await monitor(server.endpoint, server.space.tag_nodes[:args.monitored])
        try:
            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
                timed_flushes(server, live, changes, catalog, args.flushes), thread.loop))
        finally:
            await client.disconnect()

    watched = asyncio.run(monitored_run())

    # Ingestion side: the sink's cost, then loop lag with the server idle vs flushing.
    batch = scan(catalog, 0)
    marks = []
    for _ in range(200):
        t0 = time.perf_counter()
        changes.mark(batch.tag_index)
        marks.append(time.perf_counter() - t0)
    lag_idle = asyncio.run(loop_lag(args.lag_s))

    async def flushing_every_200ms():
        server_task = asyncio.run_coroutine_threadsafe(server._flush_loop(), thread.loop)
        stop = time.monotonic() + args.lag_s
        lag_task = asyncio.create_task(loop_lag(args.lag_s))
        step = 0
        while time.monotonic() < stop:  # a scan of every tag each 200 ms, like ingestion
            b = scan(catalog, step)
            live.update(b)
            changes.mark(b.tag_index)
            step += 1
            await asyncio.sleep(0.2)
        lag = await lag_task
        server_task.cancel()
        return lag

    lag_busy = asyncio.run(flushing_every_200ms())
    call(thread, server.stop())
    asyncio.run(thread.stop())

    n = len(catalog)
    per_value_us = statistics.median(plain) / n * 1e6
    raw_per_value_us = statistics.median(raw) / n * 1e6
    results = {
        "tags": n,
        "build_s": round(build_s, 3),
        "flush_ms": {"p50": percentile_ms(plain, 50), "p99": percentile_ms(plain, 99)},
        "flush_per_value_us": round(per_value_us, 3),
        "write_attribute_value_per_value_us": round(raw_per_value_us, 3),
        "ratio_to_write_attribute_value": round(per_value_us / raw_per_value_us, 3),
        "monitored_tags": args.monitored,
        "flush_monitored_ms": {"p50": percentile_ms(watched, 50),
                               "p99": percentile_ms(watched, 99)},
        "sink_mark_us_per_batch": round(statistics.median(marks) * 1e6, 2),
        "ingestion_loop_lag_p99_ms": {"server_idle": round(lag_idle * 1000, 3),
                                      "server_flushing_every_200ms": round(lag_busy * 1000, 3)},
    }
    path = write_results("opcua_server", results)
    for key, value in results.items():
        print(f"{key}: {value}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
