"""Resident memory of the daemon and of its process tree: `refineryiq run --simulate`.

    .venv/bin/python -m bench.memory [--tags 10000] [--settle-s 60] [--sample-s 120]
                                     [--scenarios all plant tracemalloc] [--models DIR | --train-runs 6]
                                     [--no-report] [--quick]

Scenarios (``--scenarios``; default ``all plant tracemalloc``):

- ``all``: 10,000 synthetic tags (``--tags``) in 1 s scans with every service on: the
  northbound OPC-UA server, MQTT (alarms and live values by exception) to the broker at
  127.0.0.1:1883, alarms, analytics and PdM predictions, and historian forwarding to the
  PostgreSQL at 127.0.0.1:5432 (database test, user postgres) into a throwaway schema,
  dropped afterwards (``--database-url`` to change it). Targets: daemon <= 150 MB RSS,
  the unit's process tree <= 250 MB.
- ``plant``: plain `refineryiq run --simulate` on the plant catalog (config/plant.toml, 57
  tags; services as config/gateway.toml has them: OPC-UA server on, MQTT and historian off).
  Target: daemon <= 80 MB RSS.
- ``off`` / ``on``: the earlier pair, 10,000 tags with the northbound OPC-UA server off / on
  and no MQTT or historian.
- ``tracemalloc``: the ``all`` daemon started under tracemalloc (8 frames); after the
  settle time it writes a snapshot on SIGUSR2 (a handler this benchmark installs around the
  CLI, see :data:`TRACEMALLOC_WRAPPER`: the product has no such hook), and the benchmark
  groups the traced bytes by owner. Its RSS is inflated by tracemalloc and is not a figure.

Each scenario starts the daemon as `refineryiq run --simulate` does in production (the
simulator is its child process, serving every tag over Modbus/OPC-UA), with a state directory
holding the predictive-maintenance models (copied from ``--models``, or trained once with
`refineryiq train --runs N`; ``--train-runs 0`` runs without models). It waits until /health
is healthy (the OPC-UA server serving, the historian forwarding), for the first PdM prediction
run when there are models, and renders the daily report once in each format as the
scheduled run does every morning (``--no-report`` skips it). After ``settle-s`` it samples,
every second for ``sample-s``, the daemon's RSS and, for every process of its tree
(the daemon and its children, recursively), RSS and PSS (/proc/PID/smaps_rollup: shared pages
divided among the processes that map them, so PSS sums to what the tree really holds).

The tree is reported twice: with every child, and without the simulator child. In production
the simulator is not in the systemd unit (the PLCs are, on the network), so the figure held
against the 250 MB target of the unit's cgroup is ``tree_without_simulator``; the simulator
is there only because `--simulate` stands in for the plant.

Figures per scenario: ``rss_steady_mb`` (median of the daemon's samples), ``rss_max_sampled_mb``,
``rss_peak_mb`` (the kernel's high-water mark VmHWM since start, start-up included),
``tree`` and ``tree_without_simulator`` (median of the sums of PSS and of RSS), the children
by role, and the targets. The ``tracemalloc`` scenario gives ``top_owners`` (the traced bytes
by the innermost frame in the project's own code: what the project holds, e.g. the catalog's
tags under ``plant.catalog``) and ``top_allocators`` (by the package or module of the line that
allocated them). Results: bench/results/memory-<time>.json and bench/results/latest.json
under "memory" (bench.common.write_results).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
import uuid
from collections import defaultdict
from pathlib import Path

import psutil

from bench.common import write_results
from tests.support.daemon import ROOT, DaemonProcess
from tests.support.faults import simulate_config, synthetic_group

MB = 1024 * 1024
DAEMON_TARGET_MB = 150.0        # the daemon at 10,000 tags, every service on
TREE_TARGET_MB = 250.0          # everything the systemd unit's cgroup holds (no simulator)
PLANT_TARGET_MB = 80.0          # the daemon on the plant catalog's 57 tags
REPORT_FORMATS = ("html", "pdf", "xlsx")
DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
MQTT_HOST = "127.0.0.1"
TRACEMALLOC_FRAMES = 8
# The project's own top-level packages: an allocation is owned by its innermost frame in one.
PROJECT_PACKAGES = ("gateway", "plant", "drivers", "analytics", "simulator", "refineryiq")

# `python -c` program run instead of `-m refineryiq.cli` in the tracemalloc scenario: SIGUSR2
# writes a tracemalloc snapshot to $BENCH_TRACEMALLOC_FILE (tracing itself is started by
# PYTHONTRACEMALLOC before any import; the daemon's children run without it). The daemon
# installs no SIGUSR2 handler of its own.
TRACEMALLOC_WRAPPER = """
import os, runpy, signal, sys, tracemalloc
os.environ.pop("PYTHONTRACEMALLOC", None)  # tracing this process only, not its children
def _dump(signum, frame):
    path = os.environ["BENCH_TRACEMALLOC_FILE"]
    tracemalloc.take_snapshot().dump(path + ".part")
    os.replace(path + ".part", path)
signal.signal(signal.SIGUSR2, _dump)
sys.argv[0] = "refineryiq"
runpy.run_module("refineryiq.cli", run_name="__main__", alter_sys=True)
"""


class Scenario:
    """What one scenario runs: tags, services, target."""

    def __init__(self, name: str, *, synthetic: bool, opcua: bool | None, mqtt: bool, database: bool,
                 tracemalloc: bool = False, target_mb: float = DAEMON_TARGET_MB):
        self.name, self.synthetic, self.opcua, self.mqtt = name, synthetic, opcua, mqtt
        self.database, self.tracemalloc, self.target_mb = database, tracemalloc, target_mb


SCENARIOS = {
    "all": Scenario("all", synthetic=True, opcua=True, mqtt=True, database=True),
    "plant": Scenario("plant", synthetic=False, opcua=None, mqtt=False, database=False,
                      target_mb=PLANT_TARGET_MB),
    "off": Scenario("off", synthetic=True, opcua=False, mqtt=False, database=False),
    "on": Scenario("on", synthetic=True, opcua=True, mqtt=False, database=False),
    "tracemalloc": Scenario("tracemalloc", synthetic=True, opcua=True, mqtt=True, database=True,
                            tracemalloc=True),
}


class WrappedDaemon(DaemonProcess):
    """DaemonProcess run through :data:`TRACEMALLOC_WRAPPER` (same arguments and environment)."""

    def start(self) -> WrappedDaemon:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-c", TRACEMALLOC_WRAPPER, *self.args], cwd=ROOT,
                                     env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        return self


def train_models(out: Path, runs: int) -> Path:
    """`refineryiq train --runs N --out DIR` (minutes of CPU; done once for all scenarios)."""
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


def rss_pss_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of one process from /proc/PID/smaps_rollup, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            fields[key] = int(rest.split()[0]) / 1024
    return fields["Rss"], fields["Pss"]


def role(process: psutil.Process) -> str:
    """What a child of the daemon runs: the simulator, multiprocessing's resource tracker or
    spawned worker (prediction, report), or the start of its command line."""
    cmdline = " ".join(process.cmdline())
    if "-m simulator" in cmdline or 'run_module("simulator"' in cmdline:  # simulator_child.BOOTSTRAP
        return "simulator"
    if "resource_tracker" in cmdline:
        return "resource_tracker"
    if "multiprocessing" in cmdline:
        return "multiprocessing_worker"
    return cmdline[:60]


def tree_sample(process: psutil.Process) -> list[dict]:
    """RSS and PSS of the daemon and each of its children (recursively) at this moment;
    a child that ended between listing and reading is left out."""
    out = []
    for proc in [process, *process.children(recursive=True)]:
        try:
            rss, pss = rss_pss_mb(proc.pid)
            out.append({"role": "daemon" if proc.pid == process.pid else role(proc),
                        "rss_mb": rss, "pss_mb": pss})
        except (psutil.Error, OSError, KeyError):
            continue
    return out


def summarize_tree(samples: list[list[dict]], *, without_simulator: bool) -> dict:
    """Medians over the samples of the tree's summed PSS and RSS and of each role's."""
    sums_pss, sums_rss = [], []
    by_role: dict[str, list[float]] = defaultdict(list)
    for sample in samples:
        chosen = [p for p in sample if not (without_simulator and p["role"] == "simulator")]
        sums_pss.append(sum(p["pss_mb"] for p in chosen))
        sums_rss.append(sum(p["rss_mb"] for p in chosen))
        roles: dict[str, float] = defaultdict(float)
        for p in chosen:
            roles[p["role"]] += p["pss_mb"]
        for name, value in roles.items():
            by_role[name].append(value)
    return {"pss_mb": round(statistics.median(sums_pss), 1), "rss_mb": round(statistics.median(sums_rss), 1),
            "pss_max_mb": round(max(sums_pss), 1),
            "pss_by_role_mb": {k: round(statistics.median(v), 1) for k, v in sorted(by_role.items())}}


def render_reports(daemon: DaemonProcess) -> list[str]:
    """The current plant day's report in every format, through the HTTP route (one at a
    time, as the scheduled run makes them)."""
    for fmt in REPORT_FORMATS:
        url = f"{daemon.url}/api/reports/daily?format={fmt}"
        with urllib.request.urlopen(url, timeout=120) as resp:
            resp.read()
    return list(REPORT_FORMATS)


def owner_of(traceback: tracemalloc.Traceback) -> str:
    """The module of the innermost frame in the project's own code (``plant.catalog``), else
    the package of the allocating frame (``<library> pydantic``)."""
    for frame in reversed(traceback):  # a Traceback is oldest frame first
        module = project_module(frame.filename)
        if module is not None:
            return module
    package = package_of(traceback[-1].filename)
    return package if package == "<imports>" else f"<library> {package}"


def project_module(filename: str) -> str | None:
    """``gateway/northbound/opcua/nodes.py`` -> ``gateway.northbound.opcua.nodes``, or None
    outside the project's packages."""
    try:
        rel = Path(filename).resolve().relative_to(ROOT)
    except ValueError:
        return None
    if rel.parts and rel.parts[0] in PROJECT_PACKAGES:
        return ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
    return None


def package_of(filename: str) -> str:
    """The top-level package (site-packages/<name>/...), the stdlib module, or the file."""
    parts = Path(filename).parts
    if "site-packages" in parts:
        i = parts.index("site-packages")
        return parts[i + 1].removesuffix(".py") if i + 1 < len(parts) else filename
    if filename.startswith("<frozen importlib") or filename.startswith("<frozen zipimport"):
        return "<imports>"  # code objects, functions and classes of the imported modules
    if filename.startswith("<"):
        return filename
    module = project_module(filename)
    if module is not None:
        return module.split(".")[0]
    return f"stdlib {Path(filename).stem}"


def tracemalloc_breakdown(path: Path, top: int = 20) -> dict:
    """The snapshot's traced bytes grouped by owner and by allocating package (top ``top``)."""
    snapshot = tracemalloc.Snapshot.load(str(path))
    owners: dict[str, int] = defaultdict(int)
    allocators: dict[str, int] = defaultdict(int)
    total = 0
    for trace in snapshot.traces:
        owners[owner_of(trace.traceback)] += trace.size
        allocators[package_of(trace.traceback[-1].filename)] += trace.size
        total += trace.size

    def ranked(groups: dict[str, int]) -> list[dict]:
        return [{"owner": k, "mb": round(v / MB, 2)}
                for k, v in sorted(groups.items(), key=lambda kv: -kv[1])[:top]]
    return {"traced_mb": round(total / MB, 1), "frames": TRACEMALLOC_FRAMES,
            "top_owners": ranked(owners), "top_allocators": ranked(allocators)}


def scenario(sc: Scenario, args: argparse.Namespace, models: Path | None) -> dict:
    """One daemon run: start, wait for steady state, sample the tree's memory, stop."""
    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    state = work / "state"
    state.mkdir()
    if models is not None:
        shutil.copytree(models, state / "models")
    tags = args.tags if sc.synthetic else 0
    config = simulate_config(work, synthetic_group(tags, args.interval_ms) if sc.synthetic else "")
    tag_run = uuid.uuid4().hex[:10]
    schema = f"bench_memory_{tag_run}" if sc.database else None
    env = {
        "REFINERYIQ_SIMULATOR__SYNTHETIC_TAGS": str(tags),
        "REFINERYIQ_MAINTENANCE__FIRST_RUN_DELAY_S": "5",
        "REFINERYIQ_REPORTS__SCHEDULED": "false",  # rendered below, at a known moment
        "REFINERYIQ_SITE": f"benchmem{tag_run}",   # MQTT topics of this run only
    }
    if sc.opcua is not None:
        env["REFINERYIQ_OPCUA_SERVER__ENABLED"] = "true" if sc.opcua else "false"
    if sc.mqtt:
        env.update({"REFINERYIQ_MQTT__HOST": MQTT_HOST, "REFINERYIQ_MQTT__VALUES__ENABLED": "true"})
    if schema is not None:
        env.update({"REFINERYIQ_DATABASE__URL": args.database_url, "REFINERYIQ_DATABASE__SCHEMA": schema})
    snapshot_file = work / "tracemalloc.snapshot"
    if sc.tracemalloc:
        env.update({"PYTHONTRACEMALLOC": str(TRACEMALLOC_FRAMES), "BENCH_TRACEMALLOC_FILE": str(snapshot_file)})
    cls = WrappedDaemon if sc.tracemalloc else DaemonProcess
    daemon = cls(state, "run", "--config", str(config), "--simulate", env=env)
    try:
        daemon.start()
        started = time.monotonic()
        daemon.wait_healthy(args.start_timeout_s)
        opcua_on = sc.opcua if sc.opcua is not None else "opcua_server" in daemon.get("/health")[1]
        if opcua_on:
            daemon.wait_for(lambda: daemon.get("/health")[1]["opcua_server"]["state"] == "serving",
                            args.start_timeout_s, "the OPC-UA server serving")
        if sc.database:
            daemon.wait_for(lambda: daemon.get("/health")[1]["database"]["rows_written"] > 0,
                            args.start_timeout_s, "the historian forwarding rows")
        healthy_s = time.monotonic() - started
        if models is not None:
            daemon.wait_for(lambda: daemon.get("/health")[1]["maintenance"]["runs"] >= 1,
                            args.start_timeout_s, "the first PdM prediction run")
        reports = [] if args.no_report else render_reports(daemon)
        time.sleep(args.settle_s)
        process = psutil.Process(daemon.proc.pid)
        breakdown = None
        # before the snapshot: a daemon under tracemalloc answers slowly while it catches up
        health = daemon.get("/health", timeout=60)[1]
        if sc.tracemalloc:
            process.send_signal(signal.SIGUSR2)
            daemon.wait_for(snapshot_file.exists, args.start_timeout_s, "the tracemalloc snapshot")
        samples, trees = [], []
        deadline = time.monotonic() + (0 if sc.tracemalloc else args.sample_s)
        while True:
            samples.append(process.memory_info().rss / MB)
            trees.append(tree_sample(process))
            if time.monotonic() >= deadline:
                break
            time.sleep(args.every_s)
        peak = peak_rss_mb(process.pid)
    finally:
        daemon.kill()
        if schema is not None:
            from tests.support.pg import drop_schema
            asyncio.run(drop_schema(schema))
    try:
        if sc.tracemalloc:
            breakdown = tracemalloc_breakdown(snapshot_file)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    steady = statistics.median(samples)
    database = health.get("database") or {}
    result = {
        "scenario": sc.name, "tags": len_catalog(health, tags), "interval_ms": args.interval_ms,
        "services": {"opcua_server": bool(opcua_on), "mqtt_alarms_and_values": sc.mqtt,
                     "historian_forwarding": sc.database, "alarms": True,
                     "analytics": "analytics" in health,
                     "maintenance_models": sorted((health.get("maintenance") or {}).get("models", {}))},
        "pdm_runs": (health.get("maintenance") or {}).get("runs", 0),
        "historian_rows_written": database.get("rows_written"),
        "reports_rendered": reports, "status": health.get("status"),
        "healthy_after_s": round(healthy_s, 1), "samples": len(samples),
        "rss_steady_mb": round(steady, 1), "rss_max_sampled_mb": round(max(samples), 1),
        "rss_peak_mb": round(peak, 1), "rss_target_mb": sc.target_mb,
        "rss_steady_meets_target": steady <= sc.target_mb,
        "tree": summarize_tree(trees, without_simulator=False),
        "tree_without_simulator": summarize_tree(trees, without_simulator=True),
        "tree_target_mb": TREE_TARGET_MB,
    }
    result["tree_without_simulator_meets_target"] = result["tree_without_simulator"]["pss_mb"] <= TREE_TARGET_MB
    if breakdown is not None:
        result["note"] = "RSS under tracemalloc is inflated: not a figure"
        result["tracemalloc"] = breakdown
    return result


def len_catalog(health: dict, synthetic: int) -> int:
    """Tags the daemon scans: the plant catalog's plus the synthetic ones."""
    del health
    from plant.load import load_plant
    return len(load_plant(ROOT / "config" / "plant.toml").tags) + synthetic


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--interval-ms", type=int, default=1000)
    parser.add_argument("--settle-s", type=float, default=60.0, help="wait after start-up before sampling")
    parser.add_argument("--sample-s", type=float, default=120.0)
    parser.add_argument("--every-s", type=float, default=1.0)
    parser.add_argument("--start-timeout-s", type=float, default=240.0)
    parser.add_argument("--scenarios", nargs="+", choices=sorted(SCENARIOS),
                        default=["all", "plant", "tracemalloc"])
    parser.add_argument("--database-url", default=DATABASE_URL,
                        help="historian of the 'all' scenario (a throwaway schema is made and dropped)")
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
    results = {"targets_mb": {"daemon_10k_all_services": DAEMON_TARGET_MB, "unit_tree_10k": TREE_TARGET_MB,
                              "daemon_plant_catalog": PLANT_TARGET_MB},
               "tree_note": ("tree = the daemon and all its children (PSS summed from "
                             "/proc/PID/smaps_rollup, RSS summed); tree_without_simulator leaves out "
                             "the simulator child, which `--simulate` adds in place of the PLCs and "
                             "which is not in the production systemd unit"),
               "scenarios": []}
    for name in args.scenarios:
        try:
            s = scenario(SCENARIOS[name], args, model_dir)
        except (AssertionError, OSError) as exc:  # the other scenarios' figures are still written
            print(f"memory: {name} failed: {str(exc)[:2000]}", file=sys.stderr, flush=True)
            results["scenarios"].append({"scenario": name, "error": str(exc)[:2000]})
            continue
        results["scenarios"].append(s)
        print(summary_line(s), flush=True)
        if "tracemalloc" in s:
            for row in s["tracemalloc"]["top_owners"][:12]:
                print(f"    {row['mb']:7.2f} MB  {row['owner']}", flush=True)
    print(f"written to {write_results('memory', results)}")
    return 0


def summary_line(s: dict) -> str:
    tree, unit = s["tree"], s["tree_without_simulator"]
    if "tracemalloc" in s:
        return (f"memory: {s['scenario']}, {s['tags']:,} tags: {s['tracemalloc']['traced_mb']:.0f} MB traced "
                f"by tracemalloc; top owners:")
    return (f"memory: {s['scenario']}, {s['tags']:,} tags: daemon steady {s['rss_steady_mb']:.0f} MB RSS "
            f"(target <= {s['rss_target_mb']:.0f}: {'met' if s['rss_steady_meets_target'] else 'NOT met'}), "
            f"peak {s['rss_peak_mb']:.0f} MB; tree {tree['pss_mb']:.0f} MB PSS / {tree['rss_mb']:.0f} MB RSS, "
            f"without the simulator (the unit in production) {unit['pss_mb']:.0f} MB PSS / "
            f"{unit['rss_mb']:.0f} MB RSS (target <= {TREE_TARGET_MB:.0f}: "
            f"{'met' if s['tree_without_simulator_meets_target'] else 'NOT met'}); "
            f"PdM runs {s['pdm_runs']}, historian rows {s['historian_rows_written']}")


if __name__ == "__main__":
    sys.exit(main())
