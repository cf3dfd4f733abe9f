"""`refineryiq run --simulate` computes KPIs from the simulated plant within seconds."""

from __future__ import annotations

import urllib.request

import pytest

from gateway.settings import load_config
from tests.support.daemon import ROOT, DaemonProcess


@pytest.fixture
def daemon(tmp_path):
    d = DaemonProcess(tmp_path / "state", env={
        "REFINERYIQ_ANALYTICS__KPI_INTERVAL_S": "2",
        "REFINERYIQ_ANALYTICS__FIRST_RUN_DELAY_S": "1",
    }).start()
    yield d
    d.kill()


def test_kpis_of_all_four_units_are_numbers_soon_after_start(daemon):
    units = {u.id for u in load_config(ROOT / "config/gateway.toml", environ={}).plant.units}
    daemon.wait_healthy(timeout=90)

    def kpis_with_numbers():
        status, body = daemon.get("/api/analytics/kpis")
        rows = {r["unit_id"]: r for r in body.get("units", [])} if status == 200 else {}
        numeric = {u for u, r in rows.items()
                   if isinstance(r["throughput_bpd"], float) and isinstance(r["oee_pct"], float)}
        return body if numeric == units else None

    body = daemon.wait_for(kpis_with_numbers, 30, "KPIs of every unit")
    assert isinstance(body["plant"]["throughput_bpd"], float)
    status, energy = daemon.get("/api/analytics/energy")
    assert status == 200
    assert {r["unit_id"] for r in energy["rows"]} == units
    _, health = daemon.get("/health")
    assert health["analytics"]["runs"] >= 1
    assert health["analytics"]["failures"] == 0


def test_metrics_count_the_analytics_runs(daemon):
    daemon.wait_healthy(timeout=90)

    def counted():
        with urllib.request.urlopen(daemon.url + "/metrics", timeout=5) as resp:
            text = resp.read().decode()
        return text if "refineryiq_analytics_runs_total 0.0" not in text else None

    text = daemon.wait_for(counted, 30, "an analytics run in /metrics")
    assert "refineryiq_analytics_runs_total" in text
    assert "refineryiq_analytics_failures_total 0.0" in text
