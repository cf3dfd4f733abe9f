"""What a new user meets at the process level: Ctrl-C, a hard death, a port in use.

The daemon runs as `refineryiq run --simulate` in a session of its own, signalled the way a
terminal and the kernel signal it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from tests.support.daemon import ROOT, DaemonProcess, free_port


def _log_lines(daemon: DaemonProcess) -> list[str]:
    return [line for line in daemon.log().splitlines() if line.strip()]


def _records(daemon: DaemonProcess) -> list[dict]:
    return [json.loads(line) for line in _log_lines(daemon)]


def _simulator_child(daemon: DaemonProcess) -> psutil.Process:
    (child,) = [c for c in psutil.Process(daemon.proc.pid).children()
                if "simulator" in " ".join(c.cmdline())]
    return child


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.1)
    return False


def test_ctrl_c_stops_cleanly_exit_0_with_only_structured_lines_and_no_error(tmp_path):
    daemon = DaemonProcess(tmp_path / "state").start()
    try:
        daemon.wait_healthy(90)
        child = _simulator_child(daemon)
        # A terminal's Ctrl-C signals the whole foreground process group.
        os.killpg(daemon.proc.pid, signal.SIGINT)
        assert daemon.proc.wait(30) == 0
    finally:
        daemon.kill()
    assert _gone(child.pid)
    lines = _log_lines(daemon)
    unstructured = [line for line in lines if not line.startswith("{")]
    assert unstructured == []
    errors = [r for r in _records(daemon) if r["level"] in ("error", "critical")]
    assert errors == []
    assert _records(daemon)[-1]["event"] == "gateway stopped"


def test_the_simulators_library_notices_arrive_structured_at_a_fitting_level(tmp_path):
    daemon = DaemonProcess(tmp_path / "state").start()
    try:
        daemon.wait_healthy(90)
    finally:
        daemon.stop()
    events = " ".join(r["event"] for r in _records(daemon))
    # asyncua's notices about the loopback None policy are the documented default, not warnings.
    assert "No signing policy available" not in events
    assert "No encrypting policy available" not in events


def test_sigkill_of_the_gateway_takes_the_simulator_child_along_and_a_restart_works(tmp_path):
    ports = {"REFINERYIQ_SIMULATOR__OPCUA_PORT": str(free_port()),
             "REFINERYIQ_SIMULATOR__MODBUS_PORT": str(free_port())}
    first = DaemonProcess(tmp_path / "state", env=ports).start()
    try:
        first.wait_healthy(90)
        child = _simulator_child(first)
        first.proc.send_signal(signal.SIGKILL)  # the gateway alone, like the OOM killer
        first.proc.wait(10)
        assert _gone(child.pid), "the simulator child outlived its gateway"
    finally:
        first.kill()
    again = DaemonProcess(tmp_path / "state", env=ports).start()
    try:
        health = again.wait_healthy(90)
        assert health["simulator"]["opcua_port"] == int(ports["REFINERYIQ_SIMULATOR__OPCUA_PORT"])
    finally:
        again.stop()


def _held(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


@pytest.mark.parametrize("setting,env", [
    ("http.port", "REFINERYIQ_HTTP__PORT"),
    ("opcua_server.port", "REFINERYIQ_OPCUA_SERVER__PORT"),
    ("simulator.opcua_port", "REFINERYIQ_SIMULATOR__OPCUA_PORT"),
    ("simulator.modbus_port", "REFINERYIQ_SIMULATOR__MODBUS_PORT"),
])
def test_a_port_in_use_names_its_setting_and_exits_2_leaving_nothing_behind(tmp_path, setting, env):
    port = free_port()
    holder = _held(port)
    daemon = DaemonProcess(tmp_path / "state", env={env: str(port)})
    try:
        daemon.start()
        code = daemon.proc.wait(60)
        children = psutil.Process().children(recursive=True)
    finally:
        daemon.kill()
        holder.close()
    log = daemon.log()
    assert code == 2, log
    assert f"{setting}: 127.0.0.1:{port} is already in use" in log
    assert env in log
    assert "Traceback" not in log and "Task was destroyed" not in log
    assert not [c for c in children if "simulator" in " ".join(c.cmdline())]


def test_scenario_needs_simulate():
    done = subprocess.run([sys.executable, "-m", "refineryiq.cli", "run", "--scenario",
                           "furnace-upset"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "--scenario needs --simulate" in done.stderr
