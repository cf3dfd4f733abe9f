"""Where the daily report's figures come from: the files of the gateway's state directory,
or, for a central operator, the historian database (``HistorianSources``).

The report reads what the running services have already persisted — analytics results
(``analytics.sqlite``), the alarm journal (``alarms.sqlite``) and the embedded history
(``history.sqlite``) — through its own SQLite connections. The same code therefore serves the
HTTP route and the scheduled run inside the daemon and ``refineryiq report`` beside it (SQLite's
WAL lets readers run next to the daemon's writers). A file that does not exist yet gives an
empty source, never an error: a report of a day without data says so.

``HistorianSources`` reads one gateway's rows from the central PostgreSQL/TimescaleDB instead
(``refineryiq report --historian``): what the gateways forward there — the day's data quality
of that gateway's tags (process data), its KPIs, completed energy hours and alarm journal.
Mass balance, tank states and equipment health are not forwarded: those sections say there
is no data. Every query is filtered by the chosen gateway (tag and unit ids repeat across the
gateways of one database).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analytics.alarm_types import AlarmTransition
from drivers.quality import Quality
from gateway.services.alarms.journal import JOURNAL_FILE, AlarmJournal
from gateway.services.analytics.results import BALANCE, ENERGY, EQUIPMENT_HEALTH, KPIS, TANK_STATES, Table
from gateway.services.analytics.results import FILE_NAME as ANALYTICS_FILE
from gateway.services.reports.model import PlantDay
from gateway.store.embedded_rows import TagSetCache
from gateway.store.sqlite_thread import SqliteThread
from plant.catalog import SYNTHETIC_PREFIX

if TYPE_CHECKING:  # asyncpg loads only with a historian (central reports)
    import asyncpg

HISTORY_FILE = "history.sqlite"
# The journal is only read here; its retention is enforced by the alarm service.
NO_RETENTION_S = float("inf")
# One second around the day's start when matching the balance row of the day (both sides
# compute local midnight the same way; the margin only absorbs float formatting).
DAY_START_TOLERANCE_S = 1.0
QUALITY_CLASSES = ("good", "doubtful", "bad")
# Scans whose quality codes are counted at a time: a day of 1 s scans of 10,000 tags holds
# 864 MB of codes, so they are never all in memory at once.
QUALITY_CHUNK_SCANS = 1000


@dataclass
class DayInputs:
    """The raw rows of one plant day, before the report summarises them."""

    kpis: list[dict] = field(default_factory=list)  # KPI rows, oldest first
    energy: list[dict] = field(default_factory=list)  # unit-hours of the day
    balance: list[dict] = field(default_factory=list)  # one row per unit
    tanks: list[dict] = field(default_factory=list)  # tank states, oldest first
    equipment: list[dict] = field(default_factory=list)  # newest health of each equipment
    equipment_min_score: dict[str, float] = field(default_factory=dict)
    transitions: list[AlarmTransition] = field(default_factory=list)
    # Samples per plant tag: [good, doubtful, bad].
    quality: dict[str, list[int]] = field(default_factory=dict)
    # Where the quality counts come from, named in the report's data-quality section.
    quality_source: str = "embedded history"


def quality_counts(conn: sqlite3.Connection, start: float, end: float,
                   catalog_tag_ids: list[str]) -> dict[str, list[int]]:
    """Good / doubtful / bad samples of each plant tag in the scans that started in
    ``[start, end)`` (synthetic tags are not in the report).

    One pass over the day's batches per tag set, QUALITY_CHUNK_SCANS scans at a time, counting
    only the plant tags' columns; a tag set without plant tags (a synthetic scan group) is not
    read at all. Runs on an SQLite thread (it reads the embedded store's tables directly).
    """
    names = dict(conn.execute("SELECT store_index, tag_id FROM tag_registry").fetchall())
    tag_sets = TagSetCache()
    counts: dict[str, np.ndarray] = {}
    set_ids = [r[0] for r in conn.execute(
        "SELECT DISTINCT tag_set_id FROM batch WHERE scan_start >= ? AND scan_start < ?",
        (start, end))]
    for set_id in set_ids:
        tags = tag_sets.get(conn, set_id)
        columns, tag_ids = _plant_columns(tags, names, catalog_tag_ids)
        if not tag_ids:
            continue
        totals = np.zeros((len(tag_ids), 3), dtype=np.int64)
        cursor = conn.execute("SELECT quality_blob FROM batch WHERE tag_set_id = ? "
                              "AND scan_start >= ? AND scan_start < ?", (set_id, start, end))
        while blobs := [r[0] for r in cursor.fetchmany(QUALITY_CHUNK_SCANS)]:
            quality = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(
                len(blobs), len(tags))[:, columns]
            good = np.count_nonzero(quality >= Quality.GOOD, axis=0)
            doubtful = np.count_nonzero((quality >= Quality.DOUBTFUL) & (quality < Quality.GOOD),
                                        axis=0)
            totals += np.column_stack((good, doubtful, len(blobs) - good - doubtful))
        for tag_id, row in zip(tag_ids, totals, strict=True):
            counts[tag_id] = counts.get(tag_id, 0) + row
    return {tag_id: [int(x) for x in row] for tag_id, row in counts.items()}


def _plant_columns(tags: np.ndarray, names: dict[int, str],
                   catalog_tag_ids: list[str]) -> tuple[np.ndarray, list[str]]:
    """The columns of a tag set that hold plant tags, and those tags' ids. Store indices are
    named by the store's tag registry, or by the catalog's order in a store without one."""
    columns, tag_ids = [], []
    for k, store_index in enumerate(tags.tolist()):
        tag_id = names.get(store_index) if names else (
            catalog_tag_ids[store_index] if store_index < len(catalog_tag_ids) else None)
        if tag_id is not None and not tag_id.startswith(SYNTHETIC_PREFIX):
            columns.append(k)
            tag_ids.append(tag_id)
    return np.array(columns, dtype=np.intp), tag_ids


def _rows(conn: sqlite3.Connection, table: Table, where: str, params: tuple) -> list[dict]:
    values = conn.execute(f"{table.select()} WHERE {where}", params).fetchall()
    return [table.decode(v) for v in values]


def read_analytics(conn: sqlite3.Connection, day: PlantDay, until: float) -> dict[str, Any]:
    """The analytics rows of ``day`` (KPI and tank rows up to ``until``)."""
    start, end = day.start, day.end
    out: dict[str, Any] = {
        "kpis": _rows(conn, KPIS, "ts >= ? AND ts < ? ORDER BY ts, unit_id", (start, until)),
        "energy": _rows(conn, ENERGY, "hour_start >= ? AND hour_start < ? "
                        "ORDER BY hour_start, unit_id", (start, end)),
        "balance": _rows(conn, BALANCE, "day_start > ? AND day_start < ? ORDER BY unit_id",
                         (start - DAY_START_TOLERANCE_S, start + DAY_START_TOLERANCE_S)),
        "tanks": _rows(conn, TANK_STATES, "ts >= ? AND ts < ? ORDER BY ts, tank_id", (start, until)),
        "equipment": _rows(conn, EQUIPMENT_HEALTH,
                           "(equipment_id, ts) IN (SELECT equipment_id, max(ts) FROM "
                           "equipment_health WHERE ts >= ? AND ts < ? GROUP BY equipment_id) "
                           "ORDER BY equipment_id", (start, until)),
    }
    out["equipment_min_score"] = {
        equipment_id: score for equipment_id, score in conn.execute(
            "SELECT equipment_id, min(score) FROM equipment_health WHERE ts >= ? AND ts < ? "
            "AND score IS NOT NULL GROUP BY equipment_id", (start, until))}
    return out


class ReportSources:
    """Read connections to the state directory's stores, opened for one or more reports."""

    def __init__(self, state_dir: Path, catalog_tag_ids: list[str]):
        self.state_dir = Path(state_dir)
        self.catalog_tag_ids = list(catalog_tag_ids)
        self._analytics: SqliteThread | None = None
        self._history: SqliteThread | None = None
        self._journal: AlarmJournal | None = None

    async def open(self) -> ReportSources:
        if (path := self.state_dir / ANALYTICS_FILE).exists():
            self._analytics = SqliteThread(path, (), name="report-analytics")
            await self._analytics.open()
        if (path := self.state_dir / HISTORY_FILE).exists():
            self._history = SqliteThread(path, (), name="report-history")
            await self._history.open()
        if (path := self.state_dir / JOURNAL_FILE).exists():
            self._journal = AlarmJournal(path, NO_RETENTION_S)
            await self._journal.open()
        return self

    @property
    def complete(self) -> bool:
        """Every store file was there when opened (else reopen once the daemon made them)."""
        return None not in (self._analytics, self._history, self._journal)

    async def close(self) -> None:
        for db in (self._analytics, self._history, self._journal):
            if db is not None:
                await db.close()
        self._analytics = self._history = self._journal = None

    async def __aenter__(self) -> ReportSources:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def read_day(self, day: PlantDay, until: float) -> DayInputs:
        """Everything the report needs of ``day``, up to ``until`` (the day's end or now)."""
        inputs = DayInputs()
        if self._analytics is not None:
            rows = await self._analytics.call(lambda conn: _if_tables(conn, read_analytics, day, until))
            if rows is not None:
                inputs.kpis, inputs.energy = rows["kpis"], rows["energy"]
                inputs.balance, inputs.tanks = rows["balance"], rows["tanks"]
                inputs.equipment = rows["equipment"]
                inputs.equipment_min_score = rows["equipment_min_score"]
        if self._journal is not None:
            inputs.transitions = await self._journal.kpi_window(day.start, until)
        if self._history is not None:
            counted = await self._history.call(
                lambda conn: _if_tables(conn, quality_counts, day.start, until, self.catalog_tag_ids))
            inputs.quality = counted or {}
        return inputs


def _if_tables(conn: sqlite3.Connection, fn: Any, *args: Any) -> Any:
    """``fn(conn, *args)``, or None while the file's tables do not exist yet."""
    try:
        return fn(conn, *args)
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise


class HistorianSources:
    """The report's inputs of one gateway from the historian database (same interface as
    ``ReportSources``): the per-tag quality counts of the day from ``process_data``, the KPI
    rows, completed energy hours and alarm transitions the gateway forwarded; only that
    gateway's rows (tag ids repeat across the gateways of one database)."""

    def __init__(self, url: str, gateway_id: str, catalog_tag_ids: list[str], *,
                 schema: str | None = None, connect_timeout_s: float = 30.0):
        self.url = url
        self.gateway_id = gateway_id
        self.schema = schema
        self.catalog_tag_ids = [t for t in catalog_tag_ids if not t.startswith(SYNTHETIC_PREFIX)]
        self._timeout = connect_timeout_s
        self._conn: asyncpg.Connection | None = None

    async def open(self) -> HistorianSources:
        from gateway.store.postgres.connection import connect
        if self._conn is None:
            self._conn = await connect(self.url, schema=self.schema, create_schema=False,
                                       timeout=self._timeout)
        return self

    @property
    def complete(self) -> bool:
        return self._conn is not None

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aenter__(self) -> HistorianSources:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def read_day(self, day: PlantDay, until: float) -> DayInputs:
        """The day's KPIs, energy hours, alarm transitions and quality counts of the
        gateway's plant tags, up to ``until``."""
        from gateway.store.postgres.outbound_reads import alarm_transitions, energy_rows, kpi_rows
        from gateway.store.postgres.reads import quality_counts
        if self._conn is None:
            raise RuntimeError("HistorianSources: open() first")
        conn, gateway_id = self._conn, self.gateway_id
        return DayInputs(
            kpis=await kpi_rows(conn, gateway_id, day.start, until),
            energy=await energy_rows(conn, gateway_id, day.start, day.end),
            transitions=await alarm_transitions(conn, gateway_id, day.start, until),
            quality=await quality_counts(conn, day.start, until, gateway_id=gateway_id,
                                         tag_ids=self.catalog_tag_ids),
            quality_source="historian")
