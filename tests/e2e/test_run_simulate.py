"""`refineryiq run --simulate` as a user runs it: healthy, every tag live and good, clean stop."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from gateway.settings import load_config
from gateway.store.embedded import EmbeddedStore
from tests.support.daemon import ROOT, DaemonProcess


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("run-simulate") / "state"


@pytest.fixture(scope="module")
def daemon(state_dir):
    """One daemon for the module; the last test stops it with SIGTERM."""
    d = DaemonProcess(state_dir).start()
    yield d
    d.kill()


def test_run_simulate_becomes_healthy_with_both_devices(daemon):
    health = daemon.wait_healthy(timeout=90)
    states = {d["id"]: d["state"] for d in health["devices"]}
    assert states == {"plc-cdu-fcc": "connected", "scada-ht-alk": "connected"}
    assert all(d["good_scans"] > 0 for d in health["devices"])


def test_every_catalog_tag_is_live_with_good_quality(daemon):
    daemon.wait_healthy(timeout=90)
    catalog_ids = {t.id for t in load_config(ROOT / "config/gateway.toml", environ={}).plant.tags}

    def all_good():
        _, tags = daemon.get("/api/tags/live")
        good = {t["tag_id"] for t in tags if t["quality"] == 192 and t["value"] is not None}
        return tags if catalog_ids <= good else None

    tags = daemon.wait_for(all_good, 60, "every catalog tag good")
    by_id = {t["tag_id"]: t for t in tags}
    assert by_id["TI-101"]["engineering_units"] == "°C"
    assert 300 < by_id["TI-101"]["value"] < 400
    assert by_id["TI-101"]["source_timestamp"].endswith("+00:00")


def test_metrics_parse_with_prometheus_parser(daemon):
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    daemon.wait_healthy(timeout=90)
    with urllib.request.urlopen(daemon.url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "refineryiq_values" in families
    samples = {s.labels["device"]: s.value for s in families["refineryiq_values"].samples
               if s.name == "refineryiq_values_total"}
    assert set(samples) == {"plc-cdu-fcc", "scada-ht-alk"}
    assert all(v > 0 for v in samples.values())


def test_sigterm_exits_0_within_10s_and_the_store_holds_the_scans(daemon, state_dir):
    daemon.wait_healthy(timeout=90)
    time.sleep(2)
    _, health = daemon.get("/health")
    accepted = health["counters"]["accepted_values"]
    assert accepted > 0
    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM, timeout=10) == 0
    assert time.monotonic() - started < 10

    async def stored_values():
        store = EmbeddedStore(state_dir / "history.sqlite", retention_s=86400 * 30,
                              max_bytes=10**9)
        await store.open()
        try:
            return (await store.stats())["values"]
        finally:
            await store.close()

    assert asyncio.run(stored_values()) >= accepted
