"""Energy intensity per unit (kWh per barrel of feed) against the unit's benchmark and target.

Consumption is the trapezoid integral of the unit's power tag (kW); barrels are the integral
of its feed tag (bpd) / 24 per hour. Intensity is the ratio of the two time-weighted mean
rates, so a gap in one meter does not bias it; with full coverage it equals kWh / bbl.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from analytics.health import EquipmentHealth
from analytics.window import (
    DEFAULT_MAX_GAP_S,
    SECONDS_PER_DAY,
    SECONDS_PER_HOUR,
    SampleCounts,
    Window,
    integrate,
)
from plant.catalog import Catalog
from plant.schema import Unit

DAYS_PER_YEAR = 365.0


class EnergyStatus(StrEnum):
    EXCELLENT = "EXCELLENT"
    GOOD = "GOOD"
    NEEDS_IMPROVEMENT = "NEEDS_IMPROVEMENT"
    POOR = "POOR"
    NO_DATA = "NO_DATA"


# Lower edge of each band, inclusive (score >= 95 EXCELLENT, >= 85 GOOD, >= 70 NEEDS_IMPROVEMENT).
STATUS_BANDS: tuple[tuple[float, EnergyStatus], ...] = (
    (95.0, EnergyStatus.EXCELLENT),
    (85.0, EnergyStatus.GOOD),
    (70.0, EnergyStatus.NEEDS_IMPROVEMENT),
)
# Feed below this share of design means fixed loads are spread over fewer barrels.
LOW_THROUGHPUT_PCT = 90.0
# The seed's rule: more than 10 % over the benchmark is a HIGH priority inefficiency.
HIGH_PRIORITY_OVER_BENCHMARK = 1.10
# Power-meter coverage below this makes the intensity itself doubtful.
MIN_COVERAGE_PCT = 90.0
# Equipment below this health is named as a likely contributor to excess consumption.
INSPECT_BELOW_HEALTH = 75.0


class Priority(StrEnum):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class Action(StrEnum):
    NOMINAL = "NOMINAL"
    RAISE_THROUGHPUT = "RAISE_THROUGHPUT"
    IMPROVE_EQUIPMENT_EFFICIENCY = "IMPROVE_EQUIPMENT_EFFICIENCY"
    INSPECT_EQUIPMENT = "INSPECT_EQUIPMENT"
    CHECK_METERING = "CHECK_METERING"


@dataclass(frozen=True, slots=True)
class Recommendation:
    """What to do about the gap to target, and why (derived from the data, not a template)."""

    action: Action
    priority: Priority
    message: str
    equipment_id: str | None = None


@dataclass(frozen=True, slots=True)
class EnergyAnalysis:
    """Energy use of one unit over ``[start, end)`` (epoch s). Units are in the field names."""

    unit_id: str
    start: float
    end: float
    consumption_kwh: float
    feed_bbl: float
    mean_power_kw: float | None
    mean_feed_bpd: float | None
    power_coverage_pct: float
    feed_coverage_pct: float
    feed_pct_of_design: float | None
    kwh_per_bbl: float | None
    benchmark_kwh_bbl: float | None
    target_kwh_bbl: float | None
    efficiency_score: float | None
    status: EnergyStatus
    savings_kwh: float
    savings_kwh_per_year: float
    recommendations: tuple[Recommendation, ...]
    samples: SampleCounts


def efficiency_score(kwh_per_bbl: float, target_kwh_bbl: float) -> float:
    """100 × target / actual, capped to 0–100 (the seed's definition)."""
    if kwh_per_bbl <= 0:
        return 100.0
    return min(100.0, max(0.0, 100.0 * target_kwh_bbl / kwh_per_bbl))


def energy_status(score: float | None) -> EnergyStatus:
    """EXCELLENT ≥ 95, GOOD ≥ 85, NEEDS_IMPROVEMENT ≥ 70, POOR below; NO_DATA without a score."""
    if score is None:
        return EnergyStatus.NO_DATA
    for lower_edge, status in STATUS_BANDS:
        if score >= lower_edge:
            return status
    return EnergyStatus.POOR


def design_feed_bpd(unit: Unit, catalog: Catalog) -> float | None:
    """Design feed rate: the upper normal limit of the unit's feed tag (bpd)."""
    return catalog.tag(unit.feed_tag).normal_max if unit.feed_tag else None


def _recommendations(unit: Unit, kwh_per_bbl: float | None, feed_pct: float | None,
                     power_coverage_pct: float,
                     equipment_health: Mapping[str, EquipmentHealth] | None) -> list[Recommendation]:
    out: list[Recommendation] = []
    if power_coverage_pct < MIN_COVERAGE_PCT:
        out.append(Recommendation(
            Action.CHECK_METERING, Priority.MEDIUM,
            f"Power tag {unit.power_tag} covers only {power_coverage_pct:.0f} % of the period: "
            "check the meter and its communication before acting on this analysis"))
    target = unit.energy_target_kwh_bbl
    if kwh_per_bbl is None or target is None:
        return out
    if kwh_per_bbl <= target:
        out.append(Recommendation(Action.NOMINAL, Priority.LOW,
                                  f"{kwh_per_bbl:.1f} kWh/bbl is at or below the target {target:g}"))
        return out
    benchmark = unit.energy_benchmark_kwh_bbl or target
    priority = Priority.HIGH if kwh_per_bbl > benchmark * HIGH_PRIORITY_OVER_BENCHMARK else Priority.MEDIUM
    if feed_pct is not None and feed_pct < LOW_THROUGHPUT_PCT:
        out.append(Recommendation(
            Action.RAISE_THROUGHPUT, priority,
            f"Feed is {feed_pct:.0f} % of design: fixed loads (furnace, compressors, pumps) are "
            f"spread over fewer barrels; raise feed toward design or consolidate operation"))
    else:
        out.append(Recommendation(
            Action.IMPROVE_EQUIPMENT_EFFICIENCY, priority,
            f"{kwh_per_bbl:.1f} kWh/bbl at design feed exceeds the target {target:g}: look at "
            "equipment efficiency (heat-exchanger fouling, furnace excess air, motor loading)"))
    unit_health = [h for h in (equipment_health or {}).values()
                   if h.unit_id == unit.id and h.score is not None]
    if unit_health:
        worst = min(unit_health, key=lambda h: h.score or 0.0)
        if worst.score is not None and worst.score < INSPECT_BELOW_HEALTH:
            tag = f" ({worst.worst.tag_id})" if worst.worst and worst.worst.tag_id else ""
            out.append(Recommendation(
                Action.INSPECT_EQUIPMENT, priority,
                f"{worst.equipment_id} has the unit's lowest health, {worst.score:.0f}/100{tag}: "
                "degraded equipment consumes more energy per barrel",
                equipment_id=worst.equipment_id))
    return out


def analyze_energy(window: Window, unit: Unit, catalog: Catalog, *,
                   equipment_health: Mapping[str, EquipmentHealth] | None = None,
                   max_gap_s: float = DEFAULT_MAX_GAP_S) -> EnergyAnalysis:
    """kWh, barrels, kWh/bbl, efficiency score, status, savings and recommendations of a unit."""
    power = integrate(window.around(unit.power_tag), window.start, window.end, max_gap_s)
    feed = integrate(window.around(unit.feed_tag), window.start, window.end, max_gap_s)
    consumption_kwh = power.area / SECONDS_PER_HOUR
    feed_bbl = feed.area / SECONDS_PER_DAY
    mean_kw, mean_bpd = power.mean, feed.mean
    design = design_feed_bpd(unit, catalog)
    feed_pct = 100.0 * mean_bpd / design if mean_bpd is not None and design else None
    kwh_per_bbl: float | None = None
    score: float | None = None
    if mean_kw is not None and mean_bpd is not None:
        if mean_bpd > 0:
            kwh_per_bbl = mean_kw / (mean_bpd / 24.0)
            if unit.energy_target_kwh_bbl is not None:
                score = efficiency_score(kwh_per_bbl, unit.energy_target_kwh_bbl)
        elif mean_kw > 0:
            score = 0.0  # power drawn, nothing processed
    savings_kwh = savings_year = 0.0
    if kwh_per_bbl is not None and unit.energy_target_kwh_bbl is not None and mean_bpd:
        excess = max(0.0, kwh_per_bbl - unit.energy_target_kwh_bbl)
        savings_kwh = excess * feed_bbl
        savings_year = excess * mean_bpd * DAYS_PER_YEAR
    return EnergyAnalysis(
        unit_id=unit.id, start=window.start, end=window.end,
        consumption_kwh=consumption_kwh, feed_bbl=feed_bbl,
        mean_power_kw=mean_kw, mean_feed_bpd=mean_bpd,
        power_coverage_pct=power.coverage_pct, feed_coverage_pct=feed.coverage_pct,
        feed_pct_of_design=feed_pct, kwh_per_bbl=kwh_per_bbl,
        benchmark_kwh_bbl=unit.energy_benchmark_kwh_bbl, target_kwh_bbl=unit.energy_target_kwh_bbl,
        efficiency_score=score, status=energy_status(score),
        savings_kwh=savings_kwh, savings_kwh_per_year=savings_year,
        recommendations=tuple(_recommendations(unit, kwh_per_bbl, feed_pct, power.coverage_pct,
                                               equipment_health)),
        samples=window.counts([unit.power_tag, unit.feed_tag]))


def hourly_energy(window: Window, unit: Unit, catalog: Catalog, *, now: float,
                  hours: int = 24, equipment_health: Mapping[str, EquipmentHealth] | None = None,
                  max_gap_s: float = DEFAULT_MAX_GAP_S) -> list[EnergyAnalysis]:
    """One analysis per clock hour (UTC hour boundaries), oldest first, ending with the
    partial current hour ``[floor_hour(now), now)``; ``hours`` full hours precede it.

    UTC hour boundaries are also local hour boundaries for whole-hour zones (Caracas, UTC-4).
    """
    current = (now // SECONDS_PER_HOUR) * SECONDS_PER_HOUR
    bounds = [current - SECONDS_PER_HOUR * k for k in range(hours, 0, -1)] + [current]
    out = [analyze_energy(window.clip(a, a + SECONDS_PER_HOUR), unit, catalog,
                          equipment_health=equipment_health, max_gap_s=max_gap_s)
           for a in bounds[:-1]]
    if now > current:
        out.append(analyze_energy(window.clip(current, now), unit, catalog,
                                  equipment_health=equipment_health, max_gap_s=max_gap_s))
    return out


def plant_energy(window: Window, catalog: Catalog, *,
                 equipment_health: Mapping[str, EquipmentHealth] | None = None,
                 max_gap_s: float = DEFAULT_MAX_GAP_S) -> dict[str, EnergyAnalysis]:
    """:func:`analyze_energy` for every unit that has a power and a feed tag, by ``unit_id``."""
    return {u.id: analyze_energy(window, u, catalog, equipment_health=equipment_health,
                                 max_gap_s=max_gap_s)
            for u in catalog.plant.units if u.power_tag and u.feed_tag}
