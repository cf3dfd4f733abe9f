"""The report as an XLSX workbook (openpyxl): a cover sheet, then one sheet per section.

Numbers are written as numeric cells at full precision, with a display format that rounds
them like the HTML/PDF do; a figure that is not known is an empty cell, never a dash, so
spreadsheet formulas over a column keep working. Each table on a sheet starts with its title
row and a header row; tables are separated by one empty row.
"""

from __future__ import annotations

import io
from datetime import datetime

from openpyxl import Workbook
from openpyxl.drawing.image import Image
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from gateway.services.reports.model import DailyReport, Section, Table

MAX_SHEET_NAME = 31
TITLE_FONT = Font(bold=True, size=12)
HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="EEF2F7")
MIN_WIDTH, MAX_WIDTH = 8, 40
CHART_ROWS = 18  # rows a chart image covers, below the tables


def _number_format(digits: int) -> str:
    return "#,##0" if digits == 0 else "#,##0." + "0" * digits


def _write_table(ws, table: Table, row: int, widths: dict[int, int]) -> int:
    ws.cell(row=row, column=1, value=table.title).font = TITLE_FONT
    row += 1
    for j, column in enumerate(table.columns, start=1):
        cell = ws.cell(row=row, column=j, value=column.heading)
        cell.font, cell.fill = HEADER_FONT, HEADER_FILL
        widths[j] = max(widths.get(j, MIN_WIDTH), min(len(column.heading) + 2, MAX_WIDTH))
    if not table.rows:
        row += 1
        ws.cell(row=row, column=1, value=table.empty)
    for values in table.rows:
        row += 1
        for j, (value, column) in enumerate(zip(values, table.columns, strict=True), start=1):
            cell = ws.cell(row=row, column=j, value=value)
            if column.numeric and isinstance(value, int | float):
                cell.number_format = _number_format(column.digits or 0)
            elif value is not None:
                widths[j] = max(widths.get(j, MIN_WIDTH), min(len(str(value)) + 2, MAX_WIDTH))
    return row + 2


def sheet_name(section: Section) -> str:
    """The section's sheet name (Excel allows 31 characters)."""
    return section.title[:MAX_SHEET_NAME]


def _write_section(wb: Workbook, section: Section, charts: dict[str, bytes]) -> None:
    ws = wb.create_sheet(sheet_name(section))
    ws.cell(row=1, column=1, value=section.title).font = Font(bold=True, size=14)
    ws.cell(row=2, column=1, value=section.intro)
    row, widths = 4, {}
    for table in section.tables:
        row = _write_table(ws, table, row, widths)
    for key in section.charts:
        if key in charts:
            ws.add_image(Image(io.BytesIO(charts[key])), f"A{row}")
            row += CHART_ROWS
    for j, width in widths.items():
        ws.column_dimensions[get_column_letter(j)].width = width
    ws.freeze_panes = "A4"


def render_xlsx(report: DailyReport) -> bytes:
    """The report as XLSX bytes."""
    wb = Workbook()
    cover = wb.active
    cover.title = "Report"
    day = report.day
    facts = [
        ("Report", report.title), ("Plant", report.plant_name), ("Plant day", day.day.isoformat()),
        ("Time zone", day.zone.key),
        ("Day start", datetime.fromtimestamp(day.start, day.zone).replace(tzinfo=None)),
        ("Covered until", datetime.fromtimestamp(report.covered_until, day.zone).replace(tzinfo=None)),
        ("Complete day", "yes" if not report.partial else "no"),
        ("Analytics as of (epoch s)", report.analytics_as_of),
        ("Gateway", report.gateway_id), ("Site", report.site),
        ("Generated", datetime.fromtimestamp(report.generated_at, day.zone).replace(tzinfo=None)),
    ]
    for i, (name, value) in enumerate(facts, start=1):
        cover.cell(row=i, column=1, value=name).font = HEADER_FONT
        cell = cover.cell(row=i, column=2, value=value)
        if isinstance(value, datetime):
            cell.number_format = "yyyy-mm-dd hh:mm"
    cover.cell(row=len(facts) + 2, column=1, value="Sheets").font = HEADER_FONT
    for i, section in enumerate(report.sections, start=len(facts) + 3):
        cover.cell(row=i, column=1, value=sheet_name(section))
        cover.cell(row=i, column=2, value=section.intro)
    cover.column_dimensions["A"].width = 28
    cover.column_dimensions["B"].width = 90
    for section in report.sections:
        _write_section(wb, section, report.charts)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
