"""Ingestion benchmark: raw driver read rate vs the gateway pipeline end to end.

    .venv/bin/python bench/ingest.py [--seconds 10] [--quick]

Starts the simulator in its own process with N synthetic tags, measures in the same run the raw
read rate of a plain pymodbus client (125-register requests) and a plain asyncua client (one
batched Read), then runs the gateway pipeline (poll → decode → quality → embedded store) in a
separate process and reports accepted values/s, the ratio to raw, CPU-seconds, RSS and the age
of delivered data (receive time minus scan start). Results: bench/results/ingest-<time>.json and
bench/results/latest.json (merged under the "ingest" key).
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

from bench.common import write_results  # noqa: E402

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
    t0 = time.monotonic()

    async def worker(client, offset: int) -> None:
        nonlocal values
        i = offset
        while time.monotonic() < deadline:
            k = i % len(starts)
            rr = await client.read_holding_registers(starts[k], count=counts[k], device_id=1)
            values += len(rr.registers)
            i += connections

    await asyncio.gather(*(worker(c, i) for i, c in enumerate(clients)))
    elapsed = time.monotonic() - t0
    for c in clients:
        c.close()
    return {"values_per_s": values / elapsed, "connections": connections,
            "requests_per_s": values / elapsed / 125}


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


async def gateway_phase(protocol: str, port: int, tags: int, interval_ms: int, seconds: float) -> dict:
    """Run the real pipeline against the simulator and measure what it accepts."""
    import numpy as np

    from gateway.ingest.pipeline import Pipeline
    from gateway.settings import GatewaySettings
    from gateway.store.embedded import EmbeddedStore
    from plant.catalog import Catalog
    from plant.load import load_plant

    plant = load_plant(ROOT / "config/plant.toml")
    catalog = Catalog.build(plant, tags)
    # Four connections, as the best raw figure uses (the device default is 2: real PLCs accept few).
    device = ({"id": "dev", "protocol": "modbus", "host": "127.0.0.1", "port": port, "timeout_s": 2.0,
               "max_concurrent": 4}
              if protocol == "modbus" else
              {"id": "dev", "protocol": "opcua", "endpoint": f"opc.tcp://127.0.0.1:{port}", "timeout_s": 10.0})
    settings = GatewaySettings(devices=[device], scan_groups=[{
        "id": "bench", "device": "dev", "interval_ms": interval_ms, "synthetic": True}])
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(Path(tmp) / "history.sqlite", retention_s=3600, max_bytes=10**10)
        await store.open()
        pipeline = Pipeline(settings, catalog, store, Path(tmp))
        await pipeline.connect_all()
        accept = asyncio.create_task(pipeline.accept_loop())
        scan = asyncio.create_task(pipeline.scan_loop("bench"))
        await asyncio.sleep(min(3.0, seconds / 3))  # warm-up
        v0 = pipeline.accepted_values
        stats = pipeline.group_stats["bench"]
        ov0, sk0, sc0 = stats.overruns, stats.skipped, stats.scans
        stats.data_age_s.clear()
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        values = pipeline.accepted_values - v0
        ages = np.array(stats.data_age_s) if stats.data_age_s else np.zeros(1)
        scan.cancel()
        accept.cancel()
        await asyncio.gather(scan, accept, return_exceptions=True)
        await pipeline.close_all()
        await store.close()
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return {
        "values_per_s": values / elapsed,
        "asked_values_per_s": tags * 1000 / interval_ms,
        "cpu_seconds": cpu,
        "cpu_percent": 100 * cpu / elapsed,
        "values_per_cpu_second": values / cpu if cpu else None,
        "rss_mb": ru1.ru_maxrss / 1024,
        "data_age_p50_s": float(np.percentile(ages, 50)),
        "data_age_p99_s": float(np.percentile(ages, 99)),
        "scans": stats.scans - sc0,
        "overruns": stats.overruns - ov0,
        "skipped_scans": stats.skipped - sk0,
        "bad_values": stats.bad_values,
    }


def run_gateway_child(protocol: str, port: int, tags: int, interval_ms: int, seconds: float) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", protocol, str(port), str(tags), str(interval_ms),
         str(seconds)], cwd=ROOT, capture_output=True, text=True, timeout=seconds * 4 + 120)
    if out.returncode != 0:
        raise RuntimeError(f"gateway phase failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ orchestration


def scenario(protocol: str, tags: int, interval_ms: int, seconds: float) -> dict:
    with simulator(tags) as sim:
        port = sim.ready["modbus_port" if protocol == "modbus" else "opcua_port"]
        if protocol == "modbus":
            raw1 = asyncio.run(raw_modbus(port, tags, min(seconds, 5)))
            raw4 = asyncio.run(raw_modbus(port, tags, min(seconds, 5), connections=4))
            raw = max(raw1["values_per_s"], raw4["values_per_s"])
            raw_detail = {"one_connection": raw1, "four_connections": raw4}
        else:
            r = asyncio.run(raw_opcua(port, tags, min(seconds, 5)))
            raw, raw_detail = r["values_per_s"], r
        gw = run_gateway_child(protocol, port, tags, interval_ms, seconds)
    asked = gw["asked_values_per_s"]
    # The gateway cannot deliver more than was asked; compare it with what raw could do at most.
    reachable = min(raw, asked)
    return {
        "protocol": protocol, "tags": tags, "interval_ms": interval_ms,
        "raw_values_per_s": raw, "raw": raw_detail, "gateway": gw,
        "ratio_to_raw": gw["values_per_s"] / raw if raw else None,
        "ratio_to_reachable": gw["values_per_s"] / reachable if reachable else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true",
                        help="only Modbus at 10,000 tags: 100 ms and overload (10 ms)")
    parser.add_argument("--only-overload", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        protocol, port, tags, interval, seconds = args.child
        result = asyncio.run(gateway_phase(protocol, int(port), int(tags), int(interval), float(seconds)))
        print(json.dumps(result))
        return 0
    # The last two ask more than any device can answer (10 ms scans of 10,000 tags): what the
    # gateway then delivers is its maximum, the figure to compare with the raw read rate.
    plan = [("modbus", 10000, 100), ("modbus", 10000, 10)] if args.quick else [
        (p, n, i) for p in ("modbus", "opcua") for n in (1000, 10000) for i in (1000, 100)
    ] + [("modbus", 10000, 10), ("opcua", 10000, 10)]
    if args.only_overload:
        plan = [("modbus", 10000, 10), ("opcua", 10000, 10)]
    results = {"scenarios": []}
    for protocol, tags, interval in plan:
        print(f"ingest: {protocol} {tags} tags @ {interval} ms ...", file=sys.stderr, flush=True)
        r = scenario(protocol, tags, interval, args.seconds)
        results["scenarios"].append(r)
        gw = r["gateway"]
        print(f"  raw {r['raw_values_per_s']:,.0f}/s  gateway {gw['values_per_s']:,.0f}/s  "
              f"ratio {r['ratio_to_raw']:.2f}  cpu {gw['cpu_percent']:.0f}%  "
              f"{gw['values_per_cpu_second'] or 0:,.0f} values/cpu-s  rss {gw['rss_mb']:.0f} MB  "
              f"age p99 {gw['data_age_p99_s'] * 1000:.0f} ms  overruns {gw['overruns']}",
              file=sys.stderr, flush=True)
    if not (args.quick or args.only_overload):
        print("ingest: idle 100 tags @ 1 s ...", file=sys.stderr, flush=True)
        with simulator(100) as sim:
            idle = run_gateway_child("modbus", sim.ready["modbus_port"], 100, 1000, max(args.seconds, 20))
        results["idle_100_tags_1s"] = {"cpu_percent": idle["cpu_percent"], "rss_mb": idle["rss_mb"]}
        print(f"  idle cpu {idle['cpu_percent']:.2f}%", file=sys.stderr)
    path = write_results("ingest_overload" if args.only_overload else "ingest", results)
    print(f"ingest: results in {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
