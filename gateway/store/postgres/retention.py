"""Retention policy SQL for both back-ends, and the periodic maintenance call.

TimescaleDB: compression after ``raw_hot``, raw chunks dropped after ``raw_retention``,
continuous-aggregate refresh jobs, rollups/kpis/energy dropped after ``rollup_retention``.
Plain PostgreSQL: the policy is stored in ``storage_settings`` and enforced by
``process_data_maintain()`` (daily partitions ahead, old partitions and rollups dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from gateway.store.postgres.policy import Backend, RetentionPolicy

# How far back a continuous aggregate refresh looks for late data (store-and-forward can
# deliver values days late after an outage); TimescaleDB only re-materialises invalidated
# buckets inside this window, so a long window is cheap.
_HOURLY_REFRESH = {"end_offset": timedelta(hours=1), "schedule_interval": timedelta(minutes=30)}
_DAILY_REFRESH = {"end_offset": timedelta(days=1), "schedule_interval": timedelta(hours=1)}


@dataclass(frozen=True)
class MaintenanceReport:
    """What one maintenance pass did (plain PostgreSQL; zeros on TimescaleDB)."""

    partitions_created: int
    partitions_dropped: int
    rollup_rows_deleted: int


async def store_policy(conn: asyncpg.Connection, backend: Backend, policy: RetentionPolicy) -> None:
    """Record the back-end and the policy in storage_settings (read by maintenance)."""
    await conn.execute(
        """INSERT INTO storage_settings (singleton, backend, raw_hot, raw_retention,
                                         rollup_retention, partitions_ahead, updated_at)
           VALUES (true, $1, $2, $3, $4, $5, now())
           ON CONFLICT (singleton) DO UPDATE SET
               backend = EXCLUDED.backend, raw_hot = EXCLUDED.raw_hot,
               raw_retention = EXCLUDED.raw_retention,
               rollup_retention = EXCLUDED.rollup_retention,
               partitions_ahead = EXCLUDED.partitions_ahead, updated_at = now()""",
        backend.value, policy.raw_hot, policy.raw_retention, policy.rollup_retention,
        policy.partitions_ahead)


async def apply_timescale_policies(conn: asyncpg.Connection, policy: RetentionPolicy) -> None:
    """(Re)create the TimescaleDB jobs so they match ``policy`` (removed first: a changed
    interval must replace the old job, and ``if_not_exists`` alone would keep it)."""
    refresh_start = policy.raw_hot
    statements: list[tuple[str, tuple]] = [
        ("SELECT remove_compression_policy('process_data', if_exists => true)", ()),
        ("SELECT add_compression_policy('process_data', compress_after => $1::interval,"
         " if_not_exists => true)", (policy.raw_hot,)),
    ]
    retained = {
        "process_data": policy.raw_retention,
        "process_data_hourly": policy.rollup_retention,
        "process_data_daily": policy.rollup_retention,
        "kpis": policy.rollup_retention,
        "energy_analysis": policy.rollup_retention,
    }
    for relation, drop_after in retained.items():
        statements.append((f"SELECT remove_retention_policy('{relation}', if_exists => true)", ()))
        statements.append((f"SELECT add_retention_policy('{relation}', drop_after => $1::interval,"
                           " if_not_exists => true)", (drop_after,)))
    for view, refresh in (("process_data_hourly", _HOURLY_REFRESH),
                          ("process_data_daily", _DAILY_REFRESH)):
        statements.append((f"SELECT remove_continuous_aggregate_policy('{view}', if_exists => true)", ()))
        statements.append((
            f"SELECT add_continuous_aggregate_policy('{view}', start_offset => $1::interval,"
            " end_offset => $2::interval, schedule_interval => $3::interval,"
            " if_not_exists => true)",
            (max(refresh_start, 2 * refresh["end_offset"]), refresh["end_offset"],
             refresh["schedule_interval"])))
    for sql, args in statements:
        await conn.execute(sql, *args)


async def apply_policy(conn: asyncpg.Connection, backend: Backend, policy: RetentionPolicy) -> None:
    """Store the policy and, on TimescaleDB, make the background jobs match it."""
    async with conn.transaction():
        await store_policy(conn, backend, policy)
        if backend is Backend.TIMESCALE:
            await apply_timescale_policies(conn, policy)


async def maintain(conn: asyncpg.Connection, now: datetime | None = None) -> MaintenanceReport:
    """One maintenance pass as of ``now`` (default: the database's clock)."""
    if now is None:
        row = await conn.fetchrow("SELECT * FROM process_data_maintain()")
    else:
        row = await conn.fetchrow("SELECT * FROM process_data_maintain($1)", now)
    return MaintenanceReport(int(row["partitions_created"]), int(row["partitions_dropped"]),
                             int(row["rollup_rows_deleted"]))


async def ensure_partitions(conn: asyncpg.Connection, start: datetime, end: datetime) -> int:
    """Plain PostgreSQL: create the daily partitions covering [start, end]."""
    return int(await conn.fetchval("SELECT process_data_ensure_partitions($1, $2)", start, end))
