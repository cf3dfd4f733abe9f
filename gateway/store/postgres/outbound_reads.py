"""Reading one gateway's forwarded results back from the historian, in the shape the gateway
keeps them (``gateway.services.analytics.results`` rows, :class:`AlarmTransition`), so the
daily report is built the same way from either source.

Only what the historian holds comes back: the KPI columns of ``kpis`` (fractions turned back
into percentages; the plant-wide row, design throughput share and good-data share are not
forwarded and read as missing), completed energy hours, and alarm transitions forwarded with
their sequence number (rows written before migration 0008 have none and are not read).
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from analytics.alarm_types import AlarmKind, AlarmState, AlarmTransition, Severity
from gateway.store.postgres.result_columns import (
    ENERGY_COLUMNS,
    KPI_COLUMNS,
    historian_names,
    to_gateway,
)


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


async def kpi_rows(conn: asyncpg.Connection, gateway_id: str, start: float,
                   end: float) -> list[dict]:
    """The gateway's KPI rows with ``start <= time < end``, oldest first."""
    rows = await conn.fetch(
        f"""SELECT unit_id, time, {', '.join(historian_names(KPI_COLUMNS))}
            FROM kpis WHERE gateway_id = $1 AND time >= $2 AND time < $3
            ORDER BY time, unit_id""", gateway_id, _dt(start), _dt(end))
    return [{"unit_id": r["unit_id"], "ts": r["time"].timestamp(), **to_gateway(KPI_COLUMNS, r)}
            for r in rows]


async def energy_rows(conn: asyncpg.Connection, gateway_id: str, start: float,
                      end: float) -> list[dict]:
    """The gateway's completed unit-hours starting in ``[start, end)``, oldest first."""
    rows = await conn.fetch(
        f"""SELECT unit_id, time, {', '.join(historian_names(ENERGY_COLUMNS))}
            FROM energy_analysis WHERE gateway_id = $1 AND time >= $2 AND time < $3
            ORDER BY time, unit_id""", gateway_id, _dt(start), _dt(end))
    out = []
    for r in rows:
        hour_start = r["time"].timestamp()
        out.append({"unit_id": r["unit_id"], "hour_start": hour_start,
                    "hour_end": hour_start + 3600.0, "complete": True,
                    **to_gateway(ENERGY_COLUMNS, r)})
    return out


_JOURNAL = """SELECT j.seq, j.time, a.alarm_id, j.alarm_key, j.tag_id, j.kind, j.from_state,
                     j.to_state, j.severity, j.value, a.threshold, j.actor, j.note, j.automatic,
                     a.unit_id, a.message
              FROM alarm_journal j LEFT JOIN alerts a ON a.id = j.alert_id"""


async def alarm_transitions(conn: asyncpg.Connection, gateway_id: str, start: float,
                            end: float) -> list[AlarmTransition]:
    """What the alarm KPIs of ``[start, end)`` need, like ``AlarmJournal.kpi_window``: the
    gateway's transitions in the window, plus, for alarms standing at ``start``, their last
    transition before it and the activation that began it. Ordered by ``seq``."""
    active = [AlarmState.UNACK.value, AlarmState.ACKED.value]
    rows = await conn.fetch(
        f"""WITH last_before AS (
                SELECT DISTINCT ON (alarm_key) id, seq, alarm_key, to_state FROM alarm_journal
                WHERE gateway_id = $1 AND seq IS NOT NULL AND time < $2
                ORDER BY alarm_key, seq DESC),
            standing AS (SELECT * FROM last_before WHERE to_state = ANY($4::text[])),
            activation AS (
                SELECT (SELECT x.id FROM alarm_journal x
                        WHERE x.gateway_id = $1 AND x.alarm_key = s.alarm_key AND x.seq <= s.seq
                          AND x.to_state = $5 AND NOT x.from_state = ANY($4::text[])
                        ORDER BY x.seq DESC LIMIT 1) AS id
                FROM standing s)
            {_JOURNAL}
            WHERE j.gateway_id = $1 AND j.seq IS NOT NULL AND (
                (j.time >= $2 AND j.time < $3)
                OR j.id IN (SELECT id FROM standing) OR j.id IN (SELECT id FROM activation))
            ORDER BY j.seq""",
        gateway_id, _dt(start), _dt(end), active, AlarmState.UNACK.value)
    return [_transition(r) for r in rows]


def _transition(r: asyncpg.Record) -> AlarmTransition:
    key = r["alarm_key"] or ""
    source = key.rsplit("/", 1)[0] if "/" in key else (r["tag_id"] or "")
    kind = AlarmKind(r["kind"])
    return AlarmTransition(
        seq=r["seq"], alarm_id=r["alarm_id"] or "", key=key, tag_id=r["tag_id"] or source,
        kind=kind, from_state=AlarmState(r["from_state"]), to_state=AlarmState(r["to_state"]),
        severity=Severity(r["severity"]), value=r["value"], limit=r["threshold"],
        time=r["time"].timestamp(), user=r["actor"] or None, comment=r["note"] or None,
        automatic=r["automatic"], unit_id=r["unit_id"],
        device_id=source if kind == AlarmKind.COMM_LOSS else None, message=r["message"] or "")
