"""Shared by the fault-injection suite (tests/faults/), the end-to-end tests (tests/e2e/) and
the benchmarks (bench/): daemon configurations, an MQTT recorder, offline reads of a stopped
daemon's embedded store and of the historian, process resource counts, and a simulator of
our own.

Each helper proves a claim by counting, so it reads state the daemon cannot fake: the SQLite
file on disk, the broker's deliveries, /proc of the daemon's process.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import numpy as np
import paho.mqtt.client as paho
import psutil

from gateway.store.embedded import EmbeddedStore
from gateway.store.sqlite_thread import SqliteThread
from plant.catalog import Catalog
from plant.load import load_plant
from tests.support.daemon import ROOT
from tests.support.pg import TEST_DATABASE_URL

PLANT_FILE = ROOT / "config" / "plant.toml"
BASE_CONFIG = ROOT / "config" / "gateway.toml"
STORE_FILE = "history.sqlite"
BROKER = ("127.0.0.1", 1883)

# Reasons a driver gives when the device itself misbehaves (not the value it sent).
COMMUNICATION_REASONS = {"timeout", "disconnected", "modbus_exception", "malformed_response",
                         "protocol_error"}


def simulate_config(directory: Path, extra: str = "") -> Path:
    """config/gateway.toml with an absolute plant_file plus ``extra`` TOML (e.g. more scan
    groups), written to ``directory``: the configuration `run --simulate` should use."""
    text = BASE_CONFIG.read_text().replace('plant_file = "plant.toml"',
                                           f'plant_file = "{PLANT_FILE}"')
    path = directory / "gateway.toml"
    path.write_text(text + "\n" + extra)
    return path


def synthetic_group(tags: int, interval_ms: int, group_id: str = "synthetic") -> str:
    """TOML of a scan group reading the simulator's synthetic tags from the Modbus device
    (start the simulator with REFINERYIQ_SIMULATOR__SYNTHETIC_TAGS=``tags``)."""
    del tags  # the group takes every synthetic tag of the catalog
    return (f'[[scan_groups]]\nid = "{group_id}"\ndevice = "plc-cdu-fcc"\n'
            f'interval_ms = {interval_ms}\nsynthetic = true\n')


def write_config(directory: Path, body: str) -> Path:
    """A daemon configuration of our own (devices, scan groups) over config/plant.toml."""
    path = directory / "gateway.toml"
    path.write_text(f'gateway_id = "edge-faults"\nsite = "faults"\nstate_dir = "state"\n'
                    f'plant_file = "{PLANT_FILE}"\n\n{body}')
    return path


def unique_site() -> str:
    """A site name no other test uses, so MQTT topics do not mix between tests."""
    return f"faults{uuid.uuid4().hex[:10]}"


def post_json(url: str, body: dict, headers: dict | None = None,
              timeout: float = 10) -> tuple[int, object]:
    """POST a JSON body; (status, decoded body) also for 4xx/5xx."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw or b"null")
        except ValueError:
            return exc.code, raw.decode(errors="replace")


# ------------------------------------------------------------------ MQTT


class MqttRecorder:
    """Every message under a topic filter, in arrival order, collected on paho's thread:
    ``messages`` holds (topic, JSON body), ``arrival_times`` the wall-clock time each came."""

    def __init__(self, topic: str, host: str = BROKER[0], port: int = BROKER[1]) -> None:
        self.messages: list[tuple[str, dict]] = []
        self.arrival_times: list[float] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                   client_id=f"recorder-{uuid.uuid4().hex[:8]}")
        self._client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(host, port)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError(f"could not subscribe to {topic} on {host}:{port}")

    def _on_message(self, client, userdata, message) -> None:
        received = time.time()
        try:
            body = json.loads(message.payload)
        except ValueError:
            body = {"raw": message.payload.decode(errors="replace")}
        with self._lock:
            self.messages.append((message.topic, body))
            self.arrival_times.append(received)

    def find(self, **fields: object) -> tuple[str, dict] | None:
        """The first message whose body has all of ``fields``, or None."""
        with self._lock:
            return next(((t, b) for t, b in self.messages
                         if all(b.get(k) == v for k, v in fields.items())), None)

    def on(self, suffix: str) -> list[dict]:
        """Bodies of the messages whose topic ends with ``suffix``, in arrival order."""
        with self._lock:
            return [b for t, b in self.messages if t.endswith(suffix)]

    def alarm_seqs(self) -> list[int]:
        """``seq`` of every alarm message received, duplicates included, in arrival order."""
        with self._lock:
            return [b["seq"] for t, b in self.messages if "/alarms/" in t and "seq" in b]

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def first_occurrences(seqs: list[int]) -> list[int]:
    """The sequence with re-deliveries (at-least-once duplicates) removed, first kept."""
    seen: set[int] = set()
    out = []
    for s in seqs:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


# ------------------------------------------------------------------ the embedded store, offline


@dataclass(frozen=True)
class StoredScan:
    """One committed Batch as the store holds it."""

    id: int
    group: str
    receive_ts: float
    tag_ids: tuple[str, ...]
    source_ts: tuple[float, ...]


def catalog_tag_ids(synthetic_tags: int = 0) -> list[str]:
    """The daemon's catalog tag ids in index order (what it numbers the store with)."""
    return [t.id for t in Catalog.build(load_plant(PLANT_FILE), synthetic_tags).tags]


@dataclass(frozen=True)
class StoreContents:
    """What a stopped daemon's embedded store holds: its Batches in commit order (with their
    store ids), the catalog tag ids that index them, and the values not yet forwarded."""

    items: list
    tag_ids: list[str]
    backlog_values: int


async def read_store(state_dir: Path, synthetic_tags: int = 0) -> StoreContents:
    """Open a stopped (or killed) daemon's embedded store and read every Batch in it."""
    tag_ids = catalog_tag_ids(synthetic_tags)
    store = EmbeddedStore(state_dir / STORE_FILE, 86_400 * 365, 10**12, forwarding=True,
                          tag_ids=tag_ids)
    await store.open()
    try:
        return StoreContents(await store.pending(0, 10**12), tag_ids, store.backlog.values)
    finally:
        await store.close()


def read_scans(state_dir: Path, synthetic_tags: int = 0) -> list[StoredScan]:
    """Every Batch in a stopped (or killed) daemon's embedded store, in commit order."""
    contents = asyncio.run(read_store(state_dir, synthetic_tags))
    tag_ids = contents.tag_ids
    return [StoredScan(item.id, item.batch.group, float(item.batch.receive_ts),
                       tuple(tag_ids[i] for i in item.batch.tag_index.tolist()),
                       tuple(item.batch.source_ts.tolist()))
            for item in contents.items]


def value_rows(contents: StoreContents) -> list[tuple[str, int, float | None, int]]:
    """(tag_id, time µs, value, quality) of every stored value, in commit order; time is the
    source timestamp, or the receive time when the device gave none (as the historian does)."""
    out = []
    for b in (item.batch for item in contents.items):
        ts = np.where(np.isfinite(b.source_ts), b.source_ts, b.receive_ts)
        for i, t, v, q in zip(b.tag_index.tolist(), ts.tolist(), b.values.tolist(),
                              b.quality.tolist(), strict=True):
            out.append((contents.tag_ids[i], round(t * 1e6), v if np.isfinite(v) else None, q))
    return out


def stored_rows(state_dir: Path, synthetic_tags: int = 0) -> list[tuple[str, int, float | None, int]]:
    """:func:`value_rows` of a stopped daemon's embedded store (outside an event loop)."""
    return value_rows(asyncio.run(read_store(state_dir, synthetic_tags)))


def per_tag_times(rows) -> dict[str, list[int]]:
    """Times of each tag in the order the rows list them."""
    times: dict[str, list[int]] = defaultdict(list)
    for tag_id, us, _, _ in rows:
        times[tag_id].append(us)
    return dict(times)


def integrity_check(path: Path) -> list[str]:
    """SQLite's ``PRAGMA integrity_check`` of a file: ``["ok"]`` when it is sound."""
    async def check() -> list[str]:
        thread = SqliteThread(path)
        await thread.open()
        try:
            return await thread.call(
                lambda conn: [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()])
        finally:
            await thread.close()

    return asyncio.run(check())


# ------------------------------------------------------------------ the historian


def database_port() -> int:
    """The TCP port of the test database (a proxy in front of it makes the outages)."""
    return int(TEST_DATABASE_URL.rsplit(":", 1)[1].split("/")[0])


def database_env(proxy_port: int, schema: str) -> dict[str, str]:
    """Daemon environment forwarding to the test database through a proxy on ``proxy_port``,
    into its own ``schema``, on plain PostgreSQL, folding new rows every second."""
    database = TEST_DATABASE_URL.rsplit("@", 1)[1].split("/", 1)[1]
    return {
        "REFINERYIQ_DATABASE__URL": f"postgresql://postgres@127.0.0.1:{proxy_port}/{database}",
        "REFINERYIQ_DATABASE__SCHEMA": schema,
        "REFINERYIQ_DATABASE__TIMESCALE": "false",
        "REFINERYIQ_DATABASE__FOLD_INTERVAL_S": "1",
    }


async def database_rows(schema: str, gateway_id: str) -> list[tuple[str, int, float | None, int]]:
    """(tag_id, time µs, value, quality) of every row one gateway wrote to ``schema``'s
    process_data, in time order per tag (comparable with :func:`value_rows`)."""
    conn = await asyncpg.connect(TEST_DATABASE_URL)
    try:
        rows = await conn.fetch(
            f"""SELECT tag_id, (extract(epoch from time) * 1000000)::bigint AS us, value, quality
                FROM "{schema}".process_data WHERE gateway_id = $1
                ORDER BY tag_id, time, chunk_seq""", gateway_id)
    finally:
        await conn.close()
    return [(r["tag_id"], r["us"], r["value"], r["quality"]) for r in rows]


# ------------------------------------------------------------------ process resources


@dataclass(frozen=True)
class ProcessUse:
    """Resident memory, open file descriptors and threads of one process."""

    rss_bytes: int
    open_fds: int
    threads: int


def process_use(pid: int) -> ProcessUse:
    """What the daemon process holds right now (not its simulator child)."""
    proc = psutil.Process(pid)
    return ProcessUse(proc.memory_info().rss, proc.num_fds(), proc.num_threads())


def fd_count(pid: int) -> int:
    """Open file descriptors of ``pid`` (from /proc)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


# ------------------------------------------------------------------ a simulator of our own


class SimulatorServer:
    """`python -m simulator` as a subprocess on loopback, its output in ``log_path``. On fixed
    ports a test can stop it and start it again on the same ports (a device restart seen from
    the gateway); on port 0 ``ready`` tells the ports it bound. Also a context manager."""

    def __init__(self, log_path: Path, opcua_port: int, modbus_port: int, tags: int = 0) -> None:
        self.log_path = log_path
        self.opcua_port = opcua_port
        self.modbus_port = modbus_port
        self.tags = tags
        self.proc: subprocess.Popen | None = None
        self.ready: dict = {}  # the simulator's ready event: {"opcua_port": ..., "modbus_port": ...}

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> SimulatorServer:
        """Start and wait for its ``ready`` line."""
        log = self.log_path.open("ab")
        offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simulator", "--seed", "7", "--tags", str(self.tags),
             "--opcua-port", str(self.opcua_port), "--modbus-port", str(self.modbus_port),
             "--plant", str(PLANT_FILE)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"simulator exited: {self.log_path.read_text()[-2000:]}")
            with self.log_path.open("rb") as f:
                f.seek(offset)
                for line in f:
                    event = _json_object(line) if line.endswith(b"\n") else None
                    if event is not None and event.get("event") == "ready":
                        self.ready = event
                        return self
            time.sleep(0.1)
        raise AssertionError("simulator did not become ready")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def _json_object(line: bytes) -> dict | None:
    """The JSON object on one line of output, or None for any other line."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
