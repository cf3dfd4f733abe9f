"""The HTTP front door of writes against `refineryiq run --simulate` with API users.

``POST /api/tags/{tag_id}/write`` answers each outcome with its status (200 confirmed, 202
unconfirmed, 4xx with ``{"detail", "write"}`` for a refusal, 502 failed) and every request
that reaches the write path has a journal row, read back with ``GET /api/tags/writes``.
What the device received comes from the simulator's control API.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest

from gateway.services.accounts.users import Role
from tests.support.daemon import DaemonProcess, post_json, state_with_users

PASSWORD = "setpoint change 77"
SETPOINT = "TIC-101.SP"  # write range 330..370 °C, max_step 10, supervisor
FEED = "FIC-102.SP"  # 9000..11000 bpd, max_step 500

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    state = state_with_users(tmp_path_factory.mktemp("write-api") / "state", PASSWORD,
                             {"sofia": Role.SUPERVISOR, "olga": Role.OPERATOR,
                              "vera": Role.VIEWER})
    d = DaemonProcess(state, env={"REFINERYIQ_WRITES__WRITE_TIMEOUT_S": "0.5"}).start()
    health = d.wait_healthy(timeout=90)
    d.control = f"http://127.0.0.1:{health['simulator']['control_port']}"
    d.tokens = {name: post_json(d.url + "/api/auth/login",
                                {"username": name, "password": PASSWORD})[1]["token"]
                for name in ("sofia", "olga", "vera")}
    yield d
    d.kill()


def write(d: DaemonProcess, tag_id: str, value, user: str | None = "sofia",
          reason: str = "test") -> tuple[int, dict]:
    headers = {} if user is None else {"Authorization": f"Bearer {d.tokens[user]}"}
    return post_json(f"{d.url}/api/tags/{tag_id}/write", {"value": value, "reason": reason},
                     headers)


def journal(d: DaemonProcess, query: str = "") -> dict:
    status, body = d.get(f"/api/tags/writes?{query}")
    assert status == 200, body
    return body


def current(d: DaemonProcess, tag_id: str) -> float:
    return next(t["value"] for t in d.get("/api/tags/writable")[1] if t["tag_id"] == tag_id)


def near(value: float, offset: float, lo: float, hi: float) -> float:
    target = value + offset
    return round(target if lo <= target <= hi else value - offset, 1)


def control(d: DaemonProcess, method: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(d.control + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def device_writes(d: DaemonProcess, tag_id: str) -> list[dict]:
    return [w for w in control(d, "GET", "/writes")["writes"] if w["tag_id"] == tag_id]


# --------------------------------------------------------------------------- outcomes


def test_a_confirmed_write_answers_200_with_its_journal_row(daemon):
    target = near(current(daemon, SETPOINT), 2.0, 330, 370)
    status, row = write(daemon, SETPOINT, target, reason="raise outlet temperature")
    assert status == 200, row
    assert row["outcome"] == "confirmed" and row["read_back_value"] == pytest.approx(target, abs=0.05)
    assert (row["user"], row["role"], row["origin"], row["reason"]) == (
        "sofia", "supervisor", "http", "raise outlet temperature")
    assert row["client"] == "127.0.0.1" and row["old_value"] is not None
    assert journal(daemon, f"tag_id={SETPOINT}&limit=1")["writes"][0] == row


def test_a_write_that_times_out_answers_202_unconfirmed_and_reached_the_device_once(daemon):
    target = near(current(daemon, FEED), 50.0, 9000, 11000)
    before = len(device_writes(daemon, FEED))
    control(daemon, "POST", "/writes", {"mode": "timeout", "device": "modbus"})
    try:
        status, row = write(daemon, FEED, target)
    finally:
        control(daemon, "POST", "/writes", {"mode": "normal"})
    assert status == 202 and row["outcome"] == "unconfirmed", row
    time.sleep(1.0)  # a retry would have been sent by now
    sent = device_writes(daemon, FEED)[before:]
    assert [(w["value"], w["outcome"]) for w in sent] == [(pytest.approx(target, abs=0.05),
                                                          "unanswered")]


def test_a_write_the_device_refuses_answers_502_failed(daemon):
    target = near(current(daemon, SETPOINT), 1.0, 330, 370)
    control(daemon, "POST", "/writes", {"mode": "refuse", "device": "modbus"})
    try:
        status, body = write(daemon, SETPOINT, target)
    finally:
        control(daemon, "POST", "/writes", {"mode": "normal"})
    assert status == 502
    assert body["write"]["outcome"] == "failed" and body["detail"] == body["write"]["detail"]
    assert body["write"]["device_status"] == "ServerDeviceFailure"


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(("tag_id", "value", "user", "status", "refusal"), [
    (SETPOINT, 350.0, "vera", 403, "ROLE"),
    (SETPOINT, 350.0, "olga", 403, "ROLE"),
    ("NO-SUCH-TAG", 1.0, "sofia", 404, "UNKNOWN_TAG"),
    ("TI-101", 350.0, "sofia", 409, "NOT_WRITABLE"),
    (SETPOINT, 371.0, "sofia", 422, "OUT_OF_RANGE"),
    (SETPOINT, 329.0, "sofia", 422, "OUT_OF_RANGE"),
    ("XV-101", 0.5, "sofia", 422, "NOT_ENCODABLE"),
])
def test_each_refusal_answers_its_status_with_the_reason_and_a_journal_row(
        daemon, tag_id, value, user, status, refusal):
    before = len(device_writes(daemon, tag_id))
    got, body = write(daemon, tag_id, value, user)
    assert got == status, body
    assert set(body) == {"detail", "write"} and body["detail"]
    row = body["write"]
    assert (row["outcome"], row["refusal"], row["user"]) == ("rejected", refusal, user)
    assert journal(daemon, f"tag_id={tag_id}&limit=1")["writes"][0]["id"] == row["id"]
    assert len(device_writes(daemon, tag_id)) == before


def test_a_step_larger_than_max_step_is_refused(daemon):
    now = current(daemon, SETPOINT)
    far = now + 12.0 if now + 12.0 <= 370 else now - 12.0
    status, body = write(daemon, SETPOINT, far)
    assert status == 422 and body["write"]["refusal"] == "STEP"
    assert "max" in body["detail"] or "more than" in body["detail"]


def test_without_a_token_the_write_is_401_and_not_journaled(daemon):
    before = journal(daemon)["total"]
    status, body = write(daemon, SETPOINT, 350.0, user=None)
    assert status == 401 and "detail" in body
    assert journal(daemon)["total"] == before


@pytest.mark.parametrize("body", [{"value": "350", "reason": "x"}, {"value": True, "reason": "x"},
                                  {"value": 350.0}, {"value": 350.0, "reason": "  "},
                                  {"value": 350.0, "reason": "x", "force": True}, [350.0]])
def test_a_body_that_is_not_a_value_and_a_reason_is_422(daemon, body):
    status, answer = post_json(f"{daemon.url}/api/tags/{SETPOINT}/write", body,
                               {"Authorization": f"Bearer {daemon.tokens['sofia']}"})
    assert status == 422 and answer["detail"]


# --------------------------------------------------------------------------- order


def test_concurrent_writes_to_one_tag_reach_the_device_in_journal_order(daemon):
    start = current(daemon, FEED)
    direction = 1.0 if start <= 10000 else -1.0
    targets = [round(start + direction * 10 * (k + 1), 1) for k in range(6)]
    before = len(device_writes(daemon, FEED))
    answers: dict[float, tuple[int, dict]] = {}

    def send(value: float) -> None:
        answers[value] = write(daemon, FEED, value)

    threads = [threading.Thread(target=send, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert all(status == 200 for status, _ in answers.values()), answers
    by_id = sorted(answers.values(), key=lambda a: a[1]["id"])
    journal_order = [row["requested_value"] for _, row in by_id]
    sent = [w["value"] for w in device_writes(daemon, FEED)[before:]]
    assert sent == [pytest.approx(v, abs=0.05) for v in journal_order]
    for _, row in by_id:  # each one confirmed its own value: never interleaved
        assert row["read_back_value"] == pytest.approx(row["requested_value"], abs=0.05)


# --------------------------------------------------------------------------- the journal


def test_the_journal_filters_by_tag_outcome_user_and_time(daemon):
    since = time.time()
    write(daemon, SETPOINT, 999.0, "sofia")
    write(daemon, SETPOINT, 350.0, "vera")
    rejected = journal(daemon, f"tag_id={SETPOINT}&outcome=rejected&since={since}")
    assert rejected["total"] == 2 and {r["user"] for r in rejected["writes"]} == {"sofia", "vera"}
    vera = journal(daemon, f"user=vera&since={since}")
    assert [r["user"] for r in vera["writes"]] == ["vera"]
    assert journal(daemon, f"until={since}&user=vera&since={since - 3600}")["total"] == (
        journal(daemon, "user=vera")["total"] - 1)
    page = journal(daemon, "limit=1&offset=1")
    assert len(page["writes"]) == 1 and page["limit"] == 1 and page["offset"] == 1
    newest = journal(daemon, "limit=2")["writes"]
    assert newest[0]["id"] > newest[1]["id"]


@pytest.mark.parametrize("query", ["outcome=maybe", "limit=0", "limit=1001", "since=yesterday",
                                   "offset=-1"])
def test_a_bad_journal_query_is_400(daemon, query):
    status, body = daemon.get(f"/api/tags/writes?{query}")
    assert status == 400 and body["detail"]


def test_both_routes_are_in_the_openapi_document(daemon):
    paths = daemon.get("/api/openapi.json")[1]["paths"]
    post = paths["/api/tags/{tag_id}/write"]["post"]
    assert post["security"] == [{"bearer": []}]
    assert {"403", "404", "409", "422", "502"} <= set(post["responses"])
    assert "parameters" in paths["/api/tags/writes"]["get"]
