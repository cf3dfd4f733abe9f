"""Deadband and on/off delays against chattering signals (ISA-18.2 section 10.4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analytics.alarms import AlarmConfig, AlarmEngine, AlarmState
from drivers.batch import Batch
from drivers.quality import Quality
from plant.catalog import Catalog
from plant.load import load_plant
from plant.schema import Plant

CATALOG = Catalog.build(load_plant(Path(__file__).parents[2] / "config" / "plant.toml"))
TI101 = CATALOG.index["TI-101"]  # normal 340-360: default deadband 1 % of 20 = 0.2 degC


def scan(engine: AlarmEngine, value: float, now: float, tag: int = TI101, catalog: Catalog = CATALOG):
    batch = Batch.build("g", "plc-1", now, now, np.array([tag]), np.array([value]),
                        np.array([Quality.GOOD]), np.array([0]))
    return engine.process(batch, now)


def feed(engine: AlarmEngine, values: list[float], start: float = 0.0, step: float = 1.0):
    out = []
    for n, v in enumerate(values):
        out += scan(engine, v, start + n * step)
    return out


def activations(transitions) -> int:
    return sum(t.is_activation for t in transitions)


def test_alarm_clears_only_outside_deadband():
    engine = AlarmEngine(CATALOG, AlarmConfig(off_delay_s=0))
    out = feed(engine, [361.0, 359.9, 359.85, 360.5, 359.81])
    assert [t.to_state for t in out] == [AlarmState.UNACK]
    (cleared,) = scan(engine, 359.79, 10.0)
    assert cleared.to_state == AlarmState.RTN_UNACK


def test_tag_deadband_in_engineering_units_overrides_the_percentage():
    plant = Plant.model_validate({
        "units": [{"id": "U-1", "name": "Unit", "type": "TEST", "capacity_bpd": 1}],
        "tags": [{"id": "TX-1", "name": "Test", "engineering_units": "u", "tag_type": "ANALOG",
                  "normal_min": 0, "normal_max": 100, "deadband": 5.0}]})
    catalog = Catalog.build(plant)
    engine = AlarmEngine(catalog, AlarmConfig(off_delay_s=0))
    out = []
    for n, v in enumerate([101.0, 98.0, 95.5, 94.9]):
        out += scan(engine, v, float(n), tag=0, catalog=catalog)
    assert [t.to_state for t in out] == [AlarmState.UNACK, AlarmState.RTN_UNACK]
    assert out[1].value == 94.9


def test_on_delay_ignores_a_short_excursion():
    engine = AlarmEngine(CATALOG, AlarmConfig(on_delay_s=3))
    assert feed(engine, [365, 365, 365, 350]) == []  # above for 2 s only (t=0..2)


def test_on_delay_raises_once_the_condition_has_held():
    engine = AlarmEngine(CATALOG, AlarmConfig(on_delay_s=3))
    out = feed(engine, [365, 365, 365, 365])
    assert [(t.to_state, t.time) for t in out] == [(AlarmState.UNACK, 3.0)]


def test_on_delay_completes_on_tick_without_a_new_scan():
    engine = AlarmEngine(CATALOG, AlarmConfig(on_delay_s=3))
    assert scan(engine, 365, 0.0) == []
    assert engine.tick(2.9) == []
    (t,) = engine.tick(3.0)
    assert (t.to_state, t.value) == (AlarmState.UNACK, 365.0)


def test_off_delay_keeps_the_alarm_through_a_short_return():
    engine = AlarmEngine(CATALOG, AlarmConfig(off_delay_s=5))
    out = feed(engine, [365, 355, 355, 355, 365, 365])
    assert [t.to_state for t in out] == [AlarmState.UNACK]


def test_off_delay_clears_after_the_value_stays_back():
    engine = AlarmEngine(CATALOG, AlarmConfig(off_delay_s=5))
    out = feed(engine, [365, 355, 355, 355, 355, 355, 355])
    assert [(t.to_state, t.time) for t in out] == [(AlarmState.UNACK, 0.0), (AlarmState.RTN_UNACK, 6.0)]


def test_chattering_signal_raises_one_alarm_with_delays():
    engine = AlarmEngine(CATALOG, AlarmConfig(on_delay_s=0, off_delay_s=5))
    out = feed(engine, [361.0, 355.0] * 30)
    assert activations(out) == 1


def test_chattering_signal_without_delay_or_deadband_chatters():
    engine = AlarmEngine(CATALOG, AlarmConfig(on_delay_s=0, off_delay_s=0, deadband_pct=0))
    out = feed(engine, [361.0, 359.0] * 10)
    assert activations(out) == 10


def test_noise_around_the_limit_inside_the_deadband_raises_one_alarm():
    engine = AlarmEngine(CATALOG, AlarmConfig(on_delay_s=0, off_delay_s=0))
    out = feed(engine, [360.1, 359.9] * 20)
    assert activations(out) == 1
