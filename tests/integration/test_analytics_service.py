"""The analytics service against a real embedded store filled from the simulator's plant model.

Three hours of the simulated plant (a scan every 5 s) end at 05:30 UTC, 01:30 in Caracas: the
first 2 h 40 min are in the embedded store before the service starts (the backfill path),
the last 20 min reach it through its pipeline sink (the live path). Every row it computes must
equal what the pure ``analytics/`` functions give for the same window read back from the store.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer

from analytics.balance import plant_balance
from analytics.energy import hourly_energy, plant_energy
from analytics.health import plant_health
from analytics.kpis import plant_kpis
from analytics.tanks import tank_states
from analytics.window import TagSeries, Window
from drivers.batch import Batch
from drivers.quality import Quality, Reason
from gateway.northbound.http.app import create_app
from gateway.northbound.http.deps import ApiDeps
from gateway.runtime.supervisor import Supervisor
from gateway.services.analytics.run import PLANT_ID
from gateway.services.analytics.service import AnalyticsService
from gateway.settings import AnalyticsSettings, GatewaySettings
from gateway.store.embedded import EmbeddedStore
from plant.catalog import Catalog
from plant.load import load_plant
from simulator.model import PlantModel

ROOT = Path(__file__).resolve().parents[2]
STEP_S = 5.0
END = datetime(2025, 3, 10, 5, 30, tzinfo=UTC).timestamp()  # 01:30 in Caracas
START = END - 3 * 3600
SPLIT = END - 20 * 60  # the service starts here
DEGRADED = "PUMP-101"


@dataclass(frozen=True)
class Scan:
    ts: float
    values: np.ndarray
    status: np.ndarray


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.build(load_plant(ROOT / "config/plant.toml"))


def simulate(catalog: Catalog, start: float, end: float, degrade_at: float | None = None
             ) -> list[Scan]:
    model = PlantModel(catalog, seed=11)
    scans = []
    t = start
    while t < end:
        if degrade_at is not None and abs(t - degrade_at) < STEP_S / 2:
            model.degrade(DEGRADED, 0.35)
        model.step(STEP_S)
        scans.append(Scan(t, model.values.copy(), model.status.copy()))
        t += STEP_S
    return scans


@pytest.fixture(scope="module")
def scans(catalog) -> list[Scan]:
    return simulate(catalog, START, END)


def to_batch(scan: Scan, catalog: Catalog) -> Batch:
    n = len(catalog)
    good = scan.status == 0
    quality = np.where(good, Quality.GOOD, Quality.BAD).astype(np.uint8)
    reason = np.where(good, Reason.NONE, Reason.DEVICE_BAD).astype(np.uint8)
    return Batch.build("plant", "sim", scan.ts, scan.ts, np.arange(n, dtype=np.int32),
                       scan.values, quality, reason, np.full(n, scan.ts))


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    service: AnalyticsService
    store: EmbeddedStore
    supervisor: Supervisor
    clock: Clock
    catalog: Catalog
    stored: dict[str, TagSeries] | None = None

    async def feed(self, scans: list[Scan]) -> None:
        """What the pipeline does: commit to the embedded store, then call the sinks."""
        batches = [to_batch(s, self.catalog) for s in scans]
        await self.store.append_many(batches)
        await self.service.on_batches(batches)
        self.clock.now = scans[-1].ts + STEP_S
        self.stored = None

    async def window(self, start: float, end: float) -> Window:
        """The same period read back from the store, tag by tag (the reference input)."""
        if self.stored is None:
            self.stored = {}
            for tag in self.catalog.tags:
                h = await self.store.history(self.catalog.index[tag.id], START - 3600, END + 3600)
                self.stored[tag.id] = TagSeries(h.source_ts, h.values, h.quality)
        return Window(start, end, self.stored)


async def make_rig(tmp_path: Path, catalog: Catalog, stored: list[Scan],
                   settings: AnalyticsSettings | None = None, maintenance=None) -> Rig:
    store = EmbeddedStore(tmp_path / "history.sqlite", retention_s=86400 * 30, max_bytes=10**9)
    await store.open()
    if stored:
        await store.append_many([to_batch(s, catalog) for s in stored])
    clock = Clock(stored[-1].ts + STEP_S if stored else SPLIT)
    supervisor = Supervisor()
    service = AnalyticsService(settings or AnalyticsSettings(first_run_delay_s=3600), catalog,
                               store, tmp_path / "analytics.sqlite", supervisor,
                               maintenance=maintenance, clock=clock)
    await service.start()
    return Rig(service, store, supervisor, clock, catalog)


async def close(rig: Rig) -> None:
    await rig.supervisor.stop()
    await rig.service.stop()
    await rig.store.close()


@pytest.fixture
async def rig(tmp_path, catalog, scans):
    rig = await make_rig(tmp_path, catalog, [s for s in scans if s.ts < SPLIT])
    await rig.feed([s for s in scans if s.ts >= SPLIT])
    yield rig
    await close(rig)


def by(rows: list[dict], key: str) -> dict[str, dict]:
    return {r[key]: r for r in rows}


# ------------------------------------------------------------------ equal to the pure functions


async def test_unit_and_plant_kpis_equal_the_pure_functions_over_the_kpi_window(rig, catalog):
    run = await rig.service.run_once()
    now = rig.clock.now
    window = await rig.window(now - 3600, now)
    health = plant_health(await rig.window(now - 600, now), catalog)
    expected = plant_kpis(window, catalog, energy=plant_energy(window, catalog,
                                                               equipment_health=health),
                          health=health)
    rows = by(run.rows.kpis, "unit_id")
    assert set(rows) == {u.id for u in catalog.plant.units} | {PLANT_ID}
    for unit_id, k in expected.units.items():
        row = rows[unit_id]
        assert row["oee_pct"] == pytest.approx(k.oee.oee_pct)
        assert row["throughput_bpd"] == pytest.approx(k.throughput_bpd)
        assert row["energy_efficiency"] == pytest.approx(k.energy_efficiency)
        assert row["quality_score"] == pytest.approx(k.quality_score)
        assert row["stability_index"] == pytest.approx(k.stability.index)
        assert row["maintenance_score"] == pytest.approx(k.maintenance_score)
        assert row["status"] == k.status.value
    assert rows[PLANT_ID]["oee_pct"] == pytest.approx(expected.oee.oee_pct)
    assert rows[PLANT_ID]["throughput_bpd"] == pytest.approx(expected.throughput_bpd)


async def test_hourly_energy_rows_equal_the_pure_functions_including_the_partial_hour(rig, catalog):
    run = await rig.service.run_once()
    now = rig.clock.now
    window = await rig.window(now - 25 * 3600, now)
    health = plant_health(await rig.window(now - 600, now), catalog)
    rows = {(r["unit_id"], r["hour_start"]): r for r in run.rows.energy}
    for unit in catalog.plant.units:
        expected = [e for e in hourly_energy(window, unit, catalog, now=now, hours=24,
                                             equipment_health=health)
                    if e.power_coverage_pct > 0]
        assert len(expected) == 4  # 02:30-03:00, 03:00-04:00, 04:00-05:00, 05:00-now
        for e in expected:
            row = rows[(unit.id, e.start if e.start % 3600 == 0 else e.start // 3600 * 3600)]
            assert row["consumption_kwh"] == pytest.approx(e.consumption_kwh)
            assert row["kwh_per_bbl"] == pytest.approx(e.kwh_per_bbl)
            assert row["status"] == e.status.value
        current = rows[(unit.id, now // 3600 * 3600)]
        assert current["complete"] is False
        assert current["window_end"] == now


async def test_tanks_equipment_and_day_balance_equal_the_pure_functions(rig, catalog):
    run = await rig.service.run_once()
    now = rig.clock.now
    tanks = tank_states(await rig.window(now - 3600, now), catalog.plant)
    health = plant_health(await rig.window(now - 600, now), catalog)
    day_start = datetime(2025, 3, 10, 4, 0, tzinfo=UTC).timestamp()  # Caracas midnight
    balance = plant_balance(await rig.window(day_start, now), catalog)
    tank_rows = by(run.rows.tanks, "tank_id")
    for t in tanks:
        assert tank_rows[t.tank_id]["level_pct"] == pytest.approx(t.level_pct)
        assert tank_rows[t.tank_id]["trend"] == t.trend.value
    equipment_rows = by(run.rows.equipment, "equipment_id")
    for equipment_id, h in health.items():
        assert equipment_rows[equipment_id]["score"] == pytest.approx(h.score)
        assert equipment_rows[equipment_id]["status"] == h.status.value
    balance_rows = by(run.rows.balance, "unit_id")
    for unit_id, b in balance.items():
        assert balance_rows[unit_id]["day_start"] == day_start
        assert balance_rows[unit_id]["feed_bbl"] == pytest.approx(b.feed_bbl)
        assert balance_rows[unit_id]["closure_pct"] == pytest.approx(b.closure_pct)


async def test_synthetic_tags_are_not_analysed(tmp_path, scans):
    catalog = Catalog.build(load_plant(ROOT / "config/plant.toml"), synthetic_tags=5)
    rig = await make_rig(tmp_path, catalog, [])
    try:
        assert rig.service.buffer is not None
        assert not [t for t in rig.service.buffer.tag_ids if t.startswith("SYN-")]
        assert len(rig.service.buffer.tag_ids) == len(catalog.plant.tags)
    finally:
        await close(rig)


# ------------------------------------------------------------------ persistence


async def test_results_are_persisted_and_restored_by_a_new_service(rig, tmp_path, catalog):
    run = await rig.service.run_once()
    await rig.supervisor.stop()
    await rig.service.stop()
    again = AnalyticsService(AnalyticsSettings(first_run_delay_s=3600), catalog, rig.store,
                             tmp_path / "analytics.sqlite", rig.supervisor, clock=rig.clock)
    await again.start()
    try:
        assert again.latest.ts == run.ts
        assert by(again.latest.kpis, "unit_id") == by(run.rows.kpis, "unit_id")
        assert by(again.latest.equipment, "equipment_id") == by(run.rows.equipment,
                                                                "equipment_id")
        assert by(again.latest.tanks, "tank_id") == by(run.rows.tanks, "tank_id")
        assert by(again.latest.balance, "unit_id") == by(run.rows.balance, "unit_id")
        energy = await again.results.energy(0.0)
        assert {(r["unit_id"], r["hour_start"]) for r in energy} == {
            (r["unit_id"], r["hour_start"]) for r in run.rows.energy}
    finally:
        await rig.supervisor.stop()
        await again.stop()
        rig.service.results = None  # already closed; the fixture's stop must not close twice


async def test_a_completed_hour_is_frozen_and_the_current_hour_recomputed(rig):
    first = await rig.service.run_once()
    rig.clock.now += 120
    await rig.service.run_once()
    stored = {(r["unit_id"], r["hour_start"]): r for r in await rig.service.results.energy(0.0)}
    for row in first.rows.energy:
        again = stored[(row["unit_id"], row["hour_start"])]
        if row["complete"]:
            assert again["computed_at"] == first.ts
        else:
            assert again["computed_at"] == rig.clock.now


async def test_kpi_history_keeps_one_row_per_unit_and_run(rig, catalog):
    await rig.service.run_once()
    rig.clock.now += 60
    await rig.service.run_once()
    history = await rig.service.results.kpi_history(0.0, "CDU-101")
    assert len(history) == 2
    assert history[0]["ts"] < history[1]["ts"]


# ------------------------------------------------------------------ scheduling and failures


async def test_computation_runs_in_the_executor_while_the_loop_keeps_ticking(rig):
    threads = []
    compute = rig.service._compute

    def observed(*args):
        threads.append(threading.current_thread())
        return compute(*args)

    rig.service._compute = observed
    ticks = 0
    done = asyncio.Event()

    async def ticker():
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await rig.service.run_once()
    done.set()
    await task
    assert threads and threads[0] is not threading.main_thread()
    assert ticks > 1


async def test_a_failing_run_is_counted_and_the_next_run_succeeds(rig):
    compute = rig.service._compute

    def broken(*args):
        raise RuntimeError("boom")

    rig.service._compute = broken
    assert await rig.service.run_safely() is None
    assert rig.service.stats.failures == 1
    assert "boom" in rig.service.stats.last_error
    rig.service._compute = compute
    assert await rig.service.run_safely() is not None
    assert rig.service.stats.runs == 1
    assert rig.service.report()["failures"] == 1


async def test_the_first_scheduled_run_happens_soon_after_start(tmp_path, catalog, scans):
    settings = AnalyticsSettings(first_run_delay_s=0, kpi_interval_s=0.5)
    rig = await make_rig(tmp_path, catalog, scans[-240:], settings)
    try:
        for _ in range(200):
            if rig.service.stats.runs:
                break
            await asyncio.sleep(0.05)
        assert rig.service.stats.runs >= 1
        assert rig.service.latest.kpis
    finally:
        await close(rig)


# ------------------------------------------------------------------ predictive maintenance


class FakeMaintenance:
    """Stands in for the PdM service (written separately) through its documented shape."""

    def failure_probabilities(self) -> dict[str, float]:
        return {DEGRADED: 80.0}


async def test_pdm_failure_probability_sets_the_equipment_health(tmp_path, catalog, scans):
    rig = await make_rig(tmp_path, catalog, scans, maintenance=FakeMaintenance())
    try:
        run = await rig.service.run_once()
        row = by(run.rows.equipment, "equipment_id")[DEGRADED]
        assert row["failure_probability_pct"] == 80.0
        assert row["score"] == pytest.approx(20.0)
        assert row["worst_kind"] == "PDM"
    finally:
        await close(rig)


async def test_health_and_kpis_fall_when_the_simulated_equipment_degrades(tmp_path, catalog):
    degraded = simulate(catalog, END - 3600, END, degrade_at=END - 900)
    rig = await make_rig(tmp_path, catalog, [s for s in degraded if s.ts < END - 900])
    try:
        before = await rig.service.run_once()
        await rig.feed([s for s in degraded if s.ts >= END - 900])
        after = await rig.service.run_once()
        score = {r: by(run.rows.equipment, "equipment_id")[DEGRADED]["score"]
                 for r, run in (("before", before), ("after", after))}
        assert score["after"] < score["before"]
        assert score["after"] < 75
    finally:
        await close(rig)


# ------------------------------------------------------------------ HTTP


@pytest.fixture
async def client(rig, catalog):
    await rig.service.run_once()
    deps = ApiDeps(settings=GatewaySettings(), catalog=catalog, pipeline=None,
                   store=rig.store, started_at=0.0, analytics=rig.service)
    async with TestClient(TestServer(create_app(deps))) as client:
        yield client


async def test_api_kpis_lists_every_unit_and_the_plant(client, catalog):
    resp = await client.get("/api/analytics/kpis")
    body = await resp.json()
    assert resp.status == 200, body
    assert {u["unit_id"] for u in body["units"]} == {u.id for u in catalog.plant.units}
    assert body["plant"]["unit_id"] == PLANT_ID
    assert all(isinstance(u["throughput_bpd"], float) for u in body["units"])


async def test_api_kpi_history_rejects_a_bad_hours_value(client):
    resp = await client.get("/api/analytics/kpis/history", params={"hours": "soon"})
    assert resp.status == 400
    assert "hours" in (await resp.json())["detail"]


async def test_api_kpi_history_rejects_an_unknown_unit(client):
    resp = await client.get("/api/analytics/kpis/history", params={"unit_id": "XYZ"})
    assert resp.status == 400
    assert "unit_id" in (await resp.json())["detail"]


async def test_api_energy_tanks_equipment_and_balance_return_the_rows(client, rig, catalog):
    rig_now = rig.clock.now
    energy = await (await client.get("/api/analytics/energy", params={"hours": "24"})).json()
    assert {r["unit_id"] for r in energy["rows"]} == {u.id for u in catalog.plant.units}
    tanks = await (await client.get("/api/analytics/tanks")).json()
    assert len(tanks["tanks"]) == len(catalog.plant.tanks)
    equipment = await (await client.get("/api/analytics/equipment")).json()
    assert len(equipment["equipment"]) == len(catalog.plant.equipment)
    assert isinstance(equipment["equipment"][0]["contributions"], list)
    balance = await (await client.get("/api/analytics/balance")).json()
    assert balance["ts"] == rig_now
    assert {b["unit_id"] for b in balance["units"]} == {u.id for u in catalog.plant.units}
