"""A Sparkplug node fed as the pipeline would feed it, without drivers: for tests and the bench.

``NodeHarness`` builds a real :class:`SparkplugNode` over a real :class:`EmbeddedStore` and
:class:`LiveCache` in a state directory; ``feed`` accepts a scan the way the pipeline's accept
stage does (commit to the store, update the live cache, hand the Batch to the sink).

Run as a program it is the node in a child process, for the tests that SIGKILL it::

    python -m tests.support.sparkplug_node STATE_DIR GROUP_ID [--every 0.2]

It feeds one scan per device every ``--every`` seconds until killed and prints
``ready`` once started.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from drivers.batch import Batch
from drivers.quality import Quality, Reason
from gateway.ingest.live_cache import LiveCache
from gateway.northbound.sparkplug import SparkplugNode
from gateway.settings.mqtt import MqttSettings
from gateway.settings.sparkplug import SparkplugSettings
from gateway.store.embedded import EmbeddedStore
from plant.catalog import Catalog
from plant.load import load_plant

ROOT = Path(__file__).resolve().parents[2]
EDGE_NODE = "edge-t"
# Two devices of the plant catalog, a handful of its tags each.
DEVICE_TAGS = {"plc-a": ["TI-101", "FI-102", "PI-103", "II-999"],
               "plc-b": ["LI-305", "TI-306", "AI-400"]}


def plant_catalog(synthetic_tags: int = 0) -> Catalog:
    return Catalog.build(load_plant(ROOT / "config" / "plant.toml"), synthetic_tags)


class NodeHarness:
    """A node, its store, live cache and device connections, fed by hand."""

    def __init__(self, state_dir: Path, group_id: str, *, catalog: Catalog | None = None,
                 device_tags: dict[str, list[str]] | None = None, commands: Any = None,
                 mqtt: MqttSettings | None = None, **settings: Any):
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.catalog = catalog or plant_catalog()
        names = device_tags or DEVICE_TAGS
        self.device_tags = {d: self.catalog.indices(ids).tolist() for d, ids in names.items()}
        self.connected = {d: True for d in self.device_tags}
        self.store = EmbeddedStore(self.state_dir / "history.sqlite", retention_s=86400,
                                   max_bytes=10**9, tag_ids=[t.id for t in self.catalog.tags])
        self.live = LiveCache(len(self.catalog))
        config = {"enabled": True, "group_id": group_id, "edge_node_id": EDGE_NODE,
                  "deadband_pct": 0.0, "node_metrics_period_s": 3600.0, **settings}
        self.node = SparkplugNode(
            SparkplugSettings(**config), mqtt or MqttSettings(host="127.0.0.1", port=1883),
            gateway_id="gw", site="site", catalog=self.catalog, live=self.live,
            state_dir=self.state_dir, device_connections=lambda: list(self.connected.items()),
            device_tags=self.device_tags, store=self.store, commands=commands,
            health_status=lambda: "healthy", values_per_s=lambda: 7.0, store_backlog=lambda: 0)
        self.scan_start = time.time()

    async def start(self) -> NodeHarness:
        await self.store.open()
        await self.node.start()
        return self

    async def stop(self) -> None:
        await self.node.stop()
        await self.store.close()

    def batch(self, device_id: str, values: list[float] | np.ndarray, *, quality: int = Quality.GOOD,
              ts: float | None = None) -> Batch:
        idx = np.asarray(self.device_tags[device_id], dtype=np.int32)
        now = time.time() if ts is None else ts
        reason = Reason.NONE if quality == Quality.GOOD else Reason.DISCONNECTED
        return Batch.build(f"{device_id}-group", device_id, now, now, idx,
                           np.asarray(values, dtype=np.float64),
                           np.full(len(idx), quality, dtype=np.uint8),
                           np.full(len(idx), reason, dtype=np.uint8), np.full(len(idx), now))

    async def feed(self, *batches: Batch) -> None:
        """Accept scans as the pipeline does: commit, live cache, then the sink."""
        await self.store.append_many(list(batches))
        for b in batches:
            self.live.update(b)
        await self.node.on_batches(list(batches))

    async def feed_values(self, device_id: str, values: list[float], **kw: Any) -> Batch:
        batch = self.batch(device_id, values, **kw)
        await self.feed(batch)
        return batch

    async def wait_born(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.node._born:
            if time.monotonic() > deadline:
                raise AssertionError(f"node not born: {self.node.health()}")
            await asyncio.sleep(0.02)

    async def wait_caught_up(self, timeout: float = 15.0) -> None:
        """Until every accepted scan has been dealt with (published or passed over)."""
        deadline = time.monotonic() + timeout
        while self.node.stream.behind or not self.node._born:
            if time.monotonic() > deadline:
                raise AssertionError(f"node did not catch up: {self.node.health()}")
            await asyncio.sleep(0.02)


async def _child(state_dir: Path, group_id: str, every: float, primary_host: str | None) -> None:
    harness = await NodeHarness(state_dir, group_id, primary_host_id=primary_host).start()
    print("ready", flush=True)
    n = 0
    while True:
        n += 1
        for device_id, tags in harness.device_tags.items():
            await harness.feed_values(device_id, [float(n + k) for k in range(len(tags))])
        await asyncio.sleep(every)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("group_id")
    parser.add_argument("--every", type=float, default=0.2)
    parser.add_argument("--primary-host")
    args = parser.parse_args()
    asyncio.run(_child(args.state_dir, args.group_id, args.every, args.primary_host))
    return 0


if __name__ == "__main__":
    sys.exit(main())
