"""Instrument and device faults act on reported values only, and expire."""

from __future__ import annotations

from pathlib import Path

import pytest

from plant.catalog import Catalog
from plant.load import load_plant
from simulator.faults import BAD_SENSOR_FAILURE, Device, FaultKind, load_schedule

PLANT = Path(__file__).resolve().parents[2] / "config" / "plant.toml"


@pytest.fixture
def model():
    from simulator.model import PlantModel
    m = PlantModel(Catalog.build(load_plant(PLANT)), seed=1)
    m.step(1.0)
    return m


def test_stuck_sensor_freezes_its_value(model):
    frozen = model.value("TI-101")
    model.inject("TI-101", FaultKind.STUCK, 30.0)
    for _ in range(10):
        model.step(1.0)
        assert model.value("TI-101") == frozen


def test_spike_jumps_far_above_normal_but_inside_the_instrument_range(model):
    model.inject("PI-201", FaultKind.SPIKE, 2.0)
    model.step(0.5)
    tag = model.catalog.tag("PI-201")
    assert tag.hh < model.value("PI-201") <= tag.instrument_max


def test_out_of_range_reads_beyond_the_instrument_range(model):
    model.inject("FI-102", FaultKind.OUT_OF_RANGE, 5.0)
    model.step(0.5)
    assert model.value("FI-102") > model.catalog.tag("FI-102").instrument_max


def test_bad_quality_sets_a_bad_opcua_status_on_that_tag_only(model):
    model.inject("AI-400", FaultKind.BAD_QUALITY, 5.0)
    model.step(0.5)
    i = model.catalog.index["AI-400"]
    assert model.status[i] == BAD_SENSOR_FAILURE
    assert model.status.sum() == BAD_SENSOR_FAILURE


def test_faults_expire_after_their_duration(model):
    model.inject("TI-101", FaultKind.OUT_OF_RANGE, 3.0)
    for _ in range(4):
        model.step(1.0)
    tag = model.catalog.tag("TI-101")
    assert tag.instrument_min <= model.value("TI-101") <= tag.instrument_max
    assert model.faults.active(model.time_s) == []


def test_device_silence_lasts_its_duration(model):
    model.silence(Device.MODBUS, 2.0)
    assert model.faults.is_silent(Device.MODBUS, model.time_s)
    assert not model.faults.is_silent(Device.OPCUA, model.time_s)
    model.step(2.5)
    assert not model.faults.is_silent(Device.MODBUS, model.time_s)


def test_schedule_is_read_sorted_by_time(tmp_path):
    path = tmp_path / "faults.toml"
    path.write_text('[[faults]]\nat_s = 50\ndevice = "opcua"\nkind = "silence"\nduration_s = 5\n'
                    '[[faults]]\nat_s = 10\ntag_id = "TI-101"\nkind = "stuck"\n')
    schedule = load_schedule(path)
    assert [f.at_s for f in schedule] == [10, 50]


def test_schedule_error_names_the_field(tmp_path):
    path = tmp_path / "faults.toml"
    path.write_text('[[faults]]\nat_s = 10\nkind = "stuck"\n')
    with pytest.raises(ValueError, match="needs tag_id"):
        load_schedule(path)


def test_bad_quality_status_is_opcua_bad_sensor_failure():
    from asyncua import ua

    assert BAD_SENSOR_FAILURE == ua.StatusCodes.BadSensorFailure
