"""The report's charts as PNG images (matplotlib, object API and the Agg canvas: no GUI, no
global pyplot state, so charts can be drawn on a worker thread)."""

from __future__ import annotations

import io
from collections import defaultdict

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gateway.services.reports.model import DailyReport, SectionKey
from gateway.services.reports.sources import DayInputs

DPI = 110
SIZE = (7.0, 2.8)  # inches: fits the A4 text width
GOOD, DOUBTFUL, BAD = "#2e7d32", "#f9a825", "#c62828"
BAR, TARGET, BENCHMARK = "#1565c0", "#c62828", "#6d6d6d"


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


def alarm_chart(report: DailyReport, inputs: DayInputs) -> bytes:
    day = report.day
    hours = max(1, round((day.end - day.start) / 3600.0))
    counts = [0] * hours
    for t in inputs.transitions:
        if t.is_activation and day.start <= t.time < day.end:
            counts[min(hours - 1, int((t.time - day.start) // 3600.0))] += 1
    fig, ax = _figure()
    ax.bar(range(hours), counts, color=BAR)
    ax.set_xlabel(f"hour of the plant day ({day.zone.key})")
    ax.set_ylabel("activations")
    ax.set_title("Alarm activations per hour")
    ax.set_xlim(-0.5, hours - 0.5)
    return _png(fig)


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
    return {"oee": oee_chart(report), "energy": energy_chart(report),
            "alarms": alarm_chart(report, inputs), "tanks": tank_chart(report, inputs),
            "data_quality": quality_chart(report)}
