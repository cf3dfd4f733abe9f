"""Resident memory of the whole daemon: `refineryiq run --simulate` at 10,000 synthetic tags.

    .venv/bin/python -m bench.memory [--tags 10000] [--settle-s 60] [--sample-s 120]
                                     [--models DIR | --train-runs 6] [--no-report] [--quick]

Two scenarios, the northbound OPC-UA server off and then on (``--scenarios``). Each starts the
daemon as `refineryiq run --simulate` does in production (the simulator is its child process,
every synthetic tag read from Modbus in 1 s scans), with a state directory holding the
predictive-maintenance models (copied from ``--models``, or trained once with
`refineryiq train --runs N`; ``--train-runs 0`` runs without models). It waits until /health
is healthy (and the OPC-UA server serving), for the first PdM prediction run when there are
models, and renders the daily report once in each format as the scheduled run does every
morning (``--no-report`` skips it). After ``settle-s`` it samples the RSS of the daemon's own
process (psutil; the simulator and the prediction and report children are other processes)
every second for ``sample-s``, and notes its children's RSS for context.

Figures per scenario: ``rss_steady_mb`` (median of the samples), ``rss_max_sampled_mb``,
``rss_peak_mb`` (the kernel's high-water mark VmHWM since start, start-up included) against
the target ``rss_target_mb`` (145 MB). Results: bench/results/memory-<time>.json and
bench/results/latest.json under "memory" (bench.common.write_results).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

from bench.common import write_results
from tests.support.daemon import ROOT, DaemonProcess
from tests.support.faults import simulate_config, synthetic_group

RSS_TARGET_MB = 145.0
MB = 1024 * 1024
REPORT_FORMATS = ("html", "pdf", "xlsx")
SCENARIOS = {"off": False, "on": True}


def train_models(out: Path, runs: int) -> Path:
    """`refineryiq train --runs N --out DIR` (minutes of CPU; done once for both scenarios)."""
    print(f"memory: training PdM models ({runs} runs per type) into {out}", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "refineryiq.cli", "train", "--runs", str(runs), "--out", str(out)],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return out


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the most resident memory the process has had since it started."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def child_rss_mb(process: psutil.Process) -> dict[str, float]:
    """RSS of the daemon's child processes by what they run (the simulator; multiprocessing's
    resource tracker once a prediction or report child has run), for context."""
    out: dict[str, float] = {}
    for child in process.children(recursive=True):
        cmdline = " ".join(child.cmdline())
        name = ("simulator" if "-m simulator" in cmdline else
                "resource_tracker" if "resource_tracker" in cmdline else cmdline[:60])
        out[name] = round(out.get(name, 0.0) + child.memory_info().rss / MB, 1)
    return out


def render_reports(daemon: DaemonProcess) -> list[str]:
    """The current plant day's report in every format, through the HTTP route (one at a
    time, as the scheduled run makes them)."""
    for fmt in REPORT_FORMATS:
        url = f"{daemon.url}/api/reports/daily?format={fmt}"
        with urllib.request.urlopen(url, timeout=120) as resp:
            resp.read()
    return list(REPORT_FORMATS)


def scenario(opcua: bool, args: argparse.Namespace, models: Path | None) -> dict:
    """One daemon run: start, wait for steady state, sample the daemon's RSS, stop."""
    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    state = work / "state"
    state.mkdir()
    if models is not None:
        shutil.copytree(models, state / "models")
    config = simulate_config(work, synthetic_group(args.tags, args.interval_ms))
    daemon = DaemonProcess(state, "run", "--config", str(config), "--simulate", env={
        "REFINERYIQ_SIMULATOR__SYNTHETIC_TAGS": str(args.tags),
        "REFINERYIQ_OPCUA_SERVER__ENABLED": "true" if opcua else "false",
        "REFINERYIQ_MAINTENANCE__FIRST_RUN_DELAY_S": "5",
        "REFINERYIQ_REPORTS__SCHEDULED": "false",  # rendered below, at a known moment
    }).start()
    try:
        started = time.monotonic()
        daemon.wait_healthy(args.start_timeout_s)
        if opcua:
            daemon.wait_for(lambda: daemon.get("/health")[1]["opcua_server"]["state"] == "serving",
                            args.start_timeout_s, "the OPC-UA server serving")
        healthy_s = time.monotonic() - started
        if models is not None:
            daemon.wait_for(lambda: daemon.get("/health")[1]["maintenance"]["runs"] >= 1,
                            args.start_timeout_s, "the first PdM prediction run")
        reports = [] if args.no_report else render_reports(daemon)
        time.sleep(args.settle_s)
        process = psutil.Process(daemon.proc.pid)
        samples = []
        deadline = time.monotonic() + args.sample_s
        while time.monotonic() < deadline:
            samples.append(process.memory_info().rss / MB)
            time.sleep(args.every_s)
        health = daemon.get("/health")[1]
        peak = peak_rss_mb(process.pid)
        children = child_rss_mb(process)
    finally:
        daemon.kill()
        shutil.rmtree(work, ignore_errors=True)
    steady = statistics.median(samples)
    return {
        "opcua_server": opcua, "tags": args.tags, "interval_ms": args.interval_ms,
        "models": sorted((health.get("maintenance") or {}).get("models", {})),
        "pdm_runs": (health.get("maintenance") or {}).get("runs", 0),
        "reports_rendered": reports, "status": health.get("status"),
        "healthy_after_s": round(healthy_s, 1), "samples": len(samples),
        "rss_steady_mb": round(steady, 1), "rss_max_sampled_mb": round(max(samples), 1),
        "rss_peak_mb": round(peak, 1), "rss_target_mb": RSS_TARGET_MB,
        "rss_steady_meets_target": steady < RSS_TARGET_MB,
        "rss_peak_meets_target": peak < RSS_TARGET_MB,
        "children_rss_mb": children,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--interval-ms", type=int, default=1000)
    parser.add_argument("--settle-s", type=float, default=60.0, help="wait after start-up before sampling")
    parser.add_argument("--sample-s", type=float, default=120.0)
    parser.add_argument("--every-s", type=float, default=1.0)
    parser.add_argument("--start-timeout-s", type=float, default=240.0)
    parser.add_argument("--scenarios", nargs="+", choices=sorted(SCENARIOS), default=["off", "on"],
                        help="northbound OPC-UA server off / on")
    models = parser.add_mutually_exclusive_group()
    models.add_argument("--models", type=Path, help="copy these PdM models into the state dir")
    models.add_argument("--train-runs", type=int, default=6,
                        help="train models with `refineryiq train --runs N` (0: no models)")
    parser.add_argument("--no-report", action="store_true", help="do not render the daily report")
    parser.add_argument("--quick", action="store_true", help="shorter settle and sample windows")
    args = parser.parse_args()
    if args.quick:
        args.settle_s, args.sample_s = 10.0, 20.0
    model_dir = args.models
    if model_dir is None and args.train_runs > 0:
        model_dir = train_models(Path(tempfile.mkdtemp(prefix="bench-memory-models-")) / "models",
                                 args.train_runs)
    results = {"rss_target_mb": RSS_TARGET_MB, "scenarios": []}
    for name in args.scenarios:
        s = scenario(SCENARIOS[name], args, model_dir)
        results["scenarios"].append(s)
        print(f"memory: OPC-UA server {name}, {s['tags']:,} tags: steady {s['rss_steady_mb']:.0f} MB, "
              f"peak {s['rss_peak_mb']:.0f} MB (target < {RSS_TARGET_MB:.0f} MB: steady "
              f"{'met' if s['rss_steady_meets_target'] else 'NOT met'}); models {s['models']}, "
              f"PdM runs {s['pdm_runs']}, reports {s['reports_rendered']}", flush=True)
    print(f"written to {write_results('memory', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
