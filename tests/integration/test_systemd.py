"""The systemd unit passes systemd's own checks; sd_notify READY/WATCHDOG follow the pipeline."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.daemon import ROOT, DaemonProcess

UNIT = ROOT / "systemd" / "refineryiq.service"
ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed on this machine")
def test_unit_security_exposure_is_ok_or_better():
    out = subprocess.run([ANALYZE, "security", "--offline=true", str(UNIT)],
                         capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out.stdout + out.stderr)
    assert match, out.stdout + out.stderr
    assert float(match.group(1)) <= 4.9


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed on this machine")
def test_unit_verifies_apart_from_the_install_path(tmp_path):
    # The unit points at /opt/refineryiq; verify a copy pointing at this checkout's script.
    script = ROOT / ".venv" / "bin" / "refineryiq"
    if not script.exists():
        pytest.skip("the refineryiq console script is not installed in .venv")
    copy = tmp_path / "refineryiq.service"
    copy.write_text(UNIT.read_text().replace("/opt/refineryiq/.venv/bin/refineryiq", str(script)))
    out = subprocess.run([ANALYZE, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (out.stdout + out.stderr).splitlines()
                if "refineryiq.service" in line]
    assert not problems, problems


def _service_settings() -> dict[str, list[str]]:
    """The [Service] section of the unit: each key with its values in order."""
    section, out = None, {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def test_unit_leaves_the_daemon_at_normal_priority():
    # Nice=, CPUSchedulingPolicy= and IOSchedulingClass= would apply to the daemon (the scans)
    # as much as to its background children, which lower their own priority instead.
    settings = _service_settings()
    for key in ("Nice", "CPUSchedulingPolicy", "CPUSchedulingPriority", "IOSchedulingClass",
                "IOSchedulingPriority"):
        assert key not in settings, key
    assert settings["CPUWeight"] == ["100"]


def test_unit_lets_the_children_lower_their_own_priority():
    # The children call setpriority (nice) and sched_setscheduler (SCHED_IDLE), both in the
    # @resources group the filter otherwise denies.
    filters = _service_settings()["SystemCallFilter"]
    assert any("@resources" in f and f.startswith("~") for f in filters)
    allowed = {name for f in filters if not f.startswith("~") for name in f.split()}
    assert {"setpriority", "sched_setscheduler"} <= allowed


def _notify_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.5)
    return sock


def _messages(sock: socket.socket, seconds: float) -> list[str]:
    out, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            out.append(sock.recv(4096).decode())
        except TimeoutError:
            pass
    return out


def test_daemon_sends_ready_then_watchdog_while_scanning(tmp_path):
    path = tmp_path / "notify.sock"
    sock = _notify_socket(path)
    daemon = DaemonProcess(tmp_path / "state", env={
        "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"}).start()
    try:
        first = _messages(sock, 0.5)
        deadline = time.monotonic() + 90
        while not any("READY=1" in m for m in first) and time.monotonic() < deadline:
            first += _messages(sock, 1.0)
        assert any("READY=1" in m for m in first), daemon.log()[-2000:]
        assert any("STATUS=" in m for m in first)
        running = _messages(sock, 3.0)
        assert sum("WATCHDOG=1" in m for m in running) >= 3
    finally:
        daemon.kill()
        sock.close()


async def test_watchdog_stops_when_no_scan_is_accepted(tmp_path):
    """The keep-alive follows accepted scans, not the event loop merely running."""
    import asyncio
    import types

    from gateway.daemon import Gateway
    from gateway.runtime.sdnotify import Notifier

    path = tmp_path / "notify.sock"
    sock = _notify_socket(path)
    sock.setblocking(False)
    gateway = Gateway.__new__(Gateway)
    gateway.notifier = Notifier(str(path))
    gateway.pipeline = types.SimpleNamespace(accepted_batches=0)
    task = asyncio.create_task(gateway._watchdog_loop(0.05))

    def drain() -> int:
        n = 0
        while True:
            try:
                n += sock.recv(4096).count(b"WATCHDOG=1")
            except BlockingIOError:
                return n

    for _ in range(10):  # scanning: a new accepted batch every 50 ms
        gateway.pipeline.accepted_batches += 1
        await asyncio.sleep(0.05)
    assert drain() >= 5
    await asyncio.sleep(0.5)  # stalled: nothing accepted
    drain()
    await asyncio.sleep(0.5)
    assert drain() == 0
    task.cancel()
    sock.close()
