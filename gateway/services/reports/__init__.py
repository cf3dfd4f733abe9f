"""The daily operations report: one plant day's KPIs, OEE, balance, energy, alarms, equipment,
tanks and data quality, as HTML (A4), PDF or XLSX.

``generate`` makes one report from the state directory's stores (see ``sources``);
``ReportScheduler`` writes the previous day's report every day at ``reports.daily_at``.
"""

from gateway.services.reports.generate import (
    RenderedReport,
    ReportError,
    build_and_render,
    generate,
    plant_zone,
    today,
    write_atomically,
)
from gateway.services.reports.model import DailyReport, PlantDay, ReportFormat, SectionKey
from gateway.services.reports.sources import DayInputs, ReportSources

__all__ = ["DailyReport", "DayInputs", "PlantDay", "RenderedReport", "ReportError", "ReportFormat",
           "ReportSources", "SectionKey", "build_and_render", "generate", "plant_zone", "today",
           "write_atomically"]
