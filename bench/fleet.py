"""Fleet benchmark: N gateway daemons into one PostgreSQL historian and one MQTT broker.

    .venv/bin/python -m bench.fleet [--gateways 8] [--tags 2000] [--seconds 120] [--quick]

Each gateway is a real `refineryiq run --simulate` process (tests.support.daemon.DaemonProcess)
with its own state directory, gateway id (``fleet-01`` ...), site (two gateways per site),
HTTP and OPC-UA ports, and its own simulator child process serving ``--tags`` synthetic tags
(plus the plant's own tags), scanned every second. All forward to one database created for the
run on the local PostgreSQL (dropped after) and publish to the local Mosquitto.

Phases, in one run:
  1. raw COPY: asyncpg ``copy_records_to_table`` of the gateways' row shape into the same
     ``process_data`` table (one day partition of its own, dropped after), on one connection and
     on N at once; and bench.store's raw COPY into an unindexed table (records and binary).
  2. sustained: the fleet at its offered load (N x tags values/s); rows landed in the database
     per second (exact ``count(*)`` at both ends of the window), each gateway's backlog and lag
     (its /health ``database`` section, sampled every second) and the age of its newest row in
     the database.
  3. kill: one gateway is SIGKILLed, left down ``--down-s``, restarted on the same state
     directory; the others' lag and backlog over that time; the victim's time to catch up.
  4. drain: ``process_data`` is locked (SHARE mode: the historian stalls, every writer's COPY
     waits) for ``--outage-s`` while the gateways keep scanning into their embedded stores;
     after the release the whole fleet drains its backlog at once. The drain rate is the fleet's
     ingest capacity, the figure compared with raw COPY (the offered load is far below it).
  5. reconciliation: the gateways are stopped; every value each gateway committed to its
     embedded store up to the database's forwarding cursor must be in ``process_data`` exactly
     once, per (gateway, tag, time): 0 lost, 0 duplicated, 0 unexpected.

Results: bench/results/fleet-<time>.json and latest.json under "fleet". Progress goes to
stderr, the figures to stdout; the daemons' logs stay in their state directories (removed
after the run unless --keep). Every process started is killed on exit, Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import numpy as np
import psutil

from bench.common import quiet_library_logs, write_results
from bench.store import raw_copy_binary, raw_copy_records, scans
from gateway.runtime.logs import configure as configure_logs
from gateway.store.embedded import EmbeddedStore
from gateway.store.postgres.copy_binary import ROW_COLUMNS, Columns
from gateway.store.postgres.migrate import migrate
from gateway.store.postgres.retention import ensure_partitions
from plant.catalog import Catalog
from plant.load import load_plant
from tests.support.daemon import DaemonProcess
from tests.support.faults import (
    BROKER,
    PLANT_FILE,
    STORE_FILE,
    catalog_tag_ids,
    simulate_config,
    synthetic_group,
)
from tests.support.pg import TEST_DATABASE_URL

TARGET_RATIO = 0.5
TARGET_LAG_S = 5.0
GATEWAYS_PER_SITE = 2
# A value's identity in the reconciliation: (time in µs since the run's base) * 2**TAG_BITS +
# the tag's catalog index; one int64 per value, the same arithmetic in numpy and in SQL.
TAG_BITS = 20
RAW_GATEWAY = "raw-copy"
# How long the drain's profile of one gateway runs after the release.
PROFILE_AFTER_RELEASE_S = 6.0

# Every daemon this process started, for the cleanup on any exit.
_STARTED: list[DaemonProcess] = []


def progress(text: str) -> None:
    print(f"fleet: {text}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ bookkeeping (pure)


def value_keys(time_us: np.ndarray, tag_index: np.ndarray, base_us: int) -> np.ndarray:
    """One int64 per value: its time (µs, relative to ``base_us``) and its tag's index."""
    if len(tag_index) and (int(tag_index.min()) < 0 or int(tag_index.max()) >= 1 << TAG_BITS):
        raise ValueError(f"tag_index: outside 0..{(1 << TAG_BITS) - 1}")
    return (time_us.astype(np.int64) - base_us) * (1 << TAG_BITS) + tag_index.astype(np.int64)


@dataclass(frozen=True)
class Reconciliation:
    """What a gateway committed to its store (up to the database's cursor) against what the
    database holds for it, compared as multisets of value keys."""

    expected: int  # values the cursor says the database committed
    landed: int  # rows of this gateway in the database
    lost: int  # expected but missing
    duplicated: int  # an expected value present more than once (each extra copy)
    unexpected: int  # rows matching no expected value
    repeated_in_store: int  # values the store itself holds twice (same tag, same time)

    @property
    def exact(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.unexpected == 0


def reconcile(expected: np.ndarray, landed: np.ndarray) -> Reconciliation:
    """Compare the keys a gateway should have in the database with the keys it has."""
    ek, ec = np.unique(expected, return_counts=True)
    lk, lc = np.unique(landed, return_counts=True)
    pos = np.searchsorted(lk, ek)
    pos_ok = np.minimum(pos, max(len(lk) - 1, 0))
    found = (pos < len(lk)) & (lk[pos_ok] == ek) if len(lk) else np.zeros(len(ek), bool)
    landed_per_expected = np.where(found, lc[pos_ok] if len(lk) else 0, 0)
    matched = np.zeros(len(lk), bool)
    matched[pos[found]] = True
    return Reconciliation(
        expected=int(ec.sum()), landed=int(lc.sum()),
        lost=int(np.maximum(ec - landed_per_expected, 0).sum()),
        duplicated=int(np.maximum(landed_per_expected - ec, 0).sum()),
        unexpected=int(lc[~matched].sum()),
        repeated_in_store=int((ec - 1).sum()))


_COPY_HEADER = 19  # b"PGCOPY\n\xff\r\n\0", int32 flags, int32 header extension length (0)
_INT8_TUPLE = np.dtype([("fields", ">i2"), ("length", ">i4"), ("value", ">i8")])


def parse_int8_copy(payload: bytes) -> np.ndarray:
    """The values of a binary COPY of one non-null bigint column."""
    if payload[:11] != b"PGCOPY\n\xff\r\n\x00" or payload[-2:] != b"\xff\xff":
        raise ValueError("not a PostgreSQL binary COPY stream")
    body = np.frombuffer(payload, dtype=_INT8_TUPLE, offset=_COPY_HEADER,
                         count=(len(payload) - _COPY_HEADER - 2) // _INT8_TUPLE.itemsize)
    if len(body) and not ((body["fields"] == 1).all() and (body["length"] == 8).all()):
        raise ValueError("expected one non-null bigint column")
    return body["value"].astype(np.int64)


def summarize(values: list[float]) -> dict:
    if not values:
        return {"max": None, "p50": None}
    return {"max": round(max(values), 3), "p50": round(statistics.median(values), 3)}


# ------------------------------------------------------------------ the gateways


@dataclass
class Sample:
    t: float  # epoch seconds
    gateway: str
    status: str
    db_state: str
    backlog_values: int
    lag_s: float
    rows_written: int
    chunks_written: int
    last_commit_at: float | None
    accepted_values: int
    overruns: int
    stage_seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Member:
    """One gateway of the fleet: its configuration and its current daemon process."""

    index: int
    gateway_id: str
    site: str
    state: Path
    config: Path
    env: dict[str, str]
    daemon: DaemonProcess | None = None
    starts: int = 0
    pids: list[int] = field(default_factory=list)

    def start(self) -> None:
        daemon = DaemonProcess(self.state, "run", "--config", str(self.config), "--simulate",
                               env=self.env)
        daemon.log_path = self.state / f"daemon-{self.starts}.log"  # each start its own log
        _STARTED.append(daemon)
        self.daemon = daemon.start()
        self.starts += 1
        self.pids.append(daemon.proc.pid)

    def health(self) -> dict | None:
        d = self.daemon
        if d is None or d.proc is None or d.proc.poll() is not None:
            return None
        try:
            status, body = d.get("/health", timeout=3)
        except (OSError, ValueError):
            return None
        return body if isinstance(body, dict) and "database" in body else None

    def cpu_by_process(self) -> dict[int, float]:
        """CPU seconds so far of the daemon and each of its children (the simulator), by pid."""
        out: dict[int, float] = {}
        try:
            proc = psutil.Process(self.daemon.proc.pid)
            for p in (proc, *proc.children(recursive=True)):
                with contextlib.suppress(psutil.Error):
                    out[p.pid] = sum(p.cpu_times()[:2])
        except (psutil.Error, AttributeError):
            pass
        return out


def postgres_cpu() -> dict[int, float]:
    """CPU seconds so far of every PostgreSQL server process on this machine, by pid."""
    out: dict[int, float] = {}
    for p in psutil.process_iter(["name"]):
        if p.info["name"] in ("postgres", "postmaster"):
            with contextlib.suppress(psutil.Error):
                out[p.pid] = sum(p.cpu_times()[:2])
    return out


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all cores, every process)."""
    t = psutil.cpu_times()
    # Linux counts guest time inside user and nice as well; steal is time the host took.
    return (sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0)
            - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0))


@dataclass
class CpuSnapshot:
    """CPU seconds so far by owner: the gateway daemons, their simulators, PostgreSQL."""

    daemons: dict[int, float]
    simulators: dict[int, float]
    postgres: dict[int, float]
    machine: float
    t: float  # when the machine's figure was read (the processes' follow within ~0.1 s)

    @classmethod
    def take(cls, members: list[Member]) -> CpuSnapshot:
        t, machine = time.time(), machine_busy_s()
        daemons: dict[int, float] = {}
        simulators: dict[int, float] = {}
        for m in members:
            for pid, cpu in m.cpu_by_process().items():
                (daemons if m.daemon and pid == m.daemon.proc.pid else simulators)[pid] = cpu
        return cls(daemons, simulators, postgres_cpu(), machine, t)

    def until(self, later: CpuSnapshot) -> dict[str, float]:
        return {"gateway_daemons": cpu_between(self.daemons, later.daemons),
                "simulators": cpu_between(self.simulators, later.simulators),
                "postgres": cpu_between(self.postgres, later.postgres),
                "machine_busy": later.machine - self.machine, "seconds": later.t - self.t}


def _frame_name(frame: str) -> str:
    """``func (file.py:12)`` -> ``func (file.py)``; a thread's own frame -> ``thread``."""
    if frame.startswith("thread ("):
        return "thread"
    name, sep, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0].rstrip(')')})" if sep else frame


def summarize_profile(raw: str, top: int = 12) -> dict:
    """py-spy's raw (collapsed) stacks: the busiest functions, by share of the samples in
    which they are on the stack (inclusive) and on top of it (self)."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame_name(f) for f in stack.split(";")]
        for f in set(frames):
            inclusive[f] = inclusive.get(f, 0) + n
        own[frames[-1]] = own.get(frames[-1], 0) + n
    def share(d: dict[str, int]) -> list[dict]:
        return [{"function": f, "share": round(c / total, 3)}
                for f, c in sorted(d.items(), key=lambda kv: -kv[1])[:top]]
    return {"samples": total, "inclusive": share(inclusive), "self": share(own)}


async def profile_process(pid: int, seconds: float, out: Path) -> asyncio.subprocess.Process | None:
    """Start py-spy sampling ``pid`` (every thread, not idle ones) for ``seconds`` into ``out``."""
    exe = Path(sys.executable).with_name("py-spy")
    if not exe.exists():
        return None
    return await asyncio.create_subprocess_exec(
        str(exe), "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
        "--rate", "250", "--format", "raw", "--threads", "--nonblocking", "-o", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two snapshots by the processes alive at the second (a child
    started meanwhile counts from its start; one that ended meanwhile is not counted)."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def sample_of(member: Member, body: dict, t: float) -> Sample:
    db = body.get("database") or {}
    groups = body.get("scan_groups") or []
    return Sample(t, member.gateway_id, str(body.get("status")), str(db.get("state")),
                  int(db.get("backlog_values") or 0), float(db.get("lag_s") or 0.0),
                  int(db.get("rows_written") or 0), int(db.get("chunks_written") or 0),
                  db.get("last_commit_at"),
                  int((body.get("counters") or {}).get("accepted_values") or 0),
                  sum(int(g.get("overruns") or 0) for g in groups),
                  dict(db.get("stage_seconds") or {}))


class Sampler:
    """Polls every gateway's /health every ``period`` seconds into ``samples``."""

    def __init__(self, members: list[Member]) -> None:
        self.members = members
        self.samples: list[Sample] = []
        self.period = 1.0

    async def poll_once(self) -> dict[str, Sample]:
        t = time.time()
        bodies = await asyncio.gather(*(asyncio.to_thread(m.health) for m in self.members))
        out = {}
        for m, body in zip(self.members, bodies, strict=True):
            if body is not None:
                s = sample_of(m, body, t)
                self.samples.append(s)
                out[m.gateway_id] = s
        return out

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            await self.poll_once()
            await asyncio.sleep(max(0.0, self.period - (time.monotonic() - started)))

    def window(self, gateway: str, t0: float, t1: float) -> list[Sample]:
        return [s for s in self.samples if s.gateway == gateway and t0 <= s.t <= t1]


def gateway_env(i: int, args: argparse.Namespace, url: str, site: str, gateway_id: str) -> dict:
    return {
        "REFINERYIQ_GATEWAY_ID": gateway_id,
        "REFINERYIQ_SITE": site,
        "REFINERYIQ_SIMULATOR__SYNTHETIC_TAGS": str(args.tags),
        "REFINERYIQ_SIMULATOR__SEED": str(7 + i),  # each plant its own process values
        "REFINERYIQ_DATABASE__URL": url,
        "REFINERYIQ_DATABASE__TIMESCALE": "false",
        "REFINERYIQ_MQTT__HOST": BROKER[0],
        "REFINERYIQ_MQTT__PORT": str(BROKER[1]),
        "REFINERYIQ_OPCUA_SERVER__ENABLED": "false" if args.no_opcua_server else "true",
        "REFINERYIQ_REPORTS__SCHEDULED": "false",
        "REFINERYIQ_LOGGING__LEVEL": "info",
    }


def fleet(work: Path, args: argparse.Namespace, url: str, run_id: str) -> list[Member]:
    members = []
    for i in range(args.gateways):
        gateway_id = f"fleet-{i + 1:02d}"
        site = f"{run_id}-plant-{i // GATEWAYS_PER_SITE + 1}"
        home = work / gateway_id
        home.mkdir(parents=True)
        config = simulate_config(home, synthetic_group(args.tags, 1000))
        members.append(Member(i, gateway_id, site, home / "state", config,
                              gateway_env(i, args, url, site, gateway_id)))
    return members


async def wait_forwarding(member: Member, timeout: float, after_rows: int = 0) -> Sample:
    """Until the gateway is up and its writer has committed rows (beyond ``after_rows``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = await asyncio.to_thread(member.health)
        if body is not None:
            s = sample_of(member, body, time.time())
            if s.db_state == "connected" and s.rows_written > after_rows:
                return s
        if member.daemon.proc.poll() is not None:
            raise RuntimeError(f"{member.gateway_id} exited:\n{member.daemon.log()[-3000:]}")
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{member.gateway_id} did not forward within {timeout:.0f} s:\n"
                       f"{member.daemon.log()[-3000:]}")


def kill_all() -> None:
    for daemon in _STARTED:
        with contextlib.suppress(Exception):
            daemon.kill()


# ------------------------------------------------------------------ database


async def count_rows(conn: asyncpg.Connection) -> tuple[float, int]:
    """(epoch seconds just before the snapshot, rows in process_data)."""
    t = time.time()
    n = await conn.fetchval("SELECT count(*) FROM process_data WHERE gateway_id <> $1", RAW_GATEWAY)
    return t, int(n)


async def newest_row_age(conn: asyncpg.Connection) -> dict[str, float]:
    """Per gateway: now minus the time of its newest row in the database."""
    t = time.time()
    rows = await conn.fetch("""SELECT gateway_id, extract(epoch FROM max(time))::float8 AS newest
                               FROM process_data WHERE time > now() - interval '30 seconds'
                               GROUP BY gateway_id""")
    return {r["gateway_id"]: t - r["newest"] for r in rows}


def raw_records(catalog: Catalog, batches: list) -> list[tuple]:
    """The gateways' row shape (ROW_COLUMNS) of ``batches``, as Python records."""
    tag_ids = np.array([t.id for t in catalog.tags], dtype=object)
    makers = {
        "time": lambda b: [datetime.fromtimestamp(b.scan_start, UTC)] * len(b),
        "gateway_id": lambda b: [RAW_GATEWAY] * len(b),
        "site": lambda b: ["raw"] * len(b),
        "tag_id": lambda b: tag_ids[b.tag_index].tolist(),
        "value": lambda b: b.values.tolist(),
        "quality": lambda b: b.quality.tolist(),
        "reason": lambda b: b.reason.tolist(),
        "chunk_seq": lambda b: [1] * len(b),
    }
    unknown = [c for c in ROW_COLUMNS if c not in makers]
    if unknown:
        raise RuntimeError(f"bench.fleet: no raw COPY value for process_data column(s) {unknown}")
    out: list[tuple] = []
    for b in batches:
        out.extend(zip(*(makers[c](b) for c in ROW_COLUMNS), strict=True))
    return out


async def raw_copy(url: str, catalog: Catalog, tags: int, values: int, connections: int) -> dict:
    """Raw COPY limits measured on this database before the fleet starts."""
    batches = scans(catalog, tags, values)
    day = datetime.fromtimestamp(batches[0].scan_start, UTC)
    partition = day.strftime("process_data_%Y%m%d")
    records = raw_records(catalog, batches)
    conns = [await asyncpg.connect(url) for _ in range(max(1, connections))]
    try:
        conn = conns[0]
        await ensure_partitions(conn, day, day)
        backend = psutil.Process(await conn.fetchval("SELECT pg_backend_pid()"))
        server_before, client_before = sum(backend.cpu_times()[:2]), time.process_time()
        started = time.perf_counter()
        await conn.copy_records_to_table(partition, records=records, columns=ROW_COLUMNS)
        one = len(records) / (time.perf_counter() - started)
        client_cpu = time.process_time() - client_before
        server_cpu = sum(backend.cpu_times()[:2]) - server_before
        await conn.execute(f"TRUNCATE {partition}")
        share = -(-len(records) // len(conns))
        parts = [records[k:k + share] for k in range(0, len(records), share)]
        started = time.perf_counter()
        await asyncio.gather(*(c.copy_records_to_table(partition, records=p, columns=ROW_COLUMNS)
                               for c, p in zip(conns, parts, strict=False)))
        parallel = len(records) / (time.perf_counter() - started)
        await conn.execute(f"DROP TABLE {partition}")
        unindexed = await raw_copy_records(conn, catalog, batches)
        binary = await raw_copy_binary(conn, catalog, batches)
        await conn.execute("DROP TABLE raw_records; DROP TABLE raw_binary")
    finally:
        for c in conns:
            await c.close()
    return {"values": len(records),
            "same_table_one_connection_values_per_s": one,
            # CPU of that COPY: this process (records -> wire) and its PostgreSQL backend.
            "one_connection_cpu_s_per_million": {
                "client": client_cpu / len(records) * 1e6,
                "postgres": server_cpu / len(records) * 1e6,
                "total": (client_cpu + server_cpu) / len(records) * 1e6},
            "same_table_parallel_values_per_s": parallel, "parallel_connections": len(conns),
            "unindexed_records_values_per_s": unindexed,
            "unindexed_binary_values_per_s": binary}


async def landed_keys(conn: asyncpg.Connection, gateway_id: str, base_us: int) -> np.ndarray:
    chunks: list[bytes] = []

    async def sink(data: bytes) -> None:
        chunks.append(bytes(data))

    await conn.copy_from_query(
        f"""SELECT (((extract(epoch FROM p.time) * 1000000)::bigint - {int(base_us)})
                    * {1 << TAG_BITS} + m.idx)
            FROM process_data p JOIN fleet_tag_index m ON m.tag_id = p.tag_id
            WHERE p.gateway_id = $1""", gateway_id, output=sink, format="binary")
    return parse_int8_copy(b"".join(chunks))


async def store_keys(state: Path, tag_ids: list[str], base_us: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(value keys, store batch id of each value, file bytes) of a stopped gateway's store."""
    path = state / STORE_FILE
    store = EmbeddedStore(path, 86_400 * 365, 10**12, forwarding=True, tag_ids=tag_ids)
    await store.open()
    try:
        items = await store.pending(0, 10**12)
    finally:
        await store.close()
    if not items:
        return np.empty(0, np.int64), np.empty(0, np.int64), 0
    cols = Columns.of([it.batch for it in items])
    ids = np.repeat([it.id for it in items], [len(it.batch) for it in items])
    time_us = np.rint(cols.source_ts * 1e6).astype(np.int64)  # as the writer's encoder rounds
    size = sum(p.stat().st_size for p in path.parent.glob(STORE_FILE + "*"))
    return value_keys(time_us, cols.tag_index, base_us), ids, size


async def reconcile_fleet(url: str, members: list[Member], tag_ids: list[str],
                          base_us: int) -> dict:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TEMP TABLE fleet_tag_index (tag_id text PRIMARY KEY, idx bigint)")
        await conn.copy_records_to_table("fleet_tag_index",
                                         records=[(t, i) for i, t in enumerate(tag_ids)])
        cursors = {r["gateway_id"]: r["batch_id"] for r in
                   await conn.fetch("SELECT gateway_id, batch_id FROM forwarding_cursor")}
        per_gateway, stored_values, stored_bytes = [], 0, 0
        for m in members:
            keys, ids, size = await store_keys(m.state, tag_ids, base_us)
            cursor = int(cursors.get(m.gateway_id, 0))
            rec = reconcile(keys[ids <= cursor], await landed_keys(conn, m.gateway_id, base_us))
            pending = int(np.count_nonzero(ids > cursor))
            stored_values += len(keys)
            stored_bytes += size
            per_gateway.append({"gateway_id": m.gateway_id, **asdict(rec), "exact": rec.exact,
                                "still_buffered": pending, "store_values": len(keys),
                                "store_bytes": size, "starts": m.starts})
    finally:
        await conn.close()
    total = {k: sum(g[k] for g in per_gateway)
             for k in ("expected", "landed", "lost", "duplicated", "unexpected", "still_buffered",
                       "repeated_in_store")}
    return {"per_gateway": per_gateway, **total,
            "exact": all(g["exact"] for g in per_gateway),
            "store_bytes_per_value": stored_bytes / stored_values if stored_values else None}


async def clear_retained(sites: set[str]) -> int:
    """Remove the retained messages the gateways left under their topics on the broker."""
    import paho.mqtt.client as paho

    topics: set[str] = set()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, msg: topics.add(msg.topic) if msg.retain and msg.payload else None
    client.connect(*BROKER)
    client.loop_start()
    try:
        for site in sites:
            client.subscribe(f"refineryiq/{site}/#", qos=1)
        await asyncio.sleep(1.0)
        for topic in sorted(topics):
            client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()
    return len(topics)


# ------------------------------------------------------------------ phases


def per_gateway_window(sampler: Sampler, members: list[Member], t0: float, t1: float,
                       ages: dict[str, list[float]] | None = None) -> list[dict]:
    out = []
    for m in members:
        w = sampler.window(m.gateway_id, t0, t1)
        rate = None
        if len(w) >= 2 and w[-1].t > w[0].t and w[-1].accepted_values >= w[0].accepted_values:
            rate = (w[-1].accepted_values - w[0].accepted_values) / (w[-1].t - w[0].t)
        out.append({
            "gateway_id": m.gateway_id, "samples": len(w),
            "accepted_values_per_s": rate,
            "lag_s": summarize([s.lag_s for s in w]),
            "backlog_values": summarize([float(s.backlog_values) for s in w]),
            "db_newest_row_age_s": summarize((ages or {}).get(m.gateway_id, [])),
            "overruns": (w[-1].overruns - w[0].overruns) if len(w) >= 2 else None,
        })
    return out


async def sustained(conn, sampler: Sampler, members: list[Member], seconds: float) -> dict:
    cpu0 = {m.gateway_id: m.cpu_by_process() for m in members}
    psutil.cpu_percent(None)
    t0, c0 = await count_rows(conn)
    ages: dict[str, list[float]] = {}
    age_query_s = []
    while time.time() < t0 + seconds:
        await asyncio.sleep(min(5.0, max(0.0, t0 + seconds - time.time())))
        started = time.perf_counter()
        for gw, age in (await newest_row_age(conn)).items():
            ages.setdefault(gw, []).append(age)
        age_query_s.append(time.perf_counter() - started)
    t1, c1 = await count_rows(conn)
    machine_busy = psutil.cpu_percent(None)
    gateways = per_gateway_window(sampler, members, t0, t1, ages)
    for g, m in zip(gateways, members, strict=True):
        g["cpu_percent"] = round(100 * cpu_between(cpu0[m.gateway_id], m.cpu_by_process())
                                 / (t1 - t0), 1)
    return {"seconds": t1 - t0, "rows": c1 - c0, "values_per_s": (c1 - c0) / (t1 - t0),
            "machine_cpu_busy_percent": machine_busy, "load_average_1m": os.getloadavg()[0],
            "newest_row_age_query_s": summarize(age_query_s), "per_gateway": gateways}


async def kill_restart(sampler: Sampler, members: list[Member], victim: Member, down_s: float,
                       observe_s: float, backlog_ok: int, timeout: float) -> dict:
    before = max((s.rows_written for s in sampler.samples if s.gateway == victim.gateway_id),
                 default=0)
    t_kill = time.time()
    victim.daemon.kill()  # SIGKILL to the daemon's process group (its simulator dies with it)
    progress(f"{victim.gateway_id} killed (SIGKILL); restarting in {down_s:.0f} s")
    await asyncio.sleep(down_s)
    t_restart = time.time()
    victim.start()
    first = await wait_forwarding(victim, timeout)
    t_forwarding = time.time()
    caught_up = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = await asyncio.to_thread(victim.health)
        if body is not None:
            s = sample_of(victim, body, time.time())
            if s.chunks_written >= 2 and s.backlog_values <= backlog_ok and s.lag_s <= TARGET_LAG_S:
                caught_up = s.t
                break
        await asyncio.sleep(0.25)
    await asyncio.sleep(observe_s)
    t_end = time.time()
    others = [m for m in members if m is not victim]
    victim_after = per_gateway_window(sampler, [victim], (caught_up or t_end), t_end)[0]
    return {
        "victim": victim.gateway_id, "down_s": t_restart - t_kill,
        "victim_rows_written_before_kill": before,
        "victim_restart_to_forwarding_s": t_forwarding - t_restart,
        "victim_backlog_at_first_commit": first.backlog_values,
        "victim_restart_to_caught_up_s": round(caught_up - t_restart, 1) if caught_up else None,
        "victim_after_catch_up": victim_after,
        "others_from_kill_to_end": per_gateway_window(sampler, others, t_kill, t_end),
        "seconds": t_end - t_kill,
    }


async def outage_and_drain(url: str, conn, sampler: Sampler, members: list[Member],
                           outage_s: float, backlog_ok: int, timeout: float,
                           work: Path) -> dict:
    lock = await asyncpg.connect(url)
    spy = None
    profiled = members[0]
    profile_path = work / "drain-profile.txt"
    try:
        tr = lock.transaction()
        await tr.start()
        # SHARE conflicts with the writers' ROW EXCLUSIVE: every COPY (into any partition) waits.
        await lock.execute("LOCK TABLE process_data IN SHARE MODE")
        t_lock = time.time()
        progress(f"historian stalled (process_data locked) for {outage_s:.0f} s")
        await asyncio.sleep(max(0.0, outage_s - 1.0))
        # One gateway's daemon sampled by py-spy from a second before the release on.
        spy = await profile_process(profiled.daemon.proc.pid, 1.0 + PROFILE_AFTER_RELEASE_S,
                                    profile_path)
        await asyncio.sleep(min(1.0, outage_s))
        at_release = {s.gateway: s for s in (await sampler.poll_once()).values()}
        _, c_release = await count_rows(lock)  # exact: no insert can commit while locked
        cpu_release = CpuSnapshot.take(members)
        await tr.commit()
        t_release = time.time()
    finally:
        await lock.close()
    sampler.period = 0.2
    drained: dict[str, Sample] = {}
    peak: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(drained) < len(members) and time.monotonic() < deadline:
            for gw, s in (await sampler.poll_once()).items():
                base = at_release.get(gw)
                peak[gw] = max(peak.get(gw, 0), s.backlog_values)
                # Two commits after the release: the stalled chunk, then the backlog itself.
                if (gw not in drained and base is not None and s.t > t_release
                        and s.chunks_written >= base.chunks_written + 2
                        and s.backlog_values <= backlog_ok):
                    drained[gw] = s
            await asyncio.sleep(0.2)
        t_seen, c_drained = await count_rows(conn)
        cpu_drained = CpuSnapshot.take(members)
    finally:
        sampler.period = 1.0
    profile = None
    if spy is not None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(spy.wait(), PROFILE_AFTER_RELEASE_S + 30)
        if spy.returncode is None:
            spy.kill()
            await spy.wait()
        if profile_path.exists():
            profile = {"gateway_id": profiled.gateway_id,
                       "window": f"py-spy, 250 Hz, from 1 s before the release for "
                                 f"{1 + PROFILE_AFTER_RELEASE_S:.0f} s, busy threads only",
                       **summarize_profile(profile_path.read_text())}
    if len(drained) < len(members):
        raise RuntimeError(f"fleet did not drain within {timeout:.0f} s "
                           f"({sorted(set(m.gateway_id for m in members) - set(drained))})")
    t_done = max(s.last_commit_at or s.t for s in drained.values())
    rows_commits = sum(drained[gw].rows_written - at_release[gw].rows_written for gw in drained)
    backlog = sum(peak.values())
    cpu = cpu_release.until(cpu_drained)
    rows_db = c_drained - c_release
    stages = {k: round(sum(drained[gw].stage_seconds.get(k, 0.0)
                           - at_release[gw].stage_seconds.get(k, 0.0) for gw in drained)
                       / len(drained), 3)
              for k in ("read", "encode", "copy", "mark")}
    return {
        "outage_s": t_release - t_lock,
        "backlog_values_peak": backlog,
        "rows_during_drain_db": c_drained - c_release,
        "drain_seconds_db": t_seen - t_release,
        "values_per_s_db": (c_drained - c_release) / (t_seen - t_release),
        "rows_during_drain_commits": rows_commits,
        "drain_seconds_commits": t_done - t_release,
        "values_per_s_commits": rows_commits / (t_done - t_release),
        "per_gateway": [{"gateway_id": gw, "backlog_values_peak": peak.get(gw),
                         "drained_after_s": (drained[gw].last_commit_at or drained[gw].t) - t_release,
                         "rows": drained[gw].rows_written - at_release[gw].rows_written}
                        for gw in sorted(drained)],
        # From the release to the drained count: CPU by owner, per million values drained.
        "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
        "cpu_s_per_million": {k: round(v / rows_db * 1e6, 3) for k, v in cpu.items()
                              if k != "seconds"},
        "machine_cpu_busy_percent": round(100 * cpu["machine_busy"] / (
            cpu["seconds"] * (psutil.cpu_count() or 1)), 1),
        # Each writer's wall seconds by stage over the drain, mean of the gateways (the next
        # chunk's read and encode overlap the COPY of the current one).
        "writer_stage_seconds_mean": stages,
        "writer_stage_note": "copy includes the stalled chunk's wait from the stall's start "
                             "(about outage_s); read and encode include look-aheads prepared "
                             "during the stall",
        "profile": profile,
    }


# ------------------------------------------------------------------ orchestration


async def run(args: argparse.Namespace, work: Path, database: str, url: str) -> dict:
    admin = await asyncpg.connect(TEST_DATABASE_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(url)
    await migrate(conn, timescale=False)
    catalog = Catalog.build(load_plant(PLANT_FILE), synthetic_tags=args.tags)
    progress(f"raw COPY of {args.raw_values:,} values ({args.tags} tags x 1 s) into process_data ...")
    raw = await raw_copy(url, catalog, args.tags, args.raw_values, args.gateways)
    progress(f"  raw COPY {raw['same_table_one_connection_values_per_s']:,.0f}/s (one connection), "
             f"{raw['same_table_parallel_values_per_s']:,.0f}/s ({args.gateways} connections)")
    run_id = f"bench-fleet-{os.getpid()}"
    members = fleet(work, args, url, run_id)
    base_us = int((time.time() - 86_400) * 1e6)
    per_gateway_values = len(catalog)
    backlog_ok = 3 * per_gateway_values  # three scans' worth: in flight, not behind
    sampler = Sampler(members)
    sampler_task = None
    results: dict = {}
    try:
        progress(f"starting {args.gateways} gateways ({args.tags} synthetic + "
                 f"{len(catalog) - args.tags} plant tags each, 1 s scans) ...")
        t_start = time.time()
        for m in members:
            m.start()
        await asyncio.gather(*(wait_forwarding(m, args.start_timeout_s) for m in members))
        progress(f"  all forwarding after {time.time() - t_start:.0f} s; warm-up {args.warmup_s:.0f} s")
        sampler_task = asyncio.create_task(sampler.run())
        await asyncio.sleep(args.warmup_s)
        progress(f"sustained load for {args.seconds:.0f} s ...")
        results["sustained"] = await sustained(conn, sampler, members, args.seconds)
        progress(f"  {results['sustained']['values_per_s']:,.0f} values/s into the database")
        victim = members[len(members) // 2]
        results["kill_restart"] = await kill_restart(sampler, members, victim, args.down_s,
                                                     args.observe_s, backlog_ok,
                                                     args.start_timeout_s)
        progress(f"  {victim.gateway_id} caught up "
                 f"{results['kill_restart']['victim_restart_to_caught_up_s']} s after restart")
        results["drain"] = await outage_and_drain(url, conn, sampler, members, args.outage_s,
                                                  backlog_ok, args.start_timeout_s, work)
        progress(f"  drained {results['drain']['backlog_values_peak']:,} values at "
                 f"{results['drain']['values_per_s_db']:,.0f}/s (database count)")
        await asyncio.sleep(args.observe_s)
        t_tail = time.time()
        await asyncio.sleep(args.observe_s)
        results["after_drain"] = per_gateway_window(sampler, members, t_tail, time.time())
    finally:
        if sampler_task is not None:
            sampler_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler_task
        progress("stopping the gateways (SIGTERM: each flushes its last scans) ...")
        await asyncio.gather(*(asyncio.to_thread(m.daemon.stop, signal.SIGTERM, 60)
                               for m in members if m.daemon is not None),
                             return_exceptions=True)
        kill_all()
    progress("reconciling every gateway's store with the database ...")
    results["reconciliation"] = await reconcile_fleet(url, members, catalog_tag_ids(args.tags),
                                                      base_us)
    await conn.close()
    with contextlib.suppress(Exception):
        results["mqtt_retained_cleared"] = await clear_retained({m.site for m in members})
    results["raw_copy"] = raw
    results["config"] = {
        "gateways": args.gateways, "synthetic_tags_per_gateway": args.tags,
        "values_per_gateway_scan": per_gateway_values, "scan_interval_s": 1.0,
        "offered_values_per_s": per_gateway_values * args.gateways,
        "northbound_opcua_server": not args.no_opcua_server, "sites": sorted({m.site for m in members}),
        "warmup_s": args.warmup_s, "seconds": args.seconds, "down_s": args.down_s,
        "outage_s": args.outage_s, "observe_s": args.observe_s, "quick": args.quick,
        "stall": "LOCK TABLE process_data IN SHARE MODE (writers' COPY waits; < 60 s command timeout)",
        "note": args.note,
    }
    return results


def verdict(r: dict) -> dict:
    raw = r["raw_copy"]["same_table_one_connection_values_per_s"]
    drain = r["drain"]["values_per_s_db"]
    victim = r["kill_restart"]["victim"]
    lags = {g["gateway_id"]: g["lag_s"]["max"] for g in r["sustained"]["per_gateway"]}
    for g in r["kill_restart"]["others_from_kill_to_end"]:
        lags[g["gateway_id"]] = max(lags[g["gateway_id"]] or 0, g["lag_s"]["max"] or 0)
    after = r["kill_restart"]["victim_after_catch_up"]["lag_s"]["max"]
    lags[victim] = max(lags[victim] or 0, after or 0)
    rec = r["reconciliation"]
    max_lag = max(v or 0 for v in lags.values())
    out = {
        "compared_with_target": "drain rate (database count) / raw COPY one connection, same table",
        "ratio_drain_to_raw_copy": drain / raw,
        "ratio_drain_commits_to_raw_copy": r["drain"]["values_per_s_commits"] / raw,
        "ratio_drain_to_raw_copy_parallel": drain / r["raw_copy"]["same_table_parallel_values_per_s"],
        "ratio_sustained_to_raw_copy": r["sustained"]["values_per_s"] / raw,
        "ratio_sustained_to_offered": r["sustained"]["values_per_s"] / r["config"]["offered_values_per_s"],
        "max_lag_s_by_gateway": lags, "max_lag_s": max_lag,
        "lost": rec["lost"], "duplicated": rec["duplicated"] + rec["unexpected"],
        "target_ratio": TARGET_RATIO, "target_lag_s": TARGET_LAG_S,
    }
    out["met"] = (out["ratio_drain_to_raw_copy"] >= TARGET_RATIO and max_lag <= TARGET_LAG_S
                  and rec["exact"] and rec["still_buffered"] == 0)
    return out


def report(r: dict, path: Path) -> None:
    c, raw, s, k, d, rec, v = (r["config"], r["raw_copy"], r["sustained"], r["kill_restart"],
                               r["drain"], r["reconciliation"], r["verdict"])
    print(f"fleet: {c['gateways']} gateways x {c['values_per_gateway_scan']:,} values/s "
          f"(offered {c['offered_values_per_s']:,}/s), northbound OPC-UA "
          f"{'on' if c['northbound_opcua_server'] else 'off'}")
    print(f"  raw COPY into process_data: {raw['same_table_one_connection_values_per_s']:,.0f}/s "
          f"(1 conn), {raw['same_table_parallel_values_per_s']:,.0f}/s ({raw['parallel_connections']}"
          f" conns); unindexed records {raw['unindexed_records_values_per_s']:,.0f}/s, binary "
          f"{raw['unindexed_binary_values_per_s']:,.0f}/s")
    print(f"  sustained {s['values_per_s']:,.0f} values/s landed over {s['seconds']:.0f} s "
          f"({v['ratio_sustained_to_offered']:.3f} of offered, {v['ratio_sustained_to_raw_copy']:.3f}"
          f" of raw COPY); machine CPU {s['machine_cpu_busy_percent']:.0f} % busy")
    for g in s["per_gateway"]:
        print(f"    {g['gateway_id']}: accepted {g['accepted_values_per_s'] or 0:,.0f}/s  lag max "
              f"{g['lag_s']['max']} s  backlog max {g['backlog_values']['max']:,.0f}  newest row "
              f"age max {g['db_newest_row_age_s']['max']} s  cpu {g['cpu_percent']} %")
    others = max((g["lag_s"]["max"] or 0) for g in k["others_from_kill_to_end"])
    print(f"  kill: {k['victim']} SIGKILLed, down {k['down_s']:.0f} s, forwarding "
          f"{k['victim_restart_to_forwarding_s']:.0f} s after restart, caught up after "
          f"{k['victim_restart_to_caught_up_s']} s; others' lag max {others} s meanwhile")
    print(f"  drain after a {d['outage_s']:.0f} s stall: {d['backlog_values_peak']:,} values, "
          f"{d['values_per_s_db']:,.0f}/s by database count ({d['drain_seconds_db']:.2f} s), "
          f"{d['values_per_s_commits']:,.0f}/s by commit times ({d['drain_seconds_commits']:.2f} s)")
    pm = d.get("cpu_s_per_million") or {}
    if pm:
        print(f"  drain CPU per million values: gateways {pm['gateway_daemons']:.2f} s, "
              f"simulators {pm['simulators']:.2f} s, PostgreSQL {pm['postgres']:.2f} s, machine "
              f"{pm['machine_busy']:.2f} s ({d['machine_cpu_busy_percent']:.0f} % busy); raw COPY "
              f"{raw['one_connection_cpu_s_per_million']['total']:.2f} s "
              f"(PostgreSQL {raw['one_connection_cpu_s_per_million']['postgres']:.2f} s)")
    print(f"  rows: expected {rec['expected']:,} landed {rec['landed']:,} lost {rec['lost']} "
          f"duplicated {rec['duplicated']} unexpected {rec['unexpected']} still buffered "
          f"{rec['still_buffered']}; embedded store {rec['store_bytes_per_value']:.1f} bytes/value")
    print(f"  target: drain / raw COPY {v['ratio_drain_to_raw_copy']:.2f} (>= {TARGET_RATIO}), "
          f"max lag {v['max_lag_s']} s (<= {TARGET_LAG_S}), lost {v['lost']}, duplicated "
          f"{v['duplicated']}: {'MET' if v['met'] else 'NOT met'}")
    print(f"  results: {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateways", type=int, default=8)
    parser.add_argument("--tags", type=int, default=2000, help="synthetic tags per gateway (1 s)")
    parser.add_argument("--seconds", type=float, default=120.0, help="sustained window")
    parser.add_argument("--warmup-s", type=float, default=30.0)
    parser.add_argument("--down-s", type=float, default=10.0, help="the killed gateway's downtime")
    parser.add_argument("--outage-s", type=float, default=50.0,
                        help="historian stall before the drain (< 60: the writers' COPY timeout)")
    parser.add_argument("--observe-s", type=float, default=10.0)
    parser.add_argument("--raw-values", type=int, default=1_000_000)
    parser.add_argument("--start-timeout-s", type=float, default=300.0)
    parser.add_argument("--no-opcua-server", action="store_true")
    parser.add_argument("--note", default="", help="recorded in the results (e.g. machine shared)")
    parser.add_argument("--keep", action="store_true", help="keep the state directories")
    parser.add_argument("--quick", action="store_true",
                        help="3 gateways, 30 s sustained, 20 s stall, 300,000 raw values")
    args = parser.parse_args()
    if args.quick:
        args.gateways = min(args.gateways, 3)
        args.seconds, args.warmup_s, args.outage_s = 30.0, 10.0, 20.0
        args.down_s, args.observe_s, args.raw_values = 5.0, 5.0, 300_000
    if args.gateways < 2:
        parser.error("--gateways: at least 2 (one is killed, the others must stay unaffected)")
    if not 0 < args.outage_s < 55:
        parser.error("--outage-s: between 0 and 55 s")
    # This process migrates and reads stores offline: their info lines are not figures.
    configure_logs("error", "json")
    quiet_library_logs()
    database = f"bench_fleet_{os.getpid()}"
    url = TEST_DATABASE_URL.rsplit("/", 1)[0] + f"/{database}"
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    signal.signal(signal.SIGTERM, _interrupted)  # a SIGTERM cleans up as Ctrl-C does
    try:
        results = asyncio.run(run(args, work, database, url))
        results["verdict"] = verdict(results)
        path = write_results("fleet", results)
        report(results, path)
        return 0 if results["verdict"]["met"] else 1
    except KeyboardInterrupt:
        progress("interrupted: stopping every process started and dropping the database")
        return 130
    finally:
        kill_all()
        asyncio.run(drop_database(database))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            progress(f"state directories kept in {work}")


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


async def drop_database(database: str) -> None:
    with contextlib.suppress(Exception):
        admin = await asyncpg.connect(TEST_DATABASE_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await admin.close()


if __name__ == "__main__":
    sys.exit(main())
