"""GET /metrics: Prometheus exposition, collected from the running gateway's counters.

A custom collector reads the pipeline's counters at scrape time, so the scan path does no
metrics work of its own; per scan group it exports the rows of /health's ``scan_groups``.
"""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from drivers.quality import Quality, Reason
from gateway.northbound.http.deps import DEPS_KEY, ApiDeps
from gateway.northbound.http.health import group_report


class GatewayCollector:
    """The pipeline's counters, then each service's metric families (``deps.metrics``)."""

    def __init__(self, deps: ApiDeps):
        self.deps = deps

    def collect(self):
        p = self.deps.pipeline
        now = time.time()
        values = CounterMetricFamily("refineryiq_values", "Values accepted into the store", labels=["device"])
        rate = GaugeMetricFamily("refineryiq_values_per_second", "Accepted values/s over 10 s", labels=["device"])
        connected = GaugeMetricFamily("refineryiq_device_connected", "1 when the device is connected", labels=["device"])
        for device_id, stats in p.device_stats.items():
            values.add_metric([device_id], stats.values)
            rate.add_metric([device_id], stats.values_per_s(now))
            connected.add_metric([device_id], 1.0 if p.drivers[device_id].connected else 0.0)
        yield from (values, rate, connected)

        scans = CounterMetricFamily("refineryiq_scans", "Scans completed (a subscribe group's deliveries)",
                                    labels=["group"])
        overruns = CounterMetricFamily("refineryiq_scan_overruns", "Scans that overran their interval", labels=["group"])
        skipped = CounterMetricFamily("refineryiq_scans_skipped", "Scan deadlines skipped after overruns", labels=["group"])
        duration = GaugeMetricFamily("refineryiq_scan_duration_seconds", "Duration of the last scan", labels=["group"])
        group_values = CounterMetricFamily("refineryiq_group_values", "Values accepted into the store",
                                           labels=["group"])
        # The rows of /health's scan_groups: one source for both (poll and subscribe groups).
        for g in group_report(self.deps):
            scans.add_metric([g["id"]], g["scans"])
            overruns.add_metric([g["id"]], g["overruns"])
            skipped.add_metric([g["id"]], g["skipped_scans"])
            duration.add_metric([g["id"]], g["last_scan_duration_s"])
            group_values.add_metric([g["id"]], g["values"])
        yield from (scans, overruns, skipped, duration, group_values)

        live = p.live
        by_reason = GaugeMetricFamily("refineryiq_tags_not_good", "Tags whose newest value is not good, by reason",
                                      labels=["quality", "reason"])
        for q in (Quality.DOUBTFUL, Quality.BAD):
            mask = live.quality == q
            for r in Reason:
                n = int((mask & (live.reason == r)).sum())
                if n:
                    by_reason.add_metric([q.name.lower(), r.name.lower()], n)
        yield by_reason

        queue = GaugeMetricFamily("refineryiq_queue_depth", "Scans waiting for the embedded store")
        queue.add_metric([], p.queue.qsize())
        yield queue
        errors = CounterMetricFamily("refineryiq_store_errors", "Embedded store write failures")
        errors.add_metric([], p.store_errors)
        yield errors
        for families in self.deps.metrics.values():
            yield from families()


async def get_metrics(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY_KEY]
    body = generate_latest(registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


REGISTRY_KEY: web.AppKey[CollectorRegistry] = web.AppKey("metrics_registry")


def setup(app: web.Application) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(app[DEPS_KEY]))
    app[REGISTRY_KEY] = registry
    app.router.add_get("/metrics", get_metrics)
