"""/metrics counts every scan group as /health does: poll groups and subscribe groups alike.

A real daemon (`refineryiq run --simulate`) whose configuration has an OPC-UA subscribe group
(`alk-subscribe`) next to poll groups; /metrics and /health must read the same counters.
"""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.daemon import DaemonProcess


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = DaemonProcess(tmp_path_factory.mktemp("metrics") / "state").start()
    d.wait_healthy(timeout=90)
    yield d
    d.kill()


def scrape(daemon) -> dict[str, dict[str, float]]:
    """{sample name: {group: value}} of the per-group samples of /metrics."""
    with urllib.request.urlopen(daemon.url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "group" in sample.labels:
                out.setdefault(sample.name, {})[sample.labels["group"]] = sample.value
    return out


def health_groups(daemon) -> dict[str, dict]:
    status, body = daemon.get("/health")
    assert status == 200
    return {g["id"]: g for g in body["scan_groups"]}


def test_health_lists_every_configured_group_with_its_mode(daemon):
    groups = health_groups(daemon)
    assert {g: v["mode"] for g, v in groups.items()} == {
        "cdu-fcc-fast": "poll", "ht-alk-poll": "poll", "alk-subscribe": "subscribe"}


def test_a_subscribe_group_counts_its_deliveries_as_scans(daemon):
    daemon.wait_for(lambda: health_groups(daemon)["alk-subscribe"]["scans"] >= 3, timeout=30,
                    what="alk-subscribe deliveries counted in /health")
    assert scrape(daemon)["refineryiq_scans_total"]["alk-subscribe"] >= 3


def test_metrics_and_health_agree_for_every_group(daemon):
    # The counters keep moving between two requests: /metrics must fall between two /health
    # readings taken just before and just after it.
    before = health_groups(daemon)
    metrics = scrape(daemon)
    after = health_groups(daemon)
    assert set(metrics["refineryiq_scans_total"]) == set(before) == set(after)
    for group_id in before:
        for sample, field in (("refineryiq_scans_total", "scans"),
                              ("refineryiq_group_values_total", "values"),
                              ("refineryiq_scan_overruns_total", "overruns"),
                              ("refineryiq_scans_skipped_total", "skipped_scans")):
            value = metrics[sample][group_id]
            assert before[group_id][field] <= value <= after[group_id][field], (group_id, sample)
        assert metrics["refineryiq_scans_total"][group_id] > 0, group_id


def test_subscribe_scans_match_the_drivers_notification_count(daemon):
    """Each subscription delivery is one scan: the driver's own count agrees (same device)."""
    status, body = daemon.get("/health")
    groups = {g["id"]: g for g in body["scan_groups"]}
    device = next(d for d in body["devices"] if d["id"] == groups["alk-subscribe"]["device"])
    # The driver counts a delivery just before handing it to the pipeline: at most one apart.
    assert 0 <= device["driver"]["notifications"] - groups["alk-subscribe"]["scans"] <= 1
