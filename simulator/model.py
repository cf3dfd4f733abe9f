"""The simulated refinery: process dynamics, equipment degradation and faults, pure numpy.

No I/O and no clock: :meth:`PlantModel.step` advances simulated time by ``dt`` seconds, and
everything random comes from ``numpy.random.default_rng(seed)``, so the same seed and the same
sequence of steps give the same series. The model is built from the compiled
:class:`plant.catalog.Catalog` (plant tags first, then the synthetic ``SYN-`` tags) and
exposes, indexed like the catalog:

- ``values``: float64 reported values (after instrument faults);
- ``status``: uint32 OPC-UA StatusCode per tag (0 = Good, Bad for injected bad quality);
- ``equipment_ids`` / ``equipment_health`` (hidden health, 1 new .. 0 failed) and ``events``,
  the failure event log (wear onset, failure, repair) for training and for tests.

Physics per tag (roles in :mod:`simulator.roles`): each value follows its target with a
first-order lag, plus a slow disturbance and white measurement noise sized so normal
operation stays inside ``normal_min..normal_max``, plus a daily cycle. Couplings: a unit's feed
drives its pumps' motor currents, its power (``kWh/bbl * feed / 24``, kWh/bbl a little under
the unit's benchmark) and its product flows (98-100 % of feed in total); a furnace's hidden
duty follows the feed and drives the outlet and tube-skin temperatures; exchanger outlet =
inlet + a temperature rise that fouling reduces; a valve's demand is its controller's output
(daily course plus the process disturbance, no instrument noise) and its position follows the
demand with a lag and a stiction band (position transmitter noise, no disturbance); tank levels integrate their in/out flows and turn around between
about 20 % and 85 %. Wear (see :mod:`simulator.degradation`) raises vibration, bearing
temperature and motor current and lowers discharge pressure of pumps and compressors, raises
furnace tube-skin temperature, fouls exchangers and makes valves sticky; a failure stops the
equipment (STATUS tag 0) until maintenance. Run-to-failure histories for the
predictive-maintenance model: see :func:`simulator.training.run_to_failure`.

Writes (:meth:`PlantModel.write`, from the protocol servers) change setpoints and start/stop
and valve commands, and scenarios start upsets (:meth:`PlantModel.excursion`), wear
(:meth:`PlantModel.start_wear`) and tank overfills; see :mod:`simulator.controls`.
"""

from __future__ import annotations

import math

import numpy as np

from plant.catalog import Catalog
from plant.schema import EquipmentType
from simulator.controls import RECIRCULATION_VIBRATION, SHUT_OFF_CURRENT, SHUT_OFF_HEAD, Controls
from simulator.degradation import Degradation
from simulator.faults import Device, FaultBook, FaultKind
from simulator.roles import (
    DAILY_FRACTION,
    DRIFT_FRACTION,
    DRIFT_TAU_S,
    TagRole,
    tag_physics,
)
from simulator.tanks import TankFarm

DAY_S = 86400.0
# kWh/bbl as a fraction of the unit's energy benchmark when no hint is given.
ENERGY_FRACTION_OF_BENCHMARK = 0.96
STANDBY_POWER_FRACTION = 0.08
AMBIENT_C = 35.0
FURNACE_RISE_C = 100.0  # outlet minus inlet at design duty (hint: sim.rise_c on the outlet tag)


class PlantModel:
    """The whole plant, advanced by :meth:`step`; read ``values`` and ``status`` after it."""

    def __init__(self, catalog: Catalog, seed: int, time_s: float = 0.0):
        self.catalog = catalog
        self.seed = seed
        self.time_s = time_s
        self._rng = np.random.default_rng(seed)
        plant = catalog.plant
        self.equipment_ids = [e.id for e in plant.equipment]
        self.degradation = Degradation(list(plant.equipment), self._rng, time_s)
        self.physics = p = tag_physics(catalog, self.equipment_ids)
        n = len(catalog)
        self._daily_amp = DAILY_FRACTION * p.half_span
        self._daily_phase = self._rng.uniform(0.0, 2 * math.pi, n)
        self._drift_sigma = DRIFT_FRACTION * p.half_span
        self._drift = self._rng.standard_normal(n) * self._drift_sigma
        self._setpoint = p.setpoint.copy()
        self._pv = p.setpoint.copy()
        self._target = p.setpoint.copy()
        self._measured = p.setpoint.copy()
        self.values = p.setpoint.copy()
        self.status = np.zeros(n, dtype=np.uint32)
        self._last_dt = -1.0
        self._compile_couplings()
        self._pv = self._setpoint.copy()
        self._measured = self._setpoint.copy()
        self._valve_state = self._setpoint[self.valve_pos].copy()
        self.controls = Controls(catalog, p, self._setpoint, len(self.equipment_ids))
        held = self.controls.held_index
        self._pv[held] = self._measured[held] = self.controls.held[held]
        self.tanks = TankFarm(catalog, self._rng)
        self.faults = FaultBook(n, catalog.normal_max - catalog.normal_min,
                                catalog.instrument_min, catalog.instrument_max)
        self._publish()

    # ------------------------------------------------------------------ structure

    def _role_index(self, role: TagRole) -> np.ndarray:
        return np.flatnonzero(self.physics.role == role)

    def _compile_couplings(self) -> None:
        p, cat, plant = self.physics, self.catalog, self.catalog.plant
        n_units = len(plant.units)
        self._unit_feed = np.array([cat.index[u.feed_tag] if u.feed_tag else -1 for u in plant.units])
        self._feed_sp = np.array([self._setpoint[i] if i >= 0 else 1.0 for i in self._unit_feed])
        self._feed_ratio = np.ones(n_units)
        self._eq_of_tag = p.equipment
        self._unit_of_tag = p.unit
        types = [e.type for e in plant.equipment]
        self._eq_is = {t: np.array([ty == t.value for ty in types], dtype=bool) for t in EquipmentType}
        self.feed = self._role_index(TagRole.FEED)
        self.product = self._role_index(TagRole.PRODUCT)
        self.power = self._role_index(TagRole.POWER)
        self.current = self._role_index(TagRole.MOTOR_CURRENT)
        self.vibration = self._role_index(TagRole.VIBRATION)
        self.bearing = self._role_index(TagRole.BEARING_TEMP)
        self.discharge = self._role_index(TagRole.DISCHARGE_PRESSURE)
        self.status_tags = self._role_index(TagRole.STATUS)
        self.outlet = self._role_index(TagRole.FURNACE_OUTLET)
        self.skin = self._role_index(TagRole.TUBE_SKIN)
        self.ex_out = self._role_index(TagRole.EXCHANGER_OUTLET)
        self.valve_pos = self._role_index(TagRole.VALVE_POSITION)
        # Power: kWh/bbl per unit, setpoint = kWh/bbl * feed setpoint / 24.
        self._kwh_bbl = np.zeros(len(self.power))
        for k, i in enumerate(self.power):
            unit = plant.units[p.unit[i]]
            tag = cat.tags[i]
            bench = unit.energy_benchmark_kwh_bbl
            default = ENERGY_FRACTION_OF_BENCHMARK * bench if bench else self._setpoint[i] * 24 / self._feed_sp[p.unit[i]]
            self._kwh_bbl[k] = float(tag.sim.get("kwh_per_bbl", default))
            self._setpoint[i] = self._kwh_bbl[k] * self._feed_sp[p.unit[i]] / 24.0
        # Furnace: inlet temperature of each outlet/skin tag; hidden duty per equipment (1 = design).
        self._furnace_inlet = {}
        for i in np.concatenate([self.outlet, self.skin]):
            eq = p.equipment[i]
            outlets = [j for j in self.outlet if p.equipment[j] == eq]
            ref = outlets[0] if outlets else i
            rise = float(cat.tags[ref].sim.get("rise_c", FURNACE_RISE_C))
            self._furnace_inlet[int(i)] = self._setpoint[ref] - rise
        self._duty = np.ones(len(self.equipment_ids))
        # Exchanger outlet: its inlet tag (same equipment) and design temperature rise.
        self._ex_in = np.array([self._partner(i, TagRole.EXCHANGER_INLET) for i in self.ex_out], dtype=np.int64)
        self._ex_rise = self._setpoint[self.ex_out] - self._setpoint[self._ex_in] if len(self.ex_out) else np.zeros(0)
        self._valve_dem = np.array([self._partner(i, TagRole.VALVE_DEMAND) for i in self.valve_pos], dtype=np.int64)
        self._unit_of_eq = np.array([next(k for k, u in enumerate(plant.units) if u.id == e.unit_id)
                                     for e in plant.equipment], dtype=np.int64)
        self._setpoint.setflags(write=False)

    def _partner(self, i: int, role: TagRole) -> int:
        eq = self.physics.equipment[i]
        for j in np.flatnonzero((self.physics.role == role) & (self.physics.equipment == eq)):
            return int(j)
        raise ValueError(f"tag {self.catalog.tags[i].id}: no {role.name.lower()} tag on the same equipment")

    # ------------------------------------------------------------------ public state

    @property
    def equipment_health(self) -> np.ndarray:
        """Hidden health per equipment (order of ``equipment_ids``): 1 new, 0 failed."""
        return self.degradation.health

    @property
    def equipment_failed(self) -> np.ndarray:
        return self.degradation.failed

    @property
    def events(self):
        """The failure event log (:class:`simulator.degradation.EquipmentEvent`)."""
        return self.degradation.events

    def equipment_index(self, equipment_id: str) -> int:
        return self.equipment_ids.index(equipment_id)

    def value(self, tag_id: str) -> float:
        return float(self.values[self.catalog.index[tag_id]])

    # ------------------------------------------------------------------ control

    def inject(self, tag_id: str, kind: FaultKind, duration_s: float) -> None:
        """Start an instrument fault on one tag (see :mod:`simulator.faults`)."""
        i = self.catalog.index[tag_id]
        self.faults.inject(i, kind, self.time_s, duration_s, float(self.values[i]))
        self._publish()

    def silence(self, device: Device, duration_s: float) -> None:
        self.faults.silence(device, self.time_s, duration_s)

    def degrade(self, equipment_id: str, health: float) -> None:
        """Force an equipment's hidden health now; wear continues from there."""
        self.degradation.force(self.equipment_index(equipment_id), health, self.time_s)

    def start_wear(self, equipment_id: str, wear_h: float) -> None:
        """Start wear of an equipment now, to fail in about ``wear_h`` hours (a failed one is
        repaired first)."""
        i = self.equipment_index(equipment_id)
        if self.degradation.failed[i]:
            self.degradation.force(i, 1.0, self.time_s)
        self.degradation.start_wear(i, self.time_s, wear_h)

    def excursion(self, tag_id: str, delta: float, rise_s: float, hold_s: float, fall_s: float) -> None:
        """Start an upset on one tag now: its process target is biased by ``delta`` (ramping in
        over ``rise_s``, held ``hold_s``, ramping out over ``fall_s``)."""
        self.controls.excursion(self.catalog.index[tag_id], delta, self.time_s, rise_s, hold_s, fall_s)

    def write(self, index: int, value: float) -> None:
        """A write from a protocol server to catalog tag ``index``: a setpoint or a command.

        Raises :class:`simulator.controls.WriteRejected` (not writable) or its subclass
        ``OutOfRange`` (outside the instrument range, not 0/1 for a command). The new value is
        reported at once; the process answers over the following steps.
        """
        self.controls.write(index, value)
        self._pv[index] = self._measured[index] = self.controls.held[index]
        self._publish()

    # ------------------------------------------------------------------ dynamics

    def step(self, dt: float) -> None:
        """Advance simulated time by ``dt`` seconds (any dt > 0; large dt stays stable)."""
        if dt <= 0:
            raise ValueError("dt must be positive")
        self.time_s += dt
        t = self.time_s
        self.degradation.step(t, dt)
        damage = self.degradation.damage
        failed = self.degradation.failed
        controls = self.controls
        controls.update_bias(t)
        if dt != self._last_dt:
            self._alpha = -np.expm1(-dt / self.physics.tau_s)
            a = math.exp(-dt / DRIFT_TAU_S)
            self._drift_a, self._drift_b = a, math.sqrt(1.0 - a * a)
            self._last_dt = dt
        n = len(self._pv)
        noise = self._rng.standard_normal(2 * n)
        self._drift *= self._drift_a
        self._drift += self._drift_b * self._drift_sigma * noise[n:]
        target = self._target
        np.sin(self._daily_phase + (2 * math.pi / DAY_S) * t, out=target)
        target *= self._daily_amp
        target += controls.sp
        self._couple(target, damage, failed)
        target += controls.bias
        self._pv += (target - self._pv) * self._alpha
        self._pv[self.status_tags] = target[self.status_tags]
        self._valves(dt, damage, failed)
        measured = self._measured
        np.add(self._pv, self._drift, out=measured)
        measured += self.physics.noise * noise[:n]
        measured[self.status_tags] = self._pv[self.status_tags]
        # A valve demand is the controller's output, a computed value: the process disturbance
        # is in it (the controller answers the process) and no instrument noise. The position
        # transmitter reads the stem: its own noise, and no process disturbance.
        pos, dem = self.valve_pos, self._valve_dem
        measured[dem] = self._pv[dem] + self._drift[dem]
        measured[pos] = self._pv[pos] + self.physics.noise[pos] * noise[pos]
        held = controls.held_index
        self._pv[held] = measured[held] = controls.held[held]
        self.tanks.step(dt, self._pv, measured, noise[: len(self.tanks.level_index)])
        np.clip(measured, self.catalog.instrument_min, self.catalog.instrument_max, out=measured)
        self._publish()

    def _publish(self) -> None:
        np.copyto(self.values, self._measured)
        self.faults.apply(self.time_s, self.values, self.status)

    def _couple(self, target: np.ndarray, damage: np.ndarray, failed: np.ndarray) -> None:
        """Overwrite the targets of coupled tags (the plant's few; synthetic tags are free)."""
        sp = self._setpoint
        tag_damage = self._of_tags(damage, 0.0)
        # A stopped machine behaves as a failed one (without the failure); a closed discharge
        # valve on a running one dead-heads it.
        tag_failed = self._of_tags(failed | ~self.controls.running, False)
        shut = self._of_tags(~self.controls.valve_open, False) & ~tag_failed
        # Feed: a worn feed pump delivers a little less; a failed or stopped one, or one pumping
        # against a closed valve, nothing.
        f = self.feed
        target[f] *= 1.0 - 0.05 * tag_damage[f]
        target[f] = np.where(tag_failed[f] | shut[f], 0.0, target[f])
        has_feed = self._unit_feed >= 0
        self._feed_ratio[has_feed] = np.maximum(self._pv[self._unit_feed[has_feed]], 0.0) / self._feed_sp[has_feed]
        ratio = self._feed_ratio[self._unit_of_tag]
        target[self.product] = sp[self.product] * ratio[self.product]
        feed_bpd = ratio[self.power] * self._feed_sp[self._unit_of_tag[self.power]]
        target[self.power] = np.maximum(self._kwh_bbl * feed_bpd / 24.0, STANDBY_POWER_FRACTION * sp[self.power])
        # Rotating equipment symptoms grow with damage; a failed machine is stopped.
        c, v, b, d = self.current, self.vibration, self.bearing, self.discharge
        target[c] = np.where(tag_failed[c], 0.0, sp[c] * ratio[c] * (1.0 + 0.15 * tag_damage[c]))
        span_v = self.catalog.normal_max[v] - sp[v]
        target[v] = np.where(tag_failed[v], 0.3, sp[v] + 3.0 * span_v * tag_damage[v])
        span_b = self.catalog.normal_max[b] - sp[b]
        target[b] = np.where(tag_failed[b], AMBIENT_C, sp[b] + 2.0 * span_b * tag_damage[b])
        span_d = sp[d] - self.catalog.normal_min[d]
        target[d] = np.where(tag_failed[d], 0.05 * sp[d], sp[d] - 2.5 * span_d * tag_damage[d])
        target[c] = np.where(shut[c], SHUT_OFF_CURRENT * sp[c], target[c])
        target[v] = np.where(shut[v], target[v] + RECIRCULATION_VIBRATION * span_v, target[v])
        target[d] = np.where(shut[d], SHUT_OFF_HEAD * sp[d], target[d])
        target[self.status_tags] = np.where(tag_failed[self.status_tags], 0.0, 1.0)
        self._furnaces(target, damage, failed, tag_damage)
        # Exchanger: fouling lowers the temperature rise; out of service (cleaning) ~ bypassed.
        x = self.ex_out
        effectiveness = np.where(tag_failed[x], 0.2, 1.0 - 0.5 * tag_damage[x])
        target[x] = self._pv[self._ex_in] + self._ex_rise * effectiveness

    def _of_tags(self, per_equipment: np.ndarray, default: float | bool) -> np.ndarray:
        """An equipment column spread over the tags (``default`` for tags of no equipment)."""
        eq = self._eq_of_tag
        if not len(per_equipment):
            return np.full(len(eq), default, dtype=np.asarray(default).dtype)
        return np.where(eq >= 0, per_equipment[eq], default)

    def _furnaces(self, target: np.ndarray, damage: np.ndarray, failed: np.ndarray,
                  tag_damage: np.ndarray) -> None:
        if not len(self.outlet) and not len(self.skin):
            return
        is_furnace = self._eq_is[EquipmentType.FURNACE]
        unit_of_eq = self._unit_of_eq
        # The firing controller delivers the duty the feed needs, with a lag, and more when coked.
        demand = np.where(failed, 0.0, self._feed_ratio[unit_of_eq] * (1.0 + 0.1 * damage))
        self._duty[is_furnace] += (demand[is_furnace] - self._duty[is_furnace]) * min(1.0, self._last_dt / 120.0)
        # The outlet follows its operating setpoint (a write to its controller's setpoint moves
        # it); the tube skin runs hotter by as much as the outlet setpoint is raised.
        sp = self.controls.sp
        raised = {}
        for i in self.outlet:
            e, t_in = self.physics.equipment[i], self._furnace_inlet[int(i)]
            ratio = max(self._feed_ratio[unit_of_eq[e]], 0.05)
            rise = (sp[i] - t_in) * self._duty[e] / (ratio * (1.0 + 0.1 * damage[e]))
            target[i] = t_in + min(rise, 3.0 * (sp[i] - t_in))
            raised[int(e)] = sp[i] - self._setpoint[i]
        for i in self.skin:
            e, t_in = self.physics.equipment[i], self._furnace_inlet[int(i)]
            span = self.catalog.normal_max[i] - self._setpoint[i]
            target[i] = (t_in + (self._setpoint[i] - t_in) * self._duty[e] + 2.2 * span * tag_damage[i]
                         + raised.get(int(e), 0.0) * self._duty[e])

    def _valves(self, dt: float, damage: np.ndarray, failed: np.ndarray) -> None:
        """Valve position moves toward demand with a lag, only past a stiction band."""
        if not len(self.valve_pos):
            return
        pos, dem = self.valve_pos, self._valve_dem
        eq = self.physics.equipment[pos]
        # The controller's output: the demand's daily course plus the process disturbance it answers.
        error = self._pv[dem] + self._drift[dem] - self._valve_state
        band = 0.2 + 8.0 * damage[eq]
        tau = self.physics.tau_s[pos] * (1.0 + 5.0 * damage[eq])
        move = np.where((np.abs(error) > band) & ~failed[eq], error * -np.expm1(-dt / tau), 0.0)
        # The generic lag moved _pv[pos] toward a target of its own; the valve mechanics override it.
        self._pv[pos] = self._valve_state + move
        self._valve_state = self._pv[pos].copy()
