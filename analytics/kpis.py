"""Unit and plant KPIs: throughput, energy efficiency, quality, maintenance, OEE, stability.

Every figure comes from good-quality tag samples in the window; the formulas and their
units are documented once in ``docs/analytics.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from analytics.energy import EnergyAnalysis, analyze_energy, design_feed_bpd
from analytics.health import EquipmentHealth, equipment_health
from analytics.window import (
    DEFAULT_MAX_GAP_S,
    SampleCounts,
    Window,
    align,
    hold_durations,
    integrate,
)
from plant.catalog import Catalog
from plant.schema import Tag, TagType, Unit

# A unit runs while its feed is at least this share of design and every STATUS tag is on.
MIN_RUNNING_FEED_FRACTION = 0.10
RUNNING = 1.0
# OEE quality: a barrel is on spec while all the unit's critical process-condition tags are
# within their normal range (flows are throughput, vibration is equipment health).
QUALITY_TAG_TYPES = frozenset({TagType.TEMPERATURE, TagType.PRESSURE, TagType.LEVEL,
                               TagType.ANALYTICAL})
# Stability trend: change of the index between the two halves of the window, in points.
TREND_DEADBAND = 2.0
# Unit status edges (energy efficiency score and quality score, both 0–100).
CRITICAL_BELOW_EFFICIENCY = 70.0
CRITICAL_BELOW_QUALITY = 80.0
WARNING_BELOW_EFFICIENCY = 85.0
WARNING_BELOW_QUALITY = 95.0


class UnitStatus(StrEnum):
    OPTIMAL = "OPTIMAL"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"
    NO_DATA = "NO_DATA"


class StabilityTrend(StrEnum):
    IMPROVING = "IMPROVING"
    STABLE = "STABLE"
    DETERIORATING = "DETERIORATING"


@dataclass(frozen=True, slots=True)
class Oee:
    """Availability × performance × quality, each and the product in % (None without data)."""

    availability_pct: float | None
    performance_pct: float | None
    quality_pct: float | None
    oee_pct: float | None
    run_time_s: float
    known_time_s: float


@dataclass(frozen=True, slots=True)
class Stability:
    """Process stability index 0–100, its trend between window halves, mean normalized variance."""

    index: float | None
    trend: StabilityTrend
    variance: float | None
    first_half_index: float | None
    second_half_index: float | None
    tag_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UnitKpis:
    """KPIs of one unit over ``[start, end)`` (epoch s); scores are 0–100, rates in bpd."""

    unit_id: str
    start: float
    end: float
    throughput_bpd: float | None
    throughput_pct_of_design: float | None
    energy_efficiency: float | None
    kwh_per_bbl: float | None
    quality_score: float | None
    good_data_pct: float | None
    in_range_pct: float | None
    maintenance_score: float | None
    oee: Oee
    stability: Stability
    status: UnitStatus
    samples: SampleCounts


@dataclass(frozen=True, slots=True)
class PlantKpis:
    """Plant OEE (weighted by unit design capacity), total throughput, plant-wide stability."""

    start: float
    end: float
    units: Mapping[str, UnitKpis]
    oee: Oee
    throughput_bpd: float
    stability: Stability


def _unit_tags(unit: Unit, catalog: Catalog) -> list[Tag]:
    return [t for t in catalog.tags if t.unit_id == unit.id]


def oee(window: Window, unit: Unit, catalog: Catalog, *,
        max_gap_s: float = DEFAULT_MAX_GAP_S) -> Oee:
    """OEE of a unit from its feed, STATUS and critical process-condition tags.

    Availability: share of known time the unit runs (feed ≥ 10 % of design and every STATUS
    tag on). Performance: mean feed while running / design feed, capped at 100. Quality:
    share of the barrels fed while running during which every quality tag was within range.
    """
    design = design_feed_bpd(unit, catalog)
    if unit.feed_tag is None or not design:
        return Oee(None, None, None, None, 0.0, 0.0)
    tags = _unit_tags(unit, catalog)
    status_ids = [t.id for t in tags if t.tag_type == TagType.STATUS]
    quality_tags = [t for t in tags if t.is_critical and t.tag_type in QUALITY_TAG_TYPES]
    grid = align(window, [unit.feed_tag, *status_ids, *(t.id for t in quality_tags)], max_gap_s)
    known = grid.known([unit.feed_tag, *status_ids])
    feed = grid.row(unit.feed_tag)
    with np.errstate(invalid="ignore"):
        running = known & (feed >= MIN_RUNNING_FEED_FRACTION * design)
        for tag_id in status_ids:
            running &= grid.row(tag_id) >= RUNNING
    known_s = float(grid.durations[known].sum())
    run_s = float(grid.durations[running].sum())
    if known_s <= 0:
        return Oee(None, None, None, None, 0.0, 0.0)
    availability = 100.0 * run_s / known_s
    if run_s <= 0:
        return Oee(availability, None, None, 0.0, run_s, known_s)
    mean_feed = float(np.average(feed[running], weights=grid.durations[running]))
    performance = min(100.0, 100.0 * mean_feed / design)
    quality = _oee_quality(grid.values, grid.tag_ids, quality_tags, running,
                           grid.durations * np.where(running, feed, 0.0))
    if quality is None:
        quality = _good_share(window, tags)
    product = (availability * performance * quality / 1e4) if quality is not None else None
    return Oee(availability, performance, quality, product, run_s, known_s)


def _oee_quality(values: np.ndarray, tag_ids: tuple[str, ...], quality_tags: list[Tag],
                 running: np.ndarray, barrels: np.ndarray) -> float | None:
    if not quality_tags:
        return None
    rows = values[[tag_ids.index(t.id) for t in quality_tags]]
    lo = np.array([t.normal_min for t in quality_tags])[:, None]
    hi = np.array([t.normal_max for t in quality_tags])[:, None]
    known = running & ~np.isnan(rows).any(axis=0)
    with np.errstate(invalid="ignore"):
        on_spec = known & ((rows >= lo) & (rows <= hi)).all(axis=0)
    total = float(barrels[known].sum())
    return 100.0 * float(barrels[on_spec].sum()) / total if total > 0 else None


def _good_share(window: Window, tags: Iterable[Tag]) -> float | None:
    counts = window.counts(t.id for t in tags)
    return 100.0 * counts.good / counts.total if counts.total else None


def in_range_share(window: Window, tags: Iterable[Tag], *,
                   max_gap_s: float = DEFAULT_MAX_GAP_S) -> float | None:
    """% of the held (sample-and-hold) time of the tags' good values within normal range."""
    inside = total = 0.0
    for tag in tags:
        values, held = hold_durations(window.around(tag.id), window.start, window.end, max_gap_s)
        ok = (values >= tag.normal_min) & (values <= tag.normal_max)
        inside += float(held[ok].sum())
        total += float(held.sum())
    return 100.0 * inside / total if total > 0 else None


def _stability_index(window: Window, tags: list[Tag]) -> tuple[float | None, float | None]:
    scores, variances = [], []
    for tag in tags:
        values = window.good_values(tag.id)
        span = tag.normal_max - tag.normal_min
        if len(values) < 2 or span <= 0:
            continue
        relative = float(values.std()) / span
        scores.append(100.0 * min(max(1.0 - relative, 0.0), 1.0))
        variances.append(relative ** 2)
    if not scores:
        return None, None
    return float(np.mean(scores)), float(np.mean(variances))


def stability(window: Window, tags: Iterable[Tag]) -> Stability:
    """Stability index = mean over tags of 100 × (1 − σ / normal span), clipped to 0–100.

    The trend compares the index of the second half of the window with the first:
    more than 2 points better IMPROVING, more than 2 points worse DETERIORATING.
    """
    key = [t for t in tags if t.normal_max > t.normal_min]
    index, variance = _stability_index(window, key)
    first, second = window.halves()
    first_index, _ = _stability_index(first, key)
    second_index, _ = _stability_index(second, key)
    trend = StabilityTrend.STABLE
    if first_index is not None and second_index is not None:
        if second_index - first_index > TREND_DEADBAND:
            trend = StabilityTrend.IMPROVING
        elif first_index - second_index > TREND_DEADBAND:
            trend = StabilityTrend.DETERIORATING
    return Stability(index, trend, variance, first_index, second_index, tuple(t.id for t in key))


def unit_status(energy_efficiency: float | None, quality_score: float | None) -> UnitStatus:
    """CRITICAL if efficiency < 70 or quality < 80; WARNING if efficiency < 85 or quality < 95;
    else OPTIMAL. A missing score is ignored; both missing is NO_DATA."""
    if energy_efficiency is None and quality_score is None:
        return UnitStatus.NO_DATA
    eff = energy_efficiency if energy_efficiency is not None else 100.0
    qual = quality_score if quality_score is not None else 100.0
    if eff < CRITICAL_BELOW_EFFICIENCY or qual < CRITICAL_BELOW_QUALITY:
        return UnitStatus.CRITICAL
    if eff < WARNING_BELOW_EFFICIENCY or qual < WARNING_BELOW_QUALITY:
        return UnitStatus.WARNING
    return UnitStatus.OPTIMAL


def key_tags(tags: Iterable[Tag]) -> list[Tag]:
    """The tags whose variability defines stability: critical, not on/off status."""
    return [t for t in tags if t.is_critical and t.tag_type != TagType.STATUS]


def unit_kpis(window: Window, unit: Unit, catalog: Catalog, *,
              energy: EnergyAnalysis | None = None,
              health: Mapping[str, EquipmentHealth] | None = None,
              max_gap_s: float = DEFAULT_MAX_GAP_S) -> UnitKpis:
    """All KPIs of one unit. ``energy`` and ``health`` are computed here when not given."""
    tags = _unit_tags(unit, catalog)
    process = [t for t in tags if t.tag_type != TagType.STATUS]
    if health is None:
        health = {e.id: equipment_health(window, e, catalog, max_gap_s=max_gap_s)
                  for e in catalog.plant.equipment if e.unit_id == unit.id}
    if energy is None and unit.power_tag and unit.feed_tag:
        energy = analyze_energy(window, unit, catalog, equipment_health=health, max_gap_s=max_gap_s)
    feed = integrate(window.around(unit.feed_tag), window.start, window.end, max_gap_s)
    design = design_feed_bpd(unit, catalog)
    throughput = feed.mean
    good_pct = _good_share(window, process)
    in_range = in_range_share(window, process, max_gap_s=max_gap_s)
    quality = good_pct * in_range / 100.0 if good_pct is not None and in_range is not None else None
    scores = [h.score for h in health.values() if h.unit_id == unit.id and h.score is not None]
    efficiency = energy.efficiency_score if energy is not None else None
    return UnitKpis(
        unit_id=unit.id, start=window.start, end=window.end, throughput_bpd=throughput,
        throughput_pct_of_design=(100.0 * throughput / design
                                  if throughput is not None and design else None),
        energy_efficiency=efficiency,
        kwh_per_bbl=energy.kwh_per_bbl if energy is not None else None,
        quality_score=quality, good_data_pct=good_pct, in_range_pct=in_range,
        maintenance_score=float(np.mean(scores)) if scores else None,
        oee=oee(window, unit, catalog, max_gap_s=max_gap_s),
        stability=stability(window, key_tags(tags)),
        status=unit_status(efficiency, quality), samples=window.counts(t.id for t in tags))


def _weighted(pairs: list[tuple[float | None, float]]) -> float | None:
    known = [(v, w) for v, w in pairs if v is not None]
    total = sum(w for _, w in known)
    return sum(v * w for v, w in known) / total if total > 0 else None


def plant_oee(units: Mapping[str, UnitKpis], catalog: Catalog) -> Oee:
    """Each OEE factor averaged over the units weighted by design capacity (capacity_bpd)."""
    capacity = {u.id: u.capacity_bpd for u in catalog.plant.units}
    rows = [(k.oee, capacity[k.unit_id]) for k in units.values()]
    return Oee(
        availability_pct=_weighted([(o.availability_pct, w) for o, w in rows]),
        performance_pct=_weighted([(o.performance_pct, w) for o, w in rows]),
        quality_pct=_weighted([(o.quality_pct, w) for o, w in rows]),
        oee_pct=_weighted([(o.oee_pct, w) for o, w in rows]),
        run_time_s=sum(o.run_time_s for o, _ in rows),
        known_time_s=sum(o.known_time_s for o, _ in rows))


def plant_kpis(window: Window, catalog: Catalog, *,
               energy: Mapping[str, EnergyAnalysis] | None = None,
               health: Mapping[str, EquipmentHealth] | None = None,
               max_gap_s: float = DEFAULT_MAX_GAP_S) -> PlantKpis:
    """KPIs of every unit plus the plant OEE, total throughput and plant-wide stability."""
    energy = energy or {}
    units = {u.id: unit_kpis(window, u, catalog, energy=energy.get(u.id), health=health,
                             max_gap_s=max_gap_s)
             for u in catalog.plant.units}
    return PlantKpis(
        start=window.start, end=window.end, units=units, oee=plant_oee(units, catalog),
        throughput_bpd=sum(k.throughput_bpd or 0.0 for k in units.values()),
        stability=stability(window, key_tags(catalog.plant.tags)))
