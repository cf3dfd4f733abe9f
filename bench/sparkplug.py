"""Sparkplug B benchmark: the edge node against the JSON-by-exception value topics, same run.

    .venv/bin/python bench/sparkplug.py [--tags 10000] [--seconds 30] [--quick]

Starts the simulator with N synthetic tags (its normal variation, no faults) in its own
process, then runs the real pipeline (Modbus poll every 1 s -> embedded store -> sinks) in a
child process three times: with no MQTT sink (baseline), with the ``mqtt_values`` sink
(``refineryiq/{site}/{gateway}/values/{tag}`` JSON, deadband 0.5 % of span), and with the
Sparkplug node (DDATA by exception, the same 0.5 % deadband). A subscriber in this process
counts what reaches the broker (topic + payload bytes, values) during each measurement
window. Reported per variant: values/s published, bytes per value, CPU % of the child, and CPU
per value attributable to the sink (variant minus baseline). Targets: Sparkplug no more CPU
per value than JSON, and at most half the bytes per value. Needs Mosquitto on 127.0.0.1:1883.
Results: bench/results/sparkplug-<time>.json and bench/results/latest.json ("sparkplug").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a file, bench/ comes first on the path, and bench/http.py would shadow the standard
# library's http: only the repository root is put there.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench.common import quiet_library_logs, write_results  # noqa: E402

GATEWAY_ID = "bench-gw"
DEADBAND_PCT = 0.5
# The JSON path's per-tag rate limit, just under the scan interval so that scan jitter never
# suppresses a change (the shipped 1.0 s would drop some at 1 s scans and flatter JSON's CPU).
JSON_MIN_INTERVAL_S = 0.9


# ------------------------------------------------------------------ the pipeline (child process)


async def pipeline_phase(variant: str, port: int, tags: int, seconds: float, site: str) -> dict:
    from gateway.ingest.pipeline import Pipeline
    from gateway.settings import GatewaySettings, MqttSettings
    from gateway.store.embedded import EmbeddedStore
    from plant.catalog import Catalog
    from plant.load import load_plant

    catalog = Catalog.build(load_plant(ROOT / "config/plant.toml"), tags)
    settings = GatewaySettings(
        devices=[{"id": "dev", "protocol": "modbus", "host": "127.0.0.1", "port": port,
                  "timeout_s": 2.0, "max_concurrent": 4}],
        scan_groups=[{"id": "bench", "device": "dev", "interval_ms": 1000, "synthetic": True}])
    mqtt = MqttSettings(host="127.0.0.1", port=1883)
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        store = EmbeddedStore(state / "history.sqlite", retention_s=3600, max_bytes=10**10,
                              tag_ids=[t.id for t in catalog.tags])
        await store.open()
        pipeline = Pipeline(settings, catalog, store, state)
        counter, stop = await attach(variant, pipeline, catalog, store, mqtt, site, state)
        await pipeline.connect_all()
        accept = asyncio.create_task(pipeline.accept_loop())
        scan = asyncio.create_task(pipeline.scan_loop("bench"))
        await asyncio.sleep(min(8.0, seconds / 2))  # warm-up: connection, births, first scans
        published0, accepted0 = counter(), pipeline.accepted_values
        print("start", flush=True)
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        print("end", flush=True)
        published = counter() - published0
        accepted = pipeline.accepted_values - accepted0
        scan.cancel()
        accept.cancel()
        await asyncio.gather(scan, accept, return_exceptions=True)
        await stop()
        await pipeline.close_all()
        await store.close()
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return {"variant": variant, "seconds": elapsed, "accepted_values_per_s": accepted / elapsed,
            "published_values_per_s": published / elapsed, "cpu_seconds": cpu,
            "cpu_percent": 100 * cpu / elapsed, "rss_mb": ru1.ru_maxrss / 1024}


async def attach(variant, pipeline, catalog, store, mqtt, site, state):
    """The sink of ``variant`` on the pipeline: (published-values counter, stop)."""
    if variant == "json":
        from gateway.northbound.mqtt.publisher import MqttPublisher
        from gateway.northbound.mqtt.values import MqttValues
        from gateway.settings import MqttValuesConfig

        publisher = MqttPublisher(mqtt, GATEWAY_ID, site, state, values=MqttValuesConfig(
            enabled=True, deadband_pct=DEADBAND_PCT, min_interval_s=JSON_MIN_INTERVAL_S))
        await publisher.start()
        await publisher.wait_connected(10)
        pipeline.add_sink("mqtt_values", MqttValues(publisher, catalog))
        return (lambda: publisher.values_published), publisher.stop
    if variant == "sparkplug":
        from gateway.northbound.sparkplug import SparkplugNode, device_tags_from_plans
        from gateway.settings.sparkplug import SparkplugSettings

        node = SparkplugNode(
            SparkplugSettings(enabled=True, deadband_pct=DEADBAND_PCT), mqtt, GATEWAY_ID, site,
            catalog, lambda: pipeline.live, state, pipeline.device_connections,
            lambda: device_tags_from_plans(pipeline.plans), store)
        await node.start()
        pipeline.add_sink("sparkplug", node)
        return (lambda: node.values_published - node.historical_published), node.stop

    async def nothing() -> None:
        return None
    return (lambda: 0), nothing


# ------------------------------------------------------------------ the broker side (this process)


class BrokerCounter:
    """Counts messages, topic+payload bytes and values under a topic filter, between the
    child's ``start`` and ``end`` lines."""

    def __init__(self, topic_filter: str, sparkplug: bool):
        import paho.mqtt.client as paho

        self.sparkplug = sparkplug
        self.counting = False
        self.messages = self.bytes = self.values = 0
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                   client_id=f"bench-spb-{uuid.uuid4().hex[:8]}")
        self._client.on_connect = lambda c, *_: c.subscribe(topic_filter, qos=0)
        self._client.on_subscribe = lambda *_: subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", 1883)
        self._client.loop_start()
        if not subscribed.wait(5):
            raise RuntimeError("cannot subscribe to the MQTT broker on 127.0.0.1:1883")

    def _on_message(self, client, userdata, message) -> None:
        if not self.counting:
            return
        values = 1
        if self.sparkplug:
            from gateway.northbound.sparkplug import sparkplug_b_pb2 as pb

            kind = message.topic.split("/")[2]
            payload = pb.Payload.FromString(message.payload)
            values = len(payload.metrics) if kind == "DDATA" else 0
        with self._lock:
            self.messages += 1
            self.bytes += len(message.topic.encode()) + len(message.payload)
            self.values += values

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def run_variant(variant: str, port: int, tags: int, seconds: float) -> dict:
    site = f"bench-{uuid.uuid4().hex[:6]}"
    counter = None
    if variant == "json":
        counter = BrokerCounter(f"refineryiq/{site}/{GATEWAY_ID}/values/#", sparkplug=False)
    elif variant == "sparkplug":
        counter = BrokerCounter(f"spBv1.0/{site}/#", sparkplug=True)
    proc = subprocess.Popen([sys.executable, __file__, "--child", variant, str(port), str(tags),
                             str(seconds), site], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    result = None
    for line in proc.stdout:
        line = line.strip()
        if line == "start" and counter:
            counter.counting = True
        elif line == "end" and counter:
            counter.counting = False
        elif line.startswith("{"):
            result = json.loads(line)
    proc.wait(timeout=seconds * 4 + 120)
    if proc.returncode != 0 or result is None:
        raise RuntimeError(f"{variant} phase failed:\n{proc.stderr.read()[-3000:]}")
    if counter is not None:
        time.sleep(0.5)
        counter.stop()
        result["broker"] = {"messages": counter.messages, "bytes": counter.bytes,
                            "values": counter.values,
                            "bytes_per_value": counter.bytes / counter.values if counter.values else None,
                            "values_per_s": counter.values / result["seconds"]}
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tags", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="10 s windows")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet_library_logs()
    if args.child:
        variant, port, tags, seconds, site = args.child
        result = asyncio.run(pipeline_phase(variant, int(port), int(tags), float(seconds), site))
        print(json.dumps(result), flush=True)
        return 0
    from bench.ingest import simulator

    seconds = 10.0 if args.quick else args.seconds
    runs = {}
    with simulator(args.tags) as sim:
        port = sim.ready["modbus_port"]
        for variant in ("baseline", "json", "sparkplug"):
            print(f"sparkplug bench: {variant}, {args.tags} tags @ 1 s, {seconds:.0f} s ...",
                  file=sys.stderr, flush=True)
            runs[variant] = run_variant(variant, port, args.tags, seconds)
    base = runs["baseline"]["cpu_seconds"] / runs["baseline"]["seconds"]
    for variant in ("json", "sparkplug"):
        r = runs[variant]
        sink_cpu = r["cpu_seconds"] / r["seconds"] - base
        published = r["broker"]["values_per_s"] or 0.0
        r["sink_cpu_percent"] = 100 * sink_cpu
        r["sink_cpu_us_per_value"] = 1e6 * sink_cpu / published if published else None
    j, s = runs["json"], runs["sparkplug"]
    summary = {
        "tags": args.tags, "interval_ms": 1000, "deadband_pct": DEADBAND_PCT,
        "json_values_per_s": j["broker"]["values_per_s"],
        "sparkplug_values_per_s": s["broker"]["values_per_s"],
        "json_bytes_per_value": j["broker"]["bytes_per_value"],
        "sparkplug_bytes_per_value": s["broker"]["bytes_per_value"],
        "json_cpu_us_per_value": j["sink_cpu_us_per_value"],
        "sparkplug_cpu_us_per_value": s["sink_cpu_us_per_value"],
        "baseline_cpu_percent": runs["baseline"]["cpu_percent"],
        "json_cpu_percent": j["cpu_percent"], "sparkplug_cpu_percent": s["cpu_percent"],
    }
    if summary["json_bytes_per_value"] and summary["sparkplug_bytes_per_value"]:
        summary["bytes_ratio"] = summary["sparkplug_bytes_per_value"] / summary["json_bytes_per_value"]
        summary["bytes_target_met"] = summary["bytes_ratio"] <= 0.5
    if summary["json_cpu_us_per_value"] and summary["sparkplug_cpu_us_per_value"] is not None:
        summary["cpu_ratio"] = summary["sparkplug_cpu_us_per_value"] / summary["json_cpu_us_per_value"]
        summary["cpu_target_met"] = summary["cpu_ratio"] <= 1.0
    for key, value in summary.items():
        print(f"  {key}: {value:,.2f}" if isinstance(value, float) else f"  {key}: {value}",
              file=sys.stderr)
    path = write_results("sparkplug", {"summary": summary, "runs": runs})
    print(f"sparkplug bench: results in {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
