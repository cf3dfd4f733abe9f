"""The "database" service: supervised writer, /health section and degraded check."""

from __future__ import annotations

import asyncio

import numpy as np

from gateway.runtime.supervisor import Supervisor
from gateway.services.historian import HistorianService
from gateway.settings import DatabaseSettings
from tests.support.pg import *  # noqa: F403  (fixtures)
from tests.support.pg import TEST_DATABASE_URL, ramp_scans
from tests.support.tcp_proxy import TcpProxy

START = 1_767_225_600.0


def historian(settings: dict, store, catalog, supervisor: Supervisor) -> HistorianService:
    return HistorianService(DatabaseSettings.model_validate(settings), store, catalog,
                            "edge-test", "test", supervisor)


async def wait_until(predicate, timeout_s: float = 20.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout_s)


async def test_service_forwards_and_reports_healthy(store, catalog, pg_schema, pg_conn):
    for b in ramp_scans(np.arange(5, dtype=np.int32), START, 3):
        last = await store.append(b)
    supervisor = Supervisor()
    service = historian({"url": TEST_DATABASE_URL, "schema": pg_schema, "timescale": False,
                         "max_lag_s": 1e9}, store, catalog, supervisor)
    await service.start()
    try:
        await wait_until(lambda: store.forwarded_id == last)
        section = service.health()
        check = service.problem
        assert (section["state"], section["rows_written"], section["backlog_values"]) == ("connected", 15, 0)
        assert check() is None
    finally:
        await supervisor.stop()
        await service.stop()
    assert await pg_conn.fetchval("SELECT count(*) FROM process_data") == 15


async def test_service_reports_degraded_with_backlog_while_unreachable(store, catalog, pg_schema):
    proxy = await TcpProxy("127.0.0.1", 5432).start()
    proxy.cut()
    for b in ramp_scans(np.arange(5, dtype=np.int32), START, 2):
        await store.append(b)
    supervisor = Supervisor()
    service = historian({"url": f"postgresql://postgres@127.0.0.1:{proxy.port}/test",
                         "schema": pg_schema}, store, catalog, supervisor)
    await service.start()
    check = service.problem
    try:
        await wait_until(lambda: check() is not None)
        assert "disconnected" in check() and "10 values waiting" in check()
    finally:
        await supervisor.stop()
        await proxy.close()
