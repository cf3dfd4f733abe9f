"""`refineryiq run --simulate` forwarding to PostgreSQL through a network that fails, and a
daemon that is SIGKILLed mid-drain: every scan in the embedded store reaches process_data
exactly once, in order per tag, and /health tells the story while it happens."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from tests.support import faults
from tests.support.daemon import DaemonProcess
from tests.support.pg import temporary_schema
from tests.support.tcp_proxy import TcpProxy

GATEWAY_ID = "edge-01"  # config/gateway.toml


@pytest.fixture
async def schema():
    async with temporary_schema("e2e") as name:
        yield name


def database_env(proxy_port: int, schema: str) -> dict[str, str]:
    # Small chunks: a few seconds of backlog take many transactions to drain.
    return {**faults.database_env(proxy_port, schema), "REFINERYIQ_DATABASE__BATCH_ROWS": "60"}


def section(daemon: DaemonProcess) -> dict:
    return daemon.get("/health")[1]


async def wait(daemon: DaemonProcess, predicate, what: str, timeout: float = 30.0):
    return await asyncio.to_thread(daemon.wait_for, predicate, timeout, what)


def degraded_with_backlog(daemon: DaemonProcess) -> dict | None:
    health = section(daemon)
    db = health["database"]
    if (health["status"] == "degraded" and db["state"] == "disconnected"
            and db["backlog_values"] > 0 and any(r.startswith("database") for r in health["reasons"])):
        return health
    return None


def caught_up(daemon: DaemonProcess) -> dict | None:
    health = section(daemon)
    db = health["database"]
    if health["status"] == "healthy" and db["state"] == "connected" and db["lag_s"] < 5:
        return health
    return None


async def stored_rows(state_dir: Path) -> list[tuple[str, int, float | None, int]]:
    """(tag_id, time µs, value, quality) of every value in the embedded store, in batch order."""
    contents = await faults.read_store(state_dir)
    assert contents.backlog_values == 0, "the daemon stopped with values not forwarded"
    return faults.value_rows(contents)


async def test_outage_and_sigkill_lose_nothing_duplicate_nothing_and_keep_order(tmp_path, schema):
    proxy = await TcpProxy("127.0.0.1", faults.database_port()).start()
    env = database_env(proxy.port, schema)
    state_dir = tmp_path / "state"
    daemon = DaemonProcess(state_dir, env=env).start()
    try:
        await asyncio.to_thread(daemon.wait_healthy, 90)
        await wait(daemon, lambda: section(daemon)["database"]["rows_written"] > 0, "first rows")

        # Outage under load: degraded with a growing backlog, healthy again after restore.
        proxy.cut()
        await wait(daemon, lambda: degraded_with_backlog(daemon), "degraded during the outage")
        await asyncio.sleep(3)
        during = section(daemon)["database"]["backlog_values"]
        assert during > 0
        proxy.restore()
        after = await wait(daemon, lambda: caught_up(daemon), "healthy after the outage", 60)
        assert after["database"]["connects"] >= 2

        # SIGKILL while a backlog is being drained, then restart on the same state dir.
        proxy.cut()
        await wait(daemon, lambda: degraded_with_backlog(daemon), "second outage")
        await asyncio.sleep(3)
        written = section(daemon)["database"]["rows_written"]
        proxy.restore()
        await wait(daemon, lambda: section(daemon)["database"]["rows_written"] > written,
                   "draining after the second outage")
        daemon.kill()

        daemon = DaemonProcess(state_dir, env=env).start()
        await asyncio.to_thread(daemon.wait_healthy, 90)
        await wait(daemon, lambda: caught_up(daemon), "caught up after the restart", 60)
        await asyncio.to_thread(daemon.stop, signal.SIGTERM, 15)
    finally:
        daemon.kill()
        await proxy.close()

    # Every value in the embedded store is in process_data once: nothing lost, nothing twice.
    stored = await stored_rows(state_dir)
    in_database = await faults.database_rows(schema, GATEWAY_ID)
    assert len(stored) > 0
    assert sorted(stored, key=repr) == sorted(in_database, key=repr)
    # Order per tag: the store's scan order is the database's time order.
    assert faults.per_tag_times(stored) == faults.per_tag_times(in_database)
