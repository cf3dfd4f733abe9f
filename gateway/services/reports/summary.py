"""The report's first section, as a shift supervisor reads a day: trends, then what is off.

Page one leads with the day's trends (one chart: OEE, specific energy against target and alarm
activations per hour), then every figure that missed its target, worst first, the most
frequent alarms and the lowest equipment health. Its rows are copied from the detailed
sections' tables, never recomputed, so a figure reads the same on page one and further on
(and in every format).
"""

from __future__ import annotations

from dataclasses import dataclass

from analytics.health import OPERATIONAL_MIN_SCORE, HealthStatus
from analytics.tanks import TankStatus
from gateway.services.reports.model import Cell, Column, Section, SectionKey, Table
from plant.catalog import Catalog

BELOW, ABOVE = "BELOW", "ABOVE"
TOP_ALARMS = 5
LOWEST_EQUIPMENT = 5
TREND_CHART = "trends"


@dataclass(frozen=True)
class Deviation:
    """One figure off its target."""

    area: str
    item: str
    figure: str
    value: float | None
    target: float | None
    unit: str
    status: str

    @property
    def gap(self) -> float | None:
        """Value minus target, in the figure's unit."""
        return None if self.value is None or self.target is None else self.value - self.target

    @property
    def relative_gap(self) -> float:
        """How far off, as a share of the target (a target of 0 counts as 1): the sort key."""
        gap = self.gap
        return -1.0 if gap is None else abs(gap) / max(abs(self.target or 0.0), 1.0)

    def row(self) -> list[Cell]:
        return [self.area, self.item, self.figure, self.value, self.target, self.gap, self.unit,
                self.status]


def _rows(table: Table) -> list[dict[str, Cell]]:
    """A table's rows by column title."""
    titles = [c.title for c in table.columns]
    return [dict(zip(titles, row, strict=True)) for row in table.rows]


def _table(section: Section, title: str) -> Table:
    return next(t for t in section.tables if t.title == title)


def deviations(by_key: dict[SectionKey, Section]) -> list[Deviation]:
    """Every figure of the detailed sections that missed its target, worst first."""
    out: list[Deviation] = []
    for r in _rows(_table(by_key[SectionKey.KPIS], "KPIs against targets")):
        if r["Status"] == BELOW:
            out.append(Deviation("KPI", str(r["Unit"]), str(r["KPI"]), r["Day mean"], r["Target"],
                                 "%", BELOW))
    for r in _rows(_table(by_key[SectionKey.ENERGY], "Energy against benchmark")):
        if r["Status"] == ABOVE:
            out.append(Deviation("Energy", str(r["Unit"]), "Specific energy", r["Specific energy"],
                                 r["Target"], "kWh/bbl", ABOVE))
    for r in _rows(_table(by_key[SectionKey.ALARMS], "Alarm system performance (ISA-18.2)")):
        if r["Status"] == ABOVE:
            out.append(Deviation("Alarms", "Alarm system", str(r["Metric"]), r["Value"],
                                 r["Target"], "", ABOVE))
    for r in _rows(_table(by_key[SectionKey.EQUIPMENT], "Equipment health and predictions")):
        if r["Status"] in (HealthStatus.MAINTENANCE.value, HealthStatus.FAULT.value):
            out.append(Deviation("Equipment", str(r["Equipment"]), "Health score", r["Score"],
                                 OPERATIONAL_MIN_SCORE, "/100", str(r["Status"])))
    for r in _rows(_table(by_key[SectionKey.TANKS], "Tanks")):
        if r["Status"] in (TankStatus.HIGH.value, TankStatus.LOW.value):
            out.append(Deviation("Tanks", str(r["Tank"]), "Level", r["Level"], None, "%",
                                 str(r["Status"])))
    out.sort(key=lambda d: d.relative_gap, reverse=True)
    return out


def _any_compared(by_key: dict[SectionKey, Section]) -> bool:
    """Whether any figure could be compared with its target (else the day has no data)."""
    statuses = [r["Status"] for r in _rows(_table(by_key[SectionKey.KPIS], "KPIs against targets"))]
    statuses += [r["Status"] for r in _rows(_table(by_key[SectionKey.ENERGY],
                                                   "Energy against benchmark"))]
    return any(s not in ("NO_DATA", None) for s in statuses)


def top_alarms(by_key: dict[SectionKey, Section], catalog: Catalog, limit: int = TOP_ALARMS) -> Table:
    """The most frequent alarms of the day (the alarm section's bad actors) with tag names."""
    table = Table("Most frequent alarms", [Column("Tag"), Column("Name"), Column("Unit"),
                                           Column("Activations", "", 0), Column("Share", "%", 1)])
    table.empty = "No alarm was raised this day."
    for r in _rows(_table(by_key[SectionKey.ALARMS], "Top bad actors"))[:limit]:
        index = catalog.index.get(str(r["Tag"]))
        tag = catalog.tags[index] if index is not None else None
        table.rows.append([r["Tag"], tag.name if tag else "", tag.unit_id if tag else None,
                           r["Activations"], r["Share"]])
    return table


def lowest_equipment(by_key: dict[SectionKey, Section], limit: int = LOWEST_EQUIPMENT) -> Table:
    """The equipment with the lowest health of the day, lowest first."""
    source = _table(by_key[SectionKey.EQUIPMENT], "Equipment health and predictions")
    table = Table("Lowest equipment health", [
        Column("Equipment"), Column("Unit"), Column("Score", "%", 1), Column("Day min score", "%", 1),
        Column("Status"), Column("Worst component"), Column("Failure probability", "%", 1)])
    scored = [r for r in _rows(source) if r["Score"] is not None]
    for r in sorted(scored, key=lambda r: r["Score"])[:limit]:
        table.rows.append([r["Equipment"], r["Unit"], r["Score"], r["Day min score"], r["Status"],
                           r["Worst component"], r["Failure probability"]])
    return table


def _headline(found: list[Deviation], by_key: dict[SectionKey, Section], lowest: Table) -> str:
    alarms = {r["Metric"]: r["Value"]
              for r in _rows(_table(by_key[SectionKey.ALARMS], "Alarm system performance (ISA-18.2)"))}
    activations = int(alarms.get("Annunciated alarms (activations)") or 0)
    peak = int(alarms.get("Maximum alarms in 10 min") or 0)
    standing = int(alarms.get("Standing at end of period") or 0)
    parts = [f"{len(found)} figure{'s' if len(found) != 1 else ''} off target",
             f"{activations} alarm activation{'s' if activations != 1 else ''} "
             f"(at most {peak} in 10 min), {standing} standing at the end of the period"]
    if lowest.rows:
        equipment, _, score = lowest.rows[0][:3]
        parts.append(f"lowest equipment health {equipment} {score:.1f}")
    return "; ".join(parts) + "."


def summary_section(sections: list[Section], catalog: Catalog) -> Section:
    """The first section, from the detailed ``sections`` (see the module docstring)."""
    by_key = {s.key: s for s in sections}
    found = deviations(by_key)
    off = Table("Off target, worst first", [
        Column("Area"), Column("Item"), Column("Figure"), Column("Value", "", 1),
        Column("Target", "", 1), Column("Gap", "", 1), Column("Unit"), Column("Status")],
        [d.row() for d in found])
    off.empty = ("Every figure met its target." if _any_compared(by_key)
                 else "No figure could be compared with its target: no analytics results.")
    lowest = lowest_equipment(by_key)
    return Section(
        SectionKey.SUMMARY, "Shift summary",
        f"{_headline(found, by_key, lowest)} The day's trends, then every figure that missed its "
        "target (gap = value − target), the most frequent alarms and the lowest equipment health; "
        "the sections after this one hold every figure.",
        [off, top_alarms(by_key, catalog), lowest], charts=[TREND_CHART])
