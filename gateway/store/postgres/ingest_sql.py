"""The statement that moves one staged chunk into process_data (and its derived tables).

One statement, one transaction with the COPY into staging: rows new to process_data are
inserted (replays after a crash hit the key and are skipped), and only those rows update
the latest-value table and, on plain PostgreSQL, the hourly/daily rollups, so a replay can
never count a value twice. On TimescaleDB the rollups are continuous aggregates.
"""

from __future__ import annotations

from gateway.store.postgres.policy import Backend

TAG_MAP_DDL = """CREATE TEMP TABLE IF NOT EXISTS tag_map (
    tag_index integer PRIMARY KEY,
    tag_id    varchar(50) NOT NULL
)"""

_INSERT = """
ins AS (
    INSERT INTO process_data (time, gateway_id, tag_id, value, quality, reason)
    SELECT s.time, $1, m.tag_id,
           CASE WHEN s.value IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE s.value END,
           s.quality, s.reason
    FROM process_data_staging s JOIN tag_map m USING (tag_index)
    ON CONFLICT DO NOTHING
    RETURNING time, tag_id, value, quality, reason
),
latest AS (
    INSERT INTO process_data_latest AS l (tag_id, gateway_id, time, value, quality, reason)
    SELECT DISTINCT ON (tag_id) tag_id, $1, time, value, quality, reason
    FROM ins ORDER BY tag_id, time DESC
    ON CONFLICT (tag_id, gateway_id) DO UPDATE SET time = EXCLUDED.time,
        value = EXCLUDED.value, quality = EXCLUDED.quality, reason = EXCLUDED.reason
    WHERE EXCLUDED.time > l.time
)"""


def _rollup(table: str, unit: str) -> str:
    # Partial aggregates of the new rows merged into the stored ones; avg is a generated
    # column (value_sum / samples). Only good values are aggregated, as in the TimescaleDB
    # continuous aggregates.
    return f"""
{table} AS (
    INSERT INTO process_data_{table} AS r (bucket, gateway_id, tag_id, value_min, value_max,
                                          value_sum, value_last, last_time, samples)
    SELECT date_trunc('{unit}', time, 'UTC'), $1, tag_id, min(value), max(value), sum(value),
           (array_agg(value ORDER BY time DESC))[1], max(time), count(*)
    FROM ins WHERE quality = 192 AND value IS NOT NULL
    GROUP BY 1, tag_id
    ON CONFLICT (tag_id, bucket, gateway_id) DO UPDATE SET
        value_min = least(r.value_min, EXCLUDED.value_min),
        value_max = greatest(r.value_max, EXCLUDED.value_max),
        value_sum = r.value_sum + EXCLUDED.value_sum,
        samples = r.samples + EXCLUDED.samples,
        value_last = CASE WHEN EXCLUDED.last_time >= r.last_time
                          THEN EXCLUDED.value_last ELSE r.value_last END,
        last_time = greatest(r.last_time, EXCLUDED.last_time)
)"""


def ingest_statement(backend: Backend) -> str:
    """SQL taking $1 = gateway_id; returns the number of rows new to process_data."""
    parts = [_INSERT]
    if backend is Backend.PLAIN:
        parts += [_rollup("hourly", "hour"), _rollup("daily", "day")]
    return "WITH " + ",".join(parts) + "\nSELECT count(*) FROM ins"
