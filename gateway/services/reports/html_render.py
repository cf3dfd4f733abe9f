"""The report as one self-contained HTML page, printable on A4 (charts inlined as PNG data
URIs; no script, so it opens anywhere and passes a strict Content-Security-Policy)."""

from __future__ import annotations

import base64
import html
from datetime import datetime

from gateway.services.reports.model import DailyReport, Section, Table

STYLE = """
@page { size: A4; margin: 14mm 12mm; }
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 9pt; color: #111; margin: 0 auto;
       max-width: 190mm; }
h1 { font-size: 15pt; margin: 0 0 2pt; }
h2 { font-size: 12pt; border-bottom: 1.5px solid #1565c0; margin: 14pt 0 4pt; page-break-after: avoid; }
h3 { font-size: 9.5pt; margin: 8pt 0 3pt; }
p.meta, p.intro { color: #444; margin: 2pt 0 4pt; }
p.partial { background: #fff3cd; padding: 3pt 6pt; }
table { border-collapse: collapse; width: 100%; margin-bottom: 4pt; page-break-inside: auto; }
tr { page-break-inside: avoid; }
th, td { border: 1px solid #c8c8c8; padding: 1.5pt 3pt; text-align: left; vertical-align: top; }
th { background: #eef2f7; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.good { color: #1b5e20; font-weight: 600; }
td.bad { color: #b71c1c; font-weight: 600; }
td.warn { color: #e65100; font-weight: 600; }
img.chart { width: 100%; max-width: 180mm; page-break-inside: avoid; }
section { page-break-inside: auto; }
"""
# The colour of a "Status" cell by its word.
STATUS_CLASSES = {"MET": "good", "WITHIN": "good", "OPERATIONAL": "good", "NORMAL": "good",
                  "BELOW": "bad", "ABOVE": "bad", "FAULT": "bad",
                  "MAINTENANCE": "warn", "HIGH": "warn", "LOW": "warn"}


def _table(table: Table) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c.heading)}</th>" for c in table.columns)
    if not table.rows:
        return f"<h3>{e(table.title)}</h3><p class=\"intro\">{e(table.empty)}</p>"
    body = []
    for row in table.rows:
        cells = []
        for text, column in zip(table.formatted(row), table.columns, strict=True):
            css = "n" if column.numeric else (
                STATUS_CLASSES.get(text, "") if column.title == "Status" else "")
            cells.append(f"<td class=\"{css}\">{e(text)}</td>" if css else f"<td>{e(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<h3>{e(table.title)}</h3><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _section(section: Section, charts: dict[str, bytes]) -> str:
    e = html.escape
    parts = [f"<section id=\"{e(section.key.value)}\"><h2>{e(section.title)}</h2>"]
    if section.intro:
        parts.append(f"<p class=\"intro\">{e(section.intro)}</p>")
    for key in section.charts:
        if key in charts:
            data = base64.b64encode(charts[key]).decode("ascii")
            parts.append(f"<img class=\"chart\" alt=\"{e(section.title)} chart\" "
                         f"src=\"data:image/png;base64,{data}\">")
    parts.extend(_table(t) for t in section.tables)
    parts.extend(f"<p class=\"intro\">{e(n)}</p>" for n in section.notes)
    parts.append("</section>")
    return "\n".join(parts)


def render_html(report: DailyReport) -> bytes:
    """The report as UTF-8 HTML."""
    e = html.escape
    day = report.day
    generated = datetime.fromtimestamp(report.generated_at, day.zone).strftime("%Y-%m-%d %H:%M")
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{e(report.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{e(report.title)}</h1>",
        f"<p class=\"meta\">Plant day {e(day.day.isoformat())} 00:00–24:00 {e(day.zone.key)} · "
        f"gateway {e(report.gateway_id)} · site {e(report.site)} · generated {e(generated)}</p>"]
    if report.partial:
        parts.append(f"<p class=\"partial\">The day is not over: figures cover 00:00 to "
                     f"{e(day.local(report.covered_until, '%H:%M'))}.</p>")
    if report.analytics_as_of is None:
        parts.append("<p class=\"partial\">No analytics results were stored for this day: "
                     "KPI, OEE, energy, equipment and tank figures are missing.</p>")
    parts.extend(_section(s, report.charts) for s in report.sections)
    parts.append("</body></html>")
    return "\n".join(parts).encode("utf-8")
