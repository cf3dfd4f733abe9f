"""Analytics results with their timestamps, in ``analytics.sqlite`` in the state directory.

One table per kind of result, with the columns of the rows ``gateway.services.analytics.run`` makes:
KPIs per unit and plant every run (history for trend charts), energy per unit-hour (the
current hour is rewritten each run until it is complete, then frozen), tank states and
equipment health every run, and the mass balance per unit and plant day (rewritten during
the day). All access goes through one :class:`SqliteThread`; rows older than the retention
are deleted by ``enforce_retention``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.services.analytics.run import RunRows
from gateway.store.sqlite_thread import SqliteThread

FILE_NAME = "analytics.sqlite"


@dataclass(frozen=True, slots=True)
class Table:
    """A result table: its columns (in row order), primary key, JSON and boolean columns."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    time_column: str
    text: frozenset[str] = frozenset()
    json: frozenset[str] = frozenset()
    booleans: frozenset[str] = frozenset()

    def ddl(self) -> list[str]:
        cols = ", ".join(
            f"{c} {'TEXT' if c in self.text or c in self.json else 'REAL'}"
            + (" NOT NULL" if c in self.key else "") for c in self.columns)
        return [f"CREATE TABLE IF NOT EXISTS {self.name} ({cols}, "
                f"PRIMARY KEY ({', '.join(self.key)})) WITHOUT ROWID",
                f"CREATE INDEX IF NOT EXISTS {self.name}_{self.time_column} "
                f"ON {self.name} ({self.time_column})"]

    def encode(self, row: dict) -> tuple:
        return tuple(json.dumps(row[c]) if c in self.json and row[c] is not None
                     else (int(row[c]) if c in self.booleans and row[c] is not None else row[c])
                     for c in self.columns)

    def decode(self, values: Sequence) -> dict:
        row = dict(zip(self.columns, values, strict=True))
        for c in self.json:
            if row[c] is not None:
                row[c] = json.loads(row[c])
        for c in self.booleans:
            if row[c] is not None:
                row[c] = bool(row[c])
        return row

    def select(self) -> str:
        return f"SELECT {', '.join(self.columns)} FROM {self.name}"


KPIS = Table("kpis", (
    "unit_id", "ts", "window_start", "window_end", "throughput_bpd", "throughput_pct_of_design",
    "energy_efficiency", "kwh_per_bbl", "quality_score", "good_data_pct", "in_range_pct",
    "maintenance_score", "availability_pct", "performance_pct", "oee_quality_pct", "oee_pct",
    "stability_index", "stability_trend", "stability_variance", "status", "excess_kwh_per_day",
    "daily_loss_usd"), key=("unit_id", "ts"), time_column="ts",
    text=frozenset({"unit_id", "stability_trend", "status"}))
ENERGY = Table("energy", (
    "unit_id", "hour_start", "hour_end", "window_end", "complete", "computed_at",
    "consumption_kwh", "feed_bbl", "mean_power_kw", "mean_feed_bpd", "kwh_per_bbl",
    "benchmark_kwh_bbl", "target_kwh_bbl", "efficiency_score", "status", "savings_kwh",
    "savings_kwh_per_year", "power_coverage_pct", "feed_coverage_pct", "action", "priority",
    "recommendation", "recommendations"), key=("unit_id", "hour_start"),
    time_column="hour_start", text=frozenset({"unit_id", "status", "action", "priority",
                                              "recommendation"}),
    json=frozenset({"recommendations"}), booleans=frozenset({"complete"}))
TANK_STATES = Table("tank_states", (
    "tank_id", "ts", "level_tag", "level_pct", "volume_l", "capacity_l", "level_ts", "trend",
    "rate_pct_per_h", "rate_l_per_h", "hours_to_full", "hours_to_empty", "status"),
    key=("tank_id", "ts"), time_column="ts",
    text=frozenset({"tank_id", "level_tag", "trend", "status"}))
EQUIPMENT_HEALTH = Table("equipment_health", (
    "equipment_id", "unit_id", "ts", "score", "status", "zone", "running", "worst_kind",
    "worst_tag", "worst_value", "failure_probability_pct", "contributions"),
    key=("equipment_id", "ts"), time_column="ts",
    text=frozenset({"equipment_id", "unit_id", "status", "zone", "worst_kind", "worst_tag"}),
    json=frozenset({"contributions"}), booleans=frozenset({"running"}))
BALANCE = Table("balance", (
    "unit_id", "day_start", "ts", "feed_bbl", "feed_coverage_pct", "products_bbl",
    "closure_pct", "imbalance_bbl", "energy_kwh", "energy_coverage_pct", "kwh_per_bbl",
    "products"), key=("unit_id", "day_start"), time_column="day_start",
    text=frozenset({"unit_id"}), json=frozenset({"products"}))
TABLES = (KPIS, ENERGY, TANK_STATES, EQUIPMENT_HEALTH, BALANCE)
SCHEMA = [statement for table in TABLES for statement in table.ddl()]


def _insert(table: Table, rows: Sequence[dict]) -> tuple[str, list[tuple]]:
    placeholders = ", ".join("?" * len(table.columns))
    sql = f"INSERT OR REPLACE INTO {table.name} ({', '.join(table.columns)}) VALUES ({placeholders})"
    return sql, [table.encode(r) for r in rows]


def _upsert(table: Table, rows: Sequence[dict], unless_final: str | None = None
            ) -> tuple[str, list[tuple]]:
    """Insert or update by key; with ``unless_final``, a stored row whose column of that
    name is true is left alone (a completed hour is never rewritten)."""
    placeholders = ", ".join("?" * len(table.columns))
    updates = ", ".join(f"{c} = excluded.{c}" for c in table.columns if c not in table.key)
    where = f" WHERE NOT {table.name}.{unless_final}" if unless_final else ""
    sql = (f"INSERT INTO {table.name} ({', '.join(table.columns)}) VALUES ({placeholders}) "
           f"ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {updates}{where}")
    return sql, [table.encode(r) for r in rows]


def _latest(table: Table, id_column: str) -> str:
    """Each id's newest row."""
    return (f"{table.select()} WHERE ({id_column}, ts) IN "
            f"(SELECT {id_column}, max(ts) FROM {table.name} GROUP BY {id_column})")


class AnalyticsStore:
    """Persists analytics rows and reads them back (latest, history), off the event loop.

    ``version`` grows after every committed change of the stored rows (a saved run, a
    retention pass that deleted rows): the HTTP API keeps answers read from here until it
    moves on.
    """

    def __init__(self, path: Path, retention_s: float):
        self.path = Path(path)
        self.retention_s = retention_s
        self.version = 0
        self._db = SqliteThread(self.path, SCHEMA, name="analytics-store")

    async def open(self) -> None:
        """Open (creating the tables if needed)."""
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    async def save(self, rows: RunRows) -> None:
        """Write one run's rows in one transaction."""
        statements = [_insert(KPIS, rows.kpis), _insert(TANK_STATES, rows.tanks),
                      _insert(EQUIPMENT_HEALTH, rows.equipment),
                      _upsert(ENERGY, rows.energy, unless_final="complete"),
                      _upsert(BALANCE, rows.balance)]

        def write(conn: sqlite3.Connection) -> None:
            for sql, params in statements:
                if params:
                    conn.executemany(sql, params)

        await self._db.transaction(write)
        self.version += 1

    async def enforce_retention(self, now: float) -> int:
        """Delete rows older than the retention; returns how many were deleted."""
        cutoff = now - self.retention_s

        def trim(conn: sqlite3.Connection) -> int:
            return sum(conn.execute(f"DELETE FROM {t.name} WHERE {t.time_column} < ?",
                                    (cutoff,)).rowcount for t in TABLES)

        deleted = await self._db.transaction(trim)
        if deleted:
            self.version += 1
        return deleted

    async def _rows(self, table: Table, sql: str, params: Sequence = ()) -> list[dict]:
        values = await self._db.call(lambda conn: conn.execute(sql, params).fetchall())
        return [table.decode(v) for v in values]

    async def latest_kpis(self) -> list[dict]:
        """The newest KPI row of each unit (and of the plant)."""
        return await self._rows(KPIS, _latest(KPIS, "unit_id") + " ORDER BY unit_id")

    async def kpi_history(self, since: float, unit_id: str | None = None) -> list[dict]:
        """KPI rows with ``ts >= since``, oldest first, of one unit or all."""
        if unit_id is None:
            return await self._rows(KPIS, f"{KPIS.select()} WHERE ts >= ? ORDER BY ts, unit_id",
                                    (since,))
        return await self._rows(KPIS, f"{KPIS.select()} WHERE ts >= ? AND unit_id = ? ORDER BY ts",
                                (since, unit_id))

    async def energy(self, since: float, unit_id: str | None = None) -> list[dict]:
        """Hourly energy rows whose hour starts at or after ``since``, oldest first."""
        sql = f"{ENERGY.select()} WHERE hour_start >= ?"
        params: tuple = (since,)
        if unit_id is not None:
            sql, params = sql + " AND unit_id = ?", (since, unit_id)
        return await self._rows(ENERGY, sql + " ORDER BY hour_start, unit_id", params)

    async def latest_tank_states(self) -> list[dict]:
        """The newest state of each tank."""
        return await self._rows(TANK_STATES, _latest(TANK_STATES, "tank_id") + " ORDER BY tank_id")

    async def latest_equipment_health(self) -> list[dict]:
        """The newest health of each piece of equipment."""
        return await self._rows(EQUIPMENT_HEALTH,
                                _latest(EQUIPMENT_HEALTH, "equipment_id") + " ORDER BY equipment_id")

    async def balances(self, day_start: float | None = None) -> list[dict]:
        """The balance rows of one plant day (default: the newest day stored)."""
        if day_start is None:
            sql = (f"{BALANCE.select()} WHERE day_start = (SELECT max(day_start) FROM balance)"
                   " ORDER BY unit_id")
            return await self._rows(BALANCE, sql)
        return await self._rows(BALANCE, f"{BALANCE.select()} WHERE day_start = ? ORDER BY unit_id",
                                (day_start,))
