"""Device faults: the daemon (a subprocess) reads a Modbus server that misbehaves on demand
(tests/integration/hostile_modbus.py) and the simulator's OPC-UA server, which is stopped and
started again. For every fault: the daemon keeps running, the device's values turn bad with the
reason of that fault, and once the device behaves again the values recover with no help.

One daemon serves the whole module; the faults follow each other, each ending in recovery.
"""

from __future__ import annotations

import pytest

from tests.integration.hostile_modbus import Mode
from tests.support import fault_report
from tests.support.daemon import DaemonProcess, free_port
from tests.support.faults import COMMUNICATION_REASONS, SimulatorServer, write_config
from tests.support.hostile import HostileModbusThread

pytestmark = pytest.mark.faults

MODBUS_DEVICE = "plc-hostile"
OPCUA_DEVICE = "scada-sim"
MODBUS_UNITS = ("CDU-101", "FCC-201")
OPCUA_POLL_UNIT = "HT-305"
OPCUA_SUBSCRIBE_UNIT = "ALK-400"
FAULT_TIMEOUT_S = 20.0
RECOVERY_TIMEOUT_S = 30.0

# What the Modbus driver reports for each hostile behaviour (as its integration tests pin).
MODBUS_FAULTS = [
    (Mode.GARBAGE, "malformed_response"),
    (Mode.SHORT, "malformed_response"),
    (Mode.WRONG_BYTE_COUNT, "malformed_response"),
    (Mode.WRONG_TRANSACTION, "protocol_error"),
    (Mode.EXCEPTION, "modbus_exception"),
    (Mode.SILENT, "timeout"),
    (Mode.CLOSE, "disconnected"),
]


def config_body(modbus_port: int, opcua_port: int) -> str:
    return f"""
[[devices]]
id = "{MODBUS_DEVICE}"
protocol = "modbus"
host = "127.0.0.1"
port = {modbus_port}
timeout_s = 0.5

[[devices]]
id = "{OPCUA_DEVICE}"
protocol = "opcua"
endpoint = "opc.tcp://127.0.0.1:{opcua_port}"
timeout_s = 2.0

[[scan_groups]]
id = "hostile-poll"
device = "{MODBUS_DEVICE}"
interval_ms = 500
units = {list(MODBUS_UNITS)!r}

[[scan_groups]]
id = "opcua-poll"
device = "{OPCUA_DEVICE}"
interval_ms = 500
units = ["{OPCUA_POLL_UNIT}"]

[[scan_groups]]
id = "opcua-subscribe"
device = "{OPCUA_DEVICE}"
interval_ms = 500
mode = "subscribe"
units = ["{OPCUA_SUBSCRIBE_UNIT}"]
""".replace("'", '"')


@pytest.fixture(scope="module")
def hostile():
    server = HostileModbusThread(Mode.ANSWER)
    yield server
    server.close()


@pytest.fixture(scope="module")
def simulator(tmp_path_factory):
    directory = tmp_path_factory.mktemp("device-sim")
    sim = SimulatorServer(directory / "simulator.log", free_port(), free_port()).start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, hostile, simulator):
    directory = tmp_path_factory.mktemp("device-faults")
    config = write_config(directory, config_body(hostile.port, simulator.opcua_port))
    d = DaemonProcess(directory / "state", "run", "--config", str(config),
                      env={"REFINERYIQ_OPCUA_SERVER__ENABLED": "false",
                           "REFINERYIQ_ANALYTICS__ENABLED": "false"}).start()
    d.wait_for(lambda: all(dev["last_scan"] for dev in d.get("/health")[1]["devices"]), 90,
               "first scans of both devices")
    yield d
    assert d.proc.poll() is None, f"the daemon died:\n{d.log()[-4000:]}"
    d.kill()


def live_of(daemon: DaemonProcess, device: str) -> list[dict]:
    _, tags = daemon.get("/api/tags/live")
    return [t for t in tags if t["device"] == device]


def device_of(daemon: DaemonProcess, device: str) -> dict:
    status, health = daemon.get("/health")
    assert status in (200, 503), f"/health answered {status} during a device fault: {health}"
    return next(d for d in health["devices"] if d["id"] == device)


def all_bad_with(daemon: DaemonProcess, device: str, reason: str) -> list[dict] | None:
    tags = live_of(daemon, device)
    if tags and all(t["quality_text"] == "bad" and t["reason"] == reason for t in tags):
        return tags
    return None


def communicating(daemon: DaemonProcess, device: str, since: float) -> dict | None:
    """The device is connected, delivered a good scan after ``since`` and no value of it
    carries a communication reason (values the device sent may still be out of range)."""
    dev = device_of(daemon, device)
    if not (dev["state"] == "connected" and (dev["last_good_scan"] or 0) > since):
        return None
    if any(t["reason"] in COMMUNICATION_REASONS for t in live_of(daemon, device)):
        return None
    return dev


def scan_time(daemon: DaemonProcess, device: str) -> float:
    return device_of(daemon, device)["last_scan"] or 0.0


@pytest.mark.parametrize(("mode", "reason"), MODBUS_FAULTS, ids=[m.value for m, _ in MODBUS_FAULTS])
def test_a_hostile_modbus_answer_turns_values_bad_with_its_reason_then_recovers(
        daemon, hostile, mode, reason):
    assert daemon.wait_for(lambda: communicating(daemon, MODBUS_DEVICE, 0), RECOVERY_TIMEOUT_S,
                           "a communicating Modbus device before the fault")
    hostile.set_mode(mode)
    tags = daemon.wait_for(lambda: all_bad_with(daemon, MODBUS_DEVICE, reason), FAULT_TIMEOUT_S,
                           f"every Modbus value bad with reason {reason}")
    assert len(tags) > 0
    fault_seen = scan_time(daemon, MODBUS_DEVICE)
    hostile.set_mode(Mode.ANSWER)
    recovered = daemon.wait_for(lambda: communicating(daemon, MODBUS_DEVICE, fault_seen),
                                RECOVERY_TIMEOUT_S, f"recovery after {mode.value}")
    fault_report.record(f"modbus-{mode.value}", "values bad with the fault's reason, recovery "
                        "unaided, no crash", tags_bad=len(tags), reason=reason,
                        state_after=recovered["state"], daemon_alive=daemon.proc.poll() is None)
    assert daemon.proc.poll() is None


def test_a_modbus_fault_leaves_the_opcua_device_delivering(daemon, hostile):
    hostile.set_mode(Mode.SILENT)
    try:
        daemon.wait_for(lambda: all_bad_with(daemon, MODBUS_DEVICE, "timeout"), FAULT_TIMEOUT_S,
                        "Modbus values timing out")
        since = scan_time(daemon, OPCUA_DEVICE)
        assert daemon.wait_for(lambda: communicating(daemon, OPCUA_DEVICE, since), FAULT_TIMEOUT_S,
                               "OPC-UA scans while Modbus is silent")
        # A device answering with nothing but bad values stops being current: degraded, not
        # unhealthy, while the other device delivers.
        health = daemon.wait_for(lambda: (lambda h: h if h["status"] == "degraded" else None)(
            daemon.get("/health")[1]), FAULT_TIMEOUT_S, "degraded /health")
        assert any(MODBUS_DEVICE in r for r in health["reasons"])
    finally:
        hostile.set_mode(Mode.ANSWER)


def test_an_opcua_server_restart_reads_bad_then_reconnects_unaided(daemon, simulator):
    assert daemon.wait_for(lambda: communicating(daemon, OPCUA_DEVICE, 0), RECOVERY_TIMEOUT_S,
                           "a communicating OPC-UA device before the restart")
    simulator.stop()
    down = daemon.wait_for(
        lambda: (lambda tags: tags if tags and all(t["quality_text"] == "bad" and t["reason"]
                                                   in COMMUNICATION_REASONS for t in tags)
                 else None)(live_of(daemon, OPCUA_DEVICE)),
        FAULT_TIMEOUT_S, "OPC-UA values bad while the server is down")
    assert {t["reason"] for t in down} <= {"disconnected", "timeout"}
    assert device_of(daemon, OPCUA_DEVICE)["state"] == "disconnected"
    stopped_at = scan_time(daemon, OPCUA_DEVICE)
    simulator.start()
    dev = daemon.wait_for(lambda: communicating(daemon, OPCUA_DEVICE, stopped_at),
                          RECOVERY_TIMEOUT_S, "OPC-UA reconnect after the server restart")
    assert dev["state"] == "connected"
    # Both the polled and the subscribed unit deliver good values again.
    good_units = daemon.wait_for(
        lambda: (lambda units: units if units >= {OPCUA_POLL_UNIT, OPCUA_SUBSCRIBE_UNIT} else None)(
            {t["unit_id"] for t in live_of(daemon, OPCUA_DEVICE) if t["quality_text"] == "good"}),
        RECOVERY_TIMEOUT_S, "good values from the polled and the subscribed unit")
    fault_report.record("opcua-server-restart", "values bad while the server is down, reconnect "
                        "unaided, polled and subscribed groups good again", tags_bad=len(down),
                        reasons=sorted({t["reason"] for t in down}), state_after=dev["state"],
                        good_units_after=sorted(good_units))


def test_the_daemon_survived_every_fault(daemon):
    assert daemon.proc.poll() is None
    _, health = daemon.get("/health")
    assert health["status"] == "healthy", health["reasons"]
    # No supervised task (scan loops, accept stage, services) crashed and was restarted.
    assert "task crashed" not in daemon.log()
