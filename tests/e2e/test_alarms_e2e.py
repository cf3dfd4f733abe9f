"""Alarms end to end: `refineryiq run --simulate` with MQTT on the real Mosquitto; faults are
injected through the simulator's control API and the alarms are seen over HTTP and MQTT."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid

import pytest

from gateway.services.accounts.users import Role
from tests.support.daemon import DaemonProcess, post_json, state_with_users
from tests.support.faults import MqttRecorder

GATEWAY_ID = "edge-e2e"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def site() -> str:
    return f"e2e{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def recorder(site):
    r = MqttRecorder(f"refineryiq/{site}/{GATEWAY_ID}/alarms/#")
    yield r
    r.stop()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, site, recorder):
    state = state_with_users(tmp_path_factory.mktemp("alarms") / "state", PASSWORD,
                             {"ana": Role.OPERATOR})
    d = DaemonProcess(state, env={
        "REFINERYIQ_MQTT__HOST": "127.0.0.1", "REFINERYIQ_SITE": site,
        "REFINERYIQ_GATEWAY_ID": GATEWAY_ID,
        # Shorter than the default 10 s so the test does not wait for nothing.
        "REFINERYIQ_ALARMS__BAD_QUALITY_DELAY_S": "2"}).start()
    health = d.wait_healthy(timeout=90)
    d.control = f"http://127.0.0.1:{health['simulator']['control_port']}"
    yield d
    d.kill()


def _login(daemon) -> dict:
    status, body = post_json(f"{daemon.url}/api/auth/login", {"username": "ana", "password": PASSWORD})
    assert status == 200, body
    return {"Authorization": f"Bearer {body['token']}"}


def test_an_out_of_range_fault_raises_its_alarm_over_http_and_mqtt(daemon, recorder, site):
    status, _ = post_json(f"{daemon.control}/faults",
                      {"tag_id": "TI-101", "kind": "out_of_range", "duration_s": 30})
    assert status == 200

    def listed():
        _, alarms = daemon.get("/api/alarms?tag_id=TI-101")
        return [a for a in alarms if a["kind"] == "BAD_QUALITY"]

    (alarm,) = daemon.wait_for(listed, 30, "TI-101 bad-quality alarm in /api/alarms")
    assert alarm["state"] == "ACTIVE_UNACK"
    topic, body = daemon.wait_for(
        lambda: recorder.find(key="TI-101/BAD_QUALITY", state="ACTIVE_UNACK"), 15,
        "the alarm on MQTT")
    assert topic == f"refineryiq/{site}/{GATEWAY_ID}/alarms/TI-101"
    assert body["alarm_id"] == alarm["alarm_id"]


def test_a_spike_raises_a_process_alarm_an_operator_acknowledges(daemon, recorder):
    status, _ = post_json(f"{daemon.control}/faults",
                      {"tag_id": "PI-103", "kind": "spike", "duration_s": 30})
    assert status == 200
    daemon.wait_for(lambda: daemon.get("/api/alarms?tag_id=PI-103&state=active_unack")[1], 30,
                    "PI-103 process alarm")
    status, body = post_json(f"{daemon.url}/api/alarms/PI-103%2FPROCESS/acknowledge",
                         {"comment": "field check requested"}, _login(daemon))
    assert status == 200, body
    assert (body["alarm"]["acked_by"], body["alarm"]["ack_comment"]) == (
        "ana", "field check requested")
    _, journal = daemon.get("/api/alarms/journal?tag_id=PI-103")
    assert journal["transitions"][0]["to_state"] == "ACTIVE_ACK"
    daemon.wait_for(lambda: recorder.find(key="PI-103/PROCESS", state="ACTIVE_ACK", user="ana"),
                    15, "the acknowledge on MQTT")


def test_health_reports_alarms_and_a_connected_broker(daemon):
    _, health = daemon.get("/health")
    assert health["alarms"]["mqtt"]["state"] == "connected"
    assert set(health["alarms"]["active"]) == {"LOW", "MEDIUM", "HIGH"}


def test_kpis_count_the_injected_alarms(daemon):
    daemon.wait_for(lambda: daemon.get("/api/alarms/kpis?window_s=3600")[1]["activations"] >= 2,
                    30, "two activations in the KPIs")


def test_an_unacknowledged_alarm_survives_a_restart_without_a_new_activation(daemon):
    # TI-101's bad-quality alarm was never acknowledged: it stands (active or returned to
    # normal, unacknowledged) until an operator acknowledges it, restart or not.
    daemon.wait_for(lambda: daemon.get("/api/alarms?tag_id=TI-101")[1], 10, "TI-101 standing")
    assert daemon.stop(signal.SIGTERM, timeout=15) == 0
    before = {a["key"]: a["alarm_id"] for a in _standing_at_stop(daemon)
              if a["state"] in ("ACTIVE_UNACK", "RTN_UNACK")}
    assert "TI-101/BAD_QUALITY" in before
    restarted = DaemonProcess(daemon.state_dir, env={
        k: v for k, v in daemon.env.items()
        if k.startswith("REFINERYIQ_") and k != "REFINERYIQ_HTTP__PORT"}).start()
    try:
        restarted.wait_healthy(90)
        _, alarms = restarted.get("/api/alarms")
        assert {a["key"]: a["alarm_id"] for a in alarms if a["key"] in before} == before
        _, journal = restarted.get("/api/alarms/journal?tag_id=TI-101&limit=1000")
        activations = [t for t in journal["transitions"] if t["to_state"] == "ACTIVE_UNACK"
                       and t["from_state"] not in ("ACTIVE_UNACK", "ACTIVE_ACK")]
        assert len(activations) == 1
    finally:
        restarted.kill()


def _standing_at_stop(daemon) -> list[dict]:
    """The alarms the stopped daemon left standing, from its persisted snapshot."""
    from gateway.services.alarms.service import SNAPSHOT_KEY
    from gateway.store.embedded import EmbeddedStore

    async def read() -> list[dict]:
        store = EmbeddedStore(daemon.state_dir / "history.sqlite", retention_s=86400,
                              max_bytes=10**9)
        await store.open()
        try:
            return json.loads(await store.get_state(SNAPSHOT_KEY))["alarms"]
        finally:
            await store.close()

    return asyncio.run(read())
