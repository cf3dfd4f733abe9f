"""The ``reports`` service: report generation inside the daemon, and the scheduled daily run.

Every day at ``reports.daily_at`` (plant time, ``analytics.timezone``) the previous plant
day's report is written to ``<state_dir>/reports/daily-report-<date>.<format>`` for each of
``reports.formats``; files older than ``reports.keep_days`` are deleted. A run missed while
the gateway was down is made at start (when yesterday's files are missing and the time of day
has passed). Reports are generated one at a time (also those asked for over HTTP), so a burst
of requests queues instead of multiplying the CPU load, each in a short-lived child process so
the daemon never holds the rendering libraries (:func:`gateway.services.reports.generate.generate`).
"""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from gateway.runtime.logs import get_logger
from gateway.services.base import Tasks
from gateway.services.reports.generate import (
    RenderedReport,
    generate,
    plant_zone,
    write_atomically,
)
from gateway.services.reports.model import PlantDay, ReportFormat
from gateway.services.reports.sources import ReportSources
from gateway.settings import GatewaySettings
from plant.catalog import Catalog


class ValueCounter(Protocol):
    """How many values the embedded store holds in a time range."""

    async def count_values(self, start: float, end: float) -> int: ...

log = get_logger("gateway.services.reports")

SERVICE_NAME = "reports"
REPORTS_DIR = "reports"
FILE_PREFIX = "daily-report-"
# Sleep in slices so a wall-clock change (NTP step, DST) moves the run at most this late.
MAX_SLEEP_S = 60.0


def next_run(now: float, daily_at: str, zone: Any) -> float:
    """Epoch seconds of the next ``HH:MM`` in ``zone`` strictly after ``now``."""
    hour, minute = (int(x) for x in daily_at.split(":"))
    local = datetime.fromtimestamp(now, zone)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate.timestamp() <= now:
        candidate = datetime.combine(local.date() + timedelta(days=1), candidate.timetz())
    return candidate.timestamp()


def expired(files: list[Path], keep_from: date) -> list[Path]:
    """Report files of plant days before ``keep_from``."""
    out = []
    for path in files:
        stem = path.name.removeprefix(FILE_PREFIX).split(".")[0]
        try:
            if date.fromisoformat(stem) < keep_from:
                out.append(path)
        except ValueError:
            continue
    return out


class ReportService:
    """Generates reports for the HTTP route and on schedule (see the module docstring)."""

    name = SERVICE_NAME

    def __init__(self, settings: GatewaySettings, catalog: Catalog, store: ValueCounter,
                 tasks: Tasks, clock: Any = time.time):
        # The whole settings, not one section: a report reads the plant's time zone, energy
        # price and KPI windows of ``[analytics]`` as well as ``[reports]``.
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.tasks = tasks
        self.clock = clock
        self.sources: ReportSources | None = None
        self.lock = asyncio.Lock()
        self.last_run: dict[str, Any] = {}

    @property
    def out_dir(self) -> Path:
        return self.settings.state_dir / REPORTS_DIR

    async def start(self) -> None:
        self.sources = ReportSources(self.settings.state_dir, [t.id for t in self.catalog.tags])
        await self.sources.open()
        if self.settings.reports.scheduled:
            self.tasks.start(SERVICE_NAME, self.run_forever)

    async def reload(self, settings: GatewaySettings, catalog: Catalog) -> None:
        """SIGHUP: later reports use the new settings and catalog (the schedule at restart)."""
        self.settings, self.catalog = settings, catalog

    async def stop(self) -> None:
        if self.sources is not None:
            await self.sources.close()

    async def render(self, day: date, fmt: ReportFormat) -> RenderedReport:
        """One report, generated after any report already being generated."""
        assert self.sources is not None
        async with self.lock:
            # Files created after start (a first analytics run) are picked up by reopening.
            if not self.sources.complete:
                await self.sources.close()
                await self.sources.open()
            return await generate(self.sources, self.settings, self.catalog, day, fmt,
                                  now=self.clock(), in_child=True)

    async def write_day(self, day: date) -> list[Path]:
        """Write ``day``'s report in every configured format; returns the files."""
        written = []
        for name in self.settings.reports.formats:
            rendered = await self.render(day, ReportFormat(name))
            path = self.out_dir / rendered.file_name
            await asyncio.to_thread(write_atomically, path, rendered.content)
            written.append(path)
        return written

    async def run_scheduled(self) -> None:
        """The scheduled job: yesterday's report, then old files removed."""
        settings = self.settings
        zone = plant_zone(settings)
        yesterday = datetime.fromtimestamp(self.clock(), zone).date() - timedelta(days=1)
        started = time.monotonic()
        try:
            written = await self.write_day(yesterday)
        except Exception as exc:
            self.last_run = {"day": yesterday.isoformat(), "ok": False, "error": str(exc)}
            log.exception("reports.scheduled_failed", day=yesterday.isoformat())
            return
        files = await asyncio.to_thread(lambda: sorted(self.out_dir.glob(f"{FILE_PREFIX}*")))
        for path in expired(files, yesterday - timedelta(days=settings.reports.keep_days - 1)):
            await asyncio.to_thread(path.unlink, True)
        self.last_run = {"day": yesterday.isoformat(), "ok": True, "at": self.clock(),
                         "files": [p.name for p in written]}
        log.info("reports.scheduled", day=yesterday.isoformat(), files=[p.name for p in written],
                 duration_s=round(time.monotonic() - started, 2))

    def _missed(self) -> bool:
        """Yesterday's scheduled files are missing and today's run time has passed."""
        settings = self.settings
        zone = plant_zone(settings)
        now = self.clock()
        today_run = next_run(now - 86400.0, settings.reports.daily_at, zone)
        if today_run > now:
            return False
        yesterday = datetime.fromtimestamp(now, zone).date() - timedelta(days=1)
        return any(not (self.out_dir / f"{FILE_PREFIX}{yesterday.isoformat()}.{f}").exists()
                   for f in settings.reports.formats)

    async def _yesterday_has_data(self) -> bool:
        """A catch-up report is worth rendering (seconds of CPU at start-up) only for a day
        the gateway has data of: a new installation has no "yesterday"."""
        zone = plant_zone(self.settings)
        yesterday = datetime.fromtimestamp(self.clock(), zone).date() - timedelta(days=1)
        day = PlantDay.of(yesterday, zone)
        return await self.store.count_values(day.start, day.end) > 0

    async def run_forever(self) -> None:
        """Catch up a missed run, then run every day at ``reports.daily_at``."""
        settings = self.settings
        zone = plant_zone(settings)
        if await asyncio.to_thread(self._missed) and await self._yesterday_has_data():
            await self.run_scheduled()
        while True:
            due = next_run(self.clock(), settings.reports.daily_at, zone)
            while (left := due - self.clock()) > 0:
                await asyncio.sleep(min(left, MAX_SLEEP_S))
            await self.run_scheduled()

    def report(self) -> dict[str, Any]:
        """The ``reports`` section of /health."""
        settings = self.settings.reports
        return {"scheduled": settings.scheduled, "daily_at": settings.daily_at,
                "last_run": self.last_run or None}
