"""Which of an equipment's tags plays which part in its failure signature.

Machines of one type carry different tag ids (PUMP-101 has VI-101, PUMP-305 has VI-305) and
different ranges (discharge 150-180 bar vs 700-760 bar), so the model is trained on *signals*
(vibration, bearing temperature, ...) normalised by each tag's normal range, never on tag ids.
A signal is found from the catalog's structure: the unit's feed tag, the tag type for rotating
machines, and for equipment with two tags of one type the tag's ``sim.role`` hint in
plant.toml (the same hint the simulator reads), else the ISA letter code / the normal range.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from plant.schema import ROTATING, EquipmentType, Plant, Tag, TagType


class Signal(StrEnum):
    """The part a tag plays in an equipment's failure signature."""

    VIBRATION = "vibration"
    BEARING_TEMP = "bearing_temp"
    MOTOR_CURRENT = "motor_current"
    DISCHARGE_PRESSURE = "discharge_pressure"
    RUN_STATUS = "run_status"
    FEED_FLOW = "feed_flow"
    FURNACE_OUTLET = "furnace_outlet"
    TUBE_SKIN = "tube_skin"
    EXCHANGER_INLET = "exchanger_inlet"
    EXCHANGER_OUTLET = "exchanger_outlet"
    VALVE_POSITION = "valve_position"
    VALVE_DEMAND = "valve_demand"


# The signals each type's model uses, in feature order.
TYPE_SIGNALS: dict[EquipmentType, tuple[Signal, ...]] = {
    EquipmentType.PUMP: (Signal.VIBRATION, Signal.BEARING_TEMP, Signal.MOTOR_CURRENT,
                         Signal.DISCHARGE_PRESSURE, Signal.FEED_FLOW),
    EquipmentType.COMPRESSOR: (Signal.VIBRATION, Signal.BEARING_TEMP, Signal.MOTOR_CURRENT,
                               Signal.DISCHARGE_PRESSURE, Signal.FEED_FLOW),
    EquipmentType.FURNACE: (Signal.FURNACE_OUTLET, Signal.TUBE_SKIN, Signal.FEED_FLOW),
    EquipmentType.EXCHANGER: (Signal.EXCHANGER_INLET, Signal.EXCHANGER_OUTLET, Signal.FEED_FLOW),
    EquipmentType.VALVE: (Signal.VALVE_POSITION, Signal.VALVE_DEMAND, Signal.FEED_FLOW),
}

_ROTATING_BY_TAG_TYPE = {
    TagType.VIBRATION: Signal.VIBRATION,
    TagType.TEMPERATURE: Signal.BEARING_TEMP,
    TagType.CURRENT: Signal.MOTOR_CURRENT,
    TagType.PRESSURE: Signal.DISCHARGE_PRESSURE,
    TagType.STATUS: Signal.RUN_STATUS,
}
# Two tags of one type on one equipment: (lower normal range, higher normal range).
_PAIRS: dict[EquipmentType, tuple[TagType, Signal, Signal]] = {
    EquipmentType.FURNACE: (TagType.TEMPERATURE, Signal.FURNACE_OUTLET, Signal.TUBE_SKIN),
    EquipmentType.EXCHANGER: (TagType.TEMPERATURE, Signal.EXCHANGER_INLET, Signal.EXCHANGER_OUTLET),
}
# ISA-5.1 letters: ZI position indication, ZC position control (the demand).
_VALVE_PREFIX = {"ZI": Signal.VALVE_POSITION, "ZC": Signal.VALVE_DEMAND}


@dataclass(frozen=True)
class SignalTag:
    """One signal of one equipment: the tag and its normal range (for normalisation)."""

    signal: Signal
    tag_id: str
    normal_min: float
    normal_max: float

    @property
    def mid(self) -> float:
        return (self.normal_min + self.normal_max) / 2.0

    @property
    def half_span(self) -> float:
        return max((self.normal_max - self.normal_min) / 2.0, 1e-9)


def _signal_tag(signal: Signal, tag: Tag) -> SignalTag:
    return SignalTag(signal, tag.id, float(tag.normal_min), float(tag.normal_max))


def equipment_signals(plant: Plant, equipment_id: str) -> dict[Signal, SignalTag]:
    """Map an equipment's tags (and its unit's feed) to signals; raises KeyError if unknown."""
    equipment = next((e for e in plant.equipment if e.id == equipment_id), None)
    if equipment is None:
        raise KeyError(f"equipment {equipment_id} is not in the plant catalog")
    kind = EquipmentType(equipment.type)
    tags = [t for t in plant.tags if t.equipment_id == equipment_id]
    by_id = {t.id: t for t in plant.tags}
    found: dict[Signal, SignalTag] = {}
    hints = {s.value: s for s in Signal}
    for tag in tags:
        hint = tag.sim.get("role")
        if hint in hints:
            found[hints[hint]] = _signal_tag(hints[hint], tag)
    if kind in ROTATING:
        for tag in tags:
            signal = _ROTATING_BY_TAG_TYPE.get(tag.tag_type)
            if signal is not None and signal not in found:
                found[signal] = _signal_tag(signal, tag)
    if kind in _PAIRS:
        tag_type, low, high = _PAIRS[kind]
        pair = sorted((t for t in tags if t.tag_type == tag_type), key=lambda t: t.normal_max)
        if len(pair) == 2:
            found.setdefault(low, _signal_tag(low, pair[0]))
            found.setdefault(high, _signal_tag(high, pair[1]))
    if kind == EquipmentType.VALVE:
        for tag in tags:
            signal = _VALVE_PREFIX.get(tag.id.split("-")[0])
            if signal is not None:
                found.setdefault(signal, _signal_tag(signal, tag))
    unit = next((u for u in plant.units if u.id == equipment.unit_id), None)
    if unit is not None and unit.feed_tag:
        found.setdefault(Signal.FEED_FLOW, _signal_tag(Signal.FEED_FLOW, by_id[unit.feed_tag]))
    return found


def model_signals(plant: Plant, equipment_id: str, kind: EquipmentType) -> tuple[SignalTag, ...]:
    """The signals a type's model needs, in feature order; ValueError names a missing one."""
    found = equipment_signals(plant, equipment_id)
    missing = [s.value for s in TYPE_SIGNALS[kind] if s not in found]
    if missing:
        raise ValueError(f"equipment {equipment_id}: no tag for signal(s) {', '.join(missing)}")
    return tuple(found[s] for s in TYPE_SIGNALS[kind])
