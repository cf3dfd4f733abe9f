"""SIGHUP re-reads the configuration: a valid one applies live, a broken one is rejected."""

from __future__ import annotations

import re
import signal

import pytest

from plant.load import load_plant
from tests.support.daemon import ROOT, DaemonProcess
from tests.support.faults import simulate_config

# The OPC-UA device's tags once both its groups poll: every plant tag of HT-305 and ALK-400.
OPCUA_TAGS = sum(1 for t in load_plant(ROOT / "config" / "plant.toml").tags
                 if t.unit_id in ("HT-305", "ALK-400") and t.opcua is not None)


def sighup(daemon: DaemonProcess, logged: str, timeout: float) -> None:
    """Send SIGHUP and wait until the daemon's log says ``logged``."""
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_for(lambda: logged in daemon.log(), timeout, f"'{logged}' in the log")


@pytest.fixture
def daemon_with_copy(tmp_path):
    path = simulate_config(tmp_path)
    text = path.read_text()
    d = DaemonProcess(tmp_path / "state", "run", "--simulate", "--config", str(path)).start()
    yield d, path, text
    d.kill()


def test_sighup_with_a_broken_config_keeps_the_daemon_running(daemon_with_copy):
    daemon, path, text = daemon_with_copy
    daemon.wait_healthy(timeout=90)
    path.write_text(text.replace("interval_ms = 1000", "interval_ms = 'fast'", 1))
    sighup(daemon, "reload rejected", 20)
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
    sighup(daemon, "configuration reloaded", 30)

    def alk_polled():
        _, health = daemon.get("/health")
        opc = next(d for d in health["devices"] if d["id"] == "scada-ht-alk")
        return health if health["status"] == "healthy" and opc["tags"] == OPCUA_TAGS else None

    daemon.wait_for(alk_polled, 30, "ALK-400 tags polled by the OPC-UA group")
    _, tags = daemon.get("/api/tags/live")
    assert all(t["quality"] == 192 for t in tags if t["unit_id"] == "ALK-400")
    assert daemon.proc.pid == pid and daemon.proc.poll() is None


def test_sighup_with_a_changed_limit_changes_alarm_behaviour(tmp_path):
    plant = tmp_path / "plant.toml"
    plant_text = (ROOT / "config/plant.toml").read_text()
    plant.write_text(plant_text)
    text = (ROOT / "config/gateway.toml").read_text().replace(
        'plant_file = "plant.toml"', f'plant_file = "{plant}"')
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    daemon = DaemonProcess(tmp_path / "state", "run", "--simulate", "--config", str(path),
                           env={"REFINERYIQ_ALARMS__ON_DELAY_S": "0"}).start()
    try:
        daemon.wait_healthy(timeout=90)
        _, alarms = daemon.get("/api/alarms")
        assert not [a for a in alarms if a["tag_id"] == "TI-104"]
        # TI-104 runs near 120 °C; lower its high limit below that.
        block = re.search(r'\[\[tags\]\]\nid = "TI-104".*?\n\n', plant_text, flags=re.S).group(0)
        plant.write_text(plant_text.replace(block, block.replace("normal_max = 130", "normal_max = 112")
                                            .replace("normal_min = 110", "normal_min = 100")))
        sighup(daemon, "configuration reloaded", 30)

        def ti104_alarm():
            _, alarms = daemon.get("/api/alarms")
            return [a for a in alarms if a["tag_id"] == "TI-104"]

        [alarm] = daemon.wait_for(ti104_alarm, 30, "a TI-104 high alarm after the reload")
        assert alarm["kind"] in ("HI", "HIHI")
    finally:
        daemon.kill()
