"""Disk full and read-only state directory: the daemon's state directory is a small tmpfs
mounted for the test (we run as root; without mount rights the module is skipped, it does not
fake the fault). Filling it, or remounting it read-only, makes the embedded store's writes fail:
/health answers 503 ``unhealthy`` naming the store, the log says why, the daemon keeps running;
once space or write access returns it accepts scans again and, stopped, leaves a SQLite file
that passes ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from tests.support import fault_report
from tests.support.daemon import DaemonProcess
from tests.support.faults import integrity_check

pytestmark = pytest.mark.faults

TMPFS_SIZE = "16m"
FILLER_CHUNK = b"\0" * (1 << 20)
FAULT_TIMEOUT_S = 30.0


def mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("disk") / "state"
    path.mkdir()
    done = mount("-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(path))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the state directory: {done.stderr.strip()}")
    yield path
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture(scope="module")
def daemon(state_dir):
    d = DaemonProcess(state_dir, env={"REFINERYIQ_OPCUA_SERVER__ENABLED": "false",
                                      "REFINERYIQ_ANALYTICS__ENABLED": "false"})
    d.log_path = state_dir.parent / "daemon.log"  # the log must not share the full disk
    d.start()
    d.wait_healthy(90)
    yield d
    d.kill()


def fill(directory: Path) -> Path:
    """Write zeros until the file system says ENOSPC."""
    filler = directory / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(FILLER_CHUNK)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def unhealthy_store(daemon: DaemonProcess) -> dict | None:
    status, body = daemon.get("/health")
    if status == 503 and body["status"] == "unhealthy" and \
            any(r.startswith("embedded store") for r in body["reasons"]):
        return body
    return None


def accepting(daemon: DaemonProcess, after: int) -> dict | None:
    status, body = daemon.get("/health")
    if status == 200 and body["status"] == "healthy" and body["counters"]["accepted_batches"] > after:
        return body
    return None


def test_a_full_disk_makes_the_gateway_unhealthy_with_a_clear_error(daemon, state_dir):
    filler = fill(state_dir)
    try:
        body = daemon.wait_for(lambda: unhealthy_store(daemon), FAULT_TIMEOUT_S, "unhealthy /health")
        fault_report.record("disk-full", "a clear error, /health unhealthy, accepting again once "
                            "space returns, no corruption", health=body["status"],
                            reason=body["reasons"][0], store_errors=body["counters"]["store_errors"])
        assert "full" in body["reasons"][0].lower()
        assert body["counters"]["store_errors"] > 0
        assert "embedded store write failed" in daemon.log()
        stuck = body["counters"]["accepted_batches"]
    finally:
        filler.unlink()
    daemon.wait_for(lambda: accepting(daemon, stuck), FAULT_TIMEOUT_S, "accepting after space returned")


def test_no_corruption_after_the_disk_filled_and_emptied(daemon, state_dir):
    assert daemon.stop(timeout=20) == 0
    for name in os.listdir(state_dir):
        if name.endswith(".sqlite"):
            assert integrity_check(state_dir / name) == ["ok"], name


def test_a_read_only_state_dir_stops_the_start_with_a_clear_error_and_no_damage(state_dir):
    # A file system cannot be remounted read-only under a process writing to it (EBUSY), so
    # the read-only case is the one an operator meets: the daemon starts on a read-only mount.
    assert mount("-o", "remount,ro", str(state_dir)).returncode == 0
    try:
        d = DaemonProcess(state_dir, env={"REFINERYIQ_OPCUA_SERVER__ENABLED": "false"})
        d.log_path = state_dir.parent / "daemon-ro.log"
        d.start()
        try:
            code = d.proc.wait(60)
        finally:
            d.kill()
        assert code == 1
        # The operator must learn which directory is the problem, not only "unable to open".
        last = d.log().strip().splitlines()[-1]
        fault_report.record("read-only-state-dir", "the start stops with a clear error naming "
                            "the directory; no damage", exit_code=code, last_log_line=last)
        assert str(state_dir) in last and ("read-only" in last or "readonly" in last), last
    finally:
        assert mount("-o", "remount,rw", str(state_dir)).returncode == 0
    assert integrity_check(state_dir / "history.sqlite") == ["ok"]
    again = DaemonProcess(state_dir, env={"REFINERYIQ_OPCUA_SERVER__ENABLED": "false"})
    again.log_path = state_dir.parent / "daemon-again.log"
    again.start()
    try:
        again.wait_healthy(90)
    finally:
        again.kill()
