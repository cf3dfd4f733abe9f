"""Equipment health 0–100 from the equipment's own tags (and optionally a PdM probability).

Each health-relevant tag gives a component score; the equipment is as healthy as its worst
component. Scores are shaped so that 75 and 50 are the status edges everywhere:

* vibration: ISO 10816-3 zone boundaries A/B → 100, B/C → 75, C/D → 50, 2 × C/D → 0;
* other tags: deviation beyond the normal range as a share of the normal span
  (the alarm severity bands of SPEC capability 3) 0 → 100, 15 % → 75, 30 % → 50, 60 % → 0;
* valve: mean |position − demand| 0 → 100, 5 % → 75, 10 % → 50, 20 % → 0;
* PdM: 100 − failure probability (%).

Status: score ≥ 75 OPERATIONAL, ≥ 50 MAINTENANCE, < 50 FAULT.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from analytics.window import DEFAULT_MAX_GAP_S, SampleCounts, Window, align
from plant.catalog import Catalog
from plant.schema import Equipment, Tag, TagType


class MachineClass(StrEnum):
    """ISO 10816-3 machine groups and foundations."""

    GROUP1_RIGID = "GROUP1_RIGID"  # 300 kW – 50 MW
    GROUP1_FLEXIBLE = "GROUP1_FLEXIBLE"
    GROUP2_RIGID = "GROUP2_RIGID"  # 15 kW – 300 kW
    GROUP2_FLEXIBLE = "GROUP2_FLEXIBLE"


# Zone boundaries A/B, B/C, C/D in mm/s RMS velocity (ISO 10816-3:2009, Table A.1 / A.2).
ZONE_LIMITS_MM_S: dict[MachineClass, tuple[float, float, float]] = {
    MachineClass.GROUP1_RIGID: (2.3, 4.5, 7.1),
    MachineClass.GROUP1_FLEXIBLE: (3.5, 7.1, 11.0),
    MachineClass.GROUP2_RIGID: (1.4, 2.8, 4.5),
    MachineClass.GROUP2_FLEXIBLE: (2.3, 4.5, 7.1),
}
# The catalog's vibration alarm limits (H 4.5, HH 7.1 mm/s) are the group 1 rigid B/C and C/D
# boundaries: the crude, diesel and wet-gas machines of these units are all above 300 kW.
DEFAULT_MACHINE_CLASS = MachineClass.GROUP1_RIGID


class VibrationZone(StrEnum):
    A = "A"  # newly commissioned
    B = "B"  # unrestricted long-term operation
    C = "C"  # restricted operation: plan maintenance
    D = "D"  # severe enough to cause damage


class HealthStatus(StrEnum):
    OPERATIONAL = "OPERATIONAL"
    MAINTENANCE = "MAINTENANCE"
    FAULT = "FAULT"
    NO_DATA = "NO_DATA"


class ComponentKind(StrEnum):
    VIBRATION = "VIBRATION"
    BEARING_TEMPERATURE = "BEARING_TEMPERATURE"
    LIMITS = "LIMITS"  # a process or motor tag against its normal range
    POSITION_ERROR = "POSITION_ERROR"
    PDM = "PDM"


OPERATIONAL_MIN_SCORE = 75.0
MAINTENANCE_MIN_SCORE = 50.0
_SCORE_POINTS = (100.0, 75.0, 50.0, 0.0)
_DEVIATION_POINTS = (0.0, 0.15, 0.30, 0.60)  # share of the normal span beyond the limit
_POSITION_ERROR_POINTS_PCT = (0.0, 5.0, 10.0, 20.0)
ROTATING_TYPES = frozenset({"PUMP", "COMPRESSOR"})
# Tag types that describe the machine's condition; flows, levels, power and analysers
# describe how the unit is operated and are left to the KPIs.
CONDITION_TYPES = frozenset({TagType.VIBRATION, TagType.TEMPERATURE, TagType.PRESSURE,
                             TagType.CURRENT, TagType.POSITION})
# ISA-5.1 letters: ZI = position indication (measured), ZC = position controller (demand).
POSITION_PREFIX = "ZI-"
DEMAND_PREFIX = "ZC-"
RUNNING = 1.0


@dataclass(frozen=True, slots=True)
class Contribution:
    """One component of an equipment's health: the tag (None for PdM), its value, its score."""

    kind: ComponentKind
    tag_id: str | None
    value: float
    score: float


@dataclass(frozen=True, slots=True)
class EquipmentHealth:
    """Health of one piece of equipment over a window.

    ``score`` 0–100 (None without data); ``zone`` the ISO 10816-3 zone of its worst vibration
    tag (None if it has none); ``worst`` the component that sets the score; ``running`` the
    last good running status (None without a status tag).
    """

    equipment_id: str
    unit_id: str
    score: float | None
    status: HealthStatus
    zone: VibrationZone | None
    worst: Contribution | None
    running: bool | None
    contributions: tuple[Contribution, ...]
    samples: SampleCounts


def vibration_zone(velocity_mm_s: float, machine_class: MachineClass = DEFAULT_MACHINE_CLASS
                   ) -> VibrationZone:
    """ISO 10816-3 zone of an RMS velocity; a value on a boundary belongs to the lower zone."""
    limits = ZONE_LIMITS_MM_S[machine_class]
    return list(VibrationZone)[int(np.searchsorted(limits, velocity_mm_s, side="left"))]


def vibration_score(velocity_mm_s: float, machine_class: MachineClass = DEFAULT_MACHINE_CLASS
                    ) -> float:
    """100 up to the A/B boundary, 75 at B/C, 50 at C/D, 0 at twice the C/D boundary."""
    ab, bc, cd = ZONE_LIMITS_MM_S[machine_class]
    return float(np.interp(velocity_mm_s, (ab, bc, cd, 2 * cd), _SCORE_POINTS))


def deviation_fraction(value: float, tag: Tag, high_side_only: bool = False) -> float:
    """How far a value lies beyond the tag's normal range, as a share of the normal span."""
    span = tag.normal_max - tag.normal_min
    if span <= 0:
        return 0.0 if value == tag.normal_max else 1.0
    above = max(value - tag.normal_max, 0.0)
    below = 0.0 if high_side_only else max(tag.normal_min - value, 0.0)
    return max(above, below) / span


def limit_score(value: float, tag: Tag, high_side_only: bool = False) -> float:
    """100 inside the normal range, 75 at 15 % of the span beyond it, 50 at 30 %, 0 at 60 %."""
    return float(np.interp(deviation_fraction(value, tag, high_side_only), _DEVIATION_POINTS,
                           _SCORE_POINTS))


def status_for(score: float | None) -> HealthStatus:
    """OPERATIONAL ≥ 75, MAINTENANCE ≥ 50, FAULT below; NO_DATA without a score."""
    if score is None:
        return HealthStatus.NO_DATA
    if score >= OPERATIONAL_MIN_SCORE:
        return HealthStatus.OPERATIONAL
    if score >= MAINTENANCE_MIN_SCORE:
        return HealthStatus.MAINTENANCE
    return HealthStatus.FAULT


def _position_error(window: Window, position: Tag, demand: Tag, max_gap_s: float) -> float | None:
    aligned = align(window, [position.id, demand.id], max_gap_s)
    known = aligned.known()
    weight = aligned.durations[known]
    if weight.sum() <= 0:
        return None
    error = np.abs(aligned.row(position.id)[known] - aligned.row(demand.id)[known])
    return float(np.average(error, weights=weight))


def equipment_health(window: Window, equipment: Equipment, catalog: Catalog, *,
                     machine_class: MachineClass = DEFAULT_MACHINE_CLASS,
                     failure_probability_pct: float | None = None,
                     max_gap_s: float = DEFAULT_MAX_GAP_S) -> EquipmentHealth:
    """Health of one piece of equipment from the good samples of its tags in the window.

    Each tag is judged on the mean of its good samples (the caller picks the window, e.g.
    the last 10 minutes). When its running status (STATUS tag) was last seen off, only
    bearing temperatures count: vibration, current and pressure mean nothing at standstill.
    """
    tags = [t for t in catalog.tags if t.equipment_id == equipment.id]
    status_tags = [t for t in tags if t.tag_type == TagType.STATUS]
    running: bool | None = None
    for tag in status_tags:
        last = window.history(tag.id).last_good()
        if last is not None:
            running = (running is not False) and last[1] >= RUNNING
    rotating = equipment.type in ROTATING_TYPES
    contributions: list[Contribution] = []
    for tag in tags:
        if tag.tag_type not in CONDITION_TYPES or tag.id.startswith(DEMAND_PREFIX):
            continue
        bearing = rotating and tag.tag_type == TagType.TEMPERATURE
        if running is False and not bearing:
            continue
        values = window.good_values(tag.id)
        if len(values) == 0:
            continue
        mean = float(values.mean())
        if tag.tag_type == TagType.VIBRATION:
            contributions.append(Contribution(ComponentKind.VIBRATION, tag.id, mean,
                                              vibration_score(mean, machine_class)))
        elif bearing:
            contributions.append(Contribution(ComponentKind.BEARING_TEMPERATURE, tag.id, mean,
                                              limit_score(mean, tag, high_side_only=True)))
        else:
            contributions.append(Contribution(ComponentKind.LIMITS, tag.id, mean,
                                              limit_score(mean, tag)))
    positions = [t for t in tags if t.id.startswith(POSITION_PREFIX)]
    demands = {t.id.removeprefix(DEMAND_PREFIX): t for t in tags if t.id.startswith(DEMAND_PREFIX)}
    for position in positions:
        demand = demands.get(position.id.removeprefix(POSITION_PREFIX))
        if demand is None or running is False:
            continue
        error = _position_error(window, position, demand, max_gap_s)
        if error is not None:
            score = float(np.interp(error, _POSITION_ERROR_POINTS_PCT, _SCORE_POINTS))
            contributions.append(Contribution(ComponentKind.POSITION_ERROR, position.id, error, score))
    if failure_probability_pct is not None:
        p = min(max(failure_probability_pct, 0.0), 100.0)
        contributions.append(Contribution(ComponentKind.PDM, None, p, 100.0 - p))
    worst = min(contributions, key=lambda c: c.score) if contributions else None
    vibrations = [c for c in contributions if c.kind == ComponentKind.VIBRATION]
    zone = (vibration_zone(max(c.value for c in vibrations), machine_class) if vibrations else None)
    score = worst.score if worst is not None else None
    return EquipmentHealth(
        equipment_id=equipment.id, unit_id=equipment.unit_id, score=score,
        status=status_for(score), zone=zone, worst=worst, running=running,
        contributions=tuple(contributions), samples=window.counts(t.id for t in tags))


def plant_health(window: Window, catalog: Catalog, *,
                 machine_classes: Mapping[str, MachineClass] | None = None,
                 failure_probability_pct: Mapping[str, float] | None = None,
                 max_gap_s: float = DEFAULT_MAX_GAP_S) -> dict[str, EquipmentHealth]:
    """Health of every piece of equipment of the plant, by ``equipment_id``."""
    classes = machine_classes or {}
    pdm = failure_probability_pct or {}
    return {
        e.id: equipment_health(window, e, catalog,
                               machine_class=classes.get(e.id, DEFAULT_MACHINE_CLASS),
                               failure_probability_pct=pdm.get(e.id), max_gap_s=max_gap_s)
        for e in catalog.plant.equipment
    }
