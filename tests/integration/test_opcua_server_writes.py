"""Writes through the northbound OPC-UA server: an asyncua client against
`refineryiq run --simulate`, the write reaching the simulator through the gateway's write path.

Two daemons: security None (only anonymous sessions, which may read but never write) and
Basic256Sha256 with a viewer and a supervisor account. Every attempt that names a writable tag
is journaled with origin ``opcua``; what the device received is read from the simulator's
control API (``GET /writes``).
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from asyncua import Client, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support.daemon import DaemonProcess, free_port

SC = ua.StatusCodes
SETPOINT = "TIC-101.SP"  # holding register, write range 330..370 °C, max_step 10, supervisor
VALVE = "HIC-401.SP"  # on the OPC-UA device, write_role operator
PASSWORD = "scada writer 2026"
HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # the flow, not the cost

pytestmark = pytest.mark.timeout(180)


def _daemon(state: Path, port: int, **env: str) -> DaemonProcess:
    d = DaemonProcess(state, env={"REFINERYIQ_OPCUA_SERVER__PORT": str(port), **env}).start()
    health = d.wait_healthy(timeout=90)
    d.wait_for(lambda: d.get("/health")[1]["opcua_server"]["state"] == "serving", 60,
               "the OPC-UA server serving")
    d.opcua_url = f"opc.tcp://127.0.0.1:{port}"
    d.control = f"http://127.0.0.1:{health['simulator']['control_port']}"
    return d


@pytest.fixture(scope="module")
def open_daemon(tmp_path_factory):
    d = _daemon(tmp_path_factory.mktemp("opcua-writes-open") / "state", free_port())
    yield d
    d.kill()


@pytest.fixture(scope="module")
def secure_daemon(tmp_path_factory):
    users = [{"username": "scada-viewer", "password_hash": HASHER.hash(PASSWORD), "role": "viewer"},
             {"username": "scada-super", "password_hash": HASHER.hash(PASSWORD),
              "role": "supervisor"}]
    work = tmp_path_factory.mktemp("opcua-writes-secure")
    d = _daemon(work / "state", free_port(), REFINERYIQ_OPCUA_SERVER__SECURITY="Basic256Sha256",
                REFINERYIQ_OPCUA_SERVER__USERS=json.dumps(users))
    d.work = work
    yield d
    d.kill()


async def _secure_client(d: DaemonProcess, user: str) -> Client:
    key, cert = d.work / "client-key.pem", d.work / "client-cert.der"
    await setup_self_signed_certificate(key, cert, "urn:refineryiq:test-writer", "localhost",
                                        [ExtendedKeyUsageOID.CLIENT_AUTH], {"commonName": "writer"})
    client = Client(d.opcua_url)
    await client.set_security_string(f"Basic256Sha256,SignAndEncrypt,{cert},{key}")
    client.set_user(user)
    client.set_password(PASSWORD)
    return client


async def _write(client: Client, tag_id: str, variant: ua.Variant) -> int:
    """Write a Value and return the StatusCode the server answered (not raised)."""
    item = ua.WriteValue()
    item.NodeId = ua.NodeId(tag_id, 2)
    item.AttributeId = ua.AttributeIds.Value
    item.Value = ua.DataValue(variant)
    params = ua.WriteParameters()
    params.NodesToWrite.append(item)
    return (await client.uaclient.write(params))[0].value


def _journal(d: DaemonProcess, **query: str) -> list[dict]:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return d.get(f"/api/tags/writes?{qs}")[1]["writes"]


def _device_writes(d: DaemonProcess, tag_id: str) -> list[dict]:
    with urllib.request.urlopen(f"{d.control}/writes", timeout=10) as resp:
        return [w for w in json.loads(resp.read())["writes"] if w["tag_id"] == tag_id]


def _set_mode(d: DaemonProcess, mode: str) -> None:
    request = urllib.request.Request(f"{d.control}/writes", data=json.dumps({"mode": mode}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


def _current(d: DaemonProcess, tag_id: str) -> float:
    return next(t["value"] for t in d.get("/api/tags/writable")[1] if t["tag_id"] == tag_id)


# --------------------------------------------------------------------------- security None


async def test_exactly_the_writable_tags_are_writable(open_daemon):
    writable = {t["tag_id"] for t in open_daemon.get("/api/tags/writable")[1]}
    assert SETPOINT in writable
    async with Client(open_daemon.opcua_url) as client:
        for tag_id in (SETPOINT, "TI-101", "FI-402"):
            node = client.get_node(ua.NodeId(tag_id, 2))
            level = await node.read_attribute(ua.AttributeIds.AccessLevel)
            can_write = bool(level.Value.Value & ua.AccessLevel.CurrentWrite.mask)
            assert can_write == (tag_id in writable), tag_id


async def test_an_anonymous_write_is_denied_and_journaled(open_daemon):
    before = len(_device_writes(open_daemon, SETPOINT))
    async with Client(open_daemon.opcua_url) as client:
        status = await _write(client, SETPOINT, ua.Variant(352.0, ua.VariantType.Double))
    assert status == SC.BadUserAccessDenied
    rows = _journal(open_daemon, tag_id=SETPOINT, user="anonymous")
    assert rows and rows[0]["outcome"] == "rejected" and rows[0]["refusal"] == "ROLE"
    assert rows[0]["origin"] == "opcua" and rows[0]["client"].startswith("127.0.0.1:")
    assert len(_device_writes(open_daemon, SETPOINT)) == before  # nothing sent


async def test_a_read_only_tag_stays_refused_by_the_server(open_daemon):
    async with Client(open_daemon.opcua_url) as client:
        status = await _write(client, "TI-101", ua.Variant(1.0, ua.VariantType.Double))
    assert status in (SC.BadNotWritable, SC.BadUserAccessDenied)
    assert _journal(open_daemon, tag_id="TI-101") == []  # not a write the gateway offers


# --------------------------------------------------------------------------- Basic256Sha256


async def test_a_viewer_is_denied(secure_daemon):
    client = await _secure_client(secure_daemon, "scada-viewer")
    async with client:
        status = await _write(client, VALVE, ua.Variant(45.0, ua.VariantType.Double))
    assert status == SC.BadUserAccessDenied
    row = _journal(secure_daemon, tag_id=VALVE, user="scada-viewer")[0]
    assert (row["outcome"], row["refusal"], row["role"]) == ("rejected", "ROLE", "viewer")


async def test_a_supervisor_writes_a_setpoint_and_it_is_confirmed(secure_daemon):
    target = round(_current(secure_daemon, SETPOINT) + 2.0, 1)
    client = await _secure_client(secure_daemon, "scada-super")
    async with client:
        status = await _write(client, SETPOINT, ua.Variant(target, ua.VariantType.Double))
    assert status == SC.Good
    row = _journal(secure_daemon, tag_id=SETPOINT, user="scada-super")[0]
    assert row["outcome"] == "confirmed" and row["origin"] == "opcua"
    assert row["read_back_value"] == pytest.approx(target, abs=0.05)
    sent = _device_writes(secure_daemon, SETPOINT)
    assert sent[-1]["value"] == pytest.approx(target, abs=0.05)


async def test_a_value_outside_the_limits_is_bad_out_of_range(secure_daemon):
    before = len(_device_writes(secure_daemon, SETPOINT))
    current = _current(secure_daemon, SETPOINT)
    far = current + 15.0 if current + 15.0 <= 370.0 else current - 15.0  # max_step is 10
    client = await _secure_client(secure_daemon, "scada-super")
    async with client:
        too_high = await _write(client, SETPOINT, ua.Variant(390.0, ua.VariantType.Double))
        too_far = await _write(client, SETPOINT, ua.Variant(far, ua.VariantType.Double))
    assert too_high == SC.BadOutOfRange
    assert too_far == SC.BadOutOfRange
    refusals = [r["refusal"] for r in _journal(secure_daemon, tag_id=SETPOINT, limit="2")]
    assert set(refusals) == {"OUT_OF_RANGE", "STEP"}
    assert len(_device_writes(secure_daemon, SETPOINT)) == before


async def test_a_value_that_is_not_a_number_is_a_type_mismatch(secure_daemon):
    client = await _secure_client(secure_daemon, "scada-super")
    async with client:
        status = await _write(client, SETPOINT, ua.Variant("355", ua.VariantType.String))
    assert status == SC.BadTypeMismatch


async def test_a_device_refusal_passes_its_status_code_back(secure_daemon):
    target = round(_current(secure_daemon, VALVE) + 1.0, 1)
    _set_mode(secure_daemon, "refuse")
    try:
        client = await _secure_client(secure_daemon, "scada-super")
        async with client:
            status = await _write(client, VALVE, ua.Variant(target, ua.VariantType.Double))
    finally:
        _set_mode(secure_daemon, "normal")
    row = _journal(secure_daemon, tag_id=VALVE, user="scada-super")[0]
    assert row["outcome"] == "failed" and row["device_status"] == "BadNotWritable"
    assert status == SC.BadNotWritable
