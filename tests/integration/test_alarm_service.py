"""The alarm service inside a real pipeline: real embedded store, real journal, real Mosquitto.

Scans are real Batches pushed through ``Pipeline`` (store commit, then sinks), with a fake
clock so delays and expiries are exact. MQTT tests use their own site per test, so topics and
retained messages never collide.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest

from analytics.alarm_types import AlarmKind, AlarmState, Severity
from drivers.batch import Batch
from drivers.quality import Quality, Reason
from gateway.ingest.pipeline import Pipeline
from gateway.northbound.http import response_cache
from gateway.northbound.http.deps import ApiDeps
from gateway.northbound.mqtt.publisher import MqttPublisher
from gateway.northbound.mqtt.service import MqttService
from gateway.northbound.mqtt.values import MqttValues
from gateway.runtime.supervisor import Supervisor
from gateway.services.alarms.journal import JOURNAL_FILE, JournalFilter
from gateway.services.alarms.service import SNAPSHOT_KEY, AlarmService
from gateway.settings import GatewaySettings
from gateway.store.embedded import EmbeddedStore
from plant.catalog import Catalog
from plant.load import load_plant
from tests.support.daemon import free_port
from tests.support.mqtt import BROKER, Subscriber

REPO = Path(__file__).parents[2]
PLANT = load_plant(REPO / "config" / "plant.toml")
DEVICE = "plc-test"
GROUP = "cdu"
T0 = 1_700_000_000.0


def settings_for(state_dir: Path, site: str, mqtt_port: int | None = None,
                 **extra) -> GatewaySettings:
    mqtt = {} if mqtt_port is None else {"host": "127.0.0.1", "port": mqtt_port}
    mqtt = extra.pop("mqtt", mqtt)
    return GatewaySettings(
        gateway_id="edge-alarms", site=site, state_dir=state_dir, mqtt=mqtt,
        devices=[{"id": DEVICE, "protocol": "modbus", "host": "127.0.0.1", "port": 1}],
        scan_groups=[{"id": GROUP, "device": DEVICE, "interval_ms": 1000, "units": ["CDU-101"]}],
        **extra)


class Harness:
    """The parts of a Gateway the service uses, all real, with a clock the test moves."""

    def __init__(self, state_dir: Path, site: str, mqtt_port: int | None = None, **extra):
        self.settings = settings_for(state_dir, site, mqtt_port, **extra)
        self.catalog = Catalog.build(PLANT)
        self.now = T0
        self.simulator = None

    async def start(self) -> AlarmService:
        self.store = EmbeddedStore(self.settings.state_dir / "history.sqlite",
                                   retention_s=86400, max_bytes=10**9)
        await self.store.open()
        self.pipeline = Pipeline(self.settings, self.catalog, self.store, self.settings.state_dir)
        self.supervisor = Supervisor()
        self.deps = ApiDeps(settings=self.settings, catalog=self.catalog, pipeline=self.pipeline,
                            store=self.store, started_at=T0)
        s = self.settings
        self.publisher = MqttPublisher.from_settings(
            s, values=s.mqtt.values, client_id=f"test-{uuid.uuid4().hex[:8]}")
        if self.publisher is not None:
            await self.publisher.start()
        # The ticker is driven by the test (tick_s is long), so every timer fires when told.
        self.service = AlarmService(s.alarms, self.catalog, self.store,
                                    s.state_dir / JOURNAL_FILE, s.store.retention_days * 86400,
                                    self.supervisor, self.pipeline.device_connections,
                                    self.publisher, clock=lambda: self.now, tick_s=3600)
        await self.service.start()
        # Attached as the daemon attaches them (gateway/daemon.py).
        self.pipeline.add_sink("alarms", self.service)
        if self.publisher is not None:
            self.mqtt = MqttService(self.publisher)
            self.deps.health_checks["mqtt"] = self.mqtt.problem
            if s.mqtt.values.enabled:
                self.pipeline.add_sink("mqtt_values",
                                       MqttValues(self.publisher, self.catalog, lambda: self.now))
        self.deps.alarms = self.service
        self.deps.health_sections["alarms"] = self.service.health
        return self.service

    async def stop(self) -> None:
        await self.supervisor.stop()
        await self.service.stop()
        if self.publisher is not None:
            await self.mqtt.stop()
        await self.store.close()

    async def scan(self, advance_s: float = 1.0, quality: dict[str, int] | None = None,
                   **values: float) -> None:
        """One scan of the group through the pipeline; tags not named read mid-range."""
        self.now += advance_s
        plan = self.pipeline.plans[GROUP]
        idx = plan.tag_index
        v = (self.catalog.normal_min[idx] + self.catalog.normal_max[idx]) / 2.0
        q = np.full(len(idx), Quality.GOOD, dtype=np.uint8)
        r = np.zeros(len(idx), dtype=np.uint8)
        for tag_id, value in {k.replace("_", "-"): x for k, x in values.items()}.items():
            v[list(idx).index(self.catalog.index[tag_id])] = value
        for tag_id, code in (quality or {}).items():
            j = list(idx).index(self.catalog.index[tag_id])
            q[j] = code
            r[j] = Reason.OUT_OF_RANGE if code == Quality.BAD else 0
        batch = Batch.build(GROUP, DEVICE, self.now - 0.05, self.now, idx, v, q, r)
        self.pipeline.queue.put_nowait(batch)
        await self.pipeline.drain()


@pytest.fixture
async def harness(tmp_path):
    h = Harness(tmp_path / "state", site=f"t{uuid.uuid4().hex[:10]}")
    await h.start()
    yield h
    await h.stop()


async def journal_of(service: AlarmService, **where) -> list:
    return await service.journal.query(JournalFilter(**where), limit=1000)


# --------------------------------------------------------------------------- scans


async def test_a_quiet_scan_raises_no_alarm(harness):
    await harness.scan()
    await harness.scan()
    assert harness.service.active() == []
    assert await journal_of(harness.service) == []


async def test_a_limit_crossing_is_journaled_as_an_activation(harness):
    await harness.scan()
    await harness.scan(TI_101=365.0)
    (t,) = await journal_of(harness.service)
    assert (t.tag_id, t.kind, t.to_state) == ("TI-101", AlarmKind.HI, AlarmState.UNACK)
    assert t.severity == Severity.MEDIUM  # 5 °C beyond 360 on a 20 °C span: 25 %
    assert t.value == 365.0 and t.limit == 360.0
    assert t.time == harness.now


async def test_the_active_list_shows_the_standing_alarm(harness):
    await harness.scan(TI_101=365.0)
    (alarm,) = harness.service.active()
    assert (alarm.key, alarm.state, alarm.unit_id) == ("TI-101/PROCESS", AlarmState.UNACK,
                                                       "CDU-101")


async def test_a_bad_value_raises_bad_quality_after_its_delay_not_a_process_alarm(harness):
    bad = {"TI-101": Quality.BAD}
    await harness.scan(TI_101=9999.0, quality=bad)
    await harness.scan(advance_s=11, TI_101=9999.0, quality=bad)
    (t,) = await journal_of(harness.service)
    assert (t.key, t.kind) == ("TI-101/BAD_QUALITY", AlarmKind.BAD_QUALITY)


async def test_return_to_normal_after_the_off_delay_is_journaled(harness):
    await harness.scan(TI_101=365.0)
    await harness.scan(TI_101=350.0)
    await harness.scan(advance_s=6, TI_101=350.0)
    states = [t.to_state for t in reversed(await journal_of(harness.service))]
    assert states == [AlarmState.UNACK, AlarmState.RTN_UNACK]


# --------------------------------------------------------------------------- restart


async def test_an_alarm_active_before_a_restart_is_still_active_after(tmp_path):
    site = f"t{uuid.uuid4().hex[:10]}"
    first = Harness(tmp_path / "state", site)
    await first.start()
    await first.scan(TI_101=365.0)
    alarm_id = first.service.active()[0].alarm_id
    await first.stop()

    second = Harness(tmp_path / "state", site)
    second.now = first.now + 30
    service = await second.start()
    try:
        (alarm,) = service.active()
        assert (alarm.alarm_id, alarm.state) == (alarm_id, AlarmState.UNACK)
        await second.scan(TI_101=366.0)
        activations = [t for t in await journal_of(service) if t.is_activation]
        assert len(activations) == 1
    finally:
        await second.stop()


async def test_seq_continues_above_the_journal_when_the_snapshot_is_lost(tmp_path):
    site = f"t{uuid.uuid4().hex[:10]}"
    first = Harness(tmp_path / "state", site)
    await first.start()
    await first.scan(TI_101=365.0)
    last_seq = first.service.engine.seq
    await first.stop()
    store = EmbeddedStore(tmp_path / "state" / "history.sqlite", retention_s=86400,
                          max_bytes=10**9)
    await store.open()
    await store.delete_state(SNAPSHOT_KEY)  # as if the gateway died before persisting
    await store.close()

    second = Harness(tmp_path / "state", site)
    service = await second.start()
    try:
        await second.scan(PI_103=30.0)
        newest = (await journal_of(service))[0]
        assert newest.tag_id == "PI-103" and newest.seq > last_seq
    finally:
        await second.stop()


async def test_a_reload_keeps_standing_alarms_under_the_new_catalog(harness):
    await harness.scan(TI_101=365.0)
    alarm_id = harness.service.active()[0].alarm_id
    harness.catalog = Catalog.build(PLANT, synthetic_tags=3)
    await harness.service.reload(harness.settings, harness.catalog)
    assert harness.service.alarm("TI-101/PROCESS").alarm_id == alarm_id
    assert harness.service.engine.catalog is harness.catalog


# --------------------------------------------------------------------------- timers, devices


async def test_a_device_that_stays_disconnected_raises_comm_loss(harness):
    await harness.scan()  # the driver was never connected: the test's device is unreachable
    await harness.service.tick(harness.now)
    await harness.service.tick(harness.now + 6)
    (t,) = await journal_of(harness.service, kind=AlarmKind.COMM_LOSS)
    assert (t.key, t.severity) == (f"{DEVICE}/COMM_LOSS", Severity.HIGH)


async def test_a_device_never_scanned_raises_no_comm_loss(harness):
    await harness.service.tick(harness.now)
    await harness.service.tick(harness.now + 60)
    assert await journal_of(harness.service) == []


async def test_a_shelved_alarm_returns_to_service_when_the_shelve_expires(harness):
    await harness.scan(TI_101=365.0)
    await harness.service.shelve("TI-101/PROCESS", "ana", 60, "maintenance")
    assert harness.service.alarm("TI-101/PROCESS").state == AlarmState.SHELVED
    await harness.service.tick(harness.now + 61)
    newest = (await journal_of(harness.service))[0]
    assert (newest.from_state, newest.automatic) == (AlarmState.SHELVED, True)
    assert harness.service.alarm("TI-101/PROCESS").state == AlarmState.UNACK


# --------------------------------------------------------------------------- operator actions


async def test_acknowledge_is_journaled_with_the_operator_and_comment(harness):
    await harness.scan(TI_101=365.0)
    (t,) = await harness.service.acknowledge("TI-101/PROCESS", "ana", "seen")
    journaled = (await journal_of(harness.service))[0]
    assert journaled == t
    assert (t.to_state, t.user, t.comment) == (AlarmState.ACKED, "ana", "seen")


async def test_an_operator_action_is_persisted_at_once(harness):
    await harness.scan(TI_101=365.0)
    await harness.service.acknowledge("TI-101/PROCESS", "ana")
    snapshot = json.loads(await harness.store.get_state(SNAPSHOT_KEY))
    assert [a["state"] for a in snapshot["alarms"]] == ["ACTIVE_ACK"]


async def test_out_of_service_suppresses_and_returns(harness):
    await harness.scan(TI_101=365.0)
    await harness.service.set_out_of_service("TI-101/PROCESS", True, "ana")
    assert harness.service.alarm("TI-101/PROCESS").state == AlarmState.SUPPRESSED
    await harness.service.set_out_of_service("TI-101/PROCESS", False, "ana")
    assert harness.service.alarm("TI-101/PROCESS").state.is_active


# --------------------------------------------------------------------------- journal and KPIs


async def test_journal_filters_by_tag_and_severity_newest_first(harness):
    await harness.scan(TI_101=361.0, PI_103=40.0)  # LOW on TI-101, HIGH on PI-103
    await harness.scan(FI_102=9000.0)
    newest_first = [t.seq for t in await journal_of(harness.service)]
    assert newest_first == sorted(newest_first, reverse=True)
    assert [t.tag_id for t in await journal_of(harness.service, tag_id="PI-103")] == ["PI-103"]
    assert {t.tag_id for t in await journal_of(harness.service, severity=Severity.HIGH)} == \
        {"PI-103", "FI-102"}


async def test_journal_time_window_excludes_older_transitions(harness):
    await harness.scan(TI_101=365.0)
    since = harness.now + 10
    await harness.scan(advance_s=20, PI_103=30.0)
    assert [t.tag_id for t in await journal_of(harness.service, since=since)] == ["PI-103"]


async def test_kpis_count_the_activations_in_the_window(harness):
    await harness.scan(TI_101=365.0, PI_103=30.0)
    kpis = await harness.service.kpis(window_s=3600, now=harness.now + 1)
    assert kpis["activations"] == 2
    assert kpis["standing"] == 2


async def test_kpis_know_alarms_standing_from_before_the_window(harness):
    await harness.scan(TI_101=365.0)
    kpis = await harness.service.kpis(window_s=600, now=harness.now + 7200)
    assert (kpis["activations"], kpis["standing"]) == (0, 1)


async def test_journal_retention_deletes_transitions_past_the_store_retention(tmp_path):
    h = Harness(tmp_path / "state", f"t{uuid.uuid4().hex[:10]}", store={"retention_days": 1})
    await h.start()
    try:
        await h.scan(TI_101=365.0)
        tokens = response_cache.alarms(h.deps)
        assert await h.service.enforce_journal_retention(h.now + 2 * 86400) == 1
        assert await journal_of(h.service) == []
        # Cached answers that listed the deleted rows (/api/alerts/history) are no longer served.
        assert response_cache.alarms(h.deps) != tokens
    finally:
        await h.stop()


# --------------------------------------------------------------------------- health


async def test_health_section_counts_active_alarms_by_severity(harness):
    await harness.scan(TI_101=365.0, PI_103=40.0)
    section = harness.deps.health_sections["alarms"]()
    assert section["active"] == {"LOW": 0, "MEDIUM": 1, "HIGH": 1}
    assert section["mqtt"] == {"state": "off"}


async def test_mqtt_away_with_a_backlog_is_a_health_problem(tmp_path):
    dead_port = free_port()  # nothing listens here
    h = Harness(tmp_path / "state", f"t{uuid.uuid4().hex[:10]}", mqtt_port=dead_port)
    await h.start()
    try:
        check = h.deps.health_checks["mqtt"]
        assert check() is None
        await h.scan(TI_101=365.0)
        assert "1 alarm messages waiting" in check()
    finally:
        await h.stop()


# --------------------------------------------------------------------------- MQTT


@pytest.fixture
async def mqtt_harness(tmp_path):
    h = Harness(tmp_path / "state", f"t{uuid.uuid4().hex[:10]}",
                mqtt={"host": "127.0.0.1", "port": BROKER[1], "values": {"enabled": True}})
    await h.start()
    assert await h.service.publisher.wait_connected(5)
    yield h
    await h.stop()


async def test_an_alarm_transition_reaches_the_broker_on_the_alarms_topic(mqtt_harness):
    h = mqtt_harness
    sub = await Subscriber(f"refineryiq/{h.settings.site}/edge-alarms/alarms/#").start()
    try:
        await h.scan(TI_101=365.0)
        topic, body = await sub.next()
        assert topic == f"refineryiq/{h.settings.site}/edge-alarms/alarms/TI-101"
        assert (body["state"], body["kind"], body["key"]) == ("ACTIVE_UNACK", "HI",
                                                              "TI-101/PROCESS")
        assert body["seq"] == h.service.engine.seq
    finally:
        await sub.stop()


async def test_an_acknowledge_is_published_like_any_transition(mqtt_harness):
    h = mqtt_harness
    sub = await Subscriber(f"refineryiq/{h.settings.site}/edge-alarms/alarms/TI-101").start()
    try:
        await h.scan(TI_101=365.0)
        await sub.next()
        await h.service.acknowledge("TI-101/PROCESS", "ana", "seen")
        _, body = await sub.next()
        assert (body["state"], body["user"], body["comment"]) == ("ACTIVE_ACK", "ana", "seen")
    finally:
        await sub.stop()


async def test_live_values_are_published_by_exception_when_enabled(mqtt_harness):
    h = mqtt_harness
    sub = await Subscriber(f"refineryiq/{h.settings.site}/edge-alarms/values/TI-101").start()
    try:
        await h.scan(TI_101=351.0)
        _, body = await sub.next()
        assert (body["tag_id"], body["value"], body["quality"]) == ("TI-101", 351.0, 192)
    finally:
        await sub.stop()


# --------------------------------------------------------------------------- HTTP routes


@pytest.fixture
async def api(harness):
    """The real aiohttp app over the harness, with a real user store and one operator."""
    from aiohttp.test_utils import TestClient, TestServer
    from argon2 import PasswordHasher

    from gateway.northbound.http.app import create_app
    from gateway.services.accounts.service import AccountsService
    from gateway.services.accounts.users import Role

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # tests only
    users = await AccountsService.open(harness.settings, hasher=cheap)
    await users.store.add("ana", "correct horse battery", Role.OPERATOR)
    await users.store.add("vic", "correct horse battery", Role.VIEWER)
    harness.deps.accounts = users
    client = TestClient(TestServer(create_app(harness.deps)))
    await client.start_server()
    client.tokens = {}
    for name in ("ana", "vic"):
        resp = await client.post("/api/auth/login",
                                 json={"username": name, "password": "correct horse battery"})
        client.tokens[name] = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    yield client
    await client.close()
    await users.stop()


async def test_get_alarms_filters_by_severity(harness, api):
    await harness.scan(TI_101=361.0, PI_103=40.0)
    body = await (await api.get("/api/alarms?severity=high")).json()
    assert [a["tag_id"] for a in body] == ["PI-103"]


async def test_get_alarms_rejects_an_unknown_unit_naming_the_parameter(api):
    resp = await api.get("/api/alarms?unit_id=XYZ-1")
    assert resp.status == 400
    assert (await resp.json())["detail"].startswith("unit_id:")


async def test_get_journal_pages_newest_first_with_iso_since(harness, api):
    await harness.scan(TI_101=365.0)
    await harness.scan(PI_103=30.0)
    body = await (await api.get("/api/alarms/journal?limit=1&since=2023-11-14T22:00:00Z")).json()
    assert [t["tag_id"] for t in body["transitions"]] == ["PI-103"]
    assert (body["limit"], body["total"]) == (1, 2)


async def test_get_journal_limit_above_1000_is_refused(api):
    resp = await api.get("/api/alarms/journal?limit=1001")
    assert resp.status == 400 and "limit" in (await resp.json())["detail"]


async def test_get_kpis_answers_for_the_requested_window(harness, api):
    await harness.scan(TI_101=365.0)
    body = await (await api.get("/api/alarms/kpis?window_s=600")).json()
    assert body["window_end"] - body["window_start"] == 600


async def test_acknowledge_without_a_token_is_401(harness, api):
    await harness.scan(TI_101=365.0)
    resp = await api.post("/api/alarms/TI-101%2FPROCESS/acknowledge", json={})
    assert resp.status == 401


async def test_acknowledge_as_viewer_is_403(harness, api):
    await harness.scan(TI_101=365.0)
    resp = await api.post("/api/alarms/TI-101%2FPROCESS/acknowledge", json={},
                          headers=api.tokens["vic"])
    assert resp.status == 403


async def test_acknowledge_as_operator_records_the_user(harness, api):
    await harness.scan(TI_101=365.0)
    resp = await api.post("/api/alarms/TI-101%2FPROCESS/acknowledge", json={"comment": "seen"},
                          headers=api.tokens["ana"])
    body = await resp.json()
    assert resp.status == 200
    assert (body["alarm"]["state"], body["alarm"]["acked_by"]) == ("ACTIVE_ACK", "ana")
    assert (await journal_of(harness.service))[0].user == "ana"


async def test_acknowledge_accepts_an_unencoded_key_and_an_occurrence_id(harness, api):
    await harness.scan(TI_101=365.0, PI_103=30.0)
    ti = harness.service.alarm("TI-101/PROCESS").alarm_id
    r1 = await api.post("/api/alarms/PI-103/PROCESS/acknowledge", headers=api.tokens["ana"])
    r2 = await api.post(f"/api/alarms/{ti.replace('#', '%23')}/acknowledge",
                        headers=api.tokens["ana"])
    assert (r1.status, r2.status) == (200, 200)
    assert {a.state for a in harness.service.active()} == {AlarmState.ACKED}


async def test_acknowledge_of_an_unknown_tag_is_404(api):
    resp = await api.post("/api/alarms/NOPE-1%2FPROCESS/acknowledge", headers=api.tokens["ana"])
    assert resp.status == 404


async def test_shelve_needs_a_positive_duration(harness, api):
    await harness.scan(TI_101=365.0)
    resp = await api.post("/api/alarms/TI-101%2FPROCESS/shelve", json={"duration_s": -5},
                          headers=api.tokens["ana"])
    assert resp.status == 400 and (await resp.json())["detail"].startswith("duration_s")


async def test_shelve_then_unshelve_over_http(harness, api):
    await harness.scan(TI_101=365.0)
    shelved = await api.post("/api/alarms/TI-101%2FPROCESS/shelve", json={"duration_s": 600},
                             headers=api.tokens["ana"])
    assert (await shelved.json())["alarm"]["state"] == "SHELVED"
    back = await api.post("/api/alarms/TI-101%2FPROCESS/unshelve", headers=api.tokens["ana"])
    assert (await back.json())["alarm"]["state"] == "ACTIVE_UNACK"


async def test_out_of_service_needs_enabled_as_a_boolean(harness, api):
    resp = await api.post("/api/alarms/TI-101%2FPROCESS/out-of-service", json={"enabled": "yes"},
                          headers=api.tokens["ana"])
    assert resp.status == 400 and (await resp.json())["detail"].startswith("enabled")


@pytest.mark.parametrize("query, field", [
    ("/api/alarms?severity=high,urgent", "severity"),
    ("/api/alarms?state=LOUD", "state"),
    ("/api/alarms/journal?kind=PROCESS,BAD_QUALITY", "kind"),
    ("/api/alarms/journal?since=yesterday", "since"),
    ("/api/alarms/kpis?window_s=inf", "window_s"),
    ("/api/alarms/kpis?window_s=0", "window_s"),
])
async def test_a_bad_alarm_query_parameter_is_400_naming_it(api, query, field):
    resp = await api.get(query)
    assert resp.status == 400
    assert (await resp.json())["detail"].startswith(f"{field}:")


async def test_alarm_routes_are_in_the_openapi_document_with_their_parameters(api):
    doc = await (await api.get("/api/openapi.json")).json()
    journal = doc["paths"]["/api/alarms/journal"]["get"]
    assert {p["name"] for p in journal["parameters"]} >= {"limit", "offset", "since", "kind"}
    assert "post" in doc["paths"]["/api/alarms/{key}/shelve"]
