"""The plant catalog's schema (`config/plant.toml`): units, equipment, tags and their device
addresses, tanks and inventory seed items, with the cross-references checked at load."""

from __future__ import annotations

import math
import re
from datetime import date
from enum import StrEnum
from typing import Any, Literal, get_args

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

    @property
    def is_writable(self) -> bool:
        """Holding registers and coils can be written (FC5/6/15/16); input tables cannot."""
        return self in (ModbusTable.HOLDING, ModbusTable.COIL)


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
        if self.scale == 0 or not math.isfinite(self.scale) or not math.isfinite(self.offset):
            raise ValueError("scale must be a finite number other than 0, offset a finite number")
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


# The roles that may be required for a write, in the words of the gateway's user roles (the
# plant model imports nothing of the gateway, so the words are repeated here).
WriteRole = Literal["operator", "supervisor", "admin"]
WRITE_ROLES: tuple[str, ...] = get_args(WriteRole)
# Fields that only mean something on a writable tag.
WRITE_FIELDS = ("write_min", "write_max", "max_step", "write_role", "permissive", "write_tolerance")
# Read-back tolerance of a float: this fraction of the write range ...
FLOAT_TOLERANCE_OF_RANGE = 1e-6
# ... plus the resolution of a float32 at the largest value written (an OPC-UA node may be a
# Float, a Modbus value a float32), 2**-24 relative being half a float32 unit in the last place.
FLOAT32_RELATIVE_RESOLUTION = 2.0 ** -24
# Allowance for float64 arithmetic on top of half a count of an integer register.
_ARITHMETIC_EPSILON = 1e-9


class Permissive(Strict):
    """A condition a write needs: ``tag`` must read ``value`` (e.g. a pump start needs its
    discharge valve open). Checked by the gateway's write path before the write is sent."""

    tag: str
    value: float


class Tag(Strict):
    """A measured process variable (seed table process_tags) and its address map.

    A tag with ``writable = true`` can also be written (a setpoint, a start/stop command):
    within ``write_range()``, by at most ``max_step`` per write, by users of ``write_role`` or
    above, and only while its ``permissive`` (if any) holds. The gateway confirms a write by
    reading the tag back within ``read_back_tolerance()``.
    """

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
    writable: bool = False
    write_min: float | None = None  # default: instrument_min, else normal_min
    write_max: float | None = None  # default: instrument_max, else normal_max
    max_step: float | None = Field(default=None, gt=0)  # largest change one write may make
    write_role: WriteRole = "supervisor"
    permissive: Permissive | None = None
    write_tolerance: float | None = Field(default=None, ge=0)  # read-back agreement; default computed

    def write_range(self) -> tuple[float, float]:
        """The lowest and highest value a write may request, in engineering units.

        ``write_min``/``write_max`` when set, else the instrument range, else the normal range;
        a coil takes its two states (raw 0 and 1 after scale and offset).
        """
        if self.modbus is not None and self.modbus.table.is_bits:
            off, on = self.modbus.offset, self.modbus.offset + self.modbus.scale
            return min(off, on), max(off, on)
        lo = self.write_min if self.write_min is not None else (
            self.instrument_min if self.instrument_min is not None else self.normal_min)
        hi = self.write_max if self.write_max is not None else (
            self.instrument_max if self.instrument_max is not None else self.normal_max)
        return lo, hi

    def read_back_tolerance(self) -> float:
        """How far a read-back may be from the requested value and still confirm the write.

        ``write_tolerance`` when set; else 0 for a coil; for an integer register half a count
        (``0.5 * |scale|``, the encoder's largest rounding) plus a tiny arithmetic allowance;
        for floats (float registers, OPC-UA nodes) 1e-6 of the write range plus the resolution
        of a float32 at the largest value of that range.
        """
        if self.write_tolerance is not None:
            return self.write_tolerance
        m = self.modbus
        if m is not None and m.table.is_bits:
            return 0.0
        lo, hi = self.write_range()
        if m is not None and m.type in (DataType.INT16, DataType.UINT16, DataType.INT32, DataType.UINT32):
            magnitude = max(abs(lo), abs(hi), abs(m.scale))
            return 0.5 * abs(m.scale) + _ARITHMETIC_EPSILON * magnitude
        offset = m.offset if m is not None else 0.0
        largest = max(abs(lo - offset), abs(hi - offset))
        return FLOAT_TOLERANCE_OF_RANGE * (hi - lo) + FLOAT32_RELATIVE_RESOLUTION * largest

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
        problems = self._write_problems()
        if problems:
            # "field: problem" items; the loader prefixes them with the tag's path (tags.N.).
            raise ValueError("; ".join(problems))
        return self

    def _write_problems(self) -> list[str]:
        """What is wrong with the tag's write settings, each as "field path: problem"."""
        if not self.writable:
            return [f"{name}: only a writable tag has {name} (set writable = true)"
                    for name in WRITE_FIELDS if name in self.model_fields_set]
        problems: list[str] = []
        m = self.modbus
        if m is None and self.opcua is None:
            problems.append("writable: a writable tag needs a modbus or opcua address")
        if m is not None and not m.table.is_writable:
            what = "input registers" if m.table == ModbusTable.INPUT else "discrete inputs"
            problems.append(f"modbus.table: {what} cannot be written (writable = true)")
        if m is not None and m.table.is_bits:
            for name in ("write_min", "write_max", "max_step"):
                if getattr(self, name) is not None:
                    problems.append(f"{name}: a coil is written with its two states only (0 or 1); "
                                    f"{name} does not apply")
            return problems
        lo, hi = self.write_range()
        if not lo < hi:
            problems.append(f"write_min: {lo} must be below write_max {hi}"
                            + ("" if self.write_min is not None or self.write_max is not None
                               else " (set write_min and write_max: the normal range is a single value)"))
        if self.instrument_min is not None and lo < self.instrument_min:
            problems.append(f"write_min: {lo} is below instrument_min {self.instrument_min}")
        if self.instrument_max is not None and hi > self.instrument_max:
            problems.append(f"write_max: {hi} is above instrument_max {self.instrument_max}")
        return problems


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
        problems += _permissive_problems(self.tags)
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


def _permissive_problems(tags: list[Tag]) -> list[str]:
    """A permissive names another tag of the catalog, and a value that tag can read."""
    problems: list[str] = []
    by_id = {t.id: t for t in tags}
    for i, tag in enumerate(tags):
        if tag.permissive is None:
            continue
        ref = tag.permissive.tag
        other = by_id.get(ref)
        if other is None:
            problems.append(f"tags.{i}.permissive.tag: unknown tag '{ref}'")
        elif other.id == tag.id:
            problems.append(f"tags.{i}.permissive.tag: a tag cannot be its own permissive")
        else:
            lo, hi = other.instrument_min, other.instrument_max
            value = tag.permissive.value
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                problems.append(f"tags.{i}.permissive.value: {value} is outside the instrument range "
                                f"of '{ref}' ({lo}..{hi})")
    return problems


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
