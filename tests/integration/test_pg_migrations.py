"""Versioned migrations: applied in order from empty, idempotent, safe to run concurrently."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from gateway.store.postgres.connection import connect
from gateway.store.postgres.migrate import (
    MigrationError,
    load_migrations,
    migrate,
    sql_for_backend,
    timescale_available,
)
from gateway.store.postgres.policy import Backend, RetentionPolicy
from tests.support.pg import *  # noqa: F403  (fixtures)
from tests.support.pg import TEST_DATABASE_URL

SEED_TABLES = {"process_units", "process_tags", "equipment", "process_data", "kpis", "alerts",
               "alert_severity", "inventory", "tanks", "maintenance_predictions",
               "energy_analysis", "users", "gateways", "alarm_journal"}


def test_every_version_exists_for_both_backends():
    plain = load_migrations(Backend.PLAIN)
    timescale = load_migrations(Backend.TIMESCALE)
    assert [m.version for m in plain] == [m.version for m in timescale] == list(range(1, len(plain) + 1))
    assert [m.name for m in plain] == [m.name for m in timescale]


def test_a_section_is_kept_only_for_its_backend():
    text = "A;\n-- @plain\nP;\n-- @timescale\nT;\n-- @end\nB;\n"
    assert sql_for_backend(text, Backend.PLAIN) == "A;\nP;\nB;\n"
    assert sql_for_backend(text, Backend.TIMESCALE) == "A;\nT;\nB;\n"


def test_shipped_sections_keep_each_backend_to_its_own_sql():
    plain = {m.name: m.sql for m in load_migrations(Backend.PLAIN)}
    timescale = {m.name: m.sql for m in load_migrations(Backend.TIMESCALE)}
    assert "PARTITION BY RANGE" in plain["process_data"] and "timescaledb" not in plain["process_data"]
    assert "create_hypertable" in timescale["process_data"] and "PARTITION" not in timescale["process_data"]
    assert "@" not in plain["process_data"] + timescale["process_data"]
    assert "ALTER COLUMN tag_id" in plain["fast_ingest"] and "ALTER COLUMN tag_id" not in timescale["fast_ingest"]


@pytest.mark.parametrize("text, problem", [("-- @plain\nP;\n", "not closed"),
                                           ("A;\n-- @end\n", "without a section"),
                                           ("-- @oracle\nO;\n-- @end\n", "unknown section")])
def test_malformed_sections_are_refused(text, problem):
    with pytest.raises(MigrationError, match=problem):
        sql_for_backend(text, Backend.PLAIN)


def test_a_separate_backend_file_is_refused(tmp_path):
    (tmp_path / "0001_catalog.sql").write_text("SELECT 1;\n")
    (tmp_path / "0002_process_data.plain.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match="sections"):
        load_migrations(Backend.PLAIN, tmp_path)


async def test_migrate_from_empty_applies_every_version_in_order(pg_conn):
    applied = await migrate(pg_conn, timescale=False)
    assert applied == [m.version for m in load_migrations(Backend.PLAIN)]
    recorded = await pg_conn.fetch("SELECT version, name, backend, applied_at FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in recorded] == applied
    assert all(r["backend"] == "plain" and r["applied_at"] is not None for r in recorded)
    tables = {r[0] for r in await pg_conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}
    assert SEED_TABLES <= tables


async def test_migrate_again_applies_nothing(pg_migrated):
    assert await migrate(pg_migrated, timescale=False) == []


async def test_concurrent_migrations_queue_on_the_advisory_lock(pg_schema):
    conns = [await connect(TEST_DATABASE_URL, schema=pg_schema) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c, timescale=False) for c in conns))
    finally:
        for c in conns:
            await c.close()
    applied = sorted(v for r in results for v in r)
    assert applied == [m.version for m in load_migrations(Backend.PLAIN)]


async def test_every_timestamp_column_has_a_time_zone(pg_migrated):
    naive = await pg_migrated.fetch(
        """SELECT table_name, column_name FROM information_schema.columns
           WHERE table_schema = current_schema() AND data_type = 'timestamp without time zone'""")
    assert naive == []


async def test_quality_outside_the_seed_scale_is_rejected(pg_migrated):
    await pg_migrated.execute("INSERT INTO gateways (gateway_id) VALUES ('gw')")
    await pg_migrated.execute("""INSERT INTO process_tags (gateway_id, tag_id, tag_name, min_val, max_val)
                                 VALUES ('gw', 'TI-1', 'T', 0, 1)""")
    await pg_migrated.execute("SELECT process_data_ensure_partitions(now(), now())")
    with pytest.raises(asyncpg.CheckViolationError):
        await pg_migrated.execute("""INSERT INTO process_data (time, gateway_id, tag_id, value, quality)
                                     VALUES (now(), 'gw', 'TI-1', 1, 100)""")


async def test_alert_severity_must_be_a_seed_word(pg_migrated):
    await pg_migrated.execute("INSERT INTO gateways (gateway_id) VALUES ('gw')")
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await pg_migrated.execute("""INSERT INTO alerts (time, gateway_id, alarm_type, severity, message, state)
                                     VALUES (now(), 'gw', 'HI', 'SEVERE', 'm', 'ACTIVE')""")


async def test_negative_inventory_quantity_is_rejected(pg_migrated):
    await pg_migrated.execute("INSERT INTO gateways (gateway_id) VALUES ('gw')")
    with pytest.raises(asyncpg.CheckViolationError):
        await pg_migrated.execute("INSERT INTO inventory (gateway_id, sku, item, quantity, unit) "
                                  "VALUES ('gw', 'X', 'x', -1, 'kg')")


async def test_users_accept_only_argon2_hashes(pg_migrated):
    with pytest.raises(asyncpg.CheckViolationError):
        await pg_migrated.execute("INSERT INTO users (username, password_hash) VALUES ('admin', 'admin123')")
    await pg_migrated.execute("INSERT INTO users (username, password_hash) VALUES ('ana', $1)",
                              "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g")


async def test_retention_policy_is_recorded_and_updated_on_rerun(pg_migrated):
    policy = RetentionPolicy(raw_retention=timedelta(days=90))
    await migrate(pg_migrated, timescale=False, retention=policy)
    row = await pg_migrated.fetchrow("SELECT backend, raw_retention FROM storage_settings")
    assert (row["backend"], row["raw_retention"].days) == ("plain", 90)


async def test_a_plain_schema_refuses_to_switch_to_timescale(pg_migrated):
    with pytest.raises(MigrationError, match="back-end"):
        await migrate(pg_migrated, timescale=True)


async def test_requiring_timescale_without_the_extension_fails_clearly(pg_conn):
    if await timescale_available(pg_conn):
        pytest.skip("timescaledb is available on this server")
    with pytest.raises(MigrationError, match="timescaledb"):
        await migrate(pg_conn, timescale=True)
