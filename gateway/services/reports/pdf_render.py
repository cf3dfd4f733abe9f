"""The report as an A4 PDF (fpdf2), with the same sections, tables and charts as the HTML.

The text face is DejaVu Sans from matplotlib's package data: a Unicode TrueType font that is
always installed with the report's charting dependency, so plant names with accents, "°C" and
"—" print without depending on the host's fonts.
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.fonts import FontFace

from gateway.services.reports.model import DailyReport, Section, Table

FONT = "DejaVu"
FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
MARGIN_MM = 12
CHART_WIDTH_MM = 170
HEADING_FILL = (238, 242, 247)
WIDE_TABLE_COLUMNS = 8


class ReportPdf(FPDF):
    """A4 pages with the report title in the footer and page numbers."""

    def __init__(self, footer_text: str):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.footer_text = footer_text
        self.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
        self.set_auto_page_break(True, margin=MARGIN_MM + 4)

    def footer(self) -> None:
        self.set_y(-MARGIN_MM)
        self.set_font(FONT, "", 7)
        self.set_text_color(110)
        self.cell(0, 5, f"{self.footer_text} · page {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(0)


def _table(pdf: ReportPdf, table: Table) -> None:
    pdf.set_font(FONT, "B", 9)
    pdf.cell(0, 6, table.title, new_x="LMARGIN", new_y="NEXT")
    size = 6.5 if len(table.columns) > WIDE_TABLE_COLUMNS else 7.5
    pdf.set_font(FONT, "", size)
    if not table.rows:
        pdf.cell(0, 5, table.empty, new_x="LMARGIN", new_y="NEXT")
        return
    aligns = ["RIGHT" if c.numeric else "LEFT" for c in table.columns]
    with pdf.table(headings_style=FontFace(emphasis="BOLD", fill_color=HEADING_FILL),
                   line_height=size * 0.5, text_align=aligns, width=pdf.epw,
                   padding=0.8) as out:
        heading = out.row()
        for column in table.columns:
            heading.cell(column.heading)
        for row in table.rows:
            cells = out.row()
            for text in table.formatted(row):
                cells.cell(text)
    pdf.ln(2)


def _section(pdf: ReportPdf, section: Section, charts: dict[str, bytes]) -> None:
    if pdf.get_y() > pdf.h - 70:
        pdf.add_page()
    pdf.set_font(FONT, "B", 12)
    pdf.set_text_color(21, 101, 192)
    pdf.cell(0, 8, section.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0)
    if section.intro:
        pdf.set_font(FONT, "", 8)
        pdf.multi_cell(0, 4, section.intro, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    for key in section.charts:
        if key in charts:
            if pdf.get_y() > pdf.h - 80:
                pdf.add_page()
            pdf.image(io.BytesIO(charts[key]), w=CHART_WIDTH_MM, x=(pdf.w - CHART_WIDTH_MM) / 2)
            pdf.ln(1)
    for table in section.tables:
        _table(pdf, table)
    for note in section.notes:
        pdf.set_font(FONT, "", 8)
        pdf.multi_cell(0, 4, note, new_x="LMARGIN", new_y="NEXT")


def render_pdf(report: DailyReport) -> bytes:
    """The report as PDF bytes."""
    day = report.day
    pdf = ReportPdf(report.title)
    pdf.set_title(report.title)
    pdf.set_author(f"RefineryIQ Edge {report.gateway_id}")
    pdf.add_page()
    pdf.set_font(FONT, "B", 15)
    pdf.multi_cell(0, 8, report.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 8)
    generated = datetime.fromtimestamp(report.generated_at, day.zone).strftime("%Y-%m-%d %H:%M")
    pdf.multi_cell(0, 4, f"Plant day {day.day.isoformat()} 00:00–24:00 {day.zone.key} · gateway "
                         f"{report.gateway_id} · site {report.site} · generated {generated}",
                   new_x="LMARGIN", new_y="NEXT")
    if report.partial:
        pdf.multi_cell(0, 4, f"The day is not over: figures cover 00:00 to "
                             f"{day.local(report.covered_until, '%H:%M')}.",
                       new_x="LMARGIN", new_y="NEXT")
    if report.analytics_as_of is None:
        pdf.multi_cell(0, 4, "No analytics results were stored for this day: KPI, OEE, energy, "
                             "equipment and tank figures are missing.", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    for section in report.sections:
        _section(pdf, section, report.charts)
    return bytes(pdf.output())
