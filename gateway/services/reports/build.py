"""From one plant day's raw rows to the report's sections (pure: no I/O, no clock).

Each figure names where it comes from in the section's intro, so a reader can check it
against the API: KPI day means are the means of ``/api/analytics/kpis/history`` rows of the
day; the balance is the analytics balance row of the day (``/api/analytics/balance``); energy
hours are the rows of ``/api/analytics/energy``; alarm KPIs are ``analytics.alarm_kpis`` over
the day's journal (the same function as ``/api/alarms/kpis``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

from analytics.alarm_config import AlarmConfig
from analytics.alarm_kpis import alarm_kpis
from analytics.energy import design_feed_bpd
from gateway.services.analytics.run import PLANT_ID
from gateway.services.reports.model import Column, DailyReport, PlantDay, Section, SectionKey, Table
from gateway.services.reports.sources import DayInputs
from gateway.services.reports.summary import summary_section
from gateway.settings import ReportTargets
from plant.catalog import SYNTHETIC_PREFIX, Catalog

MET, BELOW, NO_DATA = "MET", "BELOW", "NO_DATA"
WITHIN, ABOVE = "WITHIN", "ABOVE"
# ISA-18.2 (table 5) / EEMUA 191 alarm-system performance targets over one day.
ALARMS_PER_10MIN_TARGET = 1.0  # average: "very likely acceptable"
ALARMS_PER_10MIN_MAX_TARGET = 10.0  # the flood threshold
FLOOD_PCT_TARGET = 1.0
CHATTERING_TARGET = 0
STALE_TARGET = 5
TOP_BAD_ACTORS = 10

PCT = "%"


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the known values (None when there is none)."""
    known = [v for v in values if v is not None and math.isfinite(v)]
    return sum(known) / len(known) if known else None


def _status_at_least(value: float | None, target: float) -> str:
    return NO_DATA if value is None else MET if value >= target else BELOW


def _status_at_most(value: float | None, target: float) -> str:
    return NO_DATA if value is None else WITHIN if value <= target else ABOVE


def _unit_label(unit_id: str) -> str:
    return "Plant" if unit_id == PLANT_ID else unit_id


def _kpis_by_unit(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        out[row["unit_id"]].append(row)
    return out


# --------------------------------------------------------------------------- sections

KPI_TARGETS = (  # (KPI column, title, target attribute)
    ("oee_pct", "OEE", "oee_pct"),
    ("throughput_pct_of_design", "Throughput of design", "throughput_pct_of_design"),
    ("energy_efficiency", "Energy efficiency", "energy_efficiency"),
    ("quality_score", "Quality score", "quality_score"),
    ("good_data_pct", "Good data", "good_data_pct"),
)


def kpi_section(by_unit: dict[str, list[dict]], unit_ids: list[str],
                targets: ReportTargets) -> Section:
    table = Table("KPIs against targets", [
        Column("Unit"), Column("KPI"), Column("Day mean", PCT, 1), Column("Day min", PCT, 1),
        Column("Latest", PCT, 1), Column("Target", PCT, 1), Column("Status"), Column("Samples", "", 0)])
    for unit_id in [*unit_ids, PLANT_ID]:
        rows = by_unit.get(unit_id, [])
        for column, title, attr in KPI_TARGETS:
            values = [r.get(column) for r in rows if r.get(column) is not None]
            if unit_id == PLANT_ID and not values:
                continue  # the plant row has no per-unit figures (design %, good data)
            day_mean = mean(values)
            target = getattr(targets, attr)
            table.rows.append([_unit_label(unit_id), title, day_mean,
                               min(values) if values else None,
                               values[-1] if values else None, target,
                               _status_at_least(day_mean, target), len(values)])
    throughput = Table("Throughput", [Column("Unit"), Column("Day mean", "bpd", 0),
                                      Column("Design", "bpd", 0), Column("Latest", "bpd", 0)])
    return Section(SectionKey.KPIS, "KPIs against targets",
                   "Means over the day of the analytics KPI rows (one per run), their minimum and "
                   "newest value, against the configured targets (reports.targets).",
                   [table, throughput])


def oee_section(by_unit: dict[str, list[dict]], unit_ids: list[str], target: float) -> Section:
    table = Table("OEE per unit", [
        Column("Unit"), Column("Availability", PCT, 1), Column("Performance", PCT, 1),
        Column("Quality", PCT, 1), Column("OEE", PCT, 1), Column("Target", PCT, 1),
        Column("Status")])
    for unit_id in [*unit_ids, PLANT_ID]:
        rows = by_unit.get(unit_id, [])
        oee = mean(r.get("oee_pct") for r in rows)
        table.rows.append([_unit_label(unit_id),
                           mean(r.get("availability_pct") for r in rows),
                           mean(r.get("performance_pct") for r in rows),
                           mean(r.get("oee_quality_pct") for r in rows), oee, target,
                           _status_at_least(oee, target)])
    return Section(SectionKey.OEE, "OEE per unit",
                   "Availability × performance × quality, day means of the analytics KPI rows.",
                   [table], charts=["oee"])


def balance_section(rows: list[dict]) -> Section:
    table = Table("Mass and energy balance per unit", [
        Column("Unit"), Column("Feed", "bbl", 1), Column("Products", "bbl", 1),
        Column("Closure", PCT, 2), Column("Imbalance", "bbl", 2), Column("Feed coverage", PCT, 1),
        Column("Energy", "kWh", 0), Column("Energy coverage", PCT, 1),
        Column("Specific energy", "kWh/bbl", 2)])
    products = Table("Products", [Column("Unit"), Column("Product tag"), Column("Volume", "bbl", 1),
                                  Column("Mean rate", "bpd", 0), Column("Coverage", PCT, 1)])
    for r in rows:
        table.rows.append([r["unit_id"], r.get("feed_bbl"), r.get("products_bbl"),
                           r.get("closure_pct"), r.get("imbalance_bbl"), r.get("feed_coverage_pct"),
                           r.get("energy_kwh"), r.get("energy_coverage_pct"), r.get("kwh_per_bbl")])
        for p in r.get("products") or []:
            products.rows.append([r["unit_id"], p.get("tag_id"), p.get("bbl"), p.get("mean_bpd"),
                                  p.get("coverage_pct")])
    return Section(SectionKey.BALANCE, "Mass and energy balance",
                   "Feed against products and energy since local midnight: the analytics balance "
                   "row of the day. Coverage is the share of the day with usable samples.",
                   [table, products])


def energy_section(hours: list[dict], catalog: Catalog, day: PlantDay) -> Section:
    units = {u.id: u for u in catalog.plant.units}
    summary = Table("Energy against benchmark", [
        Column("Unit"), Column("Consumption", "kWh", 0), Column("Feed", "bbl", 1),
        Column("Specific energy", "kWh/bbl", 2), Column("Benchmark", "kWh/bbl", 1),
        Column("Target", "kWh/bbl", 1), Column("vs target", PCT, 1), Column("Hours", "", 0),
        Column("Status")])
    by_unit: dict[str, list[dict]] = defaultdict(list)
    for h in hours:
        by_unit[h["unit_id"]].append(h)
    for unit_id, unit in units.items():
        rows = by_unit.get(unit_id, [])
        kwh = sum(r["consumption_kwh"] for r in rows if r.get("consumption_kwh") is not None)
        bbl = sum(r["feed_bbl"] for r in rows if r.get("feed_bbl") is not None)
        specific = kwh / bbl if rows and bbl > 0 else None
        target = unit.energy_target_kwh_bbl
        deviation = (specific / target - 1.0) * 100.0 if specific is not None and target else None
        status = (NO_DATA if specific is None or target is None
                  else WITHIN if specific <= target else ABOVE)
        summary.rows.append([unit_id, kwh if rows else None, bbl if rows else None, specific,
                             unit.energy_benchmark_kwh_bbl, target, deviation, len(rows), status])
    hourly = Table("Hourly energy", [
        Column("Unit"), Column("Hour"), Column("Consumption", "kWh", 1), Column("Feed", "bbl", 2),
        Column("Specific energy", "kWh/bbl", 2), Column("Score", PCT, 1), Column("Status"),
        Column("Complete")])
    for r in hours:
        hourly.rows.append([r["unit_id"], day.local(r["hour_start"], "%H:00"), r.get("consumption_kwh"),
                            r.get("feed_bbl"), r.get("kwh_per_bbl"), r.get("efficiency_score"),
                            r.get("status"), "yes" if r.get("complete") else "no"])
    return Section(SectionKey.ENERGY, "Energy against benchmarks",
                   "The day's hourly analytics energy rows, summed per unit: kWh over barrels fed, "
                   "against the unit's benchmark and target.", [summary, hourly], charts=["energy"])


def alarm_section(day: PlantDay, until: float, inputs: DayInputs, config: AlarmConfig) -> Section:
    window = max(until - day.start, 1.0)
    kpis = alarm_kpis(inputs.transitions, until, window, config)
    perf = Table("Alarm system performance (ISA-18.2)", [
        Column("Metric"), Column("Value", "", 2), Column("Target", "", 2), Column("Status")])
    avg10 = kpis["per_10min"]["average"]
    max10 = float(kpis["per_10min"]["max"])
    flood = kpis["flood"]["percent_in_flood"]
    perf.rows += [
        ["Annunciated alarms (activations)", float(kpis["activations"]), None, ""],
        ["Average alarms per 10 min", avg10, ALARMS_PER_10MIN_TARGET,
         _status_at_most(avg10, ALARMS_PER_10MIN_TARGET)],
        ["Maximum alarms in 10 min", max10, ALARMS_PER_10MIN_MAX_TARGET,
         _status_at_most(max10, ALARMS_PER_10MIN_MAX_TARGET)],
        ["Average alarms per hour", kpis["per_hour"]["average"], None, ""],
        ["Time in flood (%)", flood, FLOOD_PCT_TARGET, _status_at_most(flood, FLOOD_PCT_TARGET)],
        ["Chattering alarms", float(kpis["chattering"]["count"]), float(CHATTERING_TARGET),
         _status_at_most(kpis["chattering"]["count"], CHATTERING_TARGET)],
        ["Stale alarms", float(kpis["stale"]["count"]), float(STALE_TARGET),
         _status_at_most(kpis["stale"]["count"], STALE_TARGET)],
        ["Standing at end of period", float(kpis["standing"]), None, ""],
    ]
    activations = [t for t in inputs.transitions if t.is_activation and day.start <= t.time < until]
    severity = Counter(t.severity.value for t in activations)
    kinds = Counter(t.kind.value for t in activations)
    by_priority = Table("Activations by priority and kind", [Column("Group"), Column("Value"),
                                                            Column("Activations", "", 0)])
    for name, count in sorted(severity.items()):
        by_priority.rows.append(["Priority", name, count])
    for name, count in sorted(kinds.items()):
        by_priority.rows.append(["Kind", name, count])
    top = Table("Top bad actors", [Column("Tag"), Column("Activations", "", 0),
                                   Column("Share", PCT, 1)])
    total = max(len(activations), 1)
    for row in kpis["top_tags"][:TOP_BAD_ACTORS]:
        top.rows.append([row["tag_id"], row["activations"], 100.0 * row["activations"] / total])
    return Section(SectionKey.ALARMS, "Alarm summary",
                   "Alarm-rate KPIs over the day from the alarm journal (ISA-18.2 section 16, "
                   "EEMUA 191 targets), the most frequent alarms and the day's activations (per "
                   "hour in the shift summary's trends).",
                   [perf, by_priority, top])


def equipment_section(inputs: DayInputs, catalog: Catalog) -> Section:
    names = {q.id: q.name for q in catalog.plant.equipment}
    table = Table("Equipment health and predictions", [
        Column("Equipment"), Column("Name"), Column("Unit"), Column("Score", PCT, 1),
        Column("Day min score", PCT, 1), Column("Status"), Column("Vibration zone"),
        Column("Worst component"), Column("Failure probability", PCT, 1)])
    # Worst first: the lowest score leads, equipment without a score comes last.
    for r in sorted(inputs.equipment, key=lambda r: (r.get("score") is None, r.get("score") or 0.0,
                                                    r["equipment_id"])):
        worst = f"{r.get('worst_kind')} {r.get('worst_tag')}" if r.get("worst_tag") else None
        table.rows.append([r["equipment_id"], names.get(r["equipment_id"], ""), r.get("unit_id"),
                           r.get("score"), inputs.equipment_min_score.get(r["equipment_id"]),
                           r.get("status"), r.get("zone"), worst, r.get("failure_probability_pct")])
    return Section(SectionKey.EQUIPMENT, "Equipment health",
                   "The newest health of each piece of equipment in the day (ISO 10816 vibration "
                   "zones, bearing temperature, limits) with the predictive-maintenance failure "
                   "probability where a model is loaded, and the lowest score of the day; "
                   "lowest score first.", [table])


def tank_section(rows: list[dict], catalog: Catalog) -> Section:
    tanks = {t.id: t for t in catalog.plant.tanks}
    table = Table("Tanks", [
        Column("Tank"), Column("Product"), Column("Level", PCT, 1), Column("Volume", "L", 0),
        Column("Capacity", "L", 0), Column("Trend"), Column("Rate", "%/h", 2),
        Column("Day min", PCT, 1), Column("Day max", PCT, 1), Column("Hours to full", "h", 1),
        Column("Hours to empty", "h", 1), Column("Status")])
    by_tank: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_tank[r["tank_id"]].append(r)
    for tank_id, tank in tanks.items():
        history = by_tank.get(tank_id, [])
        levels = [r["level_pct"] for r in history if r.get("level_pct") is not None]
        last = history[-1] if history else {}
        table.rows.append([tank_id, tank.product, last.get("level_pct"), last.get("volume_l"),
                           tank.capacity_l, last.get("trend"), last.get("rate_pct_per_h"),
                           min(levels) if levels else None, max(levels) if levels else None,
                           last.get("hours_to_full"), last.get("hours_to_empty"),
                           last.get("status")])
    return Section(SectionKey.TANKS, "Tanks",
                   "The newest state of each tank in the day (FILLING / DRAINING / STABLE from the "
                   "level trend) and the day's lowest and highest level.", [table], charts=["tanks"])


def quality_section(counts: dict[str, list[int]], catalog: Catalog,
                    source: str = "embedded history") -> Section:
    """Good / doubtful / bad shares per unit and tag; ``source`` names where the counts come
    from (the gateway's embedded history, or the historian)."""
    per_unit: dict[str, list[int]] = {u.id: [0, 0, 0] for u in catalog.plant.units}
    per_tag = Table("Tags with non-good samples", [
        Column("Tag"), Column("Unit"), Column("Samples", "", 0), Column("Good", PCT, 2),
        Column("Doubtful", PCT, 2), Column("Bad", PCT, 2)])
    for tag in catalog.tags:
        if tag.id.startswith(SYNTHETIC_PREFIX) or tag.id not in counts:
            continue
        good, doubtful, bad = counts[tag.id]
        unit_id = tag.unit_id or "—"
        acc = per_unit.setdefault(unit_id, [0, 0, 0])
        for k, n in enumerate((good, doubtful, bad)):
            acc[k] += n
        total = good + doubtful + bad
        if total and (doubtful or bad):
            per_tag.rows.append([tag.id, tag.unit_id, total, 100.0 * good / total,
                                 100.0 * doubtful / total, 100.0 * bad / total])
    table = Table("Data quality per unit", [
        Column("Unit"), Column("Samples", "", 0), Column("Good", PCT, 2),
        Column("Doubtful", PCT, 2), Column("Bad", PCT, 2)])
    for unit_id, (good, doubtful, bad) in per_unit.items():
        total = good + doubtful + bad
        share = [100.0 * n / total if total else None for n in (good, doubtful, bad)]
        table.rows.append([unit_id, total, *share])
    per_tag.rows.sort(key=lambda r: -(r[5] or 0.0))
    return Section(SectionKey.DATA_QUALITY, "Data quality",
                   "Share of good, doubtful and bad samples of each unit's tags in the day's "
                   f"scans ({source}).", [table, per_tag], charts=["data_quality"])


# --------------------------------------------------------------------------- the report


def build_report(inputs: DayInputs, day: PlantDay, until: float, generated_at: float,
                 catalog: Catalog, targets: ReportTargets, alarm_config: AlarmConfig,
                 plant_name: str, gateway_id: str, site: str) -> DailyReport:
    """The report of ``day`` covering ``[day.start, until)`` (without its chart images)."""
    unit_ids = [u.id for u in catalog.plant.units]
    by_unit = _kpis_by_unit(inputs.kpis)
    kpis = kpi_section(by_unit, unit_ids, targets)
    throughput = kpis.tables[1]
    # The design feed the OEE performance is measured against (feed tag's upper normal limit).
    design = {u.id: design_feed_bpd(u, catalog) for u in catalog.plant.units}
    for unit_id in unit_ids:
        rows = by_unit.get(unit_id, [])
        values = [r.get("throughput_bpd") for r in rows if r.get("throughput_bpd") is not None]
        throughput.rows.append([unit_id, mean(values), design[unit_id],
                                values[-1] if values else None])
    report = DailyReport(
        plant_name=plant_name, gateway_id=gateway_id, site=site, day=day,
        generated_at=generated_at,
        analytics_as_of=max((r["ts"] for r in inputs.kpis), default=None),
        covered_until=until)
    detail = [
        alarm_section(day, until, inputs, alarm_config), equipment_section(inputs, catalog), kpis,
        energy_section(inputs.energy, catalog, day), oee_section(by_unit, unit_ids, targets.oee_pct),
        tank_section(inputs.tanks, catalog), balance_section(inputs.balance),
        quality_section(inputs.quality, catalog, inputs.quality_source)]
    report.sections = [summary_section(detail, catalog), *detail]
    return report
