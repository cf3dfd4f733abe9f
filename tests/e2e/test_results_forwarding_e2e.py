"""`refineryiq run --simulate` with a historian: the daemon forwards its own KPI rows (and the
other results kinds it is wired for) into PostgreSQL with its gateway id, and /health shows it."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.support import faults
from tests.support.daemon import DaemonProcess
from tests.support.pg import TEST_DATABASE_URL, temporary_schema

GATEWAY_ID = "edge-01"  # config/gateway.toml
KINDS = {"alarm_journal", "kpis", "energy", "maintenance_predictions"}


@pytest.fixture
async def schema():
    async with temporary_schema("e2e_results") as name:
        yield name


def forwarded(daemon: DaemonProcess) -> dict | None:
    results = daemon.get("/health")[1]["database"].get("results_forwarded")
    if results and results.get("kpis", {}).get("rows_forwarded", 0) > 0:
        return results
    return None


async def test_daemon_forwards_its_kpis_to_the_historian(tmp_path, schema):
    env = {**faults.database_env(faults.database_port(), schema),
           "REFINERYIQ_ANALYTICS__KPI_INTERVAL_S": "1",
           "REFINERYIQ_ANALYTICS__FIRST_RUN_DELAY_S": "0"}
    daemon = DaemonProcess(tmp_path / "state", env=env).start()
    try:
        await asyncio.to_thread(daemon.wait_healthy, 90)
        results = await asyncio.to_thread(daemon.wait_for, lambda: forwarded(daemon), 60,
                                          "KPI rows forwarded")
        assert KINDS <= set(results)
        assert all(kind["rows_refused"] == 0 for kind in results.values()), results
    finally:
        daemon.stop()
    conn = await asyncpg.connect(TEST_DATABASE_URL)
    try:
        rows = await conn.fetch(f'SELECT gateway_id, unit_id FROM "{schema}".kpis')
    finally:
        await conn.close()
    assert rows, "no KPI row in the historian"
    assert {r["gateway_id"] for r in rows} == {GATEWAY_ID}
    assert len({r["unit_id"] for r in rows}) > 1
