"""One analytics run: the pure computation the service schedules in an executor.

From the rolling tag history and the time ``now`` it calls the ``analytics/`` functions
(KPIs with OEE and stability, energy, tanks, balance, equipment health) and turns their
results into flat rows: what the analytics store persists and the HTTP API returns. No I/O
and no clock here, so a test can recompute any row from the same window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from analytics.balance import UnitBalance, plant_balance
from analytics.energy import DAYS_PER_YEAR, Action, EnergyAnalysis, hourly_energy, plant_energy
from analytics.health import EquipmentHealth, plant_health
from analytics.kpis import PlantKpis, UnitKpis, plant_kpis, unit_status
from analytics.tanks import TankState, tank_states
from analytics.window import SECONDS_PER_HOUR, TagSeries, Window
from plant.catalog import Catalog

PLANT_ID = "PLANT"  # the unit_id of the plant-wide KPI row


@dataclass(frozen=True, slots=True)
class RunParams:
    """What a run needs besides the data: windows (s), the plant day's start, prices."""

    kpi_window_s: float
    health_window_s: float
    energy_hours: int
    max_gap_s: float
    day_start: float
    energy_price_usd_per_kwh: float | None = None


@dataclass(frozen=True, slots=True)
class AnalyticsRun:
    """The results of one run at ``ts``: the analytics objects and their rows."""

    ts: float
    plant: PlantKpis
    energy: Mapping[str, EnergyAnalysis]
    hourly_energy: Mapping[str, list[EnergyAnalysis]]
    tanks: list[TankState]
    health: Mapping[str, EquipmentHealth]
    balance: Mapping[str, UnitBalance]
    rows: RunRows


@dataclass(frozen=True, slots=True)
class RunRows:
    """Flat rows (JSON-ready dicts) by table."""

    kpis: list[dict] = field(default_factory=list)
    energy: list[dict] = field(default_factory=list)
    tanks: list[dict] = field(default_factory=list)
    equipment: list[dict] = field(default_factory=list)
    balance: list[dict] = field(default_factory=list)


def compute_run(series: Mapping[str, TagSeries], catalog: Catalog, now: float,
                params: RunParams, failure_probability_pct: Mapping[str, float] | None = None
                ) -> AnalyticsRun:
    """Every analysis of one run over the windows ending at ``now`` (epoch s)."""
    gap = params.max_gap_s
    kpi_window = Window(now - params.kpi_window_s, now, series)
    health = plant_health(Window(now - params.health_window_s, now, series), catalog,
                          failure_probability_pct=failure_probability_pct, max_gap_s=gap)
    energy = plant_energy(kpi_window, catalog, equipment_health=health, max_gap_s=gap)
    plant = plant_kpis(kpi_window, catalog, energy=energy, health=health, max_gap_s=gap)
    day = Window(now - (params.energy_hours + 1) * SECONDS_PER_HOUR, now, series)
    hourly = {u.id: hourly_energy(day, u, catalog, now=now, hours=params.energy_hours,
                                  equipment_health=health, max_gap_s=gap)
              for u in catalog.plant.units if u.power_tag and u.feed_tag}
    tanks = tank_states(kpi_window, catalog.plant)
    balance = (plant_balance(Window(params.day_start, now, series), catalog, max_gap_s=gap)
               if now > params.day_start else {})
    rows = RunRows(
        kpis=_finite(kpi_rows(plant, energy, health, catalog, now, params.energy_price_usd_per_kwh)),
        energy=_finite([energy_row(e, now, gap) for hours in hourly.values() for e in hours
                        if e.power_coverage_pct > 0 or e.feed_coverage_pct > 0]),
        tanks=_finite([tank_row(t, now) for t in tanks]),
        equipment=_finite([equipment_row(h, now, (failure_probability_pct or {}).get(h.equipment_id))
                           for h in health.values()]),
        balance=_finite([balance_row(b, now) for b in balance.values()]))
    return AnalyticsRun(now, plant, energy, hourly, tanks, health, balance, rows)


# ------------------------------------------------------------------------------ rows


def _finite(rows: list[dict]) -> list[dict]:
    """NaN or infinite figures become None: JSON and SQL have no NaN, and a figure that
    cannot be computed is reported as missing."""
    for row in rows:
        for key, value in row.items():
            if isinstance(value, float) and not math.isfinite(value):
                row[key] = None
    return rows


def unit_kpi_row(k: UnitKpis, now: float) -> dict:
    """One unit's KPIs as a flat row."""
    return {
        "unit_id": k.unit_id, "ts": now, "window_start": k.start, "window_end": k.end,
        "throughput_bpd": k.throughput_bpd,
        "throughput_pct_of_design": k.throughput_pct_of_design,
        "energy_efficiency": k.energy_efficiency, "kwh_per_bbl": k.kwh_per_bbl,
        "quality_score": k.quality_score, "good_data_pct": k.good_data_pct,
        "in_range_pct": k.in_range_pct, "maintenance_score": k.maintenance_score,
        "availability_pct": k.oee.availability_pct, "performance_pct": k.oee.performance_pct,
        "oee_quality_pct": k.oee.quality_pct, "oee_pct": k.oee.oee_pct,
        "stability_index": k.stability.index, "stability_trend": k.stability.trend.value,
        "stability_variance": k.stability.variance, "status": k.status.value,
        "excess_kwh_per_day": None, "daily_loss_usd": None,
    }


def _capacity_weighted(values: Mapping[str, float | None], catalog: Catalog) -> float | None:
    capacity = {u.id: u.capacity_bpd for u in catalog.plant.units}
    known = [(v, capacity[k]) for k, v in values.items() if v is not None]
    total = sum(w for _, w in known)
    return sum(v * w for v, w in known) / total if total > 0 else None


def kpi_rows(plant: PlantKpis, energy: Mapping[str, EnergyAnalysis],
             health: Mapping[str, EquipmentHealth], catalog: Catalog, now: float,
             price_usd_per_kwh: float | None) -> list[dict]:
    """A row per unit and one for the plant (``unit_id`` PLANT).

    The plant's efficiency and quality scores are the units' weighted by design capacity,
    like the plant OEE; its excess energy is the units' consumption above target, per day.
    """
    rows = [unit_kpi_row(k, now) for k in plant.units.values()]
    efficiency = _capacity_weighted({k: u.energy_efficiency for k, u in plant.units.items()},
                                    catalog)
    quality = _capacity_weighted({k: u.quality_score for k, u in plant.units.items()}, catalog)
    scores = [h.score for h in health.values() if h.score is not None]
    analysed = [e for e in energy.values() if e.kwh_per_bbl is not None]
    excess = (sum(e.savings_kwh_per_year for e in analysed) / DAYS_PER_YEAR
              if analysed else None)
    rows.append({
        "unit_id": PLANT_ID, "ts": now, "window_start": plant.start, "window_end": plant.end,
        "throughput_bpd": plant.throughput_bpd, "throughput_pct_of_design": None,
        "energy_efficiency": efficiency,
        "kwh_per_bbl": None, "quality_score": quality, "good_data_pct": None,
        "in_range_pct": None,
        "maintenance_score": sum(scores) / len(scores) if scores else None,
        "availability_pct": plant.oee.availability_pct,
        "performance_pct": plant.oee.performance_pct,
        "oee_quality_pct": plant.oee.quality_pct, "oee_pct": plant.oee.oee_pct,
        "stability_index": plant.stability.index,
        "stability_trend": plant.stability.trend.value,
        "stability_variance": plant.stability.variance,
        "status": unit_status(efficiency, quality).value,
        "excess_kwh_per_day": excess,
        "daily_loss_usd": (excess * price_usd_per_kwh
                           if excess is not None and price_usd_per_kwh is not None else None),
    })
    return rows


def energy_row(e: EnergyAnalysis, now: float, settle_s: float) -> dict:
    """One unit-hour of energy. ``complete`` once the hour ended ``settle_s`` ago (the first
    sample after the hour edge is needed to cut the last segment exactly)."""
    hour_start = (e.start // SECONDS_PER_HOUR) * SECONDS_PER_HOUR
    hour_end = hour_start + SECONDS_PER_HOUR
    actionable = [r for r in e.recommendations if r.action != Action.NOMINAL]
    main = (actionable or list(e.recommendations) or [None])[0]
    return {
        "unit_id": e.unit_id, "hour_start": hour_start, "hour_end": hour_end,
        "window_end": e.end, "complete": now >= hour_end + settle_s, "computed_at": now,
        "consumption_kwh": e.consumption_kwh, "feed_bbl": e.feed_bbl,
        "mean_power_kw": e.mean_power_kw, "mean_feed_bpd": e.mean_feed_bpd,
        "kwh_per_bbl": e.kwh_per_bbl, "benchmark_kwh_bbl": e.benchmark_kwh_bbl,
        "target_kwh_bbl": e.target_kwh_bbl, "efficiency_score": e.efficiency_score,
        "status": e.status.value, "savings_kwh": e.savings_kwh,
        "savings_kwh_per_year": e.savings_kwh_per_year,
        "power_coverage_pct": e.power_coverage_pct, "feed_coverage_pct": e.feed_coverage_pct,
        "action": main.action.value if main else None,
        "priority": main.priority.value if main else None,
        "recommendation": main.message if main else None,
        "recommendations": [
            {"action": r.action.value, "priority": r.priority.value, "message": r.message,
             "equipment_id": r.equipment_id} for r in e.recommendations],
    }


def tank_row(t: TankState, now: float) -> dict:
    """One tank's state."""
    return {
        "tank_id": t.tank_id, "ts": now, "level_tag": t.level_tag, "level_pct": t.level_pct,
        "volume_l": t.volume_l, "capacity_l": t.capacity_l, "level_ts": t.level_ts,
        "trend": t.trend.value, "rate_pct_per_h": t.rate_pct_per_h,
        "rate_l_per_h": t.rate_l_per_h, "hours_to_full": t.hours_to_full,
        "hours_to_empty": t.hours_to_empty, "status": t.status.value,
    }


def equipment_row(h: EquipmentHealth, now: float, failure_probability_pct: float | None) -> dict:
    """One piece of equipment's health, with the component that sets its score."""
    worst = h.worst
    return {
        "equipment_id": h.equipment_id, "unit_id": h.unit_id, "ts": now, "score": h.score,
        "status": h.status.value, "zone": h.zone.value if h.zone else None,
        "running": h.running, "worst_kind": worst.kind.value if worst else None,
        "worst_tag": worst.tag_id if worst else None,
        "worst_value": worst.value if worst else None,
        "failure_probability_pct": failure_probability_pct,
        "contributions": [
            {"kind": c.kind.value, "tag_id": c.tag_id, "value": c.value, "score": c.score}
            for c in h.contributions],
    }


def balance_row(b: UnitBalance, now: float) -> dict:
    """One unit's mass and energy balance since the start of the plant day."""
    return {
        "unit_id": b.unit_id, "day_start": b.start, "ts": now, "feed_bbl": b.feed_bbl,
        "feed_coverage_pct": b.feed_coverage_pct, "products_bbl": b.products_bbl,
        "closure_pct": b.closure_pct, "imbalance_bbl": b.imbalance_bbl,
        "energy_kwh": b.energy_kwh, "energy_coverage_pct": b.energy_coverage_pct,
        "kwh_per_bbl": b.kwh_per_bbl,
        "products": [
            {"tag_id": p.tag_id, "bbl": p.bbl, "mean_bpd": p.mean_bpd,
             "coverage_pct": p.coverage_pct} for p in b.products],
    }
