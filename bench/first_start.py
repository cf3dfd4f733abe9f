"""First start: scan overruns and HTTP latency with and without the first-start PdM training.

    .venv/bin/python -m bench.first_start [--window-s 120] [--rate 20] [--tags 0]

Two daemons in turn, each `refineryiq run --simulate` on a new state directory (no models):
``training`` with ``maintenance.train_on_first_start`` on (the training child starts
``--train-delay-s`` after start, at its lower priority), then ``idle`` with
``REFINERYIQ_MAINTENANCE__TRAIN_ON_FIRST_START=false``. Once /health is healthy and the
training child runs (or, for ``idle``, at the same moment after start), a load generator
sends GET requests at a fixed rate (open loop: each request leaves at its scheduled time,
whatever the previous answers took) over a few read routes for ``window-s``, and reads the scan
counters (``/health`` devices: scans, overruns, skipped) before and after the window. With
``--tags N`` the simulator also serves N synthetic tags read in 1 s scans, which loads the
scans more than the small shipped plant does.

Figures per scenario: HTTP p50/p99/max (ms), errors, scans, overruns and skipped scans in the
window, CPU seconds of the daemon and of its children (the training) in the window, and the
training state at the end. The ratio ``training / idle`` of p99 and the overrun counts are the
comparison (same run, same machine, one after the other). The machine may be shared: the
figures are noisy, run it more than once. Results: bench/results/first_start-<time>.json
(bench.common.write_results).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil

from bench.common import write_results
from tests.support.daemon import DaemonProcess
from tests.support.faults import simulate_config, synthetic_group

ROUTES = ("/health", "/api/tags/live", "/api/kpis", "/api/maintenance/baseline",
          "/api/tags/TI-101/history?max_points=200", "/api/alerts")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def cpu_s(process: psutil.Process) -> float:
    try:
        t = process.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return 0.0


def children_cpu_s(process: psutil.Process) -> dict[str, float]:
    """CPU seconds of the daemon's children so far: the simulator, and the others (the
    training child and its workers; no prediction runs without models)."""
    out: dict[str, float] = {}
    for child in process.children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
        except psutil.Error:
            continue
        name = "simulator" if "-m simulator" in cmdline else "training"
        out[name] = out.get(name, 0.0) + cpu_s(child)
    return out


def scan_counters(daemon: DaemonProcess) -> dict[str, int]:
    _, health = daemon.get("/health", timeout=10)
    devices = health.get("devices", [])
    return {k: sum(int(d.get(k, 0)) for d in devices) for k in ("scans", "overruns", "skipped_scans")}


async def fixed_rate(url: str, rate: float, seconds: float) -> dict:
    """GET the routes in turn, one request every 1/rate s, each at its scheduled time."""
    latencies: list[float] = []
    errors = 0
    tasks = []

    async def one(session: aiohttp.ClientSession, path: str) -> None:
        nonlocal errors
        started = time.perf_counter()
        try:
            async with session.get(url + path) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
                    return
        except (TimeoutError, aiohttp.ClientError):
            errors += 1
            return
        latencies.append((time.perf_counter() - started) * 1000.0)

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
        start = time.perf_counter()
        n = int(seconds * rate)
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, ROUTES[i % len(ROUTES)])))
        await asyncio.gather(*tasks)
    return {"requests": n, "errors": errors, "p50_ms": round(percentile(latencies, 0.5), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2),
            "max_ms": round(max(latencies), 2) if latencies else None}


def scenario(name: str, training: bool, args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"bench-first-start-{name}-"))
    env = {"REFINERYIQ_MAINTENANCE__TRAIN_ON_FIRST_START": "true" if training else "false",
           "REFINERYIQ_MAINTENANCE__TRAIN_DELAY_S": str(args.train_delay_s),
           "REFINERYIQ_MAINTENANCE__TRAIN_RUNS": str(args.train_runs)}
    extra = ()
    if args.tags:
        env["REFINERYIQ_SIMULATOR__SYNTHETIC_TAGS"] = str(args.tags)
        extra = ("--config", str(simulate_config(work, synthetic_group(args.tags, 1000))))
    daemon = DaemonProcess(work / "state", "run", *extra, "--simulate", env=env).start()
    try:
        started = time.monotonic()
        daemon.wait_healthy(args.start_timeout_s)
        process = psutil.Process(daemon.proc.pid)
        if training:
            daemon.wait_for(lambda: children_cpu_s(process).get("training", 0.0) > 0.0
                            or daemon.get("/health")[1]["maintenance"]["training"] != "running",
                            args.start_timeout_s, "the training child")
        else:  # the same moment after start as the training scenario's window
            time.sleep(max(0.0, args.train_delay_s + 2.0 - (time.monotonic() - started)))
        window_at_s = time.monotonic() - started
        time.sleep(args.warm_s)
        before, cpu0, kids0 = scan_counters(daemon), cpu_s(process), children_cpu_s(process)
        http = asyncio.run(fixed_rate(daemon.url, args.rate, args.window_s))
        after, cpu1, kids1 = scan_counters(daemon), cpu_s(process), children_cpu_s(process)
        _, health = daemon.get("/health", timeout=10)
    finally:
        daemon.kill()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "scenario": name, "train_on_first_start": training, "window_started_after_s": round(window_at_s, 1),
        "http": http, **{f"window_{k}": after[k] - before[k] for k in before},
        "daemon_cpu_s": round(cpu1 - cpu0, 2),
        "children_cpu_s": {k: round(kids1.get(k, 0.0) - kids0.get(k, 0.0), 2) for k in kids1},
        "training_state_at_end": health["maintenance"]["training"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window-s", type=float, default=120.0)
    parser.add_argument("--warm-s", type=float, default=5.0, help="after the training started, before measuring")
    parser.add_argument("--rate", type=float, default=20.0, help="HTTP requests per second")
    parser.add_argument("--tags", type=int, default=0, help="synthetic tags in 1 s scans (0: the plant only)")
    parser.add_argument("--train-delay-s", type=float, default=5.0)
    parser.add_argument("--train-runs", type=int, default=160, help="as the default first start")
    parser.add_argument("--start-timeout-s", type=float, default=180.0)
    args = parser.parse_args()
    results = {}
    for name, training in (("training", True), ("idle", False)):
        print(f"first_start: {name} ...", file=sys.stderr, flush=True)
        results[name] = r = scenario(name, training, args)
        print(f"  {name}: p50 {r['http']['p50_ms']} ms, p99 {r['http']['p99_ms']} ms, "
              f"errors {r['http']['errors']}, scans {r['window_scans']}, overruns {r['window_overruns']}, "
              f"skipped {r['window_skipped_scans']}, daemon CPU {r['daemon_cpu_s']} s, "
              f"children CPU {r['children_cpu_s']}", file=sys.stderr, flush=True)
    on, off = results["training"], results["idle"]
    comparison = {
        "p99_ratio_training_over_idle": round(on["http"]["p99_ms"] / off["http"]["p99_ms"], 2)
        if off["http"]["p99_ms"] else None,
        "overruns_training": on["window_overruns"], "overruns_idle": off["window_overruns"],
        "training_cpu_s_in_window": on["children_cpu_s"].get("training", 0.0),
    }
    path = write_results("first_start", {"options": vars(args), "scenarios": results, "comparison": comparison,
                                         "machine_load_1m_at_end": psutil.getloadavg()[0]})
    print(comparison)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
