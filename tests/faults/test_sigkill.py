"""SIGKILL mid-ingest: `refineryiq run --simulate` (and its simulator) is killed with no warning
while scanning, then started again on the same state directory. Counted on the SQLite file the
killed daemon left: every scan it had reported as accepted is there (0 accepted scans lost),
every live value it had served is there; the standing alarm comes back with the same
occurrence id, and ingestion resumes on top of the old history.
"""

from __future__ import annotations

import time

import pytest

from tests.support import fault_report
from tests.support.daemon import DaemonProcess
from tests.support.faults import integrity_check, post_json, read_scans

pytestmark = pytest.mark.faults

ALARM_KEY = "TI-101/BAD_QUALITY"
SCENARIO = "sigkill-mid-ingest"
CLAIM = "0 accepted scans lost; the standing alarm restored with its occurrence id"
# The alarm service persists a changed snapshot at most this often (gateway/services/alarms/service.py).
ALARM_PERSIST_EVERY_S = 5.0


def test_sigkill_mid_ingest_loses_no_accepted_scan_and_restores_the_alarm_state(tmp_path):
    state_dir = tmp_path / "state"
    env = {"REFINERYIQ_ALARMS__BAD_QUALITY_DELAY_S": "1",
           "REFINERYIQ_OPCUA_SERVER__ENABLED": "false"}
    daemon = DaemonProcess(state_dir, env=env).start()
    try:
        ready = daemon.wait_healthy(90)
        control = f"http://127.0.0.1:{ready['simulator']['control_port']}"
        status, body = post_json(f"{control}/faults", {"tag_id": "TI-101", "kind": "out_of_range",
                                                       "duration_s": 600})
        assert status == 200, body
        (alarm,) = daemon.wait_for(
            lambda: [a for a in daemon.get("/api/alarms?tag_id=TI-101")[1] if a["key"] == ALARM_KEY],
            30, "the TI-101 bad-quality alarm")
        time.sleep(ALARM_PERSIST_EVERY_S + 1)
        # The last things the daemon said it had accepted, then no warning at all.
        accepted = daemon.get("/health")[1]["counters"]["accepted_batches"]
        _, live = daemon.get("/api/tags/live")
        daemon.kill()
    finally:
        daemon.kill()

    integrity = integrity_check(state_dir / "history.sqlite")
    scans = read_scans(state_dir)
    counts = {"scans_reported_accepted": accepted, "scans_in_store": len(scans),
              "accepted_scans_lost": max(accepted - len(scans), 0), "sqlite_integrity": integrity}
    fault_report.record(SCENARIO, CLAIM, **counts)
    assert integrity == ["ok"]
    assert len(scans) >= accepted
    served = {t["tag_id"] for t in live if t["source_timestamp"] is not None}
    stored_tags = {tag for scan in scans for tag in scan.tag_ids}
    assert served <= stored_tags
    last_by_tag: dict[str, float] = {}
    for scan in scans:
        for tag, ts in zip(scan.tag_ids, scan.source_ts, strict=True):
            last_by_tag[tag] = ts
    # The newest value served live for each tag is no newer than what the store holds.
    from datetime import datetime
    for t in live:
        if t["source_timestamp"] is None:
            continue
        served_ts = datetime.fromisoformat(t["source_timestamp"]).timestamp()
        assert last_by_tag[t["tag_id"]] >= served_ts - 0.001, t["tag_id"]

    restarted = DaemonProcess(state_dir, env=env).start()
    try:
        restarted.wait_for(lambda: restarted.get("/health")[1]["counters"]["accepted_batches"] > 0,
                           90, "scans accepted after the restart")
        standing = {a["key"]: a for a in restarted.get("/api/alarms")[1]}
        fault_report.record(SCENARIO, CLAIM, **counts, alarm_restored=(
            standing.get(ALARM_KEY, {}).get("alarm_id") == alarm["alarm_id"]))
        assert ALARM_KEY in standing
        assert standing[ALARM_KEY]["alarm_id"] == alarm["alarm_id"]
        assert restarted.stop(timeout=20) == 0
    finally:
        restarted.kill()
    assert len(read_scans(state_dir)) > len(scans)
