"""What operators and scenarios change in the plant: setpoints, start/stop and valve commands,
and process upsets.

- A **setpoint** tag (role ``setpoint``, every writable tag unless its hint says otherwise)
  reports exactly the value last written. With ``sim = { controls = "TI-101" }`` the named
  tag's controller follows it: that tag's target becomes the setpoint (plus its daily course
  and disturbance, as before), so a write moves the process with the model's own dynamics
  (a furnace outlet with its firing lag and 90 s thermal lag, a feed flow within a few tens
  of seconds, a valve demand at once and its stem past the stiction band).
- A **run command** coil (role ``run_command``, on a pump or compressor) starts (1) and stops
  (0) its machine: stopped, the machine's flow, motor current and discharge pressure collapse,
  its vibration drops, its bearing cools and its running status reads 0 (as for a failure,
  but without one).
- A **discharge valve** coil (role ``discharge_valve``) opens (1) or closes (0) the machine's
  discharge block valve: closed on a running machine, the flow stops, the discharge pressure
  rises to shut-off head, the motor current falls and the vibration rises (recirculation).
- An **excursion** (from a scenario) adds a bias to one tag's process target that ramps up,
  holds and ramps down again; the measured value follows through the tag's dynamics.

Writes are validated here as a device would: only writable tags, finite values inside the
instrument range, 0/1 for commands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from plant.catalog import Catalog
from simulator.roles import TagPhysics, TagRole

SHUT_OFF_HEAD = 1.25  # discharge pressure against a closed valve, times its design value
SHUT_OFF_CURRENT = 0.55  # motor current at shut-off, times its design value
RECIRCULATION_VIBRATION = 0.3  # extra vibration at shut-off, fraction of the normal span above setpoint


class WriteRejected(ValueError):
    """The model does not take this write (not writable, not finite, outside the instrument range)."""


class OutOfRange(WriteRejected):
    """The value is outside the tag's instrument range (or not 0/1 for a command)."""


@dataclass(frozen=True)
class Excursion:
    """A bias on one tag's target: 0 -> ``delta`` over ``rise_s``, held ``hold_s``, back over ``fall_s``."""

    index: int
    delta: float
    start_s: float
    rise_s: float
    hold_s: float
    fall_s: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.rise_s + self.hold_s + self.fall_s

    def level(self, now_s: float) -> float:
        """The bias at ``now_s``."""
        u = now_s - self.start_s
        if u <= 0.0 or now_s >= self.end_s:
            return 0.0
        if u < self.rise_s:
            return self.delta * u / self.rise_s
        u -= self.rise_s
        if u < self.hold_s:
            return self.delta
        return self.delta * (1.0 - (u - self.hold_s) / self.fall_s) if self.fall_s > 0 else 0.0


class Controls:
    """The plant's writable state, in catalog order, and the upsets in progress."""

    def __init__(self, catalog: Catalog, physics: TagPhysics, design_setpoint: np.ndarray, n_equipment: int):
        self.catalog = catalog
        n = len(catalog)
        role = physics.role
        self.sp = np.array(design_setpoint, dtype=np.float64)  # operating setpoint per tag
        self.writable = np.array([t.writable for t in catalog.tags], dtype=bool)
        self.setpoint_tags = np.flatnonzero(role == TagRole.SETPOINT)
        self.run_tags = np.flatnonzero(role == TagRole.RUN_COMMAND)
        self.valve_tags = np.flatnonzero(role == TagRole.DISCHARGE_VALVE)
        self.equipment = physics.equipment
        for i in np.concatenate([self.run_tags, self.valve_tags]):
            if self.equipment[i] < 0:
                raise ValueError(f"tag {catalog.tags[i].id}: a {TagRole(role[i]).name.lower()} needs an equipment_id")
        self.controlled = np.full(n, -1, dtype=np.int64)  # for each setpoint tag, the tag it sets
        self.held = np.full(n, np.nan)  # reported values of setpoint and command tags
        for i in self.setpoint_tags:
            tag = catalog.tags[i]
            target = tag.sim.get("controls")
            if target is not None:
                if target not in catalog.index:
                    raise ValueError(f"tag {tag.id}: sim.controls names unknown tag '{target}'")
                self.controlled[i] = catalog.index[target]
            default = design_setpoint[self.controlled[i]] if self.controlled[i] >= 0 else physics.setpoint[i]
            self.held[i] = float(tag.sim.get("setpoint", default))
            if self.controlled[i] >= 0:
                self.sp[self.controlled[i]] = self.held[i]
        self.held[self.run_tags] = 1.0
        self.held[self.valve_tags] = 1.0
        self.held_index = np.flatnonzero(~np.isnan(self.held))
        self.running = np.ones(n_equipment, dtype=bool)
        self.valve_open = np.ones(n_equipment, dtype=bool)
        self.bias = np.zeros(n)
        self._excursions: list[Excursion] = []

    # ------------------------------------------------------------------ writes

    def write(self, index: int, value: float) -> None:
        """Take a write of ``value`` to tag ``index``, as the device would (raises WriteRejected)."""
        tag = self.catalog.tags[index]
        if not self.writable[index]:
            raise WriteRejected(f"tag {tag.id} is not writable")
        if not math.isfinite(value):
            raise OutOfRange(f"value {value} for {tag.id} is not finite")
        lo = -math.inf if tag.instrument_min is None else tag.instrument_min
        hi = math.inf if tag.instrument_max is None else tag.instrument_max
        if not lo <= value <= hi:
            raise OutOfRange(f"value {value:g} for {tag.id} is outside its instrument range {lo:g}..{hi:g}")
        if index in self.run_tags or index in self.valve_tags:
            if value not in (0.0, 1.0):
                raise OutOfRange(f"{tag.id} is a command: 0 or 1, not {value:g}")
            state = self.running if index in self.run_tags else self.valve_open
            state[self.equipment[index]] = value == 1.0
        elif self.controlled[index] >= 0:
            self.sp[self.controlled[index]] = value
        if np.isnan(self.held[index]):  # a writable tag with another role: hold it from now on
            self.held_index = np.union1d(self.held_index, [index])
        self.held[index] = value

    # ------------------------------------------------------------------ upsets

    def excursion(self, index: int, delta: float, now_s: float, rise_s: float, hold_s: float,
                  fall_s: float) -> Excursion:
        """Start a bias of ``delta`` on tag ``index``'s target now (see :class:`Excursion`)."""
        if min(rise_s, hold_s, fall_s) < 0:
            raise ValueError("excursion durations must not be negative")
        excursion = Excursion(index, delta, now_s, rise_s, hold_s, fall_s)
        self._excursions.append(excursion)
        return excursion

    @property
    def excursions(self) -> list[Excursion]:
        return list(self._excursions)

    def update_bias(self, now_s: float) -> None:
        """Recompute ``bias`` for ``now_s`` and forget finished excursions."""
        if not self._excursions:
            return
        self.bias[:] = 0.0
        for excursion in self._excursions:
            self.bias[excursion.index] += excursion.level(now_s)
        self._excursions = [e for e in self._excursions if e.end_s > now_s]
