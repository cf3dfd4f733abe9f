"""First start: scan overruns and HTTP latency with and without the first-start PdM training.

    .venv/bin/python -m bench.first_start [--window-s 120] [--rate 20] [--tags 0] [--idle-windows 2]

Daemons in turn, each `refineryiq run --simulate` on a new state directory (no models):
``idle`` with ``REFINERYIQ_MAINTENANCE__TRAIN_ON_FIRST_START=false``, then ``training`` with
``maintenance.train_on_first_start`` on (the training child starts ``--train-delay-s`` after
start, at its lower priority), then ``idle_2`` (and ``idle_3``... with ``--idle-windows``)
without it again. Once /health is healthy and the
training child runs (or, for ``idle``, at the same moment after start), a load generator
sends GET requests at a fixed rate (open loop: each request leaves at its scheduled time,
whatever the previous answers took) over a few read routes for ``window-s``, and reads the scan
counters (``/health`` devices: scans, overruns, skipped) before and after the window. With
``--tags N`` the simulator also serves N synthetic tags read in 1 s scans, which loads the
scans more than the small shipped plant does.

Figures per scenario: HTTP p50/p99/max (ms) with bootstrap 95 % intervals of p50 and p99,
errors, scans, overruns and skipped scans in the window, CPU seconds of the daemon and of its
children (the training) in the window, the training state at the end and (with training) the
scheduling policy, nice value and thread count of each training process. The ratio ``training
/ idle`` of p99 and the overrun counts are the comparison (same run, same machine, one after
the other), judged against the noise floor of the idle windows, which bracket the training
window in time: for p50 and p99 the larger of their spread (max - min) and the widest half of
their bootstrap intervals, for overruns their spread. The training's effect counts as
measurable when the training figure exceeds the highest idle figure by more than that floor.
``machine_busy_cpu_s`` (all processes, out of 2 x window-s on 2 cores) and the run-queue wait
of the daemon's threads tell whether other work on the machine or the training took the CPU. The machine may be shared: run it more than once. Results: bench/results/first_start-<time>.json
(bench.common.write_results).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
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


def quantile_interval(samples: list[float], q: float, resamples: int = 500, seed: int = 0) -> list[float] | None:
    """Bootstrap 95 % interval of the ``q`` quantile of ``samples`` (ms): how much that figure
    of one window moves by the luck of which requests were slow (None below 100 samples)."""
    if len(samples) < 100:
        return None
    rng = random.Random(seed)
    figures = sorted(percentile(rng.choices(samples, k=len(samples)), q) for _ in range(resamples))
    return [round(percentile(figures, 0.025), 2), round(percentile(figures, 0.975), 2)]


def scheduling(process: psutil.Process) -> dict:
    """Scheduling policy, nice value and thread count of one process (a training process)."""
    names = {getattr(os, n): n for n in ("SCHED_OTHER", "SCHED_BATCH", "SCHED_IDLE") if hasattr(os, n)}
    try:
        policy = os.sched_getscheduler(process.pid)
        return {"pid": process.pid, "policy": names.get(policy, str(policy)), "nice": process.nice(),
                "threads": process.num_threads()}
    except (OSError, psutil.Error):
        return {"pid": process.pid, "policy": None}


def training_processes(process: psutil.Process) -> list[dict]:
    """:func:`scheduling` of each process of the training tree."""
    roots, descendants = training_tree(process)
    return [scheduling(child) for child in roots + descendants]


def runqueue_wait_s(pid: int) -> float:
    """Seconds the threads of ``pid`` have spent runnable but waiting for a CPU so far
    (/proc/PID/task/*/schedstat, second field; 0 without schedstats)."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (not idle or waiting for I/O) so far."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def cpu_s(process: psutil.Process, reaped: bool = False) -> float:
    """CPU seconds of ``process`` so far; with ``reaped``, plus those of its children that
    exited and were waited for (the training's finished workers)."""
    try:
        t = process.cpu_times()
        return t.user + t.system + (t.children_user + t.children_system if reaped else 0.0)
    except psutil.Error:
        return 0.0


def training_tree(process: psutil.Process) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """The daemon's first-start training child (``-m refineryiq.train``) and, apart, its
    descendants (joblib workers, resource trackers)."""
    roots, descendants = [], []
    for child in process.children():
        try:
            if "refineryiq.train" in child.cmdline():
                roots.append(child)
                descendants += child.children(recursive=True)
        except psutil.Error:
            continue
    return roots, descendants


def children_cpu_s(process: psutil.Process) -> dict[str, float]:
    """CPU seconds so far of the daemon's children: ``training`` (the training child and its
    workers, :func:`training_tree`), ``simulator`` and ``other`` (the OPC-UA node-set helper
    at start, prediction or fitting children). A child that exited is not counted, except the
    training's workers: the training child counts those it waited for."""
    roots, descendants = training_tree(process)
    training = sum(cpu_s(c, reaped=True) for c in roots) + sum(cpu_s(c) for c in descendants)
    out: dict[str, float] = {"training": training}
    skip = {c.pid for c in roots + descendants}
    for child in process.children(recursive=True):
        if child.pid in skip:
            continue
        try:
            name = "simulator" if "simulator" in " ".join(child.cmdline()) else "other"
        except psutil.Error:
            continue
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
            "p50_interval_ms": quantile_interval(latencies, 0.5), "p99_interval_ms": quantile_interval(latencies, 0.99),
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
            daemon.wait_for(lambda: children_cpu_s(process)["training"] > 0.0
                            or daemon.get("/health")[1]["maintenance"]["training"] != "running",
                            args.start_timeout_s, "the training child")
        else:  # the same moment after start as the training scenario's window
            time.sleep(max(0.0, args.train_delay_s + 2.0 - (time.monotonic() - started)))
        window_at_s = time.monotonic() - started
        time.sleep(args.warm_s)
        sched = training_processes(process) if training else []
        before, cpu0, kids0 = scan_counters(daemon), cpu_s(process), children_cpu_s(process)
        machine0, wait0, gen0 = machine_busy_s(), runqueue_wait_s(process.pid), runqueue_wait_s(os.getpid())
        http = asyncio.run(fixed_rate(daemon.url, args.rate, args.window_s))
        machine1, wait1, gen1 = machine_busy_s(), runqueue_wait_s(process.pid), runqueue_wait_s(os.getpid())
        after, cpu1, kids1 = scan_counters(daemon), cpu_s(process), children_cpu_s(process)
        _, health = daemon.get("/health", timeout=10)
    finally:
        daemon.kill()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "scenario": name, "train_on_first_start": training, "window_started_after_s": round(window_at_s, 1),
        "http": http, **{f"window_{k}": after[k] - before[k] for k in before},
        "daemon_cpu_s": round(cpu1 - cpu0, 2),
        # A child that exits within the window takes its CPU time with it (the training's
        # workers are counted by the training child once it has waited for them).
        "children_cpu_s": {k: round(max(kids1.get(k, 0.0) - kids0.get(k, 0.0), 0.0), 2) for k in kids1},
        # Every process's CPU time in the window, this benchmark's load generator and other
        # work on a shared machine included (2 cores x window-s is all of it).
        "machine_busy_cpu_s": round(machine1 - machine0, 2),
        # Time the daemon's threads (and this load generator's) were ready to run but waited
        # for a CPU: the scheduling delay the training adds, apart from cache or memory effects.
        "daemon_runqueue_wait_s": round(wait1 - wait0, 3),
        "load_generator_runqueue_wait_s": round(gen1 - gen0, 3),
        "training_state_at_end": health["maintenance"]["training"],
        **({"training_processes": sched} if training else {}),
    }


def half_width(interval: list[float] | None) -> float:
    return 0.0 if interval is None else (interval[1] - interval[0]) / 2


def noise_floor(idles: list[dict], figure: str) -> float:
    """Noise floor of an HTTP figure (``p50``, ``p99``) over the idle windows: the larger of
    their spread (max - min, the drift between windows: other work on the machine) and the
    widest half of their bootstrap intervals (the luck within one window)."""
    values = [r["http"][f"{figure}_ms"] for r in idles]
    return max(max(values) - min(values), *(half_width(r["http"][f"{figure}_interval_ms"]) for r in idles))


def verdict(on: dict, idles: list[dict]) -> dict:
    """The training window against the idle windows, which bracket it in time: the training's
    effect on a figure is measurable when the training figure exceeds the highest idle figure
    by more than the noise floor (:func:`noise_floor`; for overruns, their spread)."""
    out: dict = {}
    for figure in ("p50", "p99"):
        values = [r["http"][f"{figure}_ms"] for r in idles]
        floor, mine = noise_floor(idles, figure), on["http"][f"{figure}_ms"]
        out.update({
            f"idle_{figure}_ms": values, f"noise_floor_{figure}_ms": round(floor, 2),
            f"{figure}_training_minus_idle_mean_ms": round(mine - sum(values) / len(values), 2),
            f"{figure}_training_minus_idle_max_ms": round(mine - max(values), 2),
            f"{figure}_exceeds_noise_floor": mine - max(values) > floor,
        })
    overruns = [r["window_overruns"] for r in idles]
    overrun_floor = max(overruns) - min(overruns)
    return {
        **out, "overruns_idle_windows": overruns, "noise_floor_overruns": overrun_floor,
        "overruns_exceed_noise_floor": on["window_overruns"] - max(overruns) > overrun_floor,
        "daemon_runqueue_wait_s": {r["scenario"]: r["daemon_runqueue_wait_s"] for r in [*idles, on]},
        "training_ran_through_window": on["training_state_at_end"] == "running",
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
    parser.add_argument("--idle-windows", type=int, default=2,
                        help="windows without training (>= 2: their spread is the noise floor); "
                             "the first runs before the training window, the others after it")
    args = parser.parse_args()
    if args.idle_windows < 1:
        parser.error("--idle-windows: at least 1")
    order = [("idle", False), ("training", True)]
    order += [(f"idle_{i}", False) for i in range(2, args.idle_windows + 1)]
    results = {}
    load_at_start = psutil.getloadavg()[0]
    for name, training in order:
        print(f"first_start: {name} ...", file=sys.stderr, flush=True)
        results[name] = r = scenario(name, training, args)
        print(f"  {name}: p50 {r['http']['p50_ms']} ms (95 % {r['http']['p50_interval_ms']}), "
              f"p99 {r['http']['p99_ms']} ms (95 % {r['http']['p99_interval_ms']}), "
              f"errors {r['http']['errors']}, scans {r['window_scans']}, overruns {r['window_overruns']}, "
              f"skipped {r['window_skipped_scans']}, daemon CPU {r['daemon_cpu_s']} s, "
              f"children CPU {r['children_cpu_s']}, machine busy {r['machine_busy_cpu_s']} CPU-s, "
              f"daemon run-queue wait {r['daemon_runqueue_wait_s']} s", file=sys.stderr, flush=True)
    on, off = results["training"], results["idle"]
    comparison = {
        "p99_ratio_training_over_idle": round(on["http"]["p99_ms"] / off["http"]["p99_ms"], 2)
        if off["http"]["p99_ms"] else None,
        "overruns_training": on["window_overruns"], "overruns_idle": off["window_overruns"],
        "training_cpu_s_in_window": on["children_cpu_s"].get("training", 0.0),
        **verdict(on, [r for r in results.values() if not r["train_on_first_start"]]),
    }
    path = write_results("first_start", {"options": vars(args), "scenarios": results, "comparison": comparison,
                                         "machine_load_1m_at_start": load_at_start,
                                         "machine_load_1m_at_end": psutil.getloadavg()[0]})
    print(comparison)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
