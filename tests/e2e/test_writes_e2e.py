"""Writes across the daemon's life: a SIGKILL or a SIGTERM while a write is in flight.

The simulator's control API makes the Modbus device leave writes unanswered, so a write is
held with the device for as long as the test needs; the journal is then read from the state
directory's ``writes.sqlite`` (the daemon cannot fake a file it no longer runs) and through
the API of the restarted daemon.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import urllib.request
from pathlib import Path

import pytest

from gateway.services.accounts.users import Role
from gateway.services.alarms.journal import JOURNAL_FILE
from gateway.services.writes.journal import WRITES_FILE
from tests.support.daemon import DaemonProcess, post_json, state_with_users

PASSWORD = "setpoint change 77"
FEED = "FIC-102.SP"
HELD = {"REFINERYIQ_WRITES__WRITE_TIMEOUT_S": "30"}  # longer than the test holds the write

pytestmark = pytest.mark.timeout(240)


def _start(state: Path, **env: str) -> DaemonProcess:
    d = DaemonProcess(state, env={**HELD, **env}).start()
    health = d.wait_healthy(timeout=90)
    d.control = f"http://127.0.0.1:{health['simulator']['control_port']}"
    d.token = post_json(d.url + "/api/auth/login",
                        {"username": "sofia", "password": PASSWORD})[1]["token"]
    return d


def _hold_writes(d: DaemonProcess) -> None:
    request = urllib.request.Request(f"{d.control}/writes", method="POST",
                                     data=json.dumps({"mode": "timeout"}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


def _write_in_background(d: DaemonProcess, answers: list) -> threading.Thread:
    value = next(t["value"] for t in d.get("/api/tags/writable")[1] if t["tag_id"] == FEED)

    def send() -> None:
        try:
            answers.append(post_json(f"{d.url}/api/tags/{FEED}/write",
                                     {"value": value, "reason": "held"},
                                     {"Authorization": f"Bearer {d.token}"}))
        except OSError as exc:  # the daemon died under the request
            answers.append(exc)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def _pending(d: DaemonProcess) -> list[dict]:
    return d.get("/api/tags/writes?outcome=pending")[1]["writes"]


def _rows(state: Path) -> list[tuple]:
    with sqlite3.connect(state / WRITES_FILE) as conn:
        return conn.execute("SELECT id, tag_id, user_name, outcome, detail FROM writes "
                            "ORDER BY id").fetchall()


def _actions(state: Path) -> list[tuple]:
    with sqlite3.connect(state / JOURNAL_FILE) as conn:
        return conn.execute("SELECT source, outcome, ref FROM operator_actions ORDER BY id").fetchall()


def test_sigkill_during_a_write_leaves_its_request_and_the_restart_marks_it_unknown(tmp_path):
    state = state_with_users(tmp_path / "state", PASSWORD, {"sofia": Role.SUPERVISOR})
    d = _start(state)
    try:
        _hold_writes(d)
        answers: list = []
        _write_in_background(d, answers)
        held = d.wait_for(lambda: _pending(d), 30, "the write pending with the device")[0]
        d.kill()  # SIGKILL: no shutdown code runs
    finally:
        d.kill()
    assert [(r[0], r[1], r[3]) for r in _rows(state)] == [(held["id"], FEED, None)]

    again = _start(state)
    try:
        row = again.get(f"/api/tags/writes?tag_id={FEED}")[1]["writes"][0]
        assert row["id"] == held["id"] and row["outcome"] == "unknown"
        assert "may or may not have reached the device" in row["detail"]
        assert again.get("/health")[1]["writes"]["recovered_unknown"] == 1
    finally:
        again.stop()
    assert (FEED, "unknown", f"write:{held['id']}") in _actions(state)


# The Modbus driver gives up on an unanswered write after 3 s (three times the device's
# timeout_s): a shutdown that waits longer sees it end unconfirmed, a shorter one journals it
# unknown. Either way the row has its outcome before the daemon exits.
@pytest.mark.parametrize(("wait_s", "outcome", "status", "words"), [
    ("0.5", "unknown", 503, "shut down"), ("5", "unconfirmed", 202, "not retried")])
def test_sigterm_during_a_write_journals_its_outcome_before_exiting_0(tmp_path, wait_s, outcome,
                                                                      status, words):
    state = state_with_users(tmp_path / "state", PASSWORD, {"sofia": Role.SUPERVISOR})
    d = _start(state, REFINERYIQ_WRITES__SHUTDOWN_WAIT_S=wait_s)
    try:
        _hold_writes(d)
        answers: list = []
        sender = _write_in_background(d, answers)
        held = d.wait_for(lambda: _pending(d), 30, "the write pending with the device")[0]
        assert d.stop(signal.SIGTERM, timeout=20) == 0
        sender.join(10)
    finally:
        d.kill()
    rows = _rows(state)
    assert [(r[0], r[3]) for r in rows] == [(held["id"], outcome)]
    assert words in rows[0][4]
    answered, body = answers[0]
    assert answered == status
    assert (body.get("write") or body)["outcome"] == outcome
    assert (FEED, outcome, f"write:{held['id']}") in _actions(state)
