"""What each catalog tag *is* to the plant model: its role, time constant and noise.

A role decides which physics drives a tag (a unit's feed, a pump's vibration, a tank level,
...). Roles come from the catalog's structure (Unit.feed_tag, Tank.level_tag, equipment type
with tag type) and, where the structure is ambiguous, from the tag's ``sim = { role = ... }``
hint in ``config/plant.toml``. Hints may also set ``setpoint``, ``tau_s`` and ``noise``.

A writable tag is a ``setpoint`` unless its hint says otherwise: the model holds the value last
written (``sim.controls`` names the tag whose controller follows it); ``run_command`` and
``discharge_valve`` are a machine's start/stop and discharge-valve coils (see
:mod:`simulator.controls`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from plant.catalog import SYNTHETIC_PREFIX, Catalog
from plant.schema import ROTATING, Tag, TagType


class TagRole(IntEnum):
    """The physics a tag follows (stored as an int8 column)."""

    PROCESS = 0  # first-order response to its own setpoint
    FEED = 1  # a unit's feed flow; drives power, products and motor currents
    PRODUCT = 2  # a unit's product flow, a share of the feed
    POWER = 3  # a unit's electric power: kWh/bbl * feed / 24
    MOTOR_CURRENT = 4
    VIBRATION = 5
    BEARING_TEMP = 6
    DISCHARGE_PRESSURE = 7
    STATUS = 8
    FURNACE_OUTLET = 9
    TUBE_SKIN = 10
    EXCHANGER_INLET = 11
    EXCHANGER_OUTLET = 12
    VALVE_POSITION = 13
    VALVE_DEMAND = 14
    TANK_LEVEL = 15
    SYNTHETIC = 16
    SETPOINT = 17  # a writable value the model holds; its controller target follows it
    RUN_COMMAND = 18  # a machine's start (1) / stop (0) command
    DISCHARGE_VALVE = 19  # a machine's discharge block valve command: open (1) / closed (0)


# Process time constants (s) by tag type: how fast a measurement follows its target.
TAU_BY_TYPE: dict[TagType, float] = {
    TagType.TEMPERATURE: 90.0,
    TagType.FLOW: 15.0,
    TagType.PRESSURE: 10.0,
    TagType.CURRENT: 5.0,
    TagType.LEVEL: 60.0,
    TagType.ANALYTICAL: 300.0,
    TagType.VIBRATION: 20.0,
    TagType.POWER: 10.0,
    TagType.POSITION: 4.0,
    TagType.STATUS: 1.0,
    TagType.ANALOG: 30.0,
}

# Fractions of the normal half-span. Their sum at ~4 sigma stays well inside the range, so
# normal operation without faults raises (nearly) no alarms.
NOISE_FRACTION = 0.05  # white measurement noise, sigma
DRIFT_FRACTION = 0.08  # slow process disturbance (Ornstein-Uhlenbeck), stationary sigma
DAILY_FRACTION = 0.20  # amplitude of the daily cycle
DRIFT_TAU_S = 1800.0

_ROLE_HINTS = {r.name.lower(): r for r in TagRole}


@dataclass(frozen=True)
class TagPhysics:
    """Per-tag columns the model needs, in catalog order."""

    role: np.ndarray  # int8 TagRole
    setpoint: np.ndarray
    half_span: np.ndarray
    tau_s: np.ndarray
    noise: np.ndarray  # white-noise sigma, engineering units
    equipment: np.ndarray  # int16 index into the model's equipment list, -1 for none
    unit: np.ndarray  # int16 index into plant.units, -1 for none


def role_of(tag: Tag, catalog: Catalog, equipment_type: dict[str, str]) -> TagRole:
    """Decide a tag's role from its hint, else from the catalog's structure."""
    hint = tag.sim.get("role")
    if hint is not None:
        if hint not in _ROLE_HINTS:
            raise ValueError(f"tag {tag.id}: sim.role '{hint}' is not one of {sorted(_ROLE_HINTS)}")
        return _ROLE_HINTS[hint]
    if tag.id.startswith(SYNTHETIC_PREFIX):
        return TagRole.SYNTHETIC
    if tag.writable:
        return TagRole.SETPOINT
    for unit in catalog.plant.units:
        if unit.feed_tag == tag.id:
            return TagRole.FEED
        if unit.power_tag == tag.id:
            return TagRole.POWER
        if tag.id in unit.product_tags:
            return TagRole.PRODUCT
    if any(tank.level_tag == tag.id for tank in catalog.plant.tanks):
        return TagRole.TANK_LEVEL
    if tag.tag_type == TagType.STATUS:
        return TagRole.STATUS
    if equipment_type.get(tag.equipment_id or "") in ROTATING:
        return {
            TagType.VIBRATION: TagRole.VIBRATION,
            TagType.CURRENT: TagRole.MOTOR_CURRENT,
            TagType.TEMPERATURE: TagRole.BEARING_TEMP,
            TagType.PRESSURE: TagRole.DISCHARGE_PRESSURE,
        }.get(tag.tag_type, TagRole.PROCESS)
    return TagRole.PROCESS


def tag_physics(catalog: Catalog, equipment_ids: list[str]) -> TagPhysics:
    """Compile roles, setpoints, time constants and noise into columns."""
    eq_type = {e.id: e.type for e in catalog.plant.equipment}
    eq_index = {e: i for i, e in enumerate(equipment_ids)}
    unit_index = {u.id: i for i, u in enumerate(catalog.plant.units)}
    n_plant = len(catalog.plant.tags)
    tags = catalog.tags[:n_plant]
    n = len(catalog)
    half = (catalog.normal_max - catalog.normal_min) / 2.0
    mid = (catalog.normal_max + catalog.normal_min) / 2.0
    role = np.full(n, TagRole.SYNTHETIC, dtype=np.int8)
    setpoint = mid.copy()
    tau = np.full(n, TAU_BY_TYPE[TagType.ANALOG])
    noise = half * NOISE_FRACTION
    equipment = np.full(n, -1, dtype=np.int16)
    unit = np.full(n, -1, dtype=np.int16)
    for i, tag in enumerate(tags):
        role[i] = role_of(tag, catalog, eq_type)
        setpoint[i] = float(tag.sim.get("setpoint", mid[i]))
        tau[i] = float(tag.sim.get("tau_s", TAU_BY_TYPE[tag.tag_type]))
        noise[i] = float(tag.sim.get("noise", half[i] * NOISE_FRACTION))
        equipment[i] = eq_index.get(tag.equipment_id or "", -1)
        unit[i] = unit_index.get(tag.unit_id or "", -1)
    for arr in (role, setpoint, half, tau, noise, equipment, unit):
        arr.setflags(write=False)
    return TagPhysics(role=role, setpoint=setpoint, half_span=half, tau_s=tau, noise=noise,
                      equipment=equipment, unit=unit)
