"""HTTP latency of the read routes and SSE fan-out, against `refineryiq run --simulate`.

    .venv/bin/python -m bench.http [--clients 50] [--seconds 10] [--sse-clients 50]

Read routes: ``clients`` concurrent aiohttp clients loop over the routes for ``seconds``;
p50/p99 per route and overall (target p99 <= 20 ms), and the CPU seconds the daemon process
and the load generator each spent meanwhile (they share the machine's cores with the
simulator, so a busy load generator adds to the latencies too). SSE: ``sse-clients`` streams
open at once; the spread between the first and last client receiving the same ``values``
event (by event id), and how many events each received. Results go to
``bench/results/http-*.json`` and ``latest.json`` (bench.common.write_results).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import aiohttp
import psutil

from bench.common import write_results
from tests.support.daemon import DaemonProcess

READ_ROUTES = (
    "/", "/health", "/api/kpis", "/api/dashboard/history", "/api/stats/advanced",
    "/api/supplies/data", "/api/inventory", "/api/assets/overview", "/api/alerts",
    "/api/alerts/history", "/api/maintenance/predictions", "/api/energy/analysis",
    "/api/normalized/stats", "/api/normalized/units", "/api/normalized/tags",
    "/api/normalized/equipment", "/api/normalized/process-data/enriched?limit=50",
    "/api/tags/live", "/api/devices", "/api/tags/TI-101/history?max_points=200",
)
TARGET_P99_MS = 20.0


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def cpu_s(process: psutil.Process) -> float:
    """User plus system CPU seconds of ``process`` so far."""
    times = process.cpu_times()
    return times.user + times.system


async def read_load(url: str, clients: int, seconds: float, daemon: psutil.Process) -> dict:
    """Each client walks the routes in turn until time is up."""
    latencies: dict[str, list[float]] = defaultdict(list)
    errors = 0
    daemon_cpu_start, own_cpu_start = cpu_s(daemon), time.process_time()
    deadline = time.perf_counter() + seconds

    async def client(offset: int, session: aiohttp.ClientSession) -> None:
        nonlocal errors
        k = offset
        while time.perf_counter() < deadline:
            route = READ_ROUTES[k % len(READ_ROUTES)]
            k += 1
            started = time.perf_counter()
            async with session.get(url + route) as resp:
                await resp.read()
                if resp.status >= 400:
                    errors += 1
            latencies[route].append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(i, session) for i in range(clients)))
    daemon_cpu, own_cpu = cpu_s(daemon) - daemon_cpu_start, time.process_time() - own_cpu_start
    every = [x for v in latencies.values() for x in v]
    return {
        "clients": clients, "seconds": seconds, "requests": len(every), "errors": errors,
        "requests_per_s": round(len(every) / seconds, 1),
        "daemon_cpu_s": round(daemon_cpu, 2),
        "daemon_cpu_us_per_request": round(daemon_cpu / max(len(every), 1) * 1e6, 1),
        "load_generator_cpu_s": round(own_cpu, 2),
        "p50_ms": round(percentile(every, 0.50), 2), "p99_ms": round(percentile(every, 0.99), 2),
        "target_p99_ms": TARGET_P99_MS,
        "meets_target": percentile(every, 0.99) <= TARGET_P99_MS,
        "routes": {r: {"p50_ms": round(percentile(v, 0.5), 2), "p99_ms": round(percentile(v, 0.99), 2),
                       "n": len(v)} for r, v in sorted(latencies.items())},
    }


async def sse_fanout(url: str, clients: int, seconds: float) -> dict:
    """Open ``clients`` streams; record when each receives each event id."""
    arrivals: dict[str, dict[int, float]] = defaultdict(dict)  # event id -> client -> time

    async def listen(n: int, session: aiohttp.ClientSession) -> int:
        received = 0
        event_id = None
        async with session.get(url + "/api/stream") as resp:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                try:
                    line = await asyncio.wait_for(resp.content.readline(), end - time.perf_counter())
                except TimeoutError:
                    break
                text = line.decode().rstrip("\n")
                if text.startswith("id: "):
                    event_id = text[4:]
                elif text.startswith("event: values") and event_id is not None:
                    arrivals[event_id][n] = time.perf_counter()
                    received += 1
        return received

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        counts = await asyncio.gather(*(listen(n, session) for n in range(clients)))
    spreads = [(max(v.values()) - min(v.values())) * 1000
               for v in arrivals.values() if len(v) == clients]
    return {"clients": clients, "seconds": seconds,
            "values_events_per_client": {"min": min(counts), "max": max(counts)},
            "events_seen_by_all": len(spreads),
            "fanout_spread_p50_ms": round(statistics.median(spreads), 2) if spreads else None,
            "fanout_spread_max_ms": round(max(spreads), 2) if spreads else None}


async def main(args: argparse.Namespace) -> dict:
    state = Path(tempfile.mkdtemp(prefix="bench-http-")) / "state"
    daemon = DaemonProcess(state, env={"REFINERYIQ_ANALYTICS__KPI_INTERVAL_S": "5",
                                       "REFINERYIQ_ANALYTICS__FIRST_RUN_DELAY_S": "1",
                                       "REFINERYIQ_AUTH__REQUIRE_TOKEN_FOR_READS": "false"}).start()
    try:
        await asyncio.to_thread(daemon.wait_healthy, 90)
        await asyncio.sleep(3)  # a first analytics run, so the routes have data
        reads = await read_load(daemon.url, args.clients, args.seconds, psutil.Process(daemon.proc.pid))
        sse = await sse_fanout(daemon.url, args.sse_clients, args.seconds)
    finally:
        daemon.kill()
    return {"reads": reads, "sse": sse}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sse-clients", type=int, default=50)
    results = asyncio.run(main(parser.parse_args()))
    path = write_results("http", results)
    r = results["reads"]
    print(f"reads: {r['requests_per_s']} req/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms "
          f"(target {TARGET_P99_MS} ms: {'met' if r['meets_target'] else 'NOT met'}), "
          f"errors {r['errors']}; daemon CPU {r['daemon_cpu_s']} s ({r['daemon_cpu_us_per_request']} us "
          f"per request), load generator CPU {r['load_generator_cpu_s']} s")
    print(f"sse: {results['sse']}")
    print(f"written to {path}")
