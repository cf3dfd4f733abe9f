"""Writable tags in the plant catalog: their fields, defaults, the problems that name the field,
and the check against the devices that scan them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from plant.devices import ModbusDevice, OpcUaDevice, ScanGroup
from plant.errors import validation_problems
from plant.load import load_plant
from plant.schema import FLOAT32_RELATIVE_RESOLUTION, WRITE_ROLES, Plant, Tag
from plant.writes import writability_problems, write_device_by_tag

ROOT = Path(__file__).resolve().parents[2]


def tag(**fields: Any) -> dict[str, Any]:
    base = {"id": "TIC-1.SP", "name": "sp", "unit_id": "U-1", "engineering_units": "°C",
            "tag_type": "TEMPERATURE", "normal_min": 340, "normal_max": 360,
            "modbus": {"table": "holding", "address": 0, "type": "int16", "scale": 0.1}}
    base.update(fields)
    return base


def plant(*tags: dict[str, Any]) -> dict[str, Any]:
    return {"units": [{"id": "U-1", "name": "u", "type": "T", "capacity_bpd": 1}], "tags": list(tags)}


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        Plant.model_validate(data)
    return validation_problems(info.value)


def test_a_tag_is_read_only_unless_declared_writable():
    t = Tag.model_validate(tag())
    assert (t.writable, t.write_role, t.permissive, t.max_step) == (False, "supervisor", None, None)


def test_role_words_are_the_gateways():
    assert WRITE_ROLES == ("operator", "supervisor", "admin")
    assert problems_of(plant(tag(writable=True, write_role="viewer")))[0].startswith("tags.0.write_role:")


def test_write_range_defaults_to_the_instrument_range_then_the_normal_range():
    assert Tag.model_validate(tag(writable=True)).write_range() == (340, 360)
    ranged = Tag.model_validate(tag(writable=True, instrument_min=0, instrument_max=600))
    assert ranged.write_range() == (0, 600)
    explicit = Tag.model_validate(tag(writable=True, instrument_min=0, instrument_max=600,
                                      write_min=330, write_max=370))
    assert explicit.write_range() == (330, 370)


def test_a_coils_write_range_is_its_two_states():
    coil = Tag.model_validate(tag(tag_type="STATUS", normal_min=1, normal_max=1, writable=True,
                                  modbus={"table": "coil", "address": 0, "type": "bool"}))
    assert coil.write_range() == (0.0, 1.0)
    assert coil.read_back_tolerance() == 0.0


def test_read_back_tolerance_of_an_integer_register_is_half_a_count():
    t = Tag.model_validate(tag(writable=True, instrument_min=0, instrument_max=600))
    assert 0.05 < t.read_back_tolerance() < 0.05 + 1e-6


def test_read_back_tolerance_of_a_float_covers_float32_resolution():
    t = Tag.model_validate(tag(writable=True, instrument_min=0, instrument_max=15000,
                               modbus={"table": "holding", "address": 0, "type": "float32"}))
    assert t.read_back_tolerance() == pytest.approx(1e-6 * 15000 + FLOAT32_RELATIVE_RESOLUTION * 15000)
    opcua_only = Tag.model_validate(tag(writable=True, modbus=None, opcua={"node_id": "ns=2;s=SP"}))
    assert opcua_only.read_back_tolerance() == pytest.approx(1e-6 * 20 + FLOAT32_RELATIVE_RESOLUTION * 360)


def test_an_explicit_tolerance_wins():
    assert Tag.model_validate(tag(writable=True, write_tolerance=0.5)).read_back_tolerance() == 0.5


@pytest.mark.parametrize("modbus, problem", [
    ({"table": "input", "address": 0, "type": "float32"},
     "tags.0.modbus.table: input registers cannot be written (writable = true)"),
    ({"table": "discrete", "address": 0, "type": "bool"},
     "tags.0.modbus.table: discrete inputs cannot be written (writable = true)"),
])
def test_a_writable_tag_on_an_input_table_names_the_field(modbus, problem):
    assert problem in problems_of(plant(tag(writable=True, normal_min=0, normal_max=1, modbus=modbus)))


def test_a_writable_tag_needs_an_address():
    assert problems_of(plant(tag(writable=True, modbus=None))) == \
        ["tags.0.writable: a writable tag needs a modbus or opcua address"]


def test_a_writable_opcua_node_is_accepted_offline():
    assert Plant.model_validate(plant(tag(writable=True, modbus=None, opcua={"node_id": "ns=2;s=SP"})))


@pytest.mark.parametrize("fields, problem", [
    ({"write_min": 370, "write_max": 330}, "tags.0.write_min: 370.0 must be below write_max 330.0"),
    ({"instrument_min": 0, "instrument_max": 600, "write_min": -10}, "tags.0.write_min: -10.0 is below instrument_min 0.0"),
    ({"instrument_min": 0, "instrument_max": 600, "write_max": 700}, "tags.0.write_max: 700.0 is above instrument_max 600.0"),
    ({"normal_min": 1, "normal_max": 1}, "tags.0.write_min: 1.0 must be below write_max 1.0 (set write_min and write_max"),
])
def test_write_limits_are_checked_against_each_other_and_the_instrument(fields, problem):
    found = problems_of(plant(tag(writable=True, **fields)))
    assert any(p.startswith(problem) for p in found), found


@pytest.mark.parametrize("value", [0, -1])
def test_max_step_must_be_positive(value):
    assert problems_of(plant(tag(writable=True, max_step=value)))[0].startswith("tags.0.max_step:")


def test_coils_take_no_write_limits():
    coil = tag(tag_type="STATUS", normal_min=1, normal_max=1, writable=True, write_max=1,
               modbus={"table": "coil", "address": 0, "type": "bool"})
    assert problems_of(plant(coil))[0].startswith("tags.0.write_max: a coil is written with its two states")


@pytest.mark.parametrize("field, value", [("write_min", 1), ("max_step", 2), ("write_role", "admin"),
                                          ("permissive", {"tag": "X", "value": 1}), ("write_tolerance", 0.1)])
def test_write_settings_on_a_read_only_tag_are_an_error(field, value):
    assert problems_of(plant(tag(**{field: value}))) == \
        [f"tags.0.{field}: only a writable tag has {field} (set writable = true)"]


def test_a_permissive_names_a_known_other_tag_and_a_value_it_can_read():
    valve = tag(id="XV-1", tag_type="STATUS", normal_min=1, normal_max=1, instrument_min=0, instrument_max=1,
                modbus={"table": "coil", "address": 1, "type": "bool"})
    start = tag(id="HS-1", tag_type="STATUS", normal_min=1, normal_max=1, instrument_min=0, instrument_max=1,
                writable=True, modbus={"table": "coil", "address": 0, "type": "bool"},
                permissive={"tag": "XV-1", "value": 1})
    ok = Plant.model_validate(plant(valve, start))
    assert ok.tags[1].permissive.tag == "XV-1" and ok.tags[1].permissive.value == 1.0
    assert problems_of(plant(start)) == ["tags.0.permissive.tag: unknown tag 'XV-1'"]
    assert problems_of(plant(valve, {**start, "permissive": {"tag": "HS-1", "value": 1}})) == \
        ["tags.1.permissive.tag: a tag cannot be its own permissive"]
    assert problems_of(plant(valve, {**start, "permissive": {"tag": "XV-1", "value": 2}})) == \
        ["tags.1.permissive.value: 2.0 is outside the instrument range of 'XV-1' (0.0..1.0)"]


def test_modbus_scale_zero_is_refused():
    assert problems_of(plant(tag(modbus={"table": "holding", "address": 0, "scale": 0})))[0] \
        .startswith("tags.0.modbus: scale must be a finite number other than 0")


# ---------------------------------------------------------------------- against devices

PLC = ModbusDevice(id="plc", protocol="modbus")
SCADA = OpcUaDevice(id="scada", protocol="opcua")


def writable_plant() -> Plant:
    both = {"modbus": {"table": "holding", "address": 0, "type": "int16", "scale": 0.1},
            "opcua": {"node_id": "ns=2;s=SP"}}
    return Plant.model_validate(plant(tag(writable=True, **both)))


def test_a_writable_tag_belongs_to_the_device_that_scans_it():
    groups = [ScanGroup(id="g", device="plc", units=["U-1"])]
    assert writability_problems([PLC, SCADA], groups, writable_plant()) == []
    assert write_device_by_tag([PLC, SCADA], groups, writable_plant()) == {"TIC-1.SP": "plc"}


def test_a_writable_tag_nobody_scans_is_a_problem():
    assert writability_problems([PLC], [], writable_plant()) == \
        ["tags.0.writable: 'TIC-1.SP' is not read by any scan group, so no device can write it or read it back"]


def test_a_writable_tag_scanned_by_two_devices_is_a_problem():
    groups = [ScanGroup(id="a", device="plc", units=["U-1"]), ScanGroup(id="b", device="scada", tags=["TIC-1.SP"])]
    found = writability_problems([PLC, SCADA], groups, writable_plant())
    assert found == ["tags.0.writable: 'TIC-1.SP' is read by devices 'plc', 'scada'; "
                     "a writable tag must belong to one device"]
    assert write_device_by_tag([PLC, SCADA], groups, writable_plant()) == {}


def test_the_shipped_plant_has_setpoints_and_pump_commands():
    shipped = load_plant(ROOT / "config" / "plant.toml")
    writable = {t.id: t for t in shipped.tags if t.writable}
    assert set(writable) == {"TIC-101.SP", "FIC-102.SP", "HIC-401.SP", "HS-101", "XV-101", "HS-305"}
    assert writable["HS-101"].permissive.tag == "XV-101"
    assert {t.modbus.table.value for t in writable.values()} == {"holding", "coil"}
