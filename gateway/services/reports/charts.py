"""The report's charts as PNG images (matplotlib, object API and the Agg canvas: no GUI, no
global pyplot state, so charts can be drawn on a worker thread)."""

from __future__ import annotations

import io
from collections import defaultdict

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from gateway.services.analytics.run import PLANT_ID
from gateway.services.reports.model import DailyReport, SectionKey
from gateway.services.reports.sources import DayInputs
from gateway.services.reports.summary import TREND_CHART

DPI = 110
SIZE = (7.0, 2.8)  # inches: fits the A4 text width
TREND_SIZE = (7.0, 5.0)  # page one: the trends above the deviations table
GOOD, DOUBTFUL, BAD = "#2e7d32", "#f9a825", "#c62828"
BAR, TARGET, BENCHMARK = "#1565c0", "#c62828", "#6d6d6d"
UNIT_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#e377c2")


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def _figure() -> tuple[Figure, object]:
    fig = Figure(figsize=SIZE)
    ax = fig.add_subplot()
    ax.grid(axis="y", alpha=0.3)
    return fig, ax


def oee_chart(report: DailyReport) -> bytes:
    table = report.section(SectionKey.OEE).tables[0]
    labels = [r[0] for r in table.rows]
    values = [r[4] or 0.0 for r in table.rows]
    fig, ax = _figure()
    ax.bar(labels, values, color=BAR)
    if table.rows:
        ax.axhline(table.rows[0][5], color=TARGET, linestyle="--", label="target")
        ax.legend(loc="lower right")
    ax.set_ylim(0, 105)
    ax.set_ylabel("OEE (%)")
    ax.set_title("OEE per unit (day mean)")
    return _png(fig)


def energy_chart(report: DailyReport) -> bytes:
    table = report.section(SectionKey.ENERGY).tables[0]
    labels = [r[0] for r in table.rows]
    x = range(len(labels))
    fig, ax = _figure()
    width = 0.27
    ax.bar([i - width for i in x], [r[3] or 0.0 for r in table.rows], width, color=BAR, label="actual")
    ax.bar(list(x), [r[4] or 0.0 for r in table.rows], width, color=BENCHMARK, label="benchmark")
    ax.bar([i + width for i in x], [r[5] or 0.0 for r in table.rows], width, color=TARGET,
           label="target")
    ax.set_xticks(list(x), labels)
    ax.set_ylabel("kWh/bbl")
    ax.set_title("Specific energy against benchmark and target")
    ax.legend(loc="lower right", fontsize="small")
    return _png(fig)


def _activations_per_hour(report: DailyReport, inputs: DayInputs) -> list[int]:
    day = report.day
    hours = max(1, round((day.end - day.start) / 3600.0))
    counts = [0] * hours
    for t in inputs.transitions:
        if t.is_activation and day.start <= t.time < day.end:
            counts[min(hours - 1, int((t.time - day.start) // 3600.0))] += 1
    return counts


def trend_chart(report: DailyReport, inputs: DayInputs) -> bytes:
    """The day's trends for page one: OEE per unit, specific energy against target per unit
    and hour, and alarm activations per hour, on one time axis (hours of the plant day); a unit
    has the same colour in every panel."""
    day = report.day
    span_h = (day.end - day.start) / 3600.0
    units = sorted({r["unit_id"] for r in [*inputs.kpis, *inputs.energy]} - {PLANT_ID})
    colour = {u: UNIT_COLOURS[i % len(UNIT_COLOURS)] for i, u in enumerate(units)}
    colour[PLANT_ID] = "black"
    fig = Figure(figsize=TREND_SIZE)
    oee_ax, energy_ax, alarm_ax = fig.subplots(3, 1, sharex=True)
    for ax in (oee_ax, energy_ax, alarm_ax):
        ax.grid(axis="y", alpha=0.3)
    series: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for r in inputs.kpis:
        if r.get("oee_pct") is not None:
            xs, ys = series[r["unit_id"]]
            xs.append((r["ts"] - day.start) / 3600.0)
            ys.append(r["oee_pct"])
    for unit_id in [*units, PLANT_ID]:
        if unit_id in series:
            plant = unit_id == PLANT_ID
            oee_ax.plot(*series[unit_id], color=colour[unit_id], linewidth=2.0 if plant else 1.1,
                        label="Plant" if plant else unit_id)
    oee_rows = report.section(SectionKey.OEE).tables[0].rows
    if oee_rows and oee_rows[0][5] is not None:
        oee_ax.axhline(oee_rows[0][5], color=TARGET, linestyle="--", linewidth=1.0, label="target")
    oee_ax.set_ylabel("OEE (%)")
    energy: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for r in inputs.energy:
        kwh, target = r.get("kwh_per_bbl"), r.get("target_kwh_bbl")
        if kwh is not None and target:
            xs, ys = energy[r["unit_id"]]
            xs.append((r["hour_start"] - day.start) / 3600.0 + 0.5)
            ys.append(100.0 * kwh / target)
    for unit_id, (xs, ys) in sorted(energy.items()):
        energy_ax.plot(xs, ys, marker=".", linewidth=1.1, color=colour.get(unit_id), label=unit_id)
    energy_ax.axhline(100.0, color=TARGET, linestyle="--", linewidth=1.0)
    energy_ax.set_ylabel("kWh/bbl\n(% of target)")
    counts = _activations_per_hour(report, inputs)
    alarm_ax.bar([h + 0.5 for h in range(len(counts))], counts, width=0.8, color=BAR)
    alarm_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    alarm_ax.set_ylabel("alarms\nper hour")
    alarm_ax.set_xlabel(f"hour of the plant day ({day.zone.key})")
    alarm_ax.set_xlim(0, span_h)
    alarm_ax.set_xticks(range(0, int(span_h) + 1, 3))
    handles, labels = oee_ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=len(handles), fontsize="small",
                   frameon=False, bbox_to_anchor=(0.5, 0.96))
    fig.suptitle("The day's trends: OEE, specific energy and alarms", y=0.995)
    FigureCanvasAgg(fig)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def tank_chart(report: DailyReport, inputs: DayInputs) -> bytes:
    series: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for r in inputs.tanks:
        if r.get("level_pct") is not None:
            xs, ys = series[r["tank_id"]]
            xs.append((r["ts"] - report.day.start) / 3600.0)
            ys.append(r["level_pct"])
    fig, ax = _figure()
    for tank_id, (xs, ys) in sorted(series.items()):
        ax.plot(xs, ys, label=tank_id, linewidth=1.2)
    ax.set_xlim(0, (report.day.end - report.day.start) / 3600.0)
    ax.set_ylim(0, 100)
    ax.set_xlabel("hour of the plant day")
    ax.set_ylabel("level (%)")
    ax.set_title("Tank levels")
    if series:
        ax.legend(loc="upper right", fontsize="small", ncol=min(len(series), 5))
    return _png(fig)


def quality_chart(report: DailyReport) -> bytes:
    table = report.section(SectionKey.DATA_QUALITY).tables[0]
    labels = [r[0] for r in table.rows]
    good = [r[2] or 0.0 for r in table.rows]
    doubtful = [r[3] or 0.0 for r in table.rows]
    bad = [r[4] or 0.0 for r in table.rows]
    fig, ax = _figure()
    ax.barh(labels, good, color=GOOD, label="good")
    ax.barh(labels, doubtful, left=good, color=DOUBTFUL, label="doubtful")
    ax.barh(labels, bad, left=[g + d for g, d in zip(good, doubtful, strict=True)], color=BAD,
            label="bad")
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of samples (%)")
    ax.set_title("Data quality per unit")
    ax.legend(loc="lower left", fontsize="small", ncol=3)
    return _png(fig)


def render_charts(report: DailyReport, inputs: DayInputs) -> dict[str, bytes]:
    """Every chart the sections refer to, by key."""
    return {TREND_CHART: trend_chart(report, inputs), "oee": oee_chart(report),
            "energy": energy_chart(report), "tanks": tank_chart(report, inputs),
            "data_quality": quality_chart(report)}
