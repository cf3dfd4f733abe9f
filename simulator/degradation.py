"""Hidden equipment health: wear toward failure, the failure itself, and maintenance.

Each piece of equipment of a type the simulator knows (pumps, compressors, furnaces,
exchangers, valves) carries a damage state D = 1 - health. It stays 0 through a healthy period
of random length, then wear starts at D = 0.01 and grows exponentially with multiplicative noise
(an accelerating, Weibull-like wear-out: slow for a long time, fast at the end). When D reaches
1 the equipment fails (its STATUS tag goes to 0, the process values it drives collapse), stays
down for the repair time, and comes back as new (D = 0) with a fresh random healthy period.

Durations per type have defaults below and can be overridden per equipment in plant.toml with
``sim = { healthy_h = ..., wear_h = ..., repair_h = ... }``. All randomness comes from the
generator passed in, so a seed fixes every failure time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from plant.schema import Equipment, EquipmentType

INITIAL_DAMAGE = 0.01
# Relative spread of the wear duration caused by the multiplicative noise (about 1 sigma).
WEAR_NOISE = 0.15


@dataclass(frozen=True)
class Durations:
    """Mean hours healthy before wear starts, of wear until failure, and of repair."""

    healthy_h: float
    wear_h: float
    repair_h: float


DEFAULT_DURATIONS: dict[EquipmentType, Durations] = {
    EquipmentType.PUMP: Durations(healthy_h=200.0, wear_h=120.0, repair_h=8.0),
    EquipmentType.COMPRESSOR: Durations(healthy_h=300.0, wear_h=160.0, repair_h=12.0),
    EquipmentType.FURNACE: Durations(healthy_h=500.0, wear_h=300.0, repair_h=24.0),
    EquipmentType.EXCHANGER: Durations(healthy_h=400.0, wear_h=300.0, repair_h=16.0),
    EquipmentType.VALVE: Durations(healthy_h=250.0, wear_h=100.0, repair_h=4.0),
}


class EventKind(StrEnum):
    WEAR_ONSET = "wear_onset"
    FAILURE = "failure"
    REPAIRED = "repaired"
    FORCED = "forced"


@dataclass(frozen=True)
class EquipmentEvent:
    """One entry of the failure event log (simulated time in seconds)."""

    time_s: float
    equipment_id: str
    kind: EventKind
    health: float


def durations_for(equipment: Equipment) -> Durations | None:
    """Durations of a degradable equipment (defaults, then sim hints); None if it never fails."""
    try:
        base = DEFAULT_DURATIONS[EquipmentType(equipment.type)]
    except ValueError:
        return None
    return Durations(
        healthy_h=float(equipment.sim.get("healthy_h", base.healthy_h)),
        wear_h=float(equipment.sim.get("wear_h", base.wear_h)),
        repair_h=float(equipment.sim.get("repair_h", base.repair_h)),
    )


class Degradation:
    """Damage, failure and repair of every piece of equipment, advanced by :meth:`step`."""

    def __init__(self, equipment: list[Equipment], rng: np.random.Generator, time_s: float = 0.0):
        self.ids = [e.id for e in equipment]
        self.types = [e.type for e in equipment]
        self._durations = [durations_for(e) for e in equipment]
        self._rng = rng
        n = len(equipment)
        self.damage = np.zeros(n)
        self.failed = np.zeros(n, dtype=bool)
        self.onset_s = np.full(n, np.inf)
        self.repair_until_s = np.full(n, np.inf)
        self.growth = np.zeros(n)  # exponential growth rate of the damage, 1/s
        self.events: list[EquipmentEvent] = []
        for i in range(n):
            self._schedule_onset(i, time_s, first=True)

    @property
    def health(self) -> np.ndarray:
        """1 = as new, 0 = failed."""
        return 1.0 - self.damage

    def _schedule_onset(self, i: int, now_s: float, first: bool = False) -> None:
        d = self._durations[i]
        if d is None:
            return
        # On the first schedule the plant is already somewhere in the equipment's life.
        low = 0.0 if first else 0.5
        self.onset_s[i] = now_s + self._rng.uniform(low, 1.5) * d.healthy_h * 3600.0
        self._set_wear(i, d.wear_h * self._rng.uniform(0.7, 1.3))

    def _set_wear(self, i: int, wear_h: float) -> None:
        self.growth[i] = math.log(1.0 / INITIAL_DAMAGE) / (wear_h * 3600.0)

    def disable(self, i: int) -> None:
        """Keep equipment i healthy forever (used to isolate one machine in training runs)."""
        self.onset_s[i] = np.inf
        self.damage[i] = 0.0

    def start_wear(self, i: int, now_s: float, wear_h: float | None = None) -> None:
        """Start wear of equipment i now, optionally with a given wear duration."""
        d = self._durations[i]
        if d is None:
            raise ValueError(f"equipment {self.ids[i]} ({self.types[i]}) does not degrade")
        if wear_h is not None:
            self._set_wear(i, wear_h)
        self.onset_s[i] = now_s

    def force(self, i: int, health: float, now_s: float) -> None:
        """Set equipment i's health now (for tests and demos); wear continues from there."""
        if self._durations[i] is None:
            raise ValueError(f"equipment {self.ids[i]} ({self.types[i]}) does not degrade")
        health = min(max(health, 0.0), 1.0)
        self.events.append(EquipmentEvent(now_s, self.ids[i], EventKind.FORCED, health))
        if health > 0.0 and self.failed[i]:
            self.failed[i] = False
            self.repair_until_s[i] = np.inf
        self.damage[i] = 1.0 - health
        if health >= 1.0:
            self._schedule_onset(i, now_s)
        else:
            self.onset_s[i] = min(self.onset_s[i], now_s)
        if health <= 0.0 and not self.failed[i]:
            self._fail(i, now_s)

    def _fail(self, i: int, now_s: float) -> None:
        self.failed[i] = True
        self.damage[i] = 1.0
        d = self._durations[i]
        assert d is not None
        self.repair_until_s[i] = now_s + d.repair_h * 3600.0
        self.events.append(EquipmentEvent(now_s, self.ids[i], EventKind.FAILURE, 0.0))

    def step(self, now_s: float, dt: float) -> None:
        """Advance wear to ``now_s`` (the end of a step of length ``dt``)."""
        starting = (self.damage == 0.0) & ~self.failed & (self.onset_s <= now_s)
        for i in np.flatnonzero(starting):
            self.damage[i] = INITIAL_DAMAGE
            self.events.append(EquipmentEvent(now_s, self.ids[i], EventKind.WEAR_ONSET, 1.0 - INITIAL_DAMAGE))
        wearing = (self.damage > 0.0) & ~self.failed
        if wearing.any():
            k = int(wearing.sum())
            # Multiplicative noise scaled so the total wear time varies by about WEAR_NOISE.
            sigma = WEAR_NOISE * math.log(1.0 / INITIAL_DAMAGE) * np.sqrt(self.growth[wearing] * dt
                                                                         / math.log(1.0 / INITIAL_DAMAGE))
            log_step = self.growth[wearing] * dt + sigma * self._rng.standard_normal(k)
            self.damage[wearing] = np.clip(self.damage[wearing] * np.exp(log_step), INITIAL_DAMAGE, 1.0)
            for i in np.flatnonzero(wearing & (self.damage >= 1.0)):
                self._fail(i, now_s)
        repaired = self.failed & (self.repair_until_s <= now_s)
        for i in np.flatnonzero(repaired):
            self.failed[i] = False
            self.damage[i] = 0.0
            self.repair_until_s[i] = np.inf
            self.events.append(EquipmentEvent(now_s, self.ids[i], EventKind.REPAIRED, 1.0))
            self._schedule_onset(i, now_s)
