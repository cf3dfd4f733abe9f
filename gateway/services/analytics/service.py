"""The analytics service: KPIs, energy, tanks, balance and equipment health on a schedule.

Every ``kpi_interval_s`` (first run ``first_run_delay_s`` after start) one run merges the
newly accepted samples into the rolling tag history (:mod:`gateway.services.analytics.history_buffer`) and
computes every analysis (:func:`gateway.services.analytics.run.compute_run`) in a one-thread
executor, so the event loop only hands data over. The results are kept in memory for the
HTTP API (``gateway/northbound/http/analytics.py``) and persisted with their timestamps in
``analytics.sqlite`` (:mod:`gateway.services.analytics.results`). A failing run is logged and counted;
the next one runs on schedule.

Equipment health includes the predictive-maintenance failure probability when the daemon
hands the service a ``maintenance`` service (see :func:`failure_probabilities`).
Only plant tags are analysed; synthetic SYN-* benchmark tags are never tracked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from drivers.batch import Batch
from gateway.ingest.scheduler import ScanSchedule, sleep_until
from gateway.runtime.logs import get_logger
from gateway.services.analytics.history_buffer import TagBuffer
from gateway.services.analytics.results import AnalyticsStore
from gateway.services.analytics.run import AnalyticsRun, RunParams, RunRows, compute_run
from gateway.services.base import RunStats, Tasks, run_counted
from gateway.settings import AnalyticsSettings
from plant.catalog import SYNTHETIC_PREFIX, Catalog

log = get_logger("gateway.analytics")

SERVICE_NAME = "analytics"
RETENTION_EVERY_S = 3600.0
# History kept beyond a window's start: the sample before the edge is needed to cut it.
EDGE_MARGIN_S = 300.0
HOUR_S = 3600.0


class HistorySource(Protocol):
    """Where the rolling history is backfilled from at start (the embedded store)."""

    async def history(self, tag_index: int, start: float, end: float,
                      max_points: int | None = None) -> Any: ...


def failure_probabilities(maintenance: Any) -> dict[str, float]:
    """Failure probability (%) by ``equipment_id`` from the PdM service, if it offers one.

    Accepted shapes (the PdM service is optional and written separately): a method
    ``failure_probabilities() -> Mapping[equipment_id, pct]``, or an attribute
    ``predictions: Mapping[equipment_id, obj]`` whose items have ``failure_probability``
    (attribute or key) in %.
    """
    if maintenance is None:
        return {}
    method = getattr(maintenance, "failure_probabilities", None)
    if callable(method):
        return {k: float(v) for k, v in method().items() if v is not None}
    predictions = getattr(maintenance, "predictions", None)
    if not isinstance(predictions, Mapping):
        return {}
    out: dict[str, float] = {}
    for equipment_id, prediction in predictions.items():
        p = (prediction.get("failure_probability") if isinstance(prediction, Mapping)
             else getattr(prediction, "failure_probability", None))
        if p is not None:
            out[equipment_id] = float(p)
    return out


def day_start(now: float, zone: ZoneInfo) -> float:
    """Epoch seconds of the start of the plant day (local midnight) containing ``now``."""
    local = datetime.fromtimestamp(now, zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def tracked_tags(catalog: Catalog, settings: AnalyticsSettings) -> tuple[list[str], list[float]]:
    """Plant tags to keep and how long: flow and power tags long enough for the hourly energy
    rows and the plant day; the rest for the KPI and health windows."""
    long_ids = {t for u in catalog.plant.units for t in (u.feed_tag, u.power_tag, *u.product_tags)
                if t is not None}
    long_s = max((settings.energy_hours + 1) * HOUR_S, 25 * HOUR_S) + EDGE_MARGIN_S
    short_s = max(settings.kpi_window_s, settings.health_window_s) + EDGE_MARGIN_S
    ids = [t.id for t in catalog.tags if not t.id.startswith(SYNTHETIC_PREFIX)]
    return ids, [long_s if t in long_ids else short_s for t in ids]


@dataclass
class LatestResults:
    """The newest rows of each kind, served by the API."""

    ts: float | None = None
    kpis: list[dict] = field(default_factory=list)
    tanks: list[dict] = field(default_factory=list)
    equipment: list[dict] = field(default_factory=list)
    balance: list[dict] = field(default_factory=list)

    @classmethod
    def from_rows(cls, ts: float, rows: RunRows) -> LatestResults:
        return cls(ts, rows.kpis, rows.tanks, rows.equipment, rows.balance)


class AnalyticsService:
    """The ``analytics`` service (see the module docstring)."""

    name = SERVICE_NAME

    def __init__(self, settings: AnalyticsSettings, catalog: Catalog, history: HistorySource,
                 results_path: Path, tasks: Tasks, maintenance: Any = None,
                 clock: Callable[[], float] = time.time):
        self.settings = settings
        self.catalog = catalog
        self.history = history
        self.results_path = results_path
        self.tasks = tasks
        self.maintenance = maintenance
        self.clock = clock
        self.zone = ZoneInfo(settings.timezone)
        self.stats = RunStats()
        self.latest = LatestResults()
        self.results: AnalyticsStore | None = None
        self.buffer: TagBuffer | None = None
        self._compute = compute_run  # replaceable in tests to observe the executor thread
        self._executor: ThreadPoolExecutor | None = None
        self._backfill_until: float | None = None
        self._last_retention = 0.0
        self._run_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the results store, restore the latest results and schedule the runs (the
        daemon attaches :meth:`on_batches` as the pipeline's ``analytics`` sink)."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analytics")
        self.results = AnalyticsStore(self.results_path, self.settings.retention_days * 86400)
        await self.results.open()
        await self.restore()
        ids, keep = tracked_tags(self.catalog, self.settings)
        self.buffer = TagBuffer(ids, self.catalog.indices(ids).tolist(), keep, len(self.catalog),
                                self.settings.max_samples_per_tag)
        self._backfill_until = self.clock()
        self.tasks.start(SERVICE_NAME, self.run_forever)

    async def stop(self) -> None:
        """Close the results store (the supervisor has already cancelled the runs)."""
        if self._executor is not None:
            # A run cancelled mid-computation finishes on its thread: wait for it off the loop.
            await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
        if self.results is not None:
            await self.results.close()

    async def on_batches(self, batches: list[Batch]) -> None:
        """Pipeline sink: keep the plant tags' new samples for the next run."""
        if self.buffer is not None:
            self.buffer.add(batches)

    async def restore(self) -> None:
        """Load the newest stored results, so the API answers before the first run."""
        assert self.results is not None
        kpis = await self.results.latest_kpis()
        self.latest = LatestResults(
            ts=max((r["ts"] for r in kpis), default=None), kpis=kpis,
            tanks=await self.results.latest_tank_states(),
            equipment=await self.results.latest_equipment_health(),
            balance=await self.results.balances())

    async def backfill(self) -> int:
        """Fill the rolling history from the embedded store (once, before the first run);
        returns the samples read."""
        assert self.buffer is not None and self._backfill_until is not None
        until, read = self._backfill_until, 0
        for tag_id in self.buffer.tag_ids:
            history = await self.history.history(self.catalog.index[tag_id],
                                                 until - self.buffer.keep_s[tag_id], until)
            self.buffer.add_history(history.tag_index, history.source_ts, history.values,
                                    history.quality)
            read += len(history.source_ts)
        self._backfill_until = None
        log.info("analytics.backfilled", samples=read, tags=len(self.buffer.tag_ids))
        return read

    # -- runs ------------------------------------------------------------------------------

    async def run_forever(self) -> None:
        """Run every ``kpi_interval_s`` on a drift-free schedule (the first run backfills)."""
        await asyncio.sleep(self.settings.first_run_delay_s)
        schedule = ScanSchedule.starting_at(time.monotonic(), self.settings.kpi_interval_s)
        while True:
            await sleep_until(schedule.next_due)
            await self.run_safely()
            schedule.advance(time.monotonic())

    async def run_safely(self) -> AnalyticsRun | None:
        """One run whose failure is logged and counted instead of raised."""
        return await run_counted(self.run_once, self.stats, log, "analytics.run_failed")

    async def run_once(self) -> AnalyticsRun:
        """Merge new samples, compute every analysis in the executor, keep and persist them.
        The first run fills the rolling history from the embedded store first."""
        async with self._run_lock:
            return await self._run()

    async def _run(self) -> AnalyticsRun:
        assert self.buffer is not None and self.results is not None
        if self._backfill_until is not None:
            await self.backfill()
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        now = self.clock()
        pending = self.buffer.take_pending()
        try:
            series, dropped = await loop.run_in_executor(self._executor, self.buffer.merge,
                                                         pending, now)
        except BaseException:
            self.buffer.give_back(pending)  # merged by the next run instead
            raise
        self.buffer.replace(series, dropped)
        params = RunParams(
            kpi_window_s=self.settings.kpi_window_s,
            health_window_s=self.settings.health_window_s,
            energy_hours=self.settings.energy_hours, max_gap_s=self.settings.max_gap_s,
            day_start=day_start(now, self.zone),
            energy_price_usd_per_kwh=self.settings.energy_price_usd_per_kwh)
        pdm = self._failure_probabilities()
        run = await loop.run_in_executor(self._executor, self._compute, series, self.catalog,
                                         now, params, pdm)
        await self.results.save(run.rows)
        self.latest = LatestResults.from_rows(now, run.rows)
        if now - self._last_retention >= RETENTION_EVERY_S:
            deleted = await self.results.enforce_retention(now)
            self._last_retention = now
            if deleted:
                log.info("analytics.retention", rows=deleted)
        duration = time.monotonic() - started
        self.stats.succeeded(now, duration)
        plant = run.plant
        log.info("analytics.run", duration_s=round(duration, 3), samples=self.buffer.sample_count(),
                 new_samples=sum(len(c.ts) for c in pending), plant_oee_pct=plant.oee.oee_pct,
                 throughput_bpd=round(plant.throughput_bpd, 1), energy_rows=len(run.rows.energy),
                 pdm=len(pdm))
        return run

    def _failure_probabilities(self) -> dict[str, float]:
        try:
            return failure_probabilities(self.maintenance)
        except Exception:
            log.exception("analytics.pdm_unavailable")
            return {}

    # -- reporting -------------------------------------------------------------------------

    def report(self) -> dict:
        """The ``analytics`` section of /health."""
        s = self.stats
        return {"runs": s.runs, "failures": s.failures, "last_run_ts": s.last_run_ts,
                "last_duration_s": s.last_duration_s, "last_error": s.last_error,
                "buffered_samples": self.buffer.sample_count() if self.buffer else 0,
                "dropped_samples": 0 if self.buffer is None else self.buffer.dropped_samples}

    def metrics(self) -> Iterator[Metric]:
        """Prometheus families for /metrics: runs, failures, last duration, buffered samples."""
        s = self.stats
        runs = CounterMetricFamily("refineryiq_analytics_runs", "Analytics runs completed")
        runs.add_metric([], s.runs)
        failures = CounterMetricFamily("refineryiq_analytics_failures", "Analytics runs that failed")
        failures.add_metric([], s.failures)
        duration = GaugeMetricFamily("refineryiq_analytics_run_duration_seconds",
                                     "Duration of the last analytics run")
        duration.add_metric([], s.last_duration_s or 0.0)
        samples = GaugeMetricFamily("refineryiq_analytics_buffered_samples",
                                    "Samples held in the analytics rolling history")
        samples.add_metric([], self.buffer.sample_count() if self.buffer else 0)
        yield from (runs, failures, duration, samples)
