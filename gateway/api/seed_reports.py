"""The seed's printable daily report: ``GET /api/reports/daily`` → an A4 HTML page.

Sections: plant KPIs and OEE, KPIs per unit, the mass and energy balance of the plant day,
energy per unit, equipment health, tanks, standing alarms and the day's alarm occurrences.
The data is gathered on the event loop (in-memory results and short store reads); the HTML
is rendered in an executor so a large report never stalls the loop. Times are shown in the
plant's time zone (``analytics.timezone``). A figure that is not known is printed as "—".
"""

from __future__ import annotations

import asyncio
import html
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from analytics.alarm_types import Alarm, AlarmTransition
from gateway.alarm_journal import MAX_QUERY_ROWS, JournalFilter
from gateway.analytics_run import PLANT_ID
from gateway.api.context import ctx_of
from gateway.api.openapi import HTML, Operation, add
from gateway.api.seed_common import ALARMS, ANALYTICS, equipment_status, service, unit_names

TAG = "reports"
DAY_S = 86400.0
MISSING = "—"
STYLE = """
@page { size: A4; margin: 15mm; }
body { font-family: sans-serif; font-size: 10pt; color: #111; }
h1 { font-size: 16pt; margin-bottom: 0; }
h2 { font-size: 12pt; border-bottom: 1px solid #888; margin-top: 14pt; }
table { border-collapse: collapse; width: 100%; page-break-inside: avoid; }
th, td { border: 1px solid #bbb; padding: 2pt 4pt; text-align: left; }
td.n { text-align: right; }
.meta { color: #555; }
"""


@dataclass
class ReportData:
    """Everything the report shows, gathered before rendering."""

    plant_name: str
    gateway_id: str
    site: str
    zone: ZoneInfo
    now: float
    units: dict[str, str]
    kpis: list[dict] = field(default_factory=list)
    balance: list[dict] = field(default_factory=list)
    energy: list[dict] = field(default_factory=list)
    equipment: list[dict] = field(default_factory=list)
    equipment_names: dict[str, str] = field(default_factory=dict)
    tanks: list[dict] = field(default_factory=list)
    tank_names: dict[str, str] = field(default_factory=dict)
    standing: list[Alarm] = field(default_factory=list)
    activations: list[AlarmTransition] = field(default_factory=list)
    analytics_running: bool = False


def _num(x: Any, digits: int = 1) -> str:
    if x is None or isinstance(x, bool):
        return MISSING
    try:
        return f"{float(x):,.{digits}f}"
    except (TypeError, ValueError):
        return MISSING


def _when(ts: float | None, zone: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return MISSING if not ts else datetime.fromtimestamp(ts, zone).strftime(fmt)


def _table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    e = html.escape
    if not rows:
        return "<p>No data.</p>"
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td class=\"n\">{e(c)}</td>" if i in numeric else f"<td>{e(c)}</td>"
                         for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(d: ReportData) -> str:
    """The report as one HTML document (pure: runs in an executor)."""
    e = html.escape
    plant = next((r for r in d.kpis if r["unit_id"] == PLANT_ID), {})
    parts = [f"<!DOCTYPE html><html lang=\"es\"><head><meta charset=\"utf-8\">"
             f"<title>Reporte diario {e(d.plant_name)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{e(d.plant_name)} — Daily operations report</h1>",
             f"<p class=\"meta\">Gateway {e(d.gateway_id)} · site {e(d.site)} · generated "
             f"{e(_when(d.now, d.zone))} ({e(str(d.zone))})</p>"]
    if not d.analytics_running:
        parts.append("<p>The analytics service is not running: KPIs, energy, balance and "
                     "health are not available.</p>")
    parts.append("<h2>Plant</h2>")
    parts.append(_table(["OEE %", "Availability %", "Performance %", "Quality %",
                         "Throughput bpd", "Stability", "Trend"],
                        [[_num(plant.get("oee_pct")), _num(plant.get("availability_pct")),
                          _num(plant.get("performance_pct")), _num(plant.get("oee_quality_pct")),
                          _num(plant.get("throughput_bpd"), 0), _num(plant.get("stability_index")),
                          plant.get("stability_trend") or MISSING]] if plant else [],
                        {0, 1, 2, 3, 4, 5}))
    parts.append("<h2>Units</h2>")
    parts.append(_table(
        ["Unit", "Throughput bpd", "% of design", "Energy eff.", "kWh/bbl", "Quality", "Status"],
        [[f"{r['unit_id']} {d.units.get(r['unit_id'], '')}", _num(r.get("throughput_bpd"), 0),
          _num(r.get("throughput_pct_of_design")), _num(r.get("energy_efficiency")),
          _num(r.get("kwh_per_bbl"), 2), _num(r.get("quality_score")), r.get("status") or MISSING]
         for r in d.kpis if r["unit_id"] != PLANT_ID], {1, 2, 3, 4, 5}))
    parts.append("<h2>Mass and energy balance (plant day)</h2>")
    parts.append(_table(
        ["Unit", "Feed bbl", "Products bbl", "Closure %", "Imbalance bbl", "Energy kWh", "kWh/bbl"],
        [[r["unit_id"], _num(r.get("feed_bbl"), 0), _num(r.get("products_bbl"), 0),
          _num(r.get("closure_pct")), _num(r.get("imbalance_bbl"), 0), _num(r.get("energy_kwh"), 0),
          _num(r.get("kwh_per_bbl"), 2)] for r in d.balance], {1, 2, 3, 4, 5, 6}))
    parts.append("<h2>Energy (current hour)</h2>")
    parts.append(_table(
        ["Unit", "Hour", "kWh", "kWh/bbl", "Target", "Score", "Status", "Recommendation"],
        [[r["unit_id"], _when(r.get("hour_start"), d.zone, "%H:00"), _num(r.get("consumption_kwh"), 0),
          _num(r.get("kwh_per_bbl"), 2), _num(r.get("target_kwh_bbl"), 1),
          _num(r.get("efficiency_score")), r.get("status") or MISSING,
          r.get("recommendation") or ""] for r in d.energy], {2, 3, 4, 5}))
    parts.append("<h2>Equipment health</h2>")
    parts.append(_table(
        ["Equipment", "Unit", "Score", "Status", "Worst", "Failure prob. %"],
        [[f"{r['equipment_id']} {d.equipment_names.get(r['equipment_id'], '')}", r.get("unit_id") or "",
          _num(r.get("score")), equipment_status(r.get("status")).value,
          r.get("worst_tag") or MISSING, _num(r.get("failure_probability_pct"))]
         for r in d.equipment], {2, 5}))
    parts.append("<h2>Tanks</h2>")
    parts.append(_table(
        ["Tank", "Level %", "Volume L", "Capacity L", "Trend", "Status"],
        [[f"{r['tank_id']} {d.tank_names.get(r['tank_id'], '')}", _num(r.get("level_pct")),
          _num(r.get("volume_l"), 0), _num(r.get("capacity_l"), 0), r.get("trend") or MISSING,
          r.get("status") or MISSING] for r in d.tanks], {1, 2, 3}))
    parts.append("<h2>Standing alarms</h2>")
    parts.append(_table(
        ["Raised", "Source", "Kind", "Severity", "State", "Message"],
        [[_when(a.raised_at, d.zone), a.tag_id, a.kind.value, a.severity.value, a.state.value,
          a.message] for a in d.standing]))
    parts.append(f"<h2>Alarm occurrences, last 24 h ({len(d.activations)})</h2>")
    parts.append(_table(
        ["Raised", "Source", "Kind", "Severity", "Value", "Limit", "Message"],
        [[_when(t.time, d.zone), t.tag_id, t.kind.value, t.severity.value, _num(t.value, 2),
          _num(t.limit, 2), t.message] for t in d.activations], {4, 5}))
    parts.append("</body></html>")
    return "\n".join(parts)


async def gather(request: web.Request) -> ReportData:
    """Collect the report's data from the running services."""
    ctx = ctx_of(request)
    plant = ctx.catalog.plant
    analytics = service(request, ANALYTICS, required=False)
    alarms = service(request, ALARMS, required=False)
    now = time.time()
    data = ReportData(plant_name=plant.name, gateway_id=ctx.settings.gateway_id,
                      site=ctx.settings.site,
                      zone=analytics.zone if analytics is not None else ZoneInfo("UTC"),
                      now=now, units=unit_names(ctx),
                      equipment_names={q.id: q.name for q in plant.equipment},
                      tank_names={t.id: t.name for t in plant.tanks})
    if analytics is not None and analytics.results is not None:
        latest = analytics.latest
        data.analytics_running = True
        data.kpis, data.balance = latest.kpis, latest.balance
        data.equipment, data.tanks = latest.equipment, latest.tanks
        newest: dict[str, dict] = {}
        for row in await analytics.results.energy((now // 3600.0) * 3600.0 - 3600.0):
            newest[row["unit_id"]] = row
        data.energy = list(newest.values())
    if alarms is not None:
        data.standing = alarms.active()
        page = await alarms.journal_page(JournalFilter(since=now - DAY_S), MAX_QUERY_ROWS, 0)
        data.activations = [t for t in page if t.is_activation]
    return data


async def get_daily(request: web.Request) -> web.Response:
    """GET /api/reports/daily: the printable HTML report."""
    data = await gather(request)
    text = await asyncio.get_running_loop().run_in_executor(None, render, data)
    return web.Response(text=text, content_type=HTML)


def setup(app: web.Application) -> None:
    # The route is served by gateway/reports (HTML for A4, PDF, XLSX of a plant day); the
    # renderer above is kept until the API owner removes it.
    from gateway.reports.http import DailyReportQuery
    from gateway.reports.http import get_daily as get_daily_report
    add(app, Operation("GET", "/api/reports/daily", get_daily_report,
                       "Daily operations report of a plant day (HTML for A4, PDF or XLSX)",
                       query=DailyReportQuery, content_type=HTML, tag=TAG,
                       errors={400: "date is not YYYY-MM-DD, the day has not begun, or format "
                                    "is not html, pdf or xlsx"}))
