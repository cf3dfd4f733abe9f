"""Write latency and sustained writes, against `refineryiq run --simulate`.

    .venv/bin/python -m bench.writes [--writes 200] [--rate 100] [--seconds 60] [--quick]

Latency: ``--writes`` sequential writes, each from the request to its answer, which the gateway
sends only after the read-back confirmed the value (outcome ``confirmed``): over HTTP to a
setpoint on the Modbus device (TIC-101.SP) and one on the OPC-UA device (HIC-401.SP), and from
a northbound OPC-UA client (Basic256Sha256, a supervisor account) to the Modbus setpoint.
p50/p99 per path, plus the journal's own request-to-outcome time.

Sustained: a daemon scanning 10,000 synthetic tags at 100 ms on the Modbus device (and the
plant's own groups) runs ``--seconds`` without writes, then ``--seconds`` with ``--rate``
writes/s over HTTP (open loop: one started every 1/rate s whatever the answers, round robin over
three setpoints on both devices). Counted in the same daemon: the scan overruns and skipped
scans of each phase (the writes must cause none), and the writes' p50/p99 against the target
of 50 ms plus one scan interval. Results: ``bench/results/writes-*.json`` and ``latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

from bench.common import quiet_library_logs, write_results
from gateway.services.accounts.users import Role
from tests.support.daemon import DaemonProcess, free_port, state_with_users
from tests.support.faults import simulate_config, synthetic_group

PASSWORD = "bench writer 2026"
USER = "bench"
SCAN_INTERVAL_MS = 100
SYNTHETIC_TAGS = 10_000
TARGET_MS = 50.0 + SCAN_INTERVAL_MS
# (tag, two values a write alternates between: inside the write range and max_step)
MODBUS_SETPOINT = ("TIC-101.SP", (350.0, 351.0))
OPCUA_SETPOINT = ("HIC-401.SP", (40.0, 41.0))
FEED_SETPOINT = ("FIC-102.SP", (10000.0, 10010.0))


def percentile(samples: list[float], q: float) -> float | None:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else None


def summary(latencies_ms: list[float], journal_ms: list[float], outcomes: Counter) -> dict:
    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 2)
    return {"writes": sum(outcomes.values()), "outcomes": dict(outcomes),
            "p50_ms": r(percentile(latencies_ms, 0.50)), "p99_ms": r(percentile(latencies_ms, 0.99)),
            "max_ms": r(max(latencies_ms) if latencies_ms else None),
            "journal_p50_ms": r(percentile(journal_ms, 0.50)),
            "journal_p99_ms": r(percentile(journal_ms, 0.99))}


class Writer:
    """An HTTP client of POST /api/tags/{tag_id}/write with a supervisor's token."""

    def __init__(self, url: str, session: aiohttp.ClientSession, token: str):
        self.url, self.session = url, session
        self.headers = {"Authorization": f"Bearer {token}"}
        self.latencies: list[float] = []
        self.journal: list[float] = []
        self.outcomes: Counter = Counter()

    async def write(self, tag_id: str, value: float) -> None:
        started = time.perf_counter()
        async with self.session.post(f"{self.url}/api/tags/{tag_id}/write", headers=self.headers,
                                     json={"value": value, "reason": "bench"}) as resp:
            body = await resp.json()
        self.latencies.append((time.perf_counter() - started) * 1000)
        row = body.get("write", body)
        outcome = row.get("outcome", f"http {resp.status}")
        self.outcomes[f"{outcome} {row['refusal']}" if row.get("refusal") else outcome] += 1
        if row.get("finished_at") is not None:
            self.journal.append((row["finished_at"] - row["requested_at"]) * 1000)


async def login(url: str, session: aiohttp.ClientSession) -> str:
    async with session.post(f"{url}/api/auth/login",
                            json={"username": USER, "password": PASSWORD}) as resp:
        return (await resp.json())["token"]


async def http_latency(url: str, tag: tuple[str, tuple[float, float]], n: int) -> dict:
    tag_id, values = tag
    async with aiohttp.ClientSession() as session:
        writer = Writer(url, session, await login(url, session))
        for k in range(n):
            await writer.write(tag_id, values[k % 2])
    return summary(writer.latencies, writer.journal, writer.outcomes)


async def opcua_latency(endpoint: str, work: Path, tag: tuple[str, tuple[float, float]],
                        n: int) -> dict:
    """A northbound OPC-UA client writing through the gateway (SignAndEncrypt)."""
    from asyncua import Client, ua
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key, cert = work / "client-key.pem", work / "client-cert.der"
    await setup_self_signed_certificate(key, cert, "urn:refineryiq:bench-writer", "localhost",
                                        [ExtendedKeyUsageOID.CLIENT_AUTH], {"commonName": "bench"})
    client = Client(endpoint, timeout=10)
    await client.set_security_string(f"Basic256Sha256,SignAndEncrypt,{cert},{key}")
    client.set_user(USER)
    client.set_password(PASSWORD)
    tag_id, values = tag
    latencies: list[float] = []
    outcomes: Counter = Counter()
    async with client:
        for k in range(n):
            item = ua.WriteValue()
            item.NodeId = ua.NodeId(tag_id, 2)
            item.AttributeId = ua.AttributeIds.Value
            item.Value = ua.DataValue(ua.Variant(values[k % 2], ua.VariantType.Double))
            params = ua.WriteParameters()
            params.NodesToWrite.append(item)
            started = time.perf_counter()
            status = (await client.uaclient.write(params))[0]
            latencies.append((time.perf_counter() - started) * 1000)
            outcomes["confirmed" if status.is_good() else status.name] += 1
    return summary(latencies, [], outcomes)


def cpu_s(daemon: DaemonProcess) -> dict[str, float]:
    """CPU seconds so far of the daemon and of its children (the simulator)."""
    import psutil

    process = psutil.Process(daemon.proc.pid)
    own = process.cpu_times()
    children = sum(c.cpu_times().user + c.cpu_times().system
                   for c in process.children(recursive=True))
    return {"daemon": own.user + own.system, "simulator": children}


def cpu_delta(after: dict[str, float], before: dict[str, float], seconds: float) -> dict:
    return {f"{k}_cpu_percent": round(100 * (after[k] - before[k]) / seconds, 1) for k in after}


def overruns(daemon: DaemonProcess) -> dict[str, tuple[int, int, int]]:
    """(scans, overruns, skipped) of each poll group."""
    groups = daemon.get("/health", timeout=10)[1]["scan_groups"]
    return {g["id"]: (g["scans"], g["overruns"], g["skipped_scans"]) for g in groups
            if g["mode"] == "poll"}


async def scan_durations(daemon: DaemonProcess, seconds: float, group: str = "synthetic") -> dict:
    """The group's last scan duration sampled every 0.25 s for ``seconds`` (median, p90, max ms)."""
    samples: list[float] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        _, body = await asyncio.to_thread(daemon.get, "/health", 10)
        samples += [g["last_scan_duration_s"] * 1000 for g in body["scan_groups"] if g["id"] == group]
        await asyncio.sleep(0.25)
    return {"scan_ms_median": round(percentile(samples, 0.5) or 0, 1),
            "scan_ms_p90": round(percentile(samples, 0.9) or 0, 1),
            "scan_ms_max": round(max(samples, default=0), 1), "samples": len(samples)}


def delta(after: dict, before: dict) -> dict[str, dict[str, int]]:
    return {g: {"scans": a[0] - before[g][0], "overruns": a[1] - before[g][1],
                "skipped": a[2] - before[g][2]} for g, a in after.items()}


async def sustained(url: str, rate: float, seconds: float, refused: bool = False) -> dict:
    """``rate`` writes/s for ``seconds``; ``refused``: every value outside the write range, so
    the gateway journals and answers each one but sends nothing to a device."""
    tags = [MODBUS_SETPOINT, FEED_SETPOINT, OPCUA_SETPOINT]
    if refused:
        tags = [(tag_id, (-1.0, -2.0)) for tag_id, _ in tags]
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as session:
        writer = Writer(url, session, await login(url, session))
        pending: set[asyncio.Task] = set()
        loop = asyncio.get_running_loop()
        start = loop.time()
        k = 0
        while (due := start + k / rate) < start + seconds:
            await asyncio.sleep(max(0.0, due - loop.time()))
            tag_id, values = tags[k % len(tags)]
            task = loop.create_task(writer.write(tag_id, values[(k // len(tags)) % 2]))
            pending.add(task)
            task.add_done_callback(pending.discard)
            k += 1
        elapsed = loop.time() - start
        await asyncio.gather(*pending)
    out = summary(writer.latencies, writer.journal, writer.outcomes)
    out["offered_per_s"] = round(k / elapsed, 1)
    return out


async def run(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-writes-"))
    results: dict = {"target_p99_ms": TARGET_MS, "scan_interval_ms": SCAN_INTERVAL_MS}
    try:
        # -- latency: the default plant configuration, northbound OPC-UA with a supervisor
        from argon2 import PasswordHasher
        users = [{"username": USER, "password_hash": PasswordHasher().hash(PASSWORD),
                  "role": "supervisor"}]
        state = await asyncio.to_thread(state_with_users, work / "latency" / "state", PASSWORD,
                                        {USER: Role.SUPERVISOR})
        opcua_port = free_port()
        daemon = DaemonProcess(state, env={
            "REFINERYIQ_OPCUA_SERVER__PORT": str(opcua_port),
            "REFINERYIQ_OPCUA_SERVER__SECURITY": "Basic256Sha256",
            "REFINERYIQ_OPCUA_SERVER__USERS": json.dumps(users)}).start()
        try:
            await asyncio.to_thread(daemon.wait_healthy, 90)
            await asyncio.to_thread(daemon.wait_for, lambda: daemon.get("/health")[1]
                                    ["opcua_server"]["state"] == "serving", 60, "OPC-UA serving")
            await asyncio.sleep(args.settle_s)
            results["latency"] = {
                "http_to_modbus": await http_latency(daemon.url, MODBUS_SETPOINT, args.writes),
                "http_to_opcua": await http_latency(daemon.url, OPCUA_SETPOINT, args.writes),
                "northbound_opcua_to_modbus": await opcua_latency(
                    f"opc.tcp://127.0.0.1:{opcua_port}", work, MODBUS_SETPOINT, args.writes),
            }
        finally:
            daemon.kill()

        # -- sustained: 10,000 synthetic tags at 100 ms, without writes and with
        state = await asyncio.to_thread(state_with_users, work / "sustained" / "state", PASSWORD,
                                        {USER: Role.SUPERVISOR})
        config = simulate_config(work, synthetic_group(SYNTHETIC_TAGS, SCAN_INTERVAL_MS))
        daemon = DaemonProcess(state, "run", "--config", str(config), "--simulate", env={
            "REFINERYIQ_SIMULATOR__SYNTHETIC_TAGS": str(SYNTHETIC_TAGS),
            "REFINERYIQ_OPCUA_SERVER__ENABLED": "false"}).start()
        try:
            await asyncio.to_thread(daemon.wait_healthy, 180)
            await asyncio.sleep(args.settle_s)
            t0, c0 = overruns(daemon), cpu_s(daemon)
            durations_without = await scan_durations(daemon, args.seconds)
            t1, c1 = overruns(daemon), cpu_s(daemon)
            writes, durations_with = await asyncio.gather(
                sustained(daemon.url, args.rate, args.seconds),
                scan_durations(daemon, args.seconds))
            t2, c2 = overruns(daemon), cpu_s(daemon)
            # The same rate refused by the gateway (nothing sent): its own cost, apart from the
            # devices'.
            refused, durations_refused = await asyncio.gather(
                sustained(daemon.url, args.rate, args.seconds, refused=True),
                scan_durations(daemon, args.seconds))
            t3, c3 = overruns(daemon), cpu_s(daemon)
        finally:
            daemon.kill()
        without, with_writes, with_refused = delta(t1, t0), delta(t2, t1), delta(t3, t2)
        caused = sum(g["overruns"] for g in with_writes.values()) - sum(
            g["overruns"] for g in without.values())
        results["sustained"] = {
            "tags": SYNTHETIC_TAGS, "seconds": args.seconds, "rate_per_s": args.rate, **writes,
            "scans_without_writes": without, "scans_with_writes": with_writes,
            "overruns_caused_by_writes": max(0, caused),
            "synthetic_scan_without_writes": durations_without,
            "synthetic_scan_with_writes": durations_with,
            "cpu_without_writes": cpu_delta(c1, c0, args.seconds),
            "cpu_with_writes": cpu_delta(c2, c1, args.seconds),
            "refused_writes": {**{k: refused[k] for k in ("writes", "outcomes", "p50_ms", "p99_ms")},
                               "scans": with_refused, "synthetic_scan": durations_refused,
                               "cpu": cpu_delta(c3, c2, args.seconds)},
            "meets_latency_target": writes["p99_ms"] is not None and writes["p99_ms"] <= TARGET_MS,
            "meets_overrun_target": caused <= 0,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=200, help="sequential writes per path")
    parser.add_argument("--rate", type=float, default=100.0, help="sustained writes per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each sustained phase")
    parser.add_argument("--settle-s", type=float, default=10.0, help="after start, before measuring")
    parser.add_argument("--quick", action="store_true", help="50 writes per path, 10 s phases")
    args = parser.parse_args()
    quiet_library_logs()
    if args.quick:
        args.writes, args.seconds, args.settle_s = 50, 10.0, 5.0
    results = asyncio.run(run(args))
    path = write_results("writes", results)
    for name, r in results["latency"].items():
        print(f"{name}: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, {r['outcomes']}")
    s = results["sustained"]
    print(f"sustained {s['offered_per_s']} writes/s for {s['seconds']:g} s at {s['tags']} tags x "
          f"{SCAN_INTERVAL_MS} ms: p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms (target "
          f"{TARGET_MS:g} ms: {'met' if s['meets_latency_target'] else 'NOT met'}), outcomes "
          f"{s['outcomes']}; overruns without writes "
          f"{sum(g['overruns'] for g in s['scans_without_writes'].values())}, with "
          f"{sum(g['overruns'] for g in s['scans_with_writes'].values())}, with refused writes "
          f"{sum(g['overruns'] for g in s['refused_writes']['scans'].values())}")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
