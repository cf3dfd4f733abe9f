"""`refineryiq migrate` against the real PostgreSQL: creates the schema, then changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import asyncpg
import pytest

from gateway.store.postgres.connection import connect
from gateway.store.postgres.migrate import migrate
from plant.load import load_plant
from tests.support.daemon import ROOT
from tests.support.pg import TEST_DATABASE_URL, temporary_schema


def _migrate(schema: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "REFINERYIQ_DATABASE__URL": TEST_DATABASE_URL,
           "REFINERYIQ_DATABASE__SCHEMA": schema, "REFINERYIQ_GATEWAY_ID": "cardon-01",
           "REFINERYIQ_SITE": "cardon"}
    return subprocess.run([sys.executable, "-m", "refineryiq.cli", "migrate", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
async def schema():
    async with temporary_schema("t_migrate") as name:
        yield name


async def test_migrate_creates_the_schema_and_loads_the_catalog_then_is_idempotent(schema):
    first = _migrate(schema)
    assert first.returncode == 0, first.stderr
    assert "migrations applied: [" in first.stdout
    second = _migrate(schema)
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout
    conn = await asyncpg.connect(TEST_DATABASE_URL)
    try:
        tags = await conn.fetchval(f'SELECT count(*) FROM "{schema}".process_tags '
                                   "WHERE gateway_id = 'cardon-01'")
        units = await conn.fetch(f'SELECT unit_id FROM "{schema}".process_units ORDER BY unit_id')
        gateways = await conn.fetch(f'SELECT gateway_id, site FROM "{schema}".gateways')
    finally:
        await conn.close()
    assert [tuple(r) for r in gateways] == [("cardon-01", "cardon")]
    assert tags == len(load_plant(ROOT / "config" / "plant.toml").tags)
    assert [r["unit_id"] for r in units] == ["ALK-400", "CDU-101", "FCC-201", "HT-305"]


def test_migrate_without_a_database_url_exits_2():
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFINERYIQ_DATABASE")}
    out = subprocess.run([sys.executable, "-m", "refineryiq.cli", "migrate"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "database.url" in out.stderr


async def test_catalog_owner_chooses_whose_rows_a_shared_older_schema_holds(schema):
    conn = await connect(TEST_DATABASE_URL, schema=schema)
    try:
        await migrate(conn, timescale=False, upto=6)
        await conn.execute("INSERT INTO gateways (gateway_id, site) VALUES ('gw-a', 'cardon'), ('gw-b', 'amuay')")
        await conn.execute("INSERT INTO process_units (unit_id, name, type) VALUES ('OLD-1', 'Old', 'CDU')")
        refused = _migrate(schema)
        assert refused.returncode == 1
        assert "--catalog-owner" in refused.stderr
        done = _migrate(schema, "--catalog-owner", "gw-a")
        assert done.returncode == 0, done.stderr
        owners = [r[0] for r in await conn.fetch(
            "SELECT gateway_id FROM process_units WHERE unit_id = 'OLD-1' ORDER BY 1")]
    finally:
        await conn.close()
    assert owners == ["gw-a", "gw-b"]
