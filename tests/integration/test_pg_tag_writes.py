"""The write journal forwarded to the historian's ``tag_writes`` table (migration 0006), against
the real PostgreSQL: finished rows only, with the gateway's id and site, each exactly once
across re-sends, reconnects and a new state directory."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import numpy as np
import pytest

from gateway.runtime.supervisor import Supervisor
from gateway.services.accounts.users import Role
from gateway.services.historian import HistorianService
from gateway.services.writes.journal import WRITES_FILE, WriteJournal
from gateway.services.writes.records import Outcome, Refusal, WriteRequest
from gateway.settings import DatabaseSettings
from gateway.store.postgres.catalog_sync import register_gateway
from gateway.store.postgres.migrate import load_migrations
from gateway.store.postgres.policy import Backend
from gateway.store.postgres.tag_writes import forward_tag_writes
from tests.support.pg import *  # noqa: F403  (fixtures)
from tests.support.pg import ramp_scans
from tests.support.tcp_proxy import TcpProxy

GATEWAY, SITE = "edge-writes", "paraguana"


def request(value: float, tag_id: str = "TIC-101.SP") -> WriteRequest:
    return WriteRequest(tag_id=tag_id, value=value, user="sofia", role=Role.SUPERVISOR,
                        origin="http", client="10.0.0.7", reason="raise outlet temperature")


async def journal_at(path) -> WriteJournal:
    journal = WriteJournal(path / WRITES_FILE, retention_s=86400)
    await journal.open()
    return journal


async def some_writes(journal: WriteJournal) -> list:
    now = time.time()
    confirmed = await journal.request(request(352.0), 350.0, 192, now)
    confirmed = await journal.finish(confirmed.id, Outcome.CONFIRMED, "read back 352 °C", now + 0.01,
                                     device_id="plc-cdu-fcc", read_back=352.0,
                                     read_back_quality=192)
    rejected = await journal.reject(request(400.0), Refusal.OUT_OF_RANGE, "outside", 352.0, 192,
                                    now + 0.02)
    pending = await journal.request(request(353.0), 352.0, 192, now + 0.03)
    return [confirmed, rejected, pending]


async def rows(conn, where: str = "") -> list:
    return await conn.fetch(f"SELECT * FROM tag_writes {where} ORDER BY journal_id, write_id")


def test_migration_0006_exists_for_both_backends():
    for backend in Backend:
        names = {m.version: m.name for m in load_migrations(backend)}
        assert names[6] == "tag_writes"


async def test_finished_writes_are_forwarded_with_the_gateway_and_site(pg_migrated, tmp_path):
    await register_gateway(pg_migrated, GATEWAY, SITE)
    journal = await journal_at(tmp_path)
    try:
        confirmed, rejected, pending = await some_writes(journal)
        assert await forward_tag_writes(pg_migrated, journal, GATEWAY, SITE) == 2
        got = await rows(pg_migrated)
        assert [(r["write_id"], r["outcome"], r["refusal"]) for r in got] == [
            (confirmed.id, "confirmed", None), (rejected.id, "rejected", "OUT_OF_RANGE")]
        first = got[0]
        assert (first["gateway_id"], first["site"], first["journal_id"]) == (
            GATEWAY, SITE, journal.journal_id)
        assert (first["user_name"], first["role"], first["origin"], first["client"]) == (
            "sofia", "supervisor", "http", "10.0.0.7")
        assert (first["old_value"], first["requested_value"], first["read_back_value"]) == (
            350.0, 352.0, 352.0)
        assert first["reason"] == "raise outlet temperature"
        assert first["requested_at"].timestamp() == pytest.approx(confirmed.requested_at, abs=1e-5)
        assert await journal.unforwarded(10) == []  # the pending one waits for its outcome
        await journal.finish(pending.id, Outcome.UNCONFIRMED, "timed out", time.time())
        assert await forward_tag_writes(pg_migrated, journal, GATEWAY, SITE) == 1
        assert len(await rows(pg_migrated)) == 3
    finally:
        await journal.close()


async def test_rows_sent_again_after_a_crash_are_written_once(pg_migrated, tmp_path):
    await register_gateway(pg_migrated, GATEWAY, SITE)
    journal = await journal_at(tmp_path)
    try:
        await some_writes(journal)
        await forward_tag_writes(pg_migrated, journal, GATEWAY, SITE)
    finally:
        await journal.close()
    # The commit reached the database but the journal never noted it (a crash in between).
    with sqlite3.connect(tmp_path / WRITES_FILE) as conn:
        conn.execute("UPDATE writes SET forwarded = 0")
    journal = await journal_at(tmp_path)
    try:
        assert len(await journal.unforwarded(10)) == 2
        await forward_tag_writes(pg_migrated, journal, GATEWAY, SITE)
        assert len(await rows(pg_migrated)) == 2
        assert await journal.unforwarded(10) == []
    finally:
        await journal.close()


async def test_a_new_state_directory_does_not_collide_with_the_old_one(pg_migrated, tmp_path):
    await register_gateway(pg_migrated, GATEWAY, SITE)
    for directory in (tmp_path / "old", tmp_path / "new"):
        directory.mkdir()
        journal = await journal_at(directory)
        try:
            await some_writes(journal)  # row ids start at 1 in both
            await forward_tag_writes(pg_migrated, journal, GATEWAY, SITE)
        finally:
            await journal.close()
    got = await rows(pg_migrated)
    assert len(got) == 4 and len({r["journal_id"] for r in got}) == 2


async def test_the_historian_forwards_the_journal_across_an_outage(store, catalog, pg_schema,
                                                                  pg_conn, tmp_path):
    proxy = await TcpProxy("127.0.0.1", 5432).start()
    journal = await journal_at(tmp_path)
    for b in ramp_scans(np.arange(3, dtype=np.int32), 1_767_225_600.0, 2):
        await store.append(b)
    supervisor = Supervisor()
    settings = DatabaseSettings.model_validate({
        "url": f"postgresql://postgres@127.0.0.1:{proxy.port}/test", "schema": pg_schema,
        "timescale": False, "max_lag_s": 1e9})
    service = HistorianService(settings, store, catalog, GATEWAY, SITE, supervisor,
                               tag_writes=journal)
    await service.start()

    async def forwarded(count: int) -> None:
        while await pg_conn.fetchval(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'tag_writes' "
                "AND table_schema = $1", pg_schema) == 0 or await pg_conn.fetchval(
                "SELECT count(*) FROM tag_writes") < count:
            await asyncio.sleep(0.05)

    try:
        await some_writes(journal)
        await asyncio.wait_for(forwarded(2), 30)
        proxy.cut()
        now = time.time()
        for k in range(3):
            await journal.reject(request(999.0 + k), Refusal.OUT_OF_RANGE, "outside", None, None,
                                 now + k)
        while service.health()["tag_writes_error"] is None:  # it finds the database gone
            await asyncio.sleep(0.05)
        proxy.restore()
        await asyncio.wait_for(forwarded(5), 60)
        assert service.health()["tag_writes_forwarded"] == 5
    finally:
        await supervisor.stop()
        await service.stop()
        await journal.close()
        await proxy.close()
    got = await pg_conn.fetch("SELECT write_id, gateway_id, site FROM tag_writes ORDER BY write_id")
    assert [r["write_id"] for r in got] == [1, 2, 4, 5, 6]  # 3 is still pending in the journal
    assert {(r["gateway_id"], r["site"]) for r in got} == {(GATEWAY, SITE)}
