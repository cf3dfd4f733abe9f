"""Alarm benchmark: alarm latency (scan → MQTT subscriber) and the alarm rate in normal operation.

    .venv/bin/python bench/alarms.py [--latency-s 60] [--rate-speed 10] [--quick]

Runs the real daemon (``Gateway`` with ``--simulate``: simulator child, Modbus and OPC-UA
drivers, embedded store, alarm service, MQTT to the Mosquitto on 127.0.0.1:1883) in this
process, twice:

1. **Alarm rate**: the simulator without fault injection for 10 simulated minutes (at
   ``--rate-speed``, simulated seconds per wall second); every activation journaled is counted.
   The target is at most 1 alarm per 10 minutes.
2. **Latency**: at speed 1, spike faults are injected through the simulator's control API on
   tags of every scan group in turn; for each activation the latency is the time from
   ``scan_start`` of the Batch that crossed the limit to the arrival of the MQTT message at a
   subscriber. The target is p99 ≤ scan interval + 50 ms.

The Batch behind each transition is found by wrapping the alarm sink on ``pipeline.sinks``:
transitions stamped during one sink call belong to the Batches of that call. Results:
bench/results/alarms-<time>.json and bench/results/latest.json (under "alarms").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as paho  # noqa: E402

from bench.common import write_results  # noqa: E402
from gateway.daemon import Gateway  # noqa: E402
from gateway.runtime import logs  # noqa: E402
from gateway.services.alarms.service import AlarmService  # noqa: E402
from gateway.settings import load_config  # noqa: E402

# Analog tags with limits, spread over the three scan groups (Modbus poll, OPC-UA poll and
# OPC-UA subscription), spiked in turn.
SPIKE_TAGS = ("TI-101", "PI-103", "PI-201", "TI-203", "LI-305", "TI-306", "AI-400", "FI-402")
SPIKE_S = 3.0  # simulated seconds a spike lasts
CYCLE_S = 12.0  # wall seconds between spikes of one tag: spike + off-delay + margin


class Subscriber:
    """Records the arrival time of every alarm message (on paho's network thread)."""

    def __init__(self, topic: str):
        self.arrivals: list[tuple[float, dict]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                   client_id=f"bench-{uuid.uuid4().hex[:8]}")
        self._client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", 1883)
        self._client.loop_start()
        if not self._subscribed.wait(5):
            raise RuntimeError("cannot subscribe to the MQTT broker on 127.0.0.1:1883")

    def _on_message(self, client, userdata, message) -> None:
        received = time.time()
        with self._lock:
            self.arrivals.append((received, json.loads(message.payload)))

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


class SinkTimer:
    """Wraps the alarm sink: remembers, per call, its wall-clock span and each tag's scan_start."""

    def __init__(self, gateway: Gateway, service: AlarmService):
        self.calls: list[tuple[float, float, dict[int, float]]] = []
        self.catalog = gateway.catalog
        sinks = gateway.pipeline.sinks
        name = next(n for n, s in sinks.items() if s is service)
        inner = sinks[name].on_batches

        async def on_batches(batches):
            scans = {}
            for batch in batches:
                for t in batch.tag_index.tolist():
                    scans[t] = batch.scan_start
            before = time.time()
            await inner(batches)
            self.calls.append((before, time.time(), scans))

        sinks[name] = SimpleNamespace(on_batches=on_batches)

    def scan_start(self, tag_id: str, stamped: float) -> float | None:
        """scan_start of the Batch holding ``tag_id`` in the sink call that stamped ``stamped``."""
        t = self.catalog.index[tag_id]
        for before, after, scans in reversed(self.calls):
            if before <= stamped <= after:
                return scans.get(t)
        return None


def _settings_env(state_dir: Path, site: str, speed: float) -> dict[str, str]:
    return {"REFINERYIQ_STATE_DIR": str(state_dir), "REFINERYIQ_HTTP__PORT": "0",
            "REFINERYIQ_SIMULATOR__OPCUA_PORT": "0", "REFINERYIQ_SIMULATOR__MODBUS_PORT": "0",
            "REFINERYIQ_SIMULATOR__SPEED": str(speed), "REFINERYIQ_MQTT__HOST": "127.0.0.1",
            "REFINERYIQ_SITE": site, "REFINERYIQ_GATEWAY_ID": "bench"}


async def _running(site: str, speed: float, state_dir: Path) -> tuple[Gateway, asyncio.Task]:
    config = load_config(ROOT / "config" / "gateway.toml",
                         environ=_settings_env(state_dir, site, speed))
    gateway = Gateway(config, simulate=True)
    task = asyncio.create_task(gateway.run())
    while not (gateway.services and getattr(gateway, "http_port", None)):
        if task.done():
            task.result()
        await asyncio.sleep(0.1)
    await asyncio.sleep(3.0)  # first scans, connections settled
    return gateway, task


async def _stop(gateway: Gateway, task: asyncio.Task) -> None:
    gateway.stop_event.set()
    await task


def _service(gateway: Gateway) -> AlarmService:
    return next(s for s in gateway.services if isinstance(s, AlarmService))


def _post(url: str, body: dict) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        resp.read()


async def alarm_rate(speed: float, sim_minutes: float) -> dict:
    """Activations in ``sim_minutes`` simulated minutes of fault-free operation."""
    site = f"bench{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        gateway, task = await _running(site, speed, Path(tmp) / "state")
        service = _service(gateway)
        start_seq = service.engine.seq
        started = time.time()
        wall_s = sim_minutes * 60.0 / speed
        await asyncio.sleep(wall_s)
        journal = await service.journal.kpi_window(started, time.time() + 1)
        await _stop(gateway, task)
    activations = [t for t in journal if t.is_activation and t.seq > start_seq]
    return {
        "speed": speed, "simulated_minutes": sim_minutes, "wall_seconds": round(wall_s, 1),
        "activations": len(activations),
        "per_10_simulated_minutes": round(len(activations) * 10.0 / sim_minutes, 3),
        "target_per_10_min": 1,
        "alarms": [{"key": t.key, "kind": t.kind.value, "severity": t.severity.value,
                    "value": t.value} for t in activations],
    }


async def alarm_latency(seconds: float) -> dict:
    """Inject spikes for ``seconds`` wall seconds and time each activation to the subscriber."""
    site = f"bench{uuid.uuid4().hex[:8]}"
    subscriber = Subscriber(f"refineryiq/{site}/bench/alarms/#")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            gateway, task = await _running(site, 1.0, Path(tmp) / "state")
            timer = SinkTimer(gateway, _service(gateway))
            control = f"http://127.0.0.1:{gateway.simulator.ready['control_port']}/faults"
            interval_ms = max(g.interval_ms for g in gateway.settings.scan_groups)
            loop = asyncio.get_running_loop()
            end = loop.time() + seconds
            stagger = CYCLE_S / len(SPIKE_TAGS)
            injected = 0
            while loop.time() < end:
                for tag_id in SPIKE_TAGS:
                    await loop.run_in_executor(None, _post, control, {
                        "tag_id": tag_id, "kind": "spike", "duration_s": SPIKE_S})
                    injected += 1
                    await asyncio.sleep(stagger)
            await asyncio.sleep(2.0)  # let the last messages arrive
            await _stop(gateway, task)
    finally:
        subscriber.stop()
    latencies = []
    unmatched = 0
    for received, body in subscriber.arrivals:
        if body.get("state") != "ACTIVE_UNACK" or body.get("from_state") in (
                "ACTIVE_UNACK", "ACTIVE_ACK") or body.get("kind") == "COMM_LOSS":
            continue
        scan_start = timer.scan_start(body["tag_id"], body["time"])
        if scan_start is None:
            unmatched += 1
            continue
        latencies.append((received - scan_start) * 1000.0)
    arr = np.array(latencies)
    return {
        "seconds": seconds, "spikes_injected": injected, "activations_measured": len(arr),
        "unmatched": unmatched, "scan_interval_ms": interval_ms,
        "target_p99_ms": interval_ms + 50,
        "p50_ms": round(float(np.percentile(arr, 50)), 2) if len(arr) else None,
        "p99_ms": round(float(np.percentile(arr, 99)), 2) if len(arr) else None,
        "max_ms": round(float(arr.max()), 2) if len(arr) else None,
    }


async def main_async(args: argparse.Namespace) -> dict:
    rate = await alarm_rate(args.rate_speed, args.rate_minutes)
    print(f"alarm rate: {rate['activations']} activations in {args.rate_minutes:g} simulated "
          f"minutes at speed {args.rate_speed:g}", flush=True)
    latency = await alarm_latency(args.latency_s)
    print(f"alarm latency: p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms over "
          f"{latency['activations_measured']} activations (target p99 <= "
          f"{latency['target_p99_ms']} ms)", flush=True)
    return {"rate": rate, "latency": latency}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-s", type=float, default=60.0)
    parser.add_argument("--rate-speed", type=float, default=10.0)
    parser.add_argument("--rate-minutes", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="20 s of latency, speed 30 for rate")
    args = parser.parse_args()
    if args.quick:
        args.latency_s, args.rate_speed = 20.0, 30.0
    logs.configure("warning", "console")
    results = asyncio.run(main_async(args))
    path = write_results("alarms", results)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
