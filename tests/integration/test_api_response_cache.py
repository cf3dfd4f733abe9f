"""The read routes' kept answers against real parts: every write is seen by the next read.

A real pipeline with its embedded store, alarm service, inventory store, analytics results
store and user accounts behind the real application; scans go through ``Pipeline`` (store
commit, live cache, sinks) as in the daemon. Reads need a token here (as beyond loopback).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from drivers.batch import Batch
from drivers.quality import Quality
from gateway.ingest.pipeline import Pipeline
from gateway.northbound.http.app import create_app
from gateway.northbound.http.deps import ApiDeps
from gateway.northbound.http.response_cache import CACHE_KEY
from gateway.runtime.supervisor import Supervisor
from gateway.services.accounts.service import AccountsService
from gateway.services.accounts.users import Role
from gateway.services.alarms.journal import JOURNAL_FILE
from gateway.services.alarms.service import AlarmService
from gateway.services.analytics.results import ENERGY, AnalyticsStore
from gateway.services.analytics.run import RunRows
from gateway.services.analytics.service import AnalyticsService, LatestResults
from gateway.services.inventory import InventoryStore
from gateway.settings import AnalyticsSettings, GatewaySettings
from gateway.store.embedded import EmbeddedStore
from plant.catalog import Catalog
from plant.load import load_plant

REPO = Path(__file__).parents[2]
PLANT = load_plant(REPO / "config" / "plant.toml")
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse battery"
DEVICE = "plc-test"
GROUP = "cdu"
HOUR_S = 3600.0
T0 = 1_700_000_000.0


class Gateway:
    """The parts of a running gateway the read routes use, all real."""

    def __init__(self, state_dir: Path):
        self.settings = GatewaySettings(
            gateway_id="edge-cache", site=f"t{uuid.uuid4().hex[:10]}", state_dir=state_dir,
            auth={"require_token_for_reads": True},
            devices=[{"id": DEVICE, "protocol": "modbus", "host": "127.0.0.1", "port": 1}],
            scan_groups=[{"id": GROUP, "device": DEVICE, "interval_ms": 1000,
                          "units": ["CDU-101"]}])
        self.catalog = Catalog.build(PLANT)
        self.now = T0

    async def start(self) -> TestClient:
        state = self.settings.state_dir
        self.store = EmbeddedStore(state / "history.sqlite", retention_s=86400, max_bytes=10**9)
        await self.store.open()
        self.pipeline = Pipeline(self.settings, self.catalog, self.store, state)
        self.supervisor = Supervisor()
        self.users = await AccountsService.open(self.settings, hasher=FAST)
        for name, role in (("vera", Role.VIEWER), ("oscar", Role.OPERATOR),
                           ("sofia", Role.SUPERVISOR)):
            await self.users.store.add(name, PASSWORD, role)
        # The alarm ticker is never due (tick_s is long): alarms come from the scans only.
        self.alarms = AlarmService(self.settings.alarms, self.catalog, self.store,
                                   state / JOURNAL_FILE, 86400, self.supervisor,
                                   self.pipeline.device_connections, clock=lambda: self.now,
                                   tick_s=3600)
        await self.alarms.start()
        self.pipeline.add_sink("alarms", self.alarms)  # as the daemon attaches it
        self.inventory = InventoryStore(state / "inventory.sqlite", clock=lambda: self.now)
        await self.inventory.open(PLANT.inventory)
        # Analytics never runs here (not started): the tests save its rows and results.
        self.analytics = AnalyticsService(AnalyticsSettings(), self.catalog, self.store,
                                          state / "analytics.sqlite", self.supervisor,
                                          clock=lambda: self.now)
        self.analytics.results = AnalyticsStore(self.analytics.results_path, 30 * 86400)
        await self.analytics.results.open()
        self.deps = ApiDeps(settings=self.settings, catalog=self.catalog, pipeline=self.pipeline,
                            store=self.store, started_at=T0, accounts=self.users,
                            alarms=self.alarms, inventory=self.inventory,
                            analytics=self.analytics)
        self.app = create_app(self.deps)
        self.client = TestClient(TestServer(self.app))
        await self.client.start_server()
        self.tokens = {name: await self.login(name) for name in ("vera", "oscar", "sofia")}
        return self.client

    async def stop(self) -> None:
        await self.client.close()
        await self.supervisor.stop()
        await self.alarms.stop()
        await self.analytics.results.close()
        await self.inventory.close()
        await self.users.stop()
        await self.store.close()

    async def login(self, name: str) -> str:
        resp = await self.client.post("/api/auth/login",
                                      json={"username": name, "password": PASSWORD})
        return (await resp.json())["token"]

    async def scan(self, **values: float) -> None:
        """One scan of the group through the pipeline; tags not named read mid-range."""
        self.now += 1.0
        idx = self.pipeline.plans[GROUP].tag_index
        v = (self.catalog.normal_min[idx] + self.catalog.normal_max[idx]) / 2.0
        for tag_id, value in {k.replace("_", "-"): x for k, x in values.items()}.items():
            v[list(idx).index(self.catalog.index[tag_id])] = value
        q = np.full(len(idx), Quality.GOOD, dtype=np.uint8)
        batch = Batch.build(GROUP, DEVICE, self.now - 0.05, self.now, idx, v, q,
                            np.zeros(len(idx), dtype=np.uint8))
        self.pipeline.queue.put_nowait(batch)
        await self.pipeline.drain()

    async def call(self, method: str, path: str, user: str | None = "vera",
                   body: dict | None = None) -> tuple[int, object]:
        headers = {} if user is None else {"Authorization": f"Bearer {self.tokens[user]}"}
        resp = await self.client.request(method, path, json=body, headers=headers)
        return resp.status, await resp.json() if resp.content_type == "application/json" else None


@pytest.fixture
async def gateway(tmp_path):
    gw = Gateway(tmp_path / "state")
    await gw.start()
    yield gw
    await gw.stop()


def energy_row(unit_id: str, hour_start: float, consumption_kwh: float) -> dict:
    row = dict.fromkeys(ENERGY.columns)
    row.update(unit_id=unit_id, hour_start=hour_start, hour_end=hour_start + HOUR_S,
               complete=False, consumption_kwh=consumption_kwh, status="GOOD")
    return row


# --------------------------------------------------------------------------- scans


async def test_live_values_follow_each_accepted_scan(gateway):
    def ti_101(rows):
        return next(r["value"] for r in rows if r["tag_id"] == "TI-101")

    await gateway.scan(TI_101=350.0)
    assert ti_101((await gateway.call("GET", "/api/tags/live"))[1]) == 350.0
    assert ti_101((await gateway.call("GET", "/api/tags/live"))[1]) == 350.0
    await gateway.scan(TI_101=352.5)
    assert ti_101((await gateway.call("GET", "/api/tags/live"))[1]) == 352.5


async def test_an_unchanged_gateway_answers_with_the_kept_body(gateway):
    await gateway.scan()
    first = await gateway.client.get("/api/assets/overview",
                                     headers={"Authorization": f"Bearer {gateway.tokens['vera']}"})
    second = await gateway.client.get("/api/assets/overview",
                                      headers={"Authorization": f"Bearer {gateway.tokens['vera']}"})
    assert first.status == second.status == 200
    assert await first.read() == await second.read()
    assert len(gateway.app[CACHE_KEY]) == 1


async def test_newest_process_records_include_the_scan_just_accepted(gateway):
    await gateway.scan(TI_101=351.0)
    _, before = await gateway.call("GET", "/api/normalized/process-data/enriched?limit=5")
    await gateway.scan(TI_101=353.0)
    _, after = await gateway.call("GET", "/api/normalized/process-data/enriched?limit=5")
    assert after != before
    assert {r["timestamp"] for r in after}.isdisjoint({r["timestamp"] for r in before})


# --------------------------------------------------------------------------- authorization


async def test_a_kept_answer_still_needs_a_valid_token(gateway):
    assert (await gateway.call("GET", "/api/normalized/tags"))[0] == 200
    status, body = await gateway.call("GET", "/api/normalized/tags", user=None)
    assert status == 401 and "detail" in body


async def test_a_kept_answer_is_refused_once_the_token_is_revoked(gateway):
    assert (await gateway.call("GET", "/api/inventory"))[0] == 200
    assert (await gateway.call("POST", "/api/auth/logout"))[0] == 204
    assert (await gateway.call("GET", "/api/inventory"))[0] == 401


# --------------------------------------------------------------------------- writes


async def test_inventory_writes_are_seen_by_the_next_read(gateway):
    _, before = await gateway.call("GET", "/api/inventory")
    new = {"item": "Filtro de aceite", "sku": "FLT-9", "quantity": 4, "unit": "pza"}
    status, item = await gateway.call("POST", "/api/inventory", user="sofia", body=new)
    assert status == 201
    _, listing = await gateway.call("GET", "/api/inventory")
    assert len(listing) == len(before) + 1 and listing[-1]["sku"] == "FLT-9"

    status, _ = await gateway.call("PUT", f"/api/inventory/{item['id']}", user="sofia",
                                   body={"quantity": 1})
    assert status == 200
    _, supplies = await gateway.call("GET", "/api/supplies/data")
    assert next(i for i in supplies["inventory"] if i["sku"] == "FLT-9")["quantity"] == 1
    assert (await gateway.call("GET", f"/api/inventory/{item['id']}"))[1]["quantity"] == 1

    assert (await gateway.call("DELETE", f"/api/inventory/{item['id']}", user="sofia"))[0] == 200
    assert (await gateway.call("GET", "/api/inventory"))[1] == before


async def test_an_alarm_and_its_acknowledgement_are_seen_by_the_next_read(gateway):
    await gateway.scan()
    assert (await gateway.call("GET", "/api/alerts"))[1] == []
    await gateway.scan(TI_101=365.0)
    _, (alert,) = await gateway.call("GET", "/api/alerts")
    assert (alert["tag_id"], alert["acknowledged"]) == ("TI-101", False)
    _, (raised,) = await gateway.call("GET", "/api/alerts/history")
    assert raised["id"] == alert["id"] and not raised["acknowledged"]

    status, _ = await gateway.call("POST", f"/api/alerts/{alert['id']}/acknowledge", user="oscar")
    assert status == 200
    _, (acked,) = await gateway.call("GET", "/api/alerts")
    assert acked["acknowledged"] and acked["acknowledged_by"] == "oscar"
    _, (journaled,) = await gateway.call("GET", "/api/alerts/history")
    assert journaled["acknowledged"] and journaled["acknowledged_by"] == "oscar"


async def test_saved_analytics_rows_are_seen_by_the_next_read(gateway):
    hour = (gateway.now // HOUR_S) * HOUR_S
    assert (await gateway.call("GET", "/api/energy/analysis"))[1] == []
    await gateway.analytics.results.save(RunRows(energy=[energy_row("CDU-101", hour, 1200.0)]))
    _, (row,) = await gateway.call("GET", "/api/energy/analysis")
    assert row["consumption_kwh"] == 1200.0
    await gateway.analytics.results.save(RunRows(energy=[energy_row("CDU-101", hour, 1500.0)]))
    _, (row,) = await gateway.call("GET", "/api/energy/analysis")
    assert row["consumption_kwh"] == 1500.0


async def test_a_new_analytics_run_is_seen_by_the_next_read(gateway):
    _, before = await gateway.call("GET", "/api/kpis")
    assert {r["status"] for r in before} == {"NO_DATA"}
    gateway.analytics.latest = LatestResults(ts=gateway.now, kpis=[
        {"unit_id": "CDU-101", "ts": gateway.now, "energy_efficiency": 91.5,
         "throughput_bpd": 98000.0, "quality_score": 97.0, "status": "OPTIMAL"}])
    _, after = await gateway.call("GET", "/api/kpis")
    cdu = next(r for r in after if r["unit_id"] == "CDU-101")
    assert (cdu["efficiency"], cdu["status"]) == (91.5, "OPTIMAL")


async def test_the_trend_moves_on_with_the_clock_hour(gateway):
    _, before = await gateway.call("GET", "/api/dashboard/history")
    gateway.now += HOUR_S
    _, after = await gateway.call("GET", "/api/dashboard/history")
    assert after[-2]["timestamp"] == before[-1]["timestamp"]
