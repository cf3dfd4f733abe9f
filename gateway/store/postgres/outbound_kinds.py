"""The kinds of row :mod:`gateway.store.postgres.outbound` forwards, read from the files of
the gateway's state directory and written into the tables of migrations 0003/0007/0008.

Each kind reads its file through its own SQLite connection (WAL lets it read beside the
service that writes the file; a file not created yet has no rows):

- ``alarm_journal`` (``alarms.sqlite``, position ``seq``): every alarm transition becomes an
  ``alarm_journal`` row and updates the occurrence's row in ``alerts`` (found by the
  occurrence id, created at its first transition);
- ``kpis`` (``analytics.sqlite``, position: the run's time): the per-unit KPI rows (the plant
  row, ``unit_id`` PLANT, names no process unit and stays local);
- ``energy`` (``analytics.sqlite``, position: when the hour was completed): completed
  unit-hours only (an hour still open is rewritten every run, a completed one never);
- ``maintenance_predictions`` (``maintenance.sqlite``, position: the run's time): the newest
  prediction of each equipment. The gateway keeps only that one, so after an outage the
  historian gets the last prediction of each equipment, not every run of the outage.

Rows deleted by a file's retention before the database came back are not forwarded.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from analytics.alarm_types import AlarmKind, AlarmState
from gateway.store.postgres.outbound import OutboundRow
from gateway.store.postgres.result_columns import (
    ENERGY_COLUMNS,
    KPI_COLUMNS,
    gateway_names,
    historian_names,
    to_historian,
)

ALARMS_FILE = "alarms.sqlite"
ANALYTICS_FILE = "analytics.sqlite"
MAINTENANCE_FILE = "maintenance.sqlite"
PLANT_ID = "PLANT"  # the plant-wide KPI row of gateway.services.analytics.run

_ACTIVE = (AlarmState.UNACK.value, AlarmState.ACKED.value)


def _when(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


# Every kind's file is read on this one thread (started on the first read): one thread and
# one allocator arena for all of them, not one per file or per executor thread.
_READER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbound-read")
# The reads are a few indexed rows every few seconds: a small page cache is enough.
_READ_CACHE_KIB = 256


class SqliteRows:
    """Rows of one table of a state-directory file past a position, whole groups of equal
    position at a time (one KPI run's units together)."""

    def __init__(self, path: Path, table: str, position: str, columns: Sequence[str],
                 where: str = ""):
        self.path = Path(path)
        self.columns = tuple(columns)
        extra = f" AND {where}" if where else ""
        # Every row up to the position of the limit-th row: a group is never cut in two.
        self._last_sql = f"SELECT max({position}) FROM {table}" + (f" WHERE {where}" if where else "")
        self._sql = (f"SELECT {position}, {', '.join(self.columns)} FROM {table} "
                     f"WHERE {position} > ?{extra} AND {position} <= (SELECT max(p) FROM "
                     f"(SELECT {position} AS p FROM {table} WHERE {position} > ?{extra} "
                     f"ORDER BY {position} LIMIT ?)) ORDER BY {position}")

    def _read(self, sql: str, params: tuple) -> list[tuple]:
        """One query on a connection of its own, closed after: a reader every few seconds
        does not keep a page cache per file for the daemon's lifetime."""
        if not self.path.exists():
            return []
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute(f"PRAGMA cache_size=-{_READ_CACHE_KIB}")
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            conn.close()

    async def _query(self, sql: str, params: tuple) -> list[tuple]:
        return await asyncio.get_running_loop().run_in_executor(_READER, self._read, sql, params)

    async def after(self, position: float, limit: int) -> list[tuple[float, dict]]:
        rows = await self._query(self._sql, (position, position, limit))
        return [(float(r[0]), dict(zip(self.columns, r[1:], strict=True))) for r in rows]

    async def last_position(self) -> float | None:
        """The newest position in the file (None without rows)."""
        rows = await self._query(self._last_sql, ())
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    async def close(self) -> None:
        """Nothing stays open between queries."""


class _FileKind:
    """A kind read by :class:`SqliteRows`."""

    name = ""
    rows: SqliteRows

    async def after(self, position: float, limit: int) -> list[OutboundRow]:
        return [OutboundRow(p, r) for p, r in await self.rows.after(position, limit)]

    async def last_position(self) -> float | None:
        return await self.rows.last_position()

    async def close(self) -> None:
        await self.rows.close()


# --------------------------------------------------------------------------- alarms

_JOURNAL_COLUMNS = ("seq", "time", "alarm_id", "alarm_key", "tag_id", "kind", "from_state",
                    "to_state", "severity", "value", "limit_value", "user_name", "comment",
                    "automatic", "doubtful", "unit_id", "device_id", "message")


def journal_event(from_state: str, to_state: str) -> str:
    """The ``alarm_journal.event`` of a transition (ISA-18.2 words)."""
    active = (from_state in _ACTIVE, to_state in _ACTIVE)
    if from_state == to_state:
        return "ESCALATE"
    if to_state == AlarmState.UNACK and not active[0]:
        return "ACTIVATE"
    if (from_state, to_state) in ((AlarmState.UNACK, AlarmState.ACKED),
                                  (AlarmState.RTN_UNACK, AlarmState.NORMAL)):
        return "ACKNOWLEDGE"
    if to_state == AlarmState.SHELVED:
        return "SHELVE"
    if from_state == AlarmState.SHELVED:
        return "UNSHELVE"
    if to_state == AlarmState.SUPPRESSED:
        return "OUT_OF_SERVICE"
    if from_state == AlarmState.SUPPRESSED:
        return "RETURN_TO_SERVICE"
    if active[0] and to_state in (AlarmState.RTN_UNACK, AlarmState.NORMAL):
        return "CLEAR"
    return "TRANSITION"


_UPSERT_ALERT = """
INSERT INTO alerts (time, gateway_id, unit_id, tag_id, alarm_type, value, threshold, severity,
                    message, state, acknowledged, acknowledged_at, acknowledged_by,
                    auto_acknowledged, cleared_at, alarm_id, alarm_key)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
ON CONFLICT (gateway_id, alarm_id) WHERE alarm_id IS NOT NULL DO UPDATE SET
    alarm_type = EXCLUDED.alarm_type, severity = EXCLUDED.severity,
    threshold = coalesce(EXCLUDED.threshold, alerts.threshold),
    message = CASE WHEN EXCLUDED.message = '' THEN alerts.message ELSE EXCLUDED.message END,
    state = EXCLUDED.state,
    -- A new activation within the occurrence (return to normal unacknowledged, then active
    -- again) needs acknowledging again and is no longer cleared.
    acknowledged = CASE WHEN $18 THEN false ELSE alerts.acknowledged OR EXCLUDED.acknowledged END,
    acknowledged_at = CASE WHEN $18 THEN NULL
                           ELSE coalesce(EXCLUDED.acknowledged_at, alerts.acknowledged_at) END,
    acknowledged_by = CASE WHEN $18 THEN NULL
                           ELSE coalesce(EXCLUDED.acknowledged_by, alerts.acknowledged_by) END,
    auto_acknowledged = CASE WHEN $18 THEN false
                             WHEN EXCLUDED.acknowledged THEN EXCLUDED.auto_acknowledged
                             ELSE alerts.auto_acknowledged END,
    cleared_at = CASE WHEN $18 THEN NULL ELSE coalesce(alerts.cleared_at, EXCLUDED.cleared_at) END
RETURNING id"""

_INSERT_JOURNAL = """
INSERT INTO alarm_journal (time, gateway_id, alert_id, tag_id, event, from_state, to_state,
                           severity, value, actor, automatic, note, seq, alarm_key, kind)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT (gateway_id, seq) WHERE seq IS NOT NULL DO NOTHING"""


class AlarmJournalKind(_FileKind):
    """Alarm transitions into ``alarm_journal`` and their occurrence into ``alerts``."""

    name = "alarm_journal"

    def __init__(self, state_dir: Path):
        self.rows = SqliteRows(Path(state_dir) / ALARMS_FILE, "journal", "seq", _JOURNAL_COLUMNS)

    async def write(self, conn: asyncpg.Connection, gateway_id: str, t: dict) -> None:
        event = journal_event(t["from_state"], t["to_state"])
        when = _when(t["time"])
        # A communication-loss alarm's source is a device, not a tag of process_tags.
        tag_id = None if t["kind"] == AlarmKind.COMM_LOSS else t["tag_id"]
        acked = event == "ACKNOWLEDGE"
        cleared = t["to_state"] == AlarmState.NORMAL or event == "CLEAR"
        alert_id = await conn.fetchval(
            _UPSERT_ALERT, when, gateway_id, t["unit_id"], tag_id, t["kind"], t["value"],
            t["limit_value"], t["severity"], t["message"] or "", t["to_state"], acked,
            when if acked else None, (t["user_name"] or "") if acked else None,
            acked and bool(t["automatic"]), when if cleared else None, t["alarm_id"],
            t["alarm_key"], event == "ACTIVATE")
        await conn.execute(
            _INSERT_JOURNAL, when, gateway_id, alert_id, tag_id, event, t["from_state"],
            t["to_state"], t["severity"], t["value"], t["user_name"] or "", bool(t["automatic"]),
            t["comment"] or "", t["seq"], t["alarm_key"], t["kind"])

    def describe(self, t: dict) -> str:
        return f"alarm transition seq {t['seq']} ({t['alarm_key']} {t['from_state']} -> {t['to_state']})"


# --------------------------------------------------------------------------- analytics

_INSERT_KPI = f"""
INSERT INTO kpis (time, gateway_id, unit_id, {', '.join(historian_names(KPI_COLUMNS))})
VALUES ({', '.join(f'${i}' for i in range(1, len(KPI_COLUMNS) + 4))})
ON CONFLICT (unit_id, time, gateway_id) DO NOTHING"""


class KpiKind(_FileKind):
    """Per-unit KPI rows into ``kpis`` (percentages of the gateway become the table's
    fractions: availability, performance, quality rate, OEE)."""

    name = "kpis"

    def __init__(self, state_dir: Path):
        self.rows = SqliteRows(Path(state_dir) / ANALYTICS_FILE, "kpis", "ts",
                               ("unit_id", "ts", *gateway_names(KPI_COLUMNS)),
                               where=f"unit_id <> '{PLANT_ID}'")

    async def write(self, conn: asyncpg.Connection, gateway_id: str, k: dict) -> None:
        await conn.execute(_INSERT_KPI, _when(k["ts"]), gateway_id, k["unit_id"],
                           *to_historian(KPI_COLUMNS, k))

    def describe(self, k: dict) -> str:
        return f"KPIs of {k['unit_id']} at {_when(k['ts'])}"


_INSERT_ENERGY = f"""
INSERT INTO energy_analysis (time, gateway_id, unit_id, {', '.join(historian_names(ENERGY_COLUMNS))})
VALUES ({', '.join(f'${i}' for i in range(1, len(ENERGY_COLUMNS) + 4))})
ON CONFLICT (unit_id, time, gateway_id) DO NOTHING"""


class EnergyKind(_FileKind):
    """Completed unit-hours into ``energy_analysis`` (``time`` is the hour's start)."""

    name = "energy"

    def __init__(self, state_dir: Path):
        self.rows = SqliteRows(Path(state_dir) / ANALYTICS_FILE, "energy", "computed_at",
                               ("unit_id", "hour_start", *gateway_names(ENERGY_COLUMNS)),
                               where="complete = 1")

    async def write(self, conn: asyncpg.Connection, gateway_id: str, e: dict) -> None:
        e = {**e, "recommendation": e["recommendation"] or ""}
        await conn.execute(_INSERT_ENERGY, _when(e["hour_start"]), gateway_id, e["unit_id"],
                           *to_historian(ENERGY_COLUMNS, e))

    def describe(self, e: dict) -> str:
        return f"energy of {e['unit_id']} hour {_when(e['hour_start'])}"


# --------------------------------------------------------------------------- maintenance

_INSERT_PREDICTION = """
INSERT INTO maintenance_predictions (time, gateway_id, equipment_id, failure_probability,
                                     prediction, confidence, recommendation,
                                     estimated_failure_date, model_version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"""


def _date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


class PredictionKind(_FileKind):
    """The newest prediction of each equipment into ``maintenance_predictions``."""

    name = "maintenance_predictions"

    def __init__(self, state_dir: Path):
        self.rows = SqliteRows(Path(state_dir) / MAINTENANCE_FILE, "prediction", "ts",
                               ("equipment_id", "ts", "body"))

    async def write(self, conn: asyncpg.Connection, gateway_id: str, p: dict) -> None:
        body = json.loads(p["body"])
        await conn.execute(
            _INSERT_PREDICTION, _when(p["ts"]), gateway_id, p["equipment_id"],
            body.get("failure_probability"), str(body.get("prediction") or ""),
            body.get("confidence"), body.get("recommendation") or "",
            _date(body.get("estimated_failure_date")), body.get("model_source") or "")

    def describe(self, p: dict) -> str:
        return f"prediction of {p['equipment_id']} at {_when(p['ts'])}"


@dataclass(frozen=True)
class StateDirKinds:
    """Every kind, in the order they are forwarded (alarms first)."""

    alarms: AlarmJournalKind
    kpis: KpiKind
    energy: EnergyKind
    predictions: PredictionKind

    @classmethod
    def of(cls, state_dir: Path) -> StateDirKinds:
        return cls(AlarmJournalKind(state_dir), KpiKind(state_dir), EnergyKind(state_dir),
                   PredictionKind(state_dir))

    def all(self) -> list[Any]:
        return [self.alarms, self.kpis, self.energy, self.predictions]

    async def close(self) -> None:
        for kind in self.all():
            await kind.close()
