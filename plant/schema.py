"""The plant catalog's schema (`config/plant.toml`): units, equipment, tags and their device
addresses, tanks and inventory seed items, with the cross-references checked at load."""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors (they are usually typos)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TagType(StrEnum):
    TEMPERATURE = "TEMPERATURE"
    FLOW = "FLOW"
    PRESSURE = "PRESSURE"
    CURRENT = "CURRENT"
    LEVEL = "LEVEL"
    ANALYTICAL = "ANALYTICAL"
    VIBRATION = "VIBRATION"
    POWER = "POWER"
    POSITION = "POSITION"
    STATUS = "STATUS"
    ANALOG = "ANALOG"


class DataType(StrEnum):
    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    FLOAT64 = "float64"

    @property
    def registers(self) -> int:
        """16-bit registers one value occupies (bits count as one address)."""
        return {"bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2,
                "float32": 2, "float64": 4}[self.value]


class ByteOrder(StrEnum):
    """Order of the bytes of a multi-register value, A being the most significant byte."""

    ABCD = "ABCD"  # big-endian words, big-endian bytes (Modbus default)
    CDAB = "CDAB"  # word-swapped
    BADC = "BADC"  # byte-swapped
    DCBA = "DCBA"  # little-endian


class ModbusTable(StrEnum):
    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"

    @property
    def is_bits(self) -> bool:
        return self in (ModbusTable.COIL, ModbusTable.DISCRETE)


class ModbusAddress(Strict):
    """Where a tag lives in a Modbus server; engineering value = raw * scale + offset."""

    table: ModbusTable
    address: int = Field(ge=0, le=65535)
    type: DataType = DataType.UINT16
    order: ByteOrder = ByteOrder.ABCD
    scale: float = 1.0
    offset: float = 0.0

    @model_validator(mode="after")
    def _type_fits_table(self) -> ModbusAddress:
        if self.table.is_bits and self.type != DataType.BOOL:
            raise ValueError(f"{self.table.value} addresses hold bits: type must be 'bool'")
        if not self.table.is_bits and self.type == DataType.BOOL:
            raise ValueError(f"{self.table.value} registers cannot have type 'bool'")
        if self.address + self.type.registers - 1 > 65535:
            raise ValueError("value runs past register 65535")
        return self

    @property
    def count(self) -> int:
        return self.type.registers


# OPC-UA node id strings (OPC 10000-6 §5.3.1.10): an optional namespace by index (ns=) or by
# URI (nsu=), then a numeric (i=), string (s=), GUID (g=) or opaque base64 (b=) identifier.
_NODE_ID = re.compile(
    r"(?:(?:ns=(?P<ns>\d+)|nsu=[^;]+);)?"
    r"(?:i=(?P<i>\d+)|s=.+|g=[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}"
    r"|b=[A-Za-z0-9+/]+={0,2})", re.DOTALL)
_MAX_NAMESPACE = 0xFFFF
_MAX_NUMERIC_ID = 0xFFFFFFFF


class OpcUaAddress(Strict):
    node_id: str = Field(min_length=3)

    @field_validator("node_id")
    @classmethod
    def _node_id_syntax(cls, value: str) -> str:
        match = _NODE_ID.fullmatch(value)
        if match is None:
            raise ValueError(f"'{value}' is not an OPC-UA node id (e.g. 'ns=2;s=CDU-101.TI-101', "
                             "'nsu=urn:plant;i=1001')")
        if match["ns"] is not None and int(match["ns"]) > _MAX_NAMESPACE:
            raise ValueError(f"'{value}': namespace index above {_MAX_NAMESPACE}")
        if match["i"] is not None and int(match["i"]) > _MAX_NUMERIC_ID:
            raise ValueError(f"'{value}': numeric identifier above {_MAX_NUMERIC_ID}")
        return value


class Unit(Strict):
    """A process unit of the refinery (seed table process_units)."""

    id: str
    name: str
    type: str
    capacity_bpd: float = Field(gt=0)
    description: str = ""
    feed_tag: str | None = None
    power_tag: str | None = None
    product_tags: list[str] = []
    energy_benchmark_kwh_bbl: float | None = Field(default=None, gt=0)
    energy_target_kwh_bbl: float | None = Field(default=None, gt=0)


class EquipmentType(StrEnum):
    """The equipment types that wear out: the simulator degrades them and predictive maintenance
    trains one model per type. ``Equipment.type`` may name others (TOWER, VESSEL, REACTOR, ...);
    those never fail in the simulator and get no failure prediction."""

    PUMP = "PUMP"
    COMPRESSOR = "COMPRESSOR"
    FURNACE = "FURNACE"
    EXCHANGER = "EXCHANGER"
    VALVE = "VALVE"


# Rotating machines: their vibration, bearing temperature, motor current and discharge
# pressure are told apart by tag type alone.
ROTATING = (EquipmentType.PUMP, EquipmentType.COMPRESSOR)


class Equipment(Strict):
    """A piece of equipment of a unit (seed table equipment)."""

    id: str
    name: str
    type: str
    unit_id: str
    manufacturer: str = ""
    installation_date: date | None = None
    sim: dict[str, Any] = {}


class Tag(Strict):
    """A measured process variable (seed table process_tags) and its address map."""

    id: str
    name: str
    unit_id: str | None = None
    equipment_id: str | None = None
    engineering_units: str
    tag_type: TagType
    normal_min: float
    normal_max: float
    ll: float | None = None
    hh: float | None = None
    instrument_min: float | None = None
    instrument_max: float | None = None
    deadband: float | None = Field(default=None, ge=0)
    is_critical: bool = False
    description: str = ""
    opcua: OpcUaAddress | None = None
    modbus: ModbusAddress | None = None
    # Hints for the bundled simulator only (setpoint, noise, couplings); the gateway ignores them.
    sim: dict[str, Any] = {}

    @model_validator(mode="after")
    def _limits_in_order(self) -> Tag:
        if self.normal_min > self.normal_max:
            raise ValueError(f"normal_min {self.normal_min} is above normal_max {self.normal_max}")
        if self.ll is not None and self.ll > self.normal_min:
            raise ValueError(f"ll {self.ll} must not be above normal_min {self.normal_min}")
        if self.hh is not None and self.hh < self.normal_max:
            raise ValueError(f"hh {self.hh} must not be below normal_max {self.normal_max}")
        lo = self.instrument_min
        hi = self.instrument_max
        if lo is not None and hi is not None and lo >= hi:
            raise ValueError(f"instrument_min {lo} must be below instrument_max {hi}")
        if lo is not None and lo > min(self.normal_min, self.ll if self.ll is not None else lo):
            raise ValueError("instrument_min must not be above the normal range or ll")
        if hi is not None and hi < max(self.normal_max, self.hh if self.hh is not None else hi):
            raise ValueError("instrument_max must not be below the normal range or hh")
        return self


class Tank(Strict):
    id: str
    name: str
    product: str
    capacity_l: float = Field(gt=0)
    level_tag: str
    unit_id: str | None = None
    low_level_pct: float = Field(default=15.0, ge=0, le=100)
    high_level_pct: float = Field(default=90.0, ge=0, le=100)


class InventoryItem(Strict):
    sku: str
    item: str
    quantity: float = Field(ge=0)
    unit: str
    location: str = ""
    reorder_level: float = Field(default=0, ge=0)
    critical_level: float = Field(default=0, ge=0)


class Plant(Strict):
    """The plant catalog: units, equipment, tags, tanks, inventory seed items."""

    name: str = "RefineryIQ"
    units: list[Unit]
    equipment: list[Equipment] = []
    tags: list[Tag]
    tanks: list[Tank] = []
    inventory: list[InventoryItem] = []

    @model_validator(mode="after")
    def _references_resolve(self) -> Plant:
        problems: list[str] = []
        no_duplicates("units", [u.id for u in self.units], problems)
        no_duplicates("equipment", [e.id for e in self.equipment], problems)
        no_duplicates("tags", [t.id for t in self.tags], problems)
        no_duplicates("tanks", [t.id for t in self.tanks], problems)
        no_duplicates("inventory", [i.sku for i in self.inventory], problems)
        units = {u.id for u in self.units}
        equipment = {e.id for e in self.equipment}
        tags = {t.id for t in self.tags}
        for i, e in enumerate(self.equipment):
            if e.unit_id not in units:
                problems.append(f"equipment.{i}.unit_id: unknown unit '{e.unit_id}'")
        for i, t in enumerate(self.tags):
            if t.unit_id is not None and t.unit_id not in units:
                problems.append(f"tags.{i}.unit_id: unknown unit '{t.unit_id}'")
            if t.equipment_id is not None and t.equipment_id not in equipment:
                problems.append(f"tags.{i}.equipment_id: unknown equipment '{t.equipment_id}'")
        for i, u in enumerate(self.units):
            for field in ("feed_tag", "power_tag"):
                ref = getattr(u, field)
                if ref is not None and ref not in tags:
                    problems.append(f"units.{i}.{field}: unknown tag '{ref}'")
            for j, ref in enumerate(u.product_tags):
                if ref not in tags:
                    problems.append(f"units.{i}.product_tags.{j}: unknown tag '{ref}'")
        for i, tank in enumerate(self.tanks):
            if tank.level_tag not in tags:
                problems.append(f"tanks.{i}.level_tag: unknown tag '{tank.level_tag}'")
        problems += _address_conflicts(self.tags)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def no_duplicates(section: str, ids: list[str], problems: list[str]) -> None:
    seen: set[str] = set()
    for i, ident in enumerate(ids):
        if ident in seen:
            problems.append(f"{section}.{i}: duplicate id '{ident}'")
        seen.add(ident)


def _address_conflicts(tags: list[Tag]) -> list[str]:
    """Two tags must not share a Modbus register (of the same table) or an OPC-UA node."""
    problems: list[str] = []
    owner: dict[tuple[str, int], str] = {}
    nodes: dict[str, str] = {}
    for i, tag in enumerate(tags):
        if tag.modbus is not None:
            m = tag.modbus
            for reg in range(m.address, m.address + m.count):
                other = owner.setdefault((m.table.value, reg), tag.id)
                if other != tag.id:
                    problems.append(
                        f"tags.{i}.modbus.address: {m.table.value} register {reg} of '{tag.id}'"
                        f" is already used by '{other}'")
                    break
        if tag.opcua is not None:
            other = nodes.setdefault(tag.opcua.node_id, tag.id)
            if other != tag.id:
                problems.append(f"tags.{i}.opcua.node_id: '{tag.opcua.node_id}' is already used by '{other}'")
    return problems
