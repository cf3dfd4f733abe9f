"""SIGHUP re-reads the configuration: a valid one applies live, a broken one is rejected."""

from __future__ import annotations

import re
import signal

import pytest

from tests.support.daemon import ROOT, DaemonProcess


def _config_copy(tmp_path):
    text = (ROOT / "config/gateway.toml").read_text()
    text = text.replace('plant_file = "plant.toml"', f'plant_file = "{ROOT}/config/plant.toml"')
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path, text


@pytest.fixture
def daemon_with_copy(tmp_path):
    path, text = _config_copy(tmp_path)
    d = DaemonProcess(tmp_path / "state", "run", "--simulate", "--config", str(path)).start()
    yield d, path, text
    d.kill()


def test_sighup_with_a_broken_config_keeps_the_daemon_running(daemon_with_copy):
    daemon, path, text = daemon_with_copy
    daemon.wait_healthy(timeout=90)
    path.write_text(text.replace("interval_ms = 1000", "interval_ms = 'fast'", 1))
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_for(lambda: "reload rejected" in daemon.log(), 20, "reload rejected in the log")
    assert "scan_groups.0.interval_ms" in daemon.log()
    health = daemon.wait_healthy(timeout=20)
    assert len(health["devices"]) == 2


def test_sighup_applies_a_changed_scan_configuration_without_restart(daemon_with_copy):
    daemon, path, text = daemon_with_copy
    daemon.wait_healthy(timeout=90)
    pid = daemon.proc.pid
    # Move ALK-400 from its subscription group into the polled OPC-UA group at 500 ms.
    changed = re.sub(r'\[\[scan_groups\]\]\nid = "alk-subscribe".*?units = \["ALK-400"\]\n', "",
                     text, flags=re.S)
    changed = changed.replace('units = ["HT-305"]', 'units = ["HT-305", "ALK-400"]')
    changed = changed.replace('id = "ht-alk-poll"\ndevice = "scada-ht-alk"\ninterval_ms = 1000',
                              'id = "ht-alk-poll"\ndevice = "scada-ht-alk"\ninterval_ms = 500')
    assert changed != text
    path.write_text(changed)
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_for(lambda: "configuration reloaded" in daemon.log(), 30, "reload in the log")

    def alk_polled():
        _, health = daemon.get("/health")
        opc = next(d for d in health["devices"] if d["id"] == "scada-ht-alk")
        return health if health["status"] == "healthy" and opc["tags"] == 22 else None

    daemon.wait_for(alk_polled, 30, "ALK-400 tags polled by the OPC-UA group")
    _, tags = daemon.get("/api/tags/live")
    assert all(t["quality"] == 192 for t in tags if t["unit_id"] == "ALK-400")
    assert daemon.proc.pid == pid and daemon.proc.poll() is None
