"""Ingestion benchmark: raw driver read rate vs the gateway pipeline end to end.

    .venv/bin/python -m bench.ingest [--seconds 10] [--quick] [--profile auto|py-spy|cprofile|off]

Starts the simulator in its own process with N synthetic tags, measures in the same run the raw
read rate of a plain pymodbus client (125-register requests) and a plain asyncua client (one
batched Read), then runs the gateway pipeline (poll -> decode -> quality -> embedded store ->
live cache) in a separate process and reports accepted values/s, the ratio to raw, CPU-seconds,
RSS and the age of delivered data (receive time minus scan start).

The Modbus ceiling scenario asks more than the raw client could read: four 10 ms scan groups
of 10,000 tags, each on its own device (2 connections), ask 4 M values/s, twice the fastest raw
rate seen on any machine so far (``ask_over_raw`` in the result says how far above this run's
raw it was). Raw is measured before and after (the spread is the shared machine's noise), and
a bare socket reader gives the floor below any client library. What the gateway delivers is its
ceiling; a sampling profile of the gateway process (py-spy when installed, else cProfile) says
where its time goes, by stage: request, decode, quality, store, live cache, scan loop, event
loop. Results: bench/results/ingest-<time>.json (``--only-overload``: ingest_overload-<time>.json)
and bench/results/latest.json (merged under that name).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import quiet_library_logs, write_results  # noqa: E402

if TYPE_CHECKING:
    from tests.support.faults import SimulatorServer

SYNTHETIC_BASE_REGISTER = 20000


# ------------------------------------------------------------------ simulator


@contextlib.contextmanager
def simulator(tags: int) -> Iterator[SimulatorServer]:
    """The simulator with ``tags`` synthetic tags in its own process, on ports it picks."""
    # Imported here: the gateway phase runs this file as a child whose RSS is measured, and
    # the test helpers (paho, asyncpg, psutil) must not count in it.
    from tests.support.faults import SimulatorServer

    with tempfile.TemporaryDirectory() as tmp, \
            SimulatorServer(Path(tmp) / "simulator.log", 0, 0, tags) as sim:
        yield sim


# ------------------------------------------------------------------ CPU accounting


class CpuMeter:
    """CPU used by the simulator's process and by the whole machine over one phase, so a
    result shows whether the device side or other load on a shared machine bounded it."""

    def __init__(self, simulator_pid: int) -> None:
        import psutil
        self._sim = psutil.Process(simulator_pid)
        self._start = (time.monotonic(), self._sim_cpu(), _machine_busy())

    def _sim_cpu(self) -> float:
        t = self._sim.cpu_times()
        return t.user + t.system

    def read(self) -> dict:
        t0, sim0, (busy0, total0) = self._start
        elapsed = time.monotonic() - t0
        busy1, total1 = _machine_busy()
        cpus = os.cpu_count() or 1
        return {"simulator_cpu_percent": round(100 * (self._sim_cpu() - sim0) / elapsed, 1),
                "machine_cpu_percent": round(100 * cpus * (busy1 - busy0) / max(total1 - total0, 1), 1),
                "machine_cpus": cpus}


def _machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat ((0, 1) where there is none)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 1
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


# ------------------------------------------------------------------ raw rates


async def raw_modbus(port: int, tags: int, seconds: float, connections: int = 1) -> dict:
    """Plain pymodbus: back-to-back 125-register reads of the synthetic block."""
    from pymodbus.client import AsyncModbusTcpClient

    starts = [SYNTHETIC_BASE_REGISTER + k for k in range(0, tags, 125)]
    counts = [min(125, tags - (s - SYNTHETIC_BASE_REGISTER)) for s in starts]
    clients = [AsyncModbusTcpClient("127.0.0.1", port=port, timeout=5, retries=0)
               for _ in range(connections)]
    for c in clients:
        await c.connect()
    values = 0
    deadline = time.monotonic() + seconds
    t0, cpu0 = time.monotonic(), time.process_time()

    async def worker(client, offset: int) -> None:
        nonlocal values
        i = offset
        while time.monotonic() < deadline:
            k = i % len(starts)
            rr = await client.read_holding_registers(starts[k], count=counts[k], device_id=1)
            values += len(rr.registers)
            i += connections

    await asyncio.gather(*(worker(c, i) for i, c in enumerate(clients)))
    elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
    for c in clients:
        c.close()
    # This process runs only the raw client meanwhile: its CPU is what a pymodbus read costs.
    return {"values_per_s": values / elapsed, "connections": connections,
            "requests_per_s": values / elapsed / 125,
            "client_cpu_percent": 100 * cpu / elapsed,
            "values_per_cpu_second": values / cpu if cpu else None}


async def raw_modbus_socket(port: int, tags: int, seconds: float, connections: int = 8) -> dict:
    """The leanest possible Modbus TCP reader: an asyncio protocol that sends a 125-register
    read frame, waits for that many bytes and sends the next (no parsing, no checks). What
    the loopback, the event loop and the simulator allow, below any client library."""
    import struct

    starts = [SYNTHETIC_BASE_REGISTER + k for k in range(0, tags, 125)]
    counts = [min(125, tags - (s - SYNTHETIC_BASE_REGISTER)) for s in starts]
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + seconds
    totals = {"values": 0}

    class Reader(asyncio.Protocol):
        def __init__(self, offset: int) -> None:
            self.i, self.tid, self.buffer, self.want = offset, 0, b"", 0
            self.done = loop.create_future()

        def connection_made(self, transport) -> None:
            self.transport = transport
            self.send()

        def send(self) -> None:
            if time.monotonic() >= deadline:
                self.transport.close()
                return
            k = self.i % len(starts)
            self.tid = self.tid % 65000 + 1
            self.want = 9 + 2 * counts[k]
            self.count = counts[k]
            self.transport.write(struct.pack(">HHHBBHH", self.tid, 0, 6, 1, 3, starts[k], counts[k]))
            self.i += connections

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            if len(self.buffer) >= self.want:
                self.buffer = self.buffer[self.want:]
                totals["values"] += self.count
                self.send()

        def connection_lost(self, exc) -> None:
            if not self.done.done():
                self.done.set_result(None)

    t0, cpu0 = time.monotonic(), time.process_time()
    readers = [Reader(n) for n in range(connections)]
    for reader in readers:
        await loop.create_connection(lambda r=reader: r, "127.0.0.1", port)
    await asyncio.gather(*(r.done for r in readers))
    elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
    return {"values_per_s": totals["values"] / elapsed, "connections": connections,
            "client": "asyncio socket, no parsing", "client_cpu_percent": 100 * cpu / elapsed,
            "values_per_cpu_second": totals["values"] / cpu if cpu else None}


async def raw_opcua(port: int, tags: int, seconds: float) -> dict:
    """Plain asyncua: one batched Read of all synthetic nodes, back to back."""
    from asyncua import Client, ua

    client = Client(f"opc.tcp://127.0.0.1:{port}", timeout=30)
    await client.connect()
    try:
        ids = [ua.NodeId(f"SYN-{n + 1:05d}", 2) for n in range(tags)]
        chunk = 10000
        try:
            limit = await client.get_node(ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead).read_value()
            if limit:
                chunk = int(limit)
        except Exception:
            pass
        values = 0
        deadline = time.monotonic() + seconds
        t0 = time.monotonic()
        while time.monotonic() < deadline:
            for k in range(0, len(ids), chunk):
                params = ua.ReadParameters()
                for nid in ids[k:k + chunk]:
                    rv = ua.ReadValueId()
                    rv.NodeId = nid
                    rv.AttributeId = ua.AttributeIds.Value
                    params.NodesToRead.append(rv)
                result = await client.uaclient.read(params)
                values += len(result)
        elapsed = time.monotonic() - t0
    finally:
        await client.disconnect()
    return {"values_per_s": values / elapsed, "max_nodes_per_read": chunk}


# ------------------------------------------------------------------ gateway phase (child process)

# Sampling profile of the gateway process: each sample's stage is the first frame, from the
# innermost out, that belongs to one of these (path fragment, function or "" for any).
STAGE_RULES: tuple[tuple[str, str, str], ...] = (
    ("decode", "drivers/modbus/layout.py", ""),
    ("decode", "drivers/modbus/codec.py", ""),
    ("decode", "drivers/opcua/", "decode"),
    ("quality", "drivers/quality.py", ""),
    ("quality", "gateway/ingest/pipeline.py", "_mark_stale"),
    ("live cache", "gateway/ingest/live_cache.py", ""),
    ("live cache", "gateway/ingest/pipeline.py", "_count"),
    ("store", "gateway/store/", ""),
    ("batch build", "drivers/batch.py", ""),
    ("request", "drivers/modbus/", ""),
    ("request", "drivers/opcua/", ""),
    ("request", "/pymodbus/", ""),
    ("request", "/asyncua/", ""),
    ("scan loop", "gateway/ingest/", ""),
)


# Frames that say only that the event loop runs: a stack is charged to them only when no
# frame of a stage above is on it (a socket send inside a request is the request's time).
LOOP_RULES: tuple[tuple[str, str, str], ...] = (
    ("event loop", "/asyncio/", ""),
    ("event loop", "selectors.py", ""),
)
IDLE = "idle (waiting in epoll)"


def stage_of(frames: list[tuple[str, str]]) -> str:
    """The stage of one stack, ``frames`` as (function, file) from the outermost in."""
    if frames and frames[-1][1].endswith("selectors.py") and frames[-1][0].endswith("select"):
        return IDLE
    for rules in (STAGE_RULES, LOOP_RULES):
        for function, path in reversed(frames):
            for stage, fragment, name in rules:
                if fragment in path and (not name or name in function):
                    return stage
    return "other"


def parse_py_spy(text: str, rate: int, seconds: float) -> dict:
    """Stages and busiest functions from py-spy's raw output (``--threads``, no ``--idle``:
    a sample is a moment the thread was running, so samples / (rate x seconds) is how busy;
    ``--nonblocking`` still catches some samples in epoll, counted as idle)."""
    threads: dict[str, dict] = {}
    leaves: dict[str, int] = {}
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread, *frames = stack.split(";")
        name = thread.split(":", 1)[1].strip() if ":" in thread else thread
        parsed = []
        for frame in frames:
            function, _, where = frame.rpartition(" (")
            parsed.append((function, where.rstrip(")").rsplit(":", 1)[0]))
        entry = threads.setdefault(name, {"samples": 0, "stages": {}})
        entry["samples"] += count
        stage = stage_of(parsed)
        entry["stages"][stage] = entry["stages"].get(stage, 0) + count
        if parsed and stage != IDLE:
            function, path = parsed[-1]
            key = f"{function} ({'/'.join(Path(path).parts[-2:])})"
            leaves[key] = leaves.get(key, 0) + count
    expected = rate * seconds
    out: dict = {"profiler": "py-spy", "rate_hz": rate, "seconds": seconds, "threads": {}}
    for name, entry in sorted(threads.items(), key=lambda kv: -kv[1]["samples"]):
        busy = entry["samples"] - entry["stages"].get(IDLE, 0)
        out["threads"][name] = {
            "busy_fraction": round(busy / expected, 3),
            "stages_fraction_of_wall": {s: round(n / expected, 3) for s, n in
                                        sorted(entry["stages"].items(), key=lambda kv: -kv[1])},
        }
    total = sum(leaves.values()) or 1
    out["top_functions_share_of_samples"] = {k: round(v / total, 3) for k, v in
                                             sorted(leaves.items(), key=lambda kv: -kv[1])[:15]}
    return out


def summarize_cprofile(profiler, seconds: float) -> dict:
    """Stages from a cProfile of the event loop's thread (self time of each function, C
    functions counted with the stage of the caller that spent most in them). cProfile slows
    Python calls several-fold, so its shares are indicative and its run's rate is not the
    ceiling."""
    import pstats

    stats = pstats.Stats(profiler).stats  # (file, line, function) -> (cc, nc, tt, ct, callers)
    stages: dict[str, float] = {}
    for (path, _line, function), (_cc, _nc, tottime, _ct, callers) in stats.items():
        if path == "~" and callers:
            (cpath, _cl, cfunction), _ = max(callers.items(), key=lambda kv: kv[1][2])
            path, function = cpath, cfunction
        stage = stage_of([(function, path)])
        stages[stage] = stages.get(stage, 0.0) + tottime
    busy = sum(stages.values())
    return {"profiler": "cProfile", "seconds": seconds,
            "threads": {"MainThread": {
                "busy_fraction": round(busy / seconds, 3),
                "stages_fraction_of_wall": {s: round(t / seconds, 3) for s, t in
                                            sorted(stages.items(), key=lambda kv: -kv[1])}}}}


def synthetic_ids(start: int, count: int) -> list[str]:
    from plant.catalog import SYNTHETIC_PREFIX
    return [f"{SYNTHETIC_PREFIX}{n + 1:05d}" for n in range(start, start + count)]


def gateway_settings(protocol: str, port: int, tags: int, interval_ms: int, groups: int,
                     connections: int):
    """``groups`` scan groups splitting ``tags`` synthetic tags, each on its own device (its own
    connection pool of ``connections``) at ``interval_ms``."""
    from gateway.settings import GatewaySettings

    devices, scan_groups = [], []
    per_group = tags // groups
    for g in range(groups):
        device_id = f"dev{g}" if groups > 1 else "dev"
        devices.append({"id": device_id, "protocol": "modbus", "host": "127.0.0.1", "port": port,
                        "timeout_s": 2.0, "max_concurrent": connections}
                       if protocol == "modbus" else
                       {"id": device_id, "protocol": "opcua",
                        "endpoint": f"opc.tcp://127.0.0.1:{port}", "timeout_s": 10.0})
        group = {"id": f"bench{g}" if groups > 1 else "bench", "device": device_id,
                 "interval_ms": interval_ms}
        if groups > 1:
            group["tags"] = synthetic_ids(g * per_group, per_group)
        else:
            group["synthetic"] = True
        scan_groups.append(group)
    return GatewaySettings(devices=devices, scan_groups=scan_groups)


def emit(event: str, **fields) -> None:
    """One line on stdout for the parent (structlog's lines may interleave there)."""
    print(json.dumps({"bench_event": event, **fields}), flush=True)


async def gateway_phase(spec: dict) -> dict:
    """Run the real pipeline against the simulator and measure what it accepts."""
    import numpy as np

    from gateway.ingest.pipeline import Pipeline
    from gateway.store.embedded import EmbeddedStore
    from plant.catalog import Catalog
    from plant.load import load_plant

    protocol, port, tags = spec["protocol"], spec["port"], spec["tags"]
    interval_ms, seconds, groups = spec["interval_ms"], spec["seconds"], spec.get("groups", 1)
    plant = load_plant(ROOT / "config/plant.toml")
    catalog = Catalog.build(plant, tags)
    # Four connections per device, as the best raw figure uses (the device default is 2: real
    # PLCs accept few).
    settings = gateway_settings(protocol, port, tags, interval_ms, groups,
                                spec.get("connections", 4))
    profiler = None
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(Path(tmp) / "history.sqlite", retention_s=3600, max_bytes=10**10)
        await store.open()
        pipeline = Pipeline(settings, catalog, store, Path(tmp))
        await pipeline.connect_all()
        accept = asyncio.create_task(pipeline.accept_loop())
        scans = [asyncio.create_task(pipeline.scan_loop(gid)) for gid in pipeline.plans]
        await asyncio.sleep(min(3.0, seconds / 3))  # warm-up
        v0 = pipeline.accepted_values
        all_stats = list(pipeline.group_stats.values())
        before = [(s.overruns, s.skipped, s.scans) for s in all_stats]
        for s in all_stats:
            s.data_age_s.clear()
        if spec.get("profile") == "cprofile":
            import cProfile
            profiler = cProfile.Profile()
        emit("measuring", pid=os.getpid(), seconds=seconds)
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        if profiler is not None:
            profiler.enable()
        await asyncio.sleep(seconds)
        if profiler is not None:
            profiler.disable()
        elapsed = time.monotonic() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        emit("done")
        values = pipeline.accepted_values - v0
        ages = np.concatenate([np.array(s.data_age_s) for s in all_stats if s.data_age_s]
                              or [np.zeros(1)])
        scans_each = [s.scans - b[2] for s, b in zip(all_stats, before, strict=True)]
        for task in scans:
            task.cancel()
        accept.cancel()
        await asyncio.gather(*scans, accept, return_exceptions=True)
        await pipeline.close_all()
        await store.close()
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    scans_total = sum(scans_each)
    # The cadence each group achieved: at overload it is the scan's own duration, not the
    # interval asked for, and data age is judged against it.
    period = elapsed * len(scans_each) / scans_total if scans_total else None
    result = {
        "values_per_s": values / elapsed,
        "asked_values_per_s": tags * 1000 / interval_ms,
        "groups": groups,
        "connections_per_device": spec.get("connections", 4),
        "cpu_seconds": cpu,
        "cpu_percent": 100 * cpu / elapsed,
        "values_per_cpu_second": values / cpu if cpu else None,
        "rss_mb": ru1.ru_maxrss / 1024,
        "data_age_p50_s": float(np.percentile(ages, 50)),
        "data_age_p99_s": float(np.percentile(ages, 99)),
        "achieved_scan_period_s": period,
        "data_age_p99_in_achieved_periods": (float(np.percentile(ages, 99)) / period
                                             if period else None),
        "data_age_p99_in_intervals": float(np.percentile(ages, 99)) / (interval_ms / 1000),
        "scans": scans_total,
        "overruns": sum(s.overruns - b[0] for s, b in zip(all_stats, before, strict=True)),
        "skipped_scans": sum(s.skipped - b[1] for s, b in zip(all_stats, before, strict=True)),
        "bad_values": sum(s.bad_values for s in all_stats),
    }
    if profiler is not None:
        result["profile"] = summarize_cprofile(profiler, elapsed)
    return result


def py_spy() -> str | None:
    """The py-spy executable next to this interpreter or on PATH (dev extras), or None."""
    import shutil
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


PY_SPY_RATE_HZ = 100


def run_gateway_child(spec: dict, profile: str = "off", simulator_pid: int | None = None) -> dict:
    """The gateway phase in its own process; with ``profile`` py-spy (or cProfile inside the
    child) samples it during the measured window."""
    spy = py_spy() if profile in ("auto", "py-spy") else None
    if profile == "py-spy" and spy is None:
        raise RuntimeError("--profile py-spy: py-spy is not installed (pip install -e '.[dev]')")
    use_cprofile = profile == "cprofile" or (profile == "auto" and spy is None)
    spec = {**spec, "profile": "cprofile" if use_cprofile else None}
    with tempfile.TemporaryDirectory() as tmp:
        err_path, spy_path = Path(tmp) / "stderr", Path(tmp) / "py-spy.txt"
        with err_path.open("w") as err:
            proc = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(spec)],
                                    cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
            sampler, result, window = None, None, spec["seconds"]
            meter: CpuMeter | None = None
            cpu: dict = {}
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    event = _bench_event(line)
                    if event is None:
                        continue
                    if event["bench_event"] == "measuring" and simulator_pid is not None:
                        meter = CpuMeter(simulator_pid)
                    if event["bench_event"] == "measuring" and spy is not None:
                        sampler = subprocess.Popen(
                            [spy, "record", "--pid", str(event["pid"]), "--duration",
                             str(max(1, int(window))), "--rate", str(PY_SPY_RATE_HZ), "--format",
                             "raw", "--threads", "--nonblocking", "--full-filenames", "-o",
                             str(spy_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                    elif event["bench_event"] == "done" and meter is not None:
                        cpu = meter.read()
                    elif event["bench_event"] == "result":
                        result = event["result"]
                proc.wait(timeout=window * 4 + 120)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if proc.returncode != 0 or result is None:
                raise RuntimeError(f"gateway phase failed:\n{err_path.read_text()[-3000:]}")
            result.update(cpu)
            if sampler is not None:
                _, spy_err = sampler.communicate(timeout=60)
                if spy_path.exists():
                    result["profile"] = parse_py_spy(spy_path.read_text(), PY_SPY_RATE_HZ,
                                                     max(1, int(window)))
                else:  # e.g. ptrace not permitted in this container
                    result["profile"] = {"profiler": "py-spy", "error": spy_err.strip()[-500:]}
    return result


def _bench_event(line: str) -> dict | None:
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "bench_event" in event else None


# ------------------------------------------------------------------ orchestration

# The ceiling scenario's scan groups: 10,000 tags each at the shortest interval the settings
# allow, each on its own device with the device default of 2 connections: four of them ask
# 4 M values/s over 8 connections (the raw client's best count), twice the fastest raw rate
# measured so far (2.09 M/s). 40,000 synthetic registers from 20000 stay below 65,535.
CEILING_INTERVAL_MS = 10
CEILING_GROUP_TAGS = 10000
CEILING_GROUPS = 4
CEILING_CONNECTIONS = 2


def measure_raw(protocol: str, sim: SimulatorServer, tags: int, seconds: float,
                connections: tuple[int, ...] = (1, 4)) -> tuple[float, dict]:
    """The best raw rate over ``connections`` (Modbus) and the detail of each, with the
    simulator's and the machine's CPU over each."""
    if protocol != "modbus":
        meter = CpuMeter(sim.proc.pid)
        r = asyncio.run(raw_opcua(sim.ready["opcua_port"], tags, min(seconds, 5)))
        return r["values_per_s"], {**r, **meter.read()}
    detail = {}
    for n in connections:
        key = "one_connection" if n == 1 else f"{n}_connections"
        meter = CpuMeter(sim.proc.pid)
        r = asyncio.run(raw_modbus(sim.ready["modbus_port"], tags, min(seconds, 5), connections=n))
        detail[key] = {**r, **meter.read()}
    return max(d["values_per_s"] for d in detail.values()), detail


def scenario(protocol: str, tags: int, interval_ms: int, seconds: float, profile: str = "off") -> dict:
    with simulator(tags) as sim:
        port = sim.ready["modbus_port" if protocol == "modbus" else "opcua_port"]
        raw, raw_detail = measure_raw(protocol, sim, tags, seconds)
        spec = {"protocol": protocol, "port": port, "tags": tags, "interval_ms": interval_ms,
                "seconds": seconds}
        gw = run_gateway_child(spec, profile, sim.proc.pid)
    return _compare(protocol, tags, interval_ms, raw, raw_detail, gw)


def ceiling_scenario(seconds: float, profile: str = "auto", groups: int = CEILING_GROUPS,
                     connections: int = CEILING_CONNECTIONS) -> dict:
    """Modbus at the gateway's ceiling: raw measured first, then ``groups`` 10 ms groups of
    10,000 tags (an ask far above raw; ``ask_over_raw`` in the result says how far), then raw
    again."""
    with simulator(groups * CEILING_GROUP_TAGS) as sim:
        port = sim.ready["modbus_port"]
        raw, raw_detail = measure_raw("modbus", sim, CEILING_GROUP_TAGS, seconds,
                                      connections=(1, 4, 8))
        meter = CpuMeter(sim.proc.pid)
        floor = asyncio.run(raw_modbus_socket(port, CEILING_GROUP_TAGS, min(seconds, 5)))
        floor.update(meter.read())
        tags = groups * CEILING_GROUP_TAGS
        spec = {"protocol": "modbus", "port": port, "tags": tags, "groups": groups,
                "connections": connections, "interval_ms": CEILING_INTERVAL_MS,
                "seconds": seconds}
        gw = run_gateway_child(spec, profile, sim.proc.pid)
        # Raw again right after: how much the shared machine's load moved during the run.
        _, after = measure_raw("modbus", sim, CEILING_GROUP_TAGS, min(seconds, 3),
                               connections=(8,))
        raw_detail["8_connections_after_gateway"] = after["8_connections"]
    out = _compare("modbus", tags, CEILING_INTERVAL_MS, raw, raw_detail, gw)
    after = raw_detail["8_connections_after_gateway"]["values_per_s"]
    # The machine is shared: raw before and after the gateway bracket the noise.
    out["raw_values_per_s_after_gateway"] = after
    out["ratio_to_raw_after_gateway"] = gw["values_per_s"] / after if after else None
    out["ratio_to_mean_of_raw_before_and_after"] = gw["values_per_s"] / ((raw + after) / 2)
    # Below any client library: a bare socket reader. Not the project's raw limit (that is a
    # plain pymodbus client), but what the loopback and the simulator allow.
    out["socket_floor"] = floor
    out["ratio_to_socket_floor"] = gw["values_per_s"] / floor["values_per_s"]
    for d in [*raw_detail.values(), floor, gw]:
        if d.get("simulator_cpu_percent") and d.get("values_per_s"):
            d["simulator_cpu_us_per_request"] = round(
                d["simulator_cpu_percent"] / 100 / (d["values_per_s"] / 125) * 1e6, 1)
    out["ceiling"] = True
    out["ask_over_raw"] = gw["asked_values_per_s"] / raw if raw else None
    return out


def _compare(protocol: str, tags: int, interval_ms: int, raw: float, raw_detail: dict,
             gw: dict) -> dict:
    asked = gw["asked_values_per_s"]
    # The gateway cannot deliver more than was asked; compare it with what raw could do at most.
    reachable = min(raw, asked)
    out = {
        "protocol": protocol, "tags": tags, "interval_ms": interval_ms,
        "raw_values_per_s": raw, "raw": raw_detail, "gateway": gw,
        "ratio_to_raw": gw["values_per_s"] / raw if raw else None,
        "ratio_to_reachable": gw["values_per_s"] / reachable if reachable else None,
    }
    # Values per CPU-second, gateway (whole pipeline) against the raw client (reads only):
    # on a shared machine less noisy than the rates, and what the ratio becomes where the
    # client's CPU is the bound.
    raw_cpu = [d.get("values_per_cpu_second") for d in raw_detail.values() if isinstance(d, dict)]
    raw_cpu = [v for v in raw_cpu if v]
    if raw_cpu and gw.get("values_per_cpu_second"):
        out["raw_values_per_cpu_second"] = max(raw_cpu)
        out["cpu_efficiency_ratio_to_raw"] = gw["values_per_cpu_second"] / max(raw_cpu)
    return out


def print_scenario(r: dict) -> None:
    gw = r["gateway"]
    period = gw.get("achieved_scan_period_s")
    print(f"  raw {r['raw_values_per_s']:,.0f}/s  gateway {gw['values_per_s']:,.0f}/s  "
          f"ratio {r['ratio_to_raw']:.2f}  cpu {gw['cpu_percent']:.0f}%  "
          f"{gw['values_per_cpu_second'] or 0:,.0f} values/cpu-s  rss {gw['rss_mb']:.0f} MB  "
          f"age p99 {gw['data_age_p99_s'] * 1000:.0f} ms"
          + (f" ({gw['data_age_p99_in_achieved_periods']:.1f} x the {period * 1000:.0f} ms "
             "achieved scan period)" if period else "")
          + f"  overruns {gw['overruns']}", file=sys.stderr, flush=True)
    if "cpu_efficiency_ratio_to_raw" in r:
        print(f"  values per CPU-second: gateway {gw['values_per_cpu_second']:,.0f}, raw client "
              f"{r['raw_values_per_cpu_second']:,.0f} (ratio {r['cpu_efficiency_ratio_to_raw']:.2f})",
              file=sys.stderr, flush=True)
    if "simulator_cpu_percent" in gw:
        best = max(r["raw"].values(), key=lambda d: d["values_per_s"]) if "one_connection" in r["raw"] else r["raw"]
        print(f"  simulator cpu {best.get('simulator_cpu_percent', 0):.0f}% at raw, "
              f"{gw['simulator_cpu_percent']:.0f}% under the gateway; machine "
              f"{best.get('machine_cpu_percent', 0):.0f}% / {gw['machine_cpu_percent']:.0f}% "
              f"of {100 * gw['machine_cpus']}%", file=sys.stderr, flush=True)
    after = r["raw"].get("8_connections_after_gateway") if "one_connection" in r["raw"] else None
    if after:
        print(f"  raw again after the gateway: {after['values_per_s']:,.0f}/s (ratio to the mean "
              f"of before and after {r['ratio_to_mean_of_raw_before_and_after']:.2f}); bare "
              f"socket reader {r['socket_floor']['values_per_s']:,.0f}/s (ratio "
              f"{r['ratio_to_socket_floor']:.2f})", file=sys.stderr)
        sim_cost = [f"{name} {d['simulator_cpu_us_per_request']:.0f}"
                    for name, d in [*r["raw"].items(), ("socket", r["socket_floor"]), ("gateway", gw)]
                    if d.get("simulator_cpu_us_per_request")]
        print(f"  simulator CPU us per request: {', '.join(sim_cost)}", file=sys.stderr)
    profile = gw.get("profile")
    if not profile or "threads" not in profile:
        if profile:
            print(f"  profile: {profile.get('error', 'none')}", file=sys.stderr)
        return
    for name, thread in profile["threads"].items():
        if thread["busy_fraction"] < 0.02:
            continue
        stages = ", ".join(f"{s} {f:.0%}" for s, f in thread["stages_fraction_of_wall"].items()
                           if f >= 0.005)
        print(f"  {profile['profiler']} {name}: busy {thread['busy_fraction']:.0%} of wall "
              f"({stages})", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true",
                        help="only Modbus: 10,000 tags at 100 ms and the ceiling")
    parser.add_argument("--profile", choices=("auto", "py-spy", "cprofile", "off"), default="auto",
                        help="profile of the ceiling run (auto: py-spy when installed, else "
                             "cProfile, which slows the run it profiles)")
    parser.add_argument("--ceiling-groups", type=int, default=CEILING_GROUPS,
                        help="scan groups (devices) of 10,000 tags at 10 ms in the ceiling run")
    parser.add_argument("--ceiling-connections", type=int, default=CEILING_CONNECTIONS,
                        help="connections per device in the ceiling scenario")
    parser.add_argument("--only-overload", action="store_true",
                        help="only the ceiling scenarios (Modbus, and OPC-UA at 10 ms)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet_library_logs()
    if args.child:
        result = asyncio.run(gateway_phase(json.loads(args.child)))
        emit("result", result=result)
        return 0
    plan: list[tuple[str, int, int]] = [("modbus", 10000, 100)] if args.quick else [
        (p, n, i) for p in ("modbus", "opcua") for n in (1000, 10000) for i in (1000, 100)
    ] + [("opcua", 10000, 10)]
    if args.only_overload:
        plan = [("opcua", 10000, 10)]
    results: dict = {"scenarios": []}
    for protocol, tags, interval in plan:
        print(f"ingest: {protocol} {tags} tags @ {interval} ms ...", file=sys.stderr, flush=True)
        r = scenario(protocol, tags, interval, args.seconds)
        results["scenarios"].append(r)
        print_scenario(r)
    print("ingest: modbus ceiling (10 ms groups of 10,000 tags, ask above raw) ...",
          file=sys.stderr, flush=True)
    r = ceiling_scenario(args.seconds, args.profile, args.ceiling_groups, args.ceiling_connections)
    results["scenarios"].append(r)
    print(f"  {r['gateway']['groups']} groups x {CEILING_GROUP_TAGS:,} tags, asked "
          f"{r['gateway']['asked_values_per_s']:,.0f}/s ({r['ask_over_raw']:.1f} x raw)",
          file=sys.stderr, flush=True)
    print_scenario(r)
    if not (args.quick or args.only_overload):
        print("ingest: idle 100 tags @ 1 s ...", file=sys.stderr, flush=True)
        with simulator(100) as sim:
            idle = run_gateway_child({"protocol": "modbus", "port": sim.ready["modbus_port"],
                                      "tags": 100, "interval_ms": 1000,
                                      "seconds": max(args.seconds, 20)})
        results["idle_100_tags_1s"] = {"cpu_percent": idle["cpu_percent"], "rss_mb": idle["rss_mb"]}
        print(f"  idle cpu {idle['cpu_percent']:.2f}%", file=sys.stderr)
    path = write_results("ingest_overload" if args.only_overload else "ingest", results)
    print(f"ingest: results in {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
