"""Broker outage: `refineryiq run --simulate` publishes alarms to Mosquitto through a loopback
proxy that is cut while faults raise alarms. Counted on a subscriber connected to the broker
directly: every transition in the alarm journal arrives (0 lost), first deliveries in ``seq``
order (re-deliveries are allowed: QoS 1 is at-least-once), the last-will ``offline`` is seen
during the outage and the retained status is ``online`` again after it.

Short version: a 10 s outage; the long version (slow) holds the broker away for 60 s.
"""

from __future__ import annotations

import time

import pytest

from tests.support import fault_report
from tests.support.daemon import DaemonProcess
from tests.support.faults import BROKER, MqttRecorder, first_occurrences, post_json, unique_site
from tests.support.hostile import ProxyThread

pytestmark = pytest.mark.faults

GATEWAY_ID = "edge-faults"
FAULTED_TAGS = ("TI-101", "FI-102", "PI-103", "TI-203")


def health(daemon: DaemonProcess) -> dict:
    return daemon.get("/health")[1]


def journal_seqs(daemon: DaemonProcess) -> list[int]:
    _, page = daemon.get("/api/alarms/journal?limit=1000")
    assert page["total"] <= 1000, "journal larger than one page"
    return sorted(t["seq"] for t in page["transitions"])


@pytest.mark.parametrize("outage_s", [
    pytest.param(10, id="10s"),
    pytest.param(60, id="60s", marks=pytest.mark.slow),
])
def test_a_broker_outage_loses_no_alarm_message_keeps_order_and_comes_back_online(
        tmp_path, outage_s):
    site = unique_site()
    prefix = f"refineryiq/{site}/{GATEWAY_ID}"
    recorder = MqttRecorder(f"{prefix}/#")
    proxy = ProxyThread(*BROKER)
    daemon = DaemonProcess(tmp_path / "state", env={
        "REFINERYIQ_MQTT__HOST": "127.0.0.1", "REFINERYIQ_MQTT__PORT": str(proxy.port),
        "REFINERYIQ_SITE": site, "REFINERYIQ_GATEWAY_ID": GATEWAY_ID,
        "REFINERYIQ_ALARMS__BAD_QUALITY_DELAY_S": "1",
        "REFINERYIQ_OPCUA_SERVER__ENABLED": "false"}).start()
    try:
        ready = daemon.wait_healthy(90)
        control = f"http://127.0.0.1:{ready['simulator']['control_port']}"
        daemon.wait_for(lambda: recorder.on("/status") and recorder.on("/status")[-1]["state"] == "online",
                        30, "status online")
        before = len(journal_seqs(daemon))

        proxy.cut()
        cut_at = time.monotonic()
        for tag_id in FAULTED_TAGS:
            status, body = post_json(f"{control}/faults", {"tag_id": tag_id, "kind": "out_of_range",
                                                           "duration_s": 4})
            assert status == 200, body
        during = daemon.wait_for(
            lambda: (lambda h: h if h["status"] == "degraded"
                     and h["alarms"]["mqtt"]["outbox_depth"] > 0 else None)(health(daemon)),
            outage_s + 10, "degraded with alarm messages waiting in the outbox")
        assert any(r.startswith("mqtt") for r in during["reasons"])
        time.sleep(max(0.0, outage_s - (time.monotonic() - cut_at)))
        assert len(journal_seqs(daemon)) >= before + len(FAULTED_TAGS)
        last_will_seen = recorder.on("/status")[-1]["state"] == "offline"
        assert last_will_seen  # the broker published the last-will
        proxy.restore()

        daemon.wait_for(lambda: (lambda m: m["state"] == "connected" and m["outbox_depth"] == 0)(
            health(daemon)["alarms"]["mqtt"]), 60, "the outbox drained after the outage")
        daemon.wait_for(lambda: recorder.on("/status")[-1]["state"] == "online", 30,
                        "status back to online")
        journaled = journal_seqs(daemon)
        daemon.wait_for(lambda: set(journaled) <= set(recorder.alarm_seqs()), 30,
                        "every journaled transition on MQTT")
        delivered = first_occurrences(recorder.alarm_seqs())
        fault_report.record(
            f"broker-outage-{outage_s}s", "0 alarm messages lost, first deliveries in seq order, "
            "last-will offline during the outage, status online after",
            outage_s=outage_s, transitions_journaled=len(journaled),
            transitions_during_outage=len(journaled) - before,
            delivered_distinct=len(set(delivered)),
            lost=len(set(journaled) - set(delivered)),
            redeliveries=len(recorder.alarm_seqs()) - len(delivered),
            order_kept=delivered == sorted(delivered), last_will_seen=last_will_seen,
            status_after=recorder.on("/status")[-1]["state"])
        assert delivered == sorted(delivered), "alarm messages out of seq order"
        assert set(journaled) <= set(delivered)
        assert health(daemon)["status"] == "healthy"
    finally:
        daemon.kill()
        proxy.close()
        recorder.stop()
