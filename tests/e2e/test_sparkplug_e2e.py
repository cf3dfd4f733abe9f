"""The daemon (`refineryiq run --simulate`) as a Sparkplug B edge node, end to end: simulator,
drivers, pipeline, embedded store, the node, the real Mosquitto, and our host application.

Turned on from the environment only (REFINERYIQ_SPARKPLUG__ENABLED=true, the broker of
`[mqtt]`), the group id defaults to the site and the edge node id to the gateway id.
"""

from __future__ import annotations

import signal
import uuid

import pytest

from gateway.settings import GatewaySettings
from tests.support.daemon import DaemonProcess
from tests.support.sparkplug_host import SparkplugHost, seq_gaps

pytestmark = pytest.mark.skipif(
    "sparkplug" not in GatewaySettings.model_fields,
    reason="the [sparkplug] section is not wired into GatewaySettings yet")

DEVICES = {"plc-cdu-fcc", "scada-ht-alk"}  # config/gateway.toml


@pytest.fixture
def site() -> str:
    return f"e2e-{uuid.uuid4().hex[:8]}"


async def test_daemon_births_its_devices_publishes_ddata_and_dies_cleanly(tmp_path, site):
    host = await SparkplugHost(site).start()
    daemon = DaemonProcess(tmp_path / "state", env={
        "REFINERYIQ_SITE": site,
        "REFINERYIQ_MQTT__HOST": "127.0.0.1",
        "REFINERYIQ_SPARKPLUG__ENABLED": "true",
        "REFINERYIQ_ANALYTICS__ENABLED": "false",
        "REFINERYIQ_MAINTENANCE__ENABLED": "false",
    }).start()
    try:
        nbirth = (await host.wait_kind("NBIRTH", timeout=90))[0]
        assert nbirth.topic == f"spBv1.0/{site}/NBIRTH/edge-01"
        assert nbirth.metric("Node Control/Rebirth").value is False
        births = await host.wait_kind("DBIRTH", count=2, timeout=60)
        assert {b.device for b in births} == DEVICES
        names = {m.name for b in births for m in b.metrics}
        assert "CDU-101/FURNACE-100/TI-101" in names
        data = await host.wait_kind("DDATA", count=4, timeout=60)
        aliases = {m.alias for b in births for m in b.metrics}
        assert all(m.alias in aliases and m.name is None for d in data for m in d.metrics)
        status, health = daemon.get("/health")
        assert status == 200
    finally:
        code = daemon.stop(signal.SIGTERM, timeout=30)
    assert code == 0
    death = (await host.wait_kind("NDEATH", timeout=30))[0]
    assert death.metric("bdSeq").value == nbirth.metric("bdSeq").value
    assert seq_gaps(host.messages) == []
    await host.stop()
