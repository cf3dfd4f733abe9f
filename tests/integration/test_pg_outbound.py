"""Forwarding the gateway's own results (alarm journal and alerts, KPIs, energy, predictions)
into the historian, against the real PostgreSQL: identity on every row, store-and-forward
through an outage, exactly once, refused rows skipped, many gateways apart, and the
historian report of one gateway."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from analytics.alarm_types import AlarmKind, AlarmState, AlarmTransition, Severity
from gateway.runtime.supervisor import Supervisor
from gateway.services.alarms.journal import JOURNAL_FILE, AlarmJournal
from gateway.services.analytics.results import ENERGY, FILE_NAME, KPIS, AnalyticsStore
from gateway.services.analytics.run import RunRows
from gateway.services.historian import HistorianService
from gateway.services.reports import PlantDay, plant_zone
from gateway.services.reports.build import build_report
from gateway.services.reports.sources import HistorianSources
from gateway.settings import DatabaseSettings, load_config
from gateway.store.postgres.catalog_sync import sync_catalog
from gateway.store.postgres.connection import connect
from gateway.store.postgres.outbound import KindStats, OutboundForwarder, forward_kind
from gateway.store.postgres.outbound_kinds import MAINTENANCE_FILE, StateDirKinds
from tests.support.pg import *  # noqa: F403  (fixtures)
from tests.support.pg import TEST_DATABASE_URL

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "gateway.toml"
DAY = date(2026, 1, 1)
GW_A, GW_B = "cardon-gw1", "amuay-gw1"
UNREACHABLE_URL = "postgresql://postgres@127.0.0.1:1/test"  # nothing listens on port 1


@pytest.fixture
def day() -> PlantDay:
    return PlantDay.of(DAY, plant_zone(load_config(CONFIG).settings))


def plant_tag(catalog, unit_id: str) -> str:
    return next(t.id for t in catalog.tags if t.unit_id == unit_id and not t.id.startswith("SYN-"))


def transition(seq: int, key_tag: str, from_state: AlarmState, to_state: AlarmState, time: float,
               alarm_id: str, unit_id: str = "CDU-101", kind: AlarmKind = AlarmKind.HI,
               user: str | None = None, automatic: bool = False) -> AlarmTransition:
    source_class = "COMM_LOSS" if kind == AlarmKind.COMM_LOSS else "PROCESS"
    return AlarmTransition(
        seq=seq, alarm_id=alarm_id, key=f"{key_tag}/{source_class}", tag_id=key_tag, kind=kind,
        from_state=from_state, to_state=to_state, severity=Severity.HIGH, value=412.0,
        limit=400.0, time=time, user=user, automatic=automatic, unit_id=unit_id,
        device_id=key_tag if kind == AlarmKind.COMM_LOSS else None,
        message=f"{key_tag} {kind.value}")


async def journal_transitions(state: Path, transitions: list[AlarmTransition]) -> None:
    state.mkdir(parents=True, exist_ok=True)
    journal = AlarmJournal(state / JOURNAL_FILE, retention_s=86_400 * 3650)
    await journal.open()
    try:
        await journal.append(transitions)
    finally:
        await journal.close()


def kpi(unit_id: str, ts: float, oee_pct: float, quality_score: float = 97.0) -> dict:
    row = dict.fromkeys(KPIS.columns)
    row.update(unit_id=unit_id, ts=ts, throughput_bpd=95_000.0, energy_efficiency=91.0,
               quality_score=quality_score, maintenance_score=88.0, availability_pct=98.0,
               performance_pct=92.0, oee_quality_pct=99.0, oee_pct=oee_pct, stability_index=0.9)
    return row


def energy(unit_id: str, hour_start: float, computed_at: float, complete: bool) -> dict:
    row = dict.fromkeys(ENERGY.columns)
    row.update(unit_id=unit_id, hour_start=hour_start, hour_end=hour_start + 3600.0,
               complete=complete, computed_at=computed_at, consumption_kwh=1200.0,
               feed_bbl=4000.0, kwh_per_bbl=0.3, benchmark_kwh_bbl=0.35, target_kwh_bbl=0.32,
               efficiency_score=96.0, status="EXCELLENT", savings_kwh=0.0,
               recommendation="keep", recommendations=[])
    return row


async def save_run(state: Path, kpis: list[dict], energy_rows: list[dict] = ()) -> None:
    store = AnalyticsStore(state / FILE_NAME, retention_s=86_400 * 3650)
    await store.open()
    try:
        await store.save(RunRows(kpis=kpis, energy=list(energy_rows)))
    finally:
        await store.close()


def save_prediction(state: Path, equipment_id: str, ts: float, probability: float) -> None:
    body = {"equipment_id": equipment_id, "failure_probability": probability,
            "prediction": "WARNING", "confidence": 80.0, "recommendation": "inspect seal",
            "estimated_failure_date": "2026-01-20T00:00:00+00:00", "model_source": "pdm-v3"}
    with contextlib.closing(sqlite3.connect(state / MAINTENANCE_FILE)) as conn, conn:
        conn.execute("CREATE TABLE IF NOT EXISTS prediction (equipment_id TEXT PRIMARY KEY, "
                     "ts REAL NOT NULL, body TEXT NOT NULL) WITHOUT ROWID")
        conn.execute("INSERT INTO prediction VALUES (?, ?, ?) ON CONFLICT (equipment_id) DO "
                     "UPDATE SET ts = excluded.ts, body = excluded.body",
                     (equipment_id, ts, json.dumps(body)))


async def forward_all(conn, state: Path, gateway_id: str) -> dict[str, int]:
    kinds = StateDirKinds.of(state)
    try:
        return {k.name: await forward_kind(conn, k, gateway_id) for k in kinds.all()}
    finally:
        await kinds.close()


@pytest.fixture
async def fleet(pg_migrated, catalog):
    """Two gateways with the same plant catalog (same unit, tag and equipment ids)."""
    for gateway_id, site in ((GW_A, "cardon"), (GW_B, "amuay")):
        await sync_catalog(pg_migrated, catalog, gateway_id=gateway_id, site=site)
    return pg_migrated


async def test_each_kind_lands_with_the_gateways_id(fleet, catalog, tmp_path, day):
    tag = plant_tag(catalog, "CDU-101")
    t0 = day.start + 3600.0
    await journal_transitions(tmp_path, [
        transition(1, tag, AlarmState.NORMAL, AlarmState.UNACK, t0, "a-1"),
        transition(2, tag, AlarmState.UNACK, AlarmState.ACKED, t0 + 60, "a-1", user="sofia"),
        transition(3, tag, AlarmState.ACKED, AlarmState.NORMAL, t0 + 120, "a-1"),
        transition(4, "PLC-1", AlarmState.NORMAL, AlarmState.UNACK, t0 + 130, "a-2",
                   kind=AlarmKind.COMM_LOSS, unit_id=None)])
    await save_run(tmp_path, [kpi("CDU-101", t0, 80.0), kpi("FCC-201", t0, 70.0),
                              kpi("PLANT", t0, 75.0)],
                   [energy("CDU-101", day.start, t0, complete=True),
                    energy("CDU-101", t0, t0, complete=False)])
    save_prediction(tmp_path, "PUMP-101", t0, 42.0)

    sent = await forward_all(fleet, tmp_path, GW_A)
    assert sent == {"alarm_journal": 4, "kpis": 2, "energy": 1, "maintenance_predictions": 1}

    journal = await fleet.fetch("SELECT gateway_id, seq, event, tag_id, actor, alert_id "
                                "FROM alarm_journal ORDER BY seq")
    assert [(r["gateway_id"], r["seq"], r["event"]) for r in journal] == [
        (GW_A, 1, "ACTIVATE"), (GW_A, 2, "ACKNOWLEDGE"), (GW_A, 3, "CLEAR"), (GW_A, 4, "ACTIVATE")]
    assert journal[1]["actor"] == "sofia" and journal[3]["tag_id"] is None  # a device, no tag
    alerts = await fleet.fetch("SELECT id, gateway_id, alarm_id, tag_id, alarm_type, state, "
                               "acknowledged, acknowledged_by, cleared_at, time FROM alerts "
                               "ORDER BY alarm_id")
    assert [(a["gateway_id"], a["alarm_id"], a["state"], a["acknowledged"]) for a in alerts] == [
        (GW_A, "a-1", "NORMAL", True), (GW_A, "a-2", "ACTIVE_UNACK", False)]
    assert alerts[0]["acknowledged_by"] == "sofia" and alerts[0]["cleared_at"] is not None
    assert alerts[0]["time"].timestamp() == pytest.approx(t0)  # the activation time stays
    assert alerts[0]["tag_id"] == tag and alerts[1]["alarm_type"] == "COMM_LOSS"
    assert {r["alert_id"] for r in journal[:3]} == {alerts[0]["id"]}

    kpis = await fleet.fetch("SELECT gateway_id, unit_id, oee, availability FROM kpis "
                             "ORDER BY unit_id")
    assert [(r["gateway_id"], r["unit_id"]) for r in kpis] == [(GW_A, "CDU-101"), (GW_A, "FCC-201")]
    assert kpis[0]["oee"] == pytest.approx(0.80) and kpis[0]["availability"] == pytest.approx(0.98)
    energy_rows = await fleet.fetch("SELECT gateway_id, unit_id, time FROM energy_analysis")
    assert [(r["gateway_id"], r["unit_id"], r["time"].timestamp()) for r in energy_rows] == [
        (GW_A, "CDU-101", day.start)]  # the completed hour only
    prediction = await fleet.fetchrow("SELECT * FROM maintenance_predictions")
    assert (prediction["gateway_id"], prediction["equipment_id"], prediction["model_version"]) == (
        GW_A, "PUMP-101", "pdm-v3")
    assert prediction["failure_probability"] == 42.0
    cursors = await fleet.fetch("SELECT kind, rows_forwarded FROM outbound_cursor "
                                "WHERE gateway_id = $1 ORDER BY kind", GW_A)
    assert dict(cursors) == {"alarm_journal": 4, "energy": 1, "kpis": 2,
                             "maintenance_predictions": 1}


async def test_energy_hour_is_forwarded_once_it_is_complete(fleet, tmp_path, day):
    hour = day.start
    await save_run(tmp_path, [], [energy("CDU-101", hour, hour + 1800, complete=False)])
    assert (await forward_all(fleet, tmp_path, GW_A))["energy"] == 0
    await save_run(tmp_path, [], [energy("CDU-101", hour, hour + 3700, complete=True)])
    assert (await forward_all(fleet, tmp_path, GW_A))["energy"] == 1
    assert await fleet.fetchval("SELECT count(*) FROM energy_analysis") == 1


async def test_an_outage_forwards_what_was_produced_meanwhile_exactly_once(fleet, catalog,
                                                                           tmp_path, day):
    tag = plant_tag(catalog, "CDU-101")
    t0 = day.start + 3600.0
    await journal_transitions(tmp_path, [
        transition(1, tag, AlarmState.NORMAL, AlarmState.UNACK, t0, "a-1")])
    await save_run(tmp_path, [kpi("CDU-101", t0, 80.0)])
    down = asyncio.Event()
    schema = await fleet.fetchval("SELECT current_schema()")
    sessions = []

    async def connect_now():
        conn = await connect(UNREACHABLE_URL if down.is_set() else TEST_DATABASE_URL,
                             schema=schema, timeout=5.0)
        sessions.append(conn)
        return conn

    async def ready() -> None:
        return None

    kinds = StateDirKinds.of(tmp_path)
    forwarder = OutboundForwarder(connect_now, kinds.all(), GW_A, "cardon", ready,
                                  interval_s=0.05, retry_max_s=0.1)

    async def until(predicate) -> None:
        while not await predicate():
            await asyncio.sleep(0.05)

    async def counts() -> tuple[int, int]:
        return (await fleet.fetchval("SELECT count(*) FROM alarm_journal"),
                await fleet.fetchval("SELECT count(*) FROM kpis"))

    task = asyncio.create_task(forwarder.run())
    try:
        await asyncio.wait_for(until(lambda: _is(counts, (1, 1))), 30)
        # The database goes away (the forwarder's connection is cut and reconnects fail) ...
        down.set()
        await fleet.execute("SELECT pg_terminate_backend($1)", sessions[-1].get_server_pid())

        async def failing() -> bool:
            return forwarder.stats.last_error is not None
        await asyncio.wait_for(until(failing), 30)
        # ... while the gateway goes on journaling and computing.
        await journal_transitions(tmp_path, [
            transition(2, tag, AlarmState.UNACK, AlarmState.ACKED, t0 + 60, "a-1", user="ana"),
            transition(3, tag, AlarmState.ACKED, AlarmState.NORMAL, t0 + 120, "a-1")])
        await save_run(tmp_path, [kpi("CDU-101", t0 + 300, 81.0), kpi("FCC-201", t0 + 300, 71.0)])
        await save_run(tmp_path, [kpi("CDU-101", t0 + 600, 82.0)])
        down.clear()  # it returns
        await asyncio.wait_for(until(lambda: _is(counts, (3, 4))), 30)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    # A new session (a restart) sends nothing again.
    assert await forward_all(fleet, tmp_path, GW_A) == {
        "alarm_journal": 0, "kpis": 0, "energy": 0, "maintenance_predictions": 0}
    await kinds.close()
    assert await counts() == (3, 4)
    assert [r["seq"] for r in await fleet.fetch("SELECT seq FROM alarm_journal ORDER BY id")] == [
        1, 2, 3]  # in order
    assert await fleet.fetchval("SELECT state FROM alerts") == "NORMAL"


async def _is(counts, expected) -> bool:
    return await counts() == expected


async def test_a_refused_row_is_logged_and_does_not_block_the_rest(fleet, tmp_path, day):
    t0 = day.start + 3600.0
    await save_run(tmp_path, [kpi("CDU-101", t0, 80.0), kpi("FCC-201", t0, 70.0, quality_score=150.0)])
    await save_run(tmp_path, [kpi("CDU-101", t0 + 300, 81.0)])
    kinds = StateDirKinds.of(tmp_path)
    try:
        stats = KindStats()
        assert await forward_kind(fleet, kinds.kpis, GW_A, stats) == 2
        assert await forward_kind(fleet, kinds.kpis, GW_A) == 0  # not retried forever
    finally:
        await kinds.close()
    assert stats.rows_refused == 1 and "KPIs of FCC-201" in stats.last_refusal
    assert "kpis_quality_score_check" in stats.last_refusal  # the database's reason
    got = await fleet.fetch("SELECT unit_id, time FROM kpis ORDER BY time, unit_id")
    assert [r["unit_id"] for r in got] == ["CDU-101", "CDU-101"]
    row = await fleet.fetchrow("SELECT rows_forwarded, rows_refused, position FROM outbound_cursor "
                               "WHERE gateway_id = $1 AND kind = 'kpis'", GW_A)
    assert (row["rows_forwarded"], row["rows_refused"], row["position"]) == (2, 1, t0 + 300)


async def test_two_gateways_with_the_same_unit_ids_stay_apart(fleet, catalog, tmp_path, day):
    tag = plant_tag(catalog, "CDU-101")
    t0 = day.start + 3600.0
    for gateway_id, oee in ((GW_A, 80.0), (GW_B, 60.0)):
        state = tmp_path / gateway_id
        state.mkdir()
        # Same unit, same times, same alarm seq and occurrence id: only the gateway differs.
        await journal_transitions(state, [
            transition(1, tag, AlarmState.NORMAL, AlarmState.UNACK, t0, "a-1")])
        await save_run(state, [kpi("CDU-101", t0, oee)])
        assert await forward_all(fleet, state, gateway_id) == {
            "alarm_journal": 1, "kpis": 1, "energy": 0, "maintenance_predictions": 0}
    kpis = await fleet.fetch("SELECT gateway_id, oee FROM kpis ORDER BY gateway_id")
    assert [(r["gateway_id"], round(r["oee"], 2)) for r in kpis] == [(GW_B, 0.6), (GW_A, 0.8)]
    assert sorted(await fleet.fetch("SELECT gateway_id, alarm_id FROM alerts")) == [
        (GW_B, "a-1"), (GW_A, "a-1")]
    assert await fleet.fetchval("SELECT count(DISTINCT (gateway_id, seq)) FROM alarm_journal") == 2


async def test_historian_report_shows_the_chosen_gateways_kpis_and_alarms(fleet, catalog,
                                                                          tmp_path, day):
    tag = plant_tag(catalog, "CDU-101")
    t0 = day.start + 3600.0
    for gateway_id, oee, alarms in ((GW_A, 80.0, 2), (GW_B, 60.0, 1)):
        state = tmp_path / gateway_id
        state.mkdir()
        await journal_transitions(state, [
            transition(1 + 2 * k, tag, AlarmState.NORMAL, AlarmState.UNACK, t0 + 600 * k,
                       f"a-{k}") for k in range(alarms)])
        await save_run(state, [kpi("CDU-101", t0, oee), kpi("CDU-101", t0 + 300, oee)],
                       [energy("CDU-101", day.start, t0, complete=True)])
        await forward_all(fleet, state, gateway_id)
    schema = await fleet.fetchval("SELECT current_schema()")
    async with HistorianSources(TEST_DATABASE_URL, GW_A, [t.id for t in catalog.tags],
                                schema=schema) as sources:
        inputs = await sources.read_day(day, day.end)
    assert [(k["unit_id"], k["oee_pct"]) for k in inputs.kpis] == [
        ("CDU-101", pytest.approx(80.0)), ("CDU-101", pytest.approx(80.0))]
    assert [t.alarm_id for t in inputs.transitions] == ["a-0", "a-1"]
    assert all(t.tag_id == tag and t.key == f"{tag}/PROCESS" for t in inputs.transitions)
    assert [e["unit_id"] for e in inputs.energy] == ["CDU-101"]
    settings = load_config(CONFIG).settings
    report = build_report(inputs, day, day.end, day.end, catalog, settings.reports.targets,
                          settings.alarms, "Cardon", GW_A, "cardon")
    sections = {s.key: s for s in report.sections}
    alarms = {row[0]: row[1] for row in sections["alarms"].tables[0].rows}
    assert alarms["Annunciated alarms (activations)"] == 2
    oee = {row[0]: row[4] for row in sections["oee"].tables[0].rows}
    assert oee["CDU-101"] == pytest.approx(80.0)
    assert "(historian)" in sections["data_quality"].intro


async def test_alarm_standing_at_the_days_start_is_read_back_with_its_activation(
        fleet, catalog, tmp_path, day):
    tag = plant_tag(catalog, "CDU-101")
    before = day.start - 600.0
    await journal_transitions(tmp_path, [
        transition(1, tag, AlarmState.NORMAL, AlarmState.UNACK, before, "a-1"),
        transition(2, tag, AlarmState.UNACK, AlarmState.ACKED, before + 60, "a-1"),
        transition(3, tag, AlarmState.ACKED, AlarmState.NORMAL, day.start + 60, "a-1")])
    await forward_all(fleet, tmp_path, GW_A)
    schema = await fleet.fetchval("SELECT current_schema()")
    async with HistorianSources(TEST_DATABASE_URL, GW_A, [], schema=schema) as sources:
        inputs = await sources.read_day(day, day.end)
    assert [t.seq for t in inputs.transitions] == [1, 2, 3]
    async with HistorianSources(TEST_DATABASE_URL, GW_B, [], schema=schema) as sources:
        assert (await sources.read_day(day, day.end)).transitions == []


async def test_the_database_service_forwards_the_state_directorys_results(store, catalog,
                                                                          pg_schema, tmp_path,
                                                                          day):
    tag = plant_tag(catalog, "CDU-101")
    t0 = day.start + 3600.0
    state = tmp_path / "state"
    state.mkdir()
    await journal_transitions(state, [
        transition(1, tag, AlarmState.NORMAL, AlarmState.UNACK, t0, "a-1")])
    await save_run(state, [kpi("CDU-101", t0, 80.0)])
    supervisor = Supervisor()
    service = HistorianService(
        DatabaseSettings.model_validate({"url": TEST_DATABASE_URL, "schema": pg_schema,
                                         "timescale": False, "max_lag_s": 1e9}),
        store, catalog, GW_A, "cardon", supervisor, state_dir=state)
    await service.start()
    try:
        async def forwarded() -> None:
            while (service.health()["results_forwarded"] or {}).get("kpis", {}).get(
                    "rows_forwarded") != 1:
                await asyncio.sleep(0.05)
        await asyncio.wait_for(forwarded(), 30)
        section = service.health()["results_forwarded"]
        assert section["alarm_journal"]["rows_forwarded"] == 1
        assert section["kpis"]["position"] == t0
    finally:
        await supervisor.stop()
        await service.stop()
    conn = await connect(TEST_DATABASE_URL, schema=pg_schema)
    try:
        assert await conn.fetchval("SELECT gateway_id FROM kpis") == GW_A
        assert await conn.fetchval("SELECT gateway_id FROM alarm_journal") == GW_A
    finally:
        await conn.close()


async def test_a_replaced_alarm_journal_behind_the_cursor_is_reported(fleet, catalog, tmp_path,
                                                                      day):
    tag = plant_tag(catalog, "CDU-101")
    t0 = day.start + 3600.0
    await journal_transitions(tmp_path / "old", [
        transition(seq, tag, AlarmState.NORMAL, AlarmState.UNACK, t0 + seq, f"a-{seq}")
        for seq in (1, 2, 3)])
    await forward_all(fleet, tmp_path / "old", GW_A)
    # A new state directory: the journal starts at seq 1 again.
    await journal_transitions(tmp_path / "new", [
        transition(1, tag, AlarmState.NORMAL, AlarmState.UNACK, t0 + 100, "b-1")])
    kinds = StateDirKinds.of(tmp_path / "new")
    try:
        stats = KindStats()
        assert await forward_kind(fleet, kinds.alarms, GW_A, stats) == 0
        assert stats.store_behind and stats.position == 3.0
    finally:
        await kinds.close()


async def test_an_alert_active_again_within_its_occurrence_needs_acknowledging_again(
        fleet, catalog, tmp_path, day):
    tag = plant_tag(catalog, "CDU-101")
    t0 = day.start + 3600.0
    await journal_transitions(tmp_path, [
        transition(1, tag, AlarmState.NORMAL, AlarmState.UNACK, t0, "a-1"),
        transition(2, tag, AlarmState.UNACK, AlarmState.RTN_UNACK, t0 + 10, "a-1"),
        transition(3, tag, AlarmState.RTN_UNACK, AlarmState.UNACK, t0 + 20, "a-1"),
        transition(4, tag, AlarmState.UNACK, AlarmState.ACKED, t0 + 30, "a-1", user="ana")])
    await forward_all(fleet, tmp_path, GW_A)
    alert = await fleet.fetchrow("SELECT state, acknowledged, acknowledged_by, cleared_at, time "
                                 "FROM alerts")
    assert (alert["state"], alert["acknowledged"], alert["acknowledged_by"]) == (
        "ACTIVE_ACK", True, "ana")
    assert alert["cleared_at"] is None and alert["time"].timestamp() == t0
    events = [r["event"] for r in await fleet.fetch("SELECT event FROM alarm_journal ORDER BY seq")]
    assert events == ["ACTIVATE", "CLEAR", "ACTIVATE", "ACKNOWLEDGE"]
