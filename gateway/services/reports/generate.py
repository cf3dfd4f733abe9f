"""Generate one daily report: read the day's rows, then build, chart and render off the loop.

The one entry point shared by the HTTP route, the scheduled run and ``refineryiq report``.
Reading goes through SQLite threads; building, drawing the charts and rendering (CPU work of a
second or so) run off the event loop: in a worker thread, or, inside the daemon, in a
short-lived child process (``in_child``). matplotlib, fpdf2 and openpyxl hold about 65 MB of
resident memory once imported; a daemon that rendered in-process would carry them from its
first daily report on. The child is spawned (never forked: the daemon runs threads), renders
one report and exits.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.runtime.child_process import run_in_child
from gateway.services.reports.build import build_report
from gateway.services.reports.model import DailyReport, PlantDay, ReportFormat
from gateway.services.reports.sources import DayInputs, ReportSources
from gateway.settings import GatewaySettings
from plant.catalog import Catalog
from plant.schema import Plant

# Renderer modules by format, imported when a report is made: matplotlib, fpdf2 and openpyxl
# cost tens of MB that a gateway which never renders should not carry.
RENDERERS: dict[ReportFormat, tuple[str, str]] = {
    ReportFormat.HTML: ("gateway.services.reports.html_render", "render_html"),
    ReportFormat.PDF: ("gateway.services.reports.pdf_render", "render_pdf"),
    ReportFormat.XLSX: ("gateway.services.reports.xlsx_render", "render_xlsx")}
Progress = Callable[[str], None]
# The report child runs at a lower CPU priority than the daemon's scans.
CHILD_NICE = 10


class ReportError(ValueError):
    """A report that cannot be made (a day that has not begun); the message says why."""


@dataclass(frozen=True)
class RenderedReport:
    """A rendered report: its bytes, format and the day it covers."""

    day: PlantDay
    format: ReportFormat
    content: bytes
    report: DailyReport

    @property
    def file_name(self) -> str:
        return f"daily-report-{self.day.day.isoformat()}{self.format.suffix}"


def plant_zone(settings: GatewaySettings) -> ZoneInfo:
    """The plant's time zone (``analytics.timezone``): the plant day is local."""
    return ZoneInfo(settings.analytics.timezone)


def today(settings: GatewaySettings, now: float | None = None) -> date:
    """The current plant day."""
    return PlantDay.containing(time.time() if now is None else now, plant_zone(settings)).day


def _no_progress(step: str) -> None:
    pass


def build_and_render(inputs: DayInputs, day: PlantDay, until: float, generated_at: float,
                     catalog: Catalog, settings: GatewaySettings, fmt: ReportFormat,
                     progress: Progress = _no_progress) -> tuple[DailyReport, bytes]:
    """The CPU part (pure, run on a worker thread): sections, charts, then the format."""
    progress("building sections")
    report = build_report(inputs, day, until, generated_at, catalog, settings.reports.targets,
                          settings.alarms, catalog.plant.name, settings.gateway_id, settings.site)
    from gateway.services.reports.charts import render_charts

    progress("drawing charts")
    report.charts = render_charts(report, inputs)
    progress(f"rendering {fmt.value.upper()}")
    module, name = RENDERERS[fmt]
    render: Callable[[DailyReport], bytes] = getattr(importlib.import_module(module), name)
    return report, render(report)


def build_and_render_plant(inputs: DayInputs, day: PlantDay, until: float, generated_at: float,
                           plant: Plant, settings: GatewaySettings,
                           fmt: ReportFormat) -> tuple[DailyReport, bytes]:
    """:func:`build_and_render` in the report child. It is sent the plant, not the catalog (a
    catalog of 10,000 synthetic tags pickles to megabytes): the report covers plant tags only,
    so the catalog rebuilt from the plant gives the same report."""
    return build_and_render(inputs, day, until, generated_at, Catalog.build(plant), settings, fmt)


async def generate(sources: ReportSources, settings: GatewaySettings, catalog: Catalog,
                   day: date, fmt: ReportFormat, now: float | None = None,
                   progress: Progress = _no_progress, in_child: bool = False) -> RenderedReport:
    """The report of plant day ``day`` in format ``fmt`` (a day in progress covers up to now).

    ``in_child``: build and render in a child process (the daemon, see the module docstring);
    otherwise in a worker thread, reporting each step to ``progress`` (``refineryiq report``).
    """
    now = time.time() if now is None else now
    plant_day = PlantDay.of(day, plant_zone(settings))
    if plant_day.start > now:
        raise ReportError(f"date: the plant day {day.isoformat()} has not begun "
                          f"({plant_day.zone.key})")
    until = min(plant_day.end, now)
    progress("reading the day's data")
    inputs = await sources.read_day(plant_day, until)
    if in_child:
        progress(f"building and rendering {fmt.value.upper()} in a child process")
        report, content = await run_in_child(build_and_render_plant, inputs, plant_day, until, now,
                                              catalog.plant, settings, fmt, nice=CHILD_NICE)
    else:
        report, content = await asyncio.to_thread(build_and_render, inputs, plant_day, until, now,
                                                  catalog, settings, fmt, progress)
    return RenderedReport(plant_day, fmt, content, report)


def write_atomically(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` through a temporary file and a rename, so a reader never
    sees half a report (blocking: call it from a thread)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
