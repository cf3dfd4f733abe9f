"""The daily report as data: a plant day, sections of typed tables, charts.

Every renderer (HTML, PDF, XLSX) draws the same :class:`DailyReport`, so a figure is computed
once and reads the same in every format; numbers stay numbers until a renderer formats them
(the XLSX keeps them as numeric cells).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

Cell = str | float | int | None
MISSING = "—"


class ReportFormat(StrEnum):
    """The formats the report is rendered to."""

    HTML = "html"
    PDF = "pdf"
    XLSX = "xlsx"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self]

    @property
    def suffix(self) -> str:
        return f".{self.value}"


MEDIA_TYPES = {
    ReportFormat.HTML: "text/html",
    ReportFormat.PDF: "application/pdf",
    ReportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class SectionKey(StrEnum):
    """The report's sections, in reading order (also the XLSX sheet order): what a shift
    supervisor looks at first comes first."""

    SUMMARY = "summary"
    ALARMS = "alarms"
    EQUIPMENT = "equipment"
    KPIS = "kpis"
    ENERGY = "energy"
    OEE = "oee"
    TANKS = "tanks"
    BALANCE = "balance"
    DATA_QUALITY = "data_quality"


@dataclass(frozen=True)
class PlantDay:
    """One plant day: local midnight to local midnight in the plant's time zone (23 or 25 h
    long on a daylight-saving change, where the zone has one)."""

    day: date
    zone: ZoneInfo
    start: float
    end: float

    @classmethod
    def of(cls, day: date, zone: ZoneInfo) -> PlantDay:
        start = datetime.combine(day, time(0), zone)
        end = datetime.combine(day + timedelta(days=1), time(0), zone)
        return cls(day, zone, start.timestamp(), end.timestamp())

    @classmethod
    def containing(cls, ts: float, zone: ZoneInfo) -> PlantDay:
        return cls.of(datetime.fromtimestamp(ts, zone).date(), zone)

    def local(self, ts: float, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """``ts`` as local plant time."""
        return datetime.fromtimestamp(ts, self.zone).strftime(fmt)


@dataclass(frozen=True)
class Column:
    """A table column: its title, its engineering unit, and how many decimals a number shows
    (``None``: the column holds text)."""

    title: str
    unit: str = ""
    digits: int | None = None

    @property
    def numeric(self) -> bool:
        return self.digits is not None

    @property
    def heading(self) -> str:
        return f"{self.title} ({self.unit})" if self.unit else self.title


@dataclass
class Table:
    """Rows of cells under columns; a cell that is not known is None."""

    title: str
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    empty: str = "No data for this day."  # said instead of a table without rows

    def formatted(self, row: list[Cell]) -> list[str]:
        """A row as display text (numbers rounded to their column's decimals)."""
        return [format_cell(c, col) for c, col in zip(row, self.columns, strict=True)]


def format_cell(value: Cell, column: Column) -> str:
    """One cell as display text; None as an em dash."""
    if value is None:
        return MISSING
    if column.digits is not None and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,.{column.digits}f}"
    return str(value)


@dataclass
class Section:
    """One section: a title, a sentence on what it shows, its tables and charts."""

    key: SectionKey
    title: str
    intro: str = ""
    tables: list[Table] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)  # keys into DailyReport.charts
    notes: list[str] = field(default_factory=list)


@dataclass
class DailyReport:
    """The whole report: header facts, the sections in order, and the chart images (PNG)."""

    plant_name: str
    gateway_id: str
    site: str
    day: PlantDay
    generated_at: float
    # The newest analytics result included (None: no analytics for the day).
    analytics_as_of: float | None
    # The day is not over yet: figures cover midnight to ``covered_until``.
    covered_until: float
    sections: list[Section] = field(default_factory=list)
    charts: dict[str, bytes] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        return self.covered_until < self.day.end

    @property
    def plant_label(self) -> str:
        """The configured plant name (plant.toml ``name``) and site (gateway.toml ``site``)."""
        if not self.site or self.site.casefold() in self.plant_name.casefold():
            return self.plant_name
        return f"{self.plant_name} · {self.site}"

    @property
    def title(self) -> str:
        return f"{self.plant_label} — Daily operations report {self.day.day.isoformat()}"

    def section(self, key: SectionKey) -> Section:
        return next(s for s in self.sections if s.key == key)
