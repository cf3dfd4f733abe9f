"""Run every benchmark in sequence, then write the report: one command for the whole picture.

    .venv/bin/python bench/run_all.py [--quick]

Each benchmark runs as its own process (`python -m bench.<name>`) and merges its figures into
bench/results/latest.json (bench.common.write_results). Then this script records which ran and
which failed, writes a dated copy of the combined results (``all-<time>.json``), and
bench/report.py writes ``summary.md`` with PNG charts next to it. A benchmark that fails (e.g.
no PostgreSQL or broker) is reported and the others still run; the exit code is 1 then.
``--quick`` passes each benchmark its short options (minutes instead of the full run).
Needs PostgreSQL (store) and Mosquitto (alarms) on loopback, as `make test` sets up.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, machine, merge_latest, stamp  # noqa: E402
from bench.report import write_report  # noqa: E402

# (module, full-run arguments, quick-run arguments), in run order.
BENCHMARKS: list[tuple[str, list[str], list[str]]] = [
    ("ingest", [], ["--quick", "--seconds", "5"]),
    ("store", ["--live-rate", "100000"], ["--values", "200000"]),
    ("alarms", [], ["--quick"]),
    ("http", [], ["--seconds", "5"]),
    ("opcua_server", [], ["--flushes", "5", "--monitored", "200"]),
    ("writes", [], ["--quick"]),
    ("sparkplug", [], ["--quick"]),
    ("memory", [], ["--quick"]),
]


def run(name: str, args: list[str]) -> tuple[bool, float]:
    """Run one benchmark module; (succeeded, seconds)."""
    print(f"run_all: {name} {' '.join(args)}", file=sys.stderr, flush=True)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", f"bench.{name}", *args], cwd=ROOT)
    return done.returncode == 0, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short options for every benchmark")
    parser.add_argument("--only", nargs="*", help="run only these benchmarks (names as above)")
    args = parser.parse_args()
    chosen = [b for b in BENCHMARKS if not args.only or b[0] in args.only]
    ran, failed, seconds = [], [], {}
    for name, full, quick in chosen:
        ok, took = run(name, quick if args.quick else full)
        seconds[name] = round(took, 1)
        (ran if ok else failed).append(name)
    when = stamp()
    latest_path = merge_latest("run_all", {"time": when, "quick": args.quick, "ran": ran,
                                           "failed": failed, "seconds": seconds,
                                           "machine": machine()})
    report = write_report(RESULTS)  # adds the summary section to latest.json
    dated = RESULTS / f"all-{when}.json"
    dated.write_text(latest_path.read_text())
    print(f"run_all: {latest_path}, {dated}, {report}", file=sys.stderr)
    if failed:
        print(f"run_all: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
