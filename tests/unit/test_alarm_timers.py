"""Auto-acknowledge (the seed's 30-minute rule) and shelving expiry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analytics.alarm_types import AUTO_ACK_USER
from analytics.alarms import AlarmConfig, AlarmEngine, AlarmState
from drivers.batch import Batch
from drivers.quality import Quality
from plant.catalog import Catalog
from plant.load import load_plant

CATALOG = Catalog.build(load_plant(Path(__file__).parents[2] / "config" / "plant.toml"))
KEY = "TI-101/PROCESS"


def scan(engine: AlarmEngine, value: float, now: float):
    batch = Batch.build("g", "plc-1", now, now, np.array([CATALOG.index["TI-101"]]),
                        np.array([value]), np.array([Quality.GOOD]), np.array([0]))
    return engine.process(batch, now)


def test_auto_acknowledge_after_thirty_minutes_by_default():
    engine = AlarmEngine(CATALOG, AlarmConfig(off_delay_s=0))
    scan(engine, 365.0, 0.0)
    assert engine.tick(1799.0) == []
    (t,) = engine.tick(1800.0)
    assert (t.from_state, t.to_state, t.user, t.automatic) == (
        AlarmState.UNACK, AlarmState.ACKED, AUTO_ACK_USER, True)
    assert engine.alarm(KEY).automatic_ack


def test_auto_acknowledge_of_a_returned_alarm_ends_it():
    engine = AlarmEngine(CATALOG, AlarmConfig(off_delay_s=0))
    scan(engine, 365.0, 0.0)
    scan(engine, 350.0, 60.0)
    (t,) = engine.tick(1800.0)
    assert (t.from_state, t.to_state) == (AlarmState.RTN_UNACK, AlarmState.NORMAL)
    assert engine.active() == []


def test_auto_acknowledge_can_be_turned_off():
    engine = AlarmEngine(CATALOG, AlarmConfig(auto_ack_after_s=None))
    scan(engine, 365.0, 0.0)
    assert engine.tick(10 * 86400.0) == []
    assert engine.alarm(KEY).state == AlarmState.UNACK


def test_operator_acknowledged_alarm_is_not_auto_acknowledged():
    engine = AlarmEngine(CATALOG, AlarmConfig(auto_ack_after_s=60))
    scan(engine, 365.0, 0.0)
    engine.acknowledge(KEY, "op", None, 10.0)
    assert engine.tick(120.0) == []


def test_shelved_alarm_returns_when_its_shelve_expires():
    engine = AlarmEngine(CATALOG, AlarmConfig(auto_ack_after_s=None))
    scan(engine, 365.0, 0.0)
    engine.shelve(KEY, "op", until=600.0, now=10.0)
    assert engine.tick(599.0) == []
    (t,) = engine.tick(600.0)
    assert (t.from_state, t.to_state, t.automatic) == (AlarmState.SHELVED, AlarmState.UNACK, True)


def test_shelved_normal_alarm_returns_to_normal_on_expiry():
    engine = AlarmEngine(CATALOG, AlarmConfig(auto_ack_after_s=None))
    engine.shelve(KEY, "op", until=60.0, now=0.0)
    scan(engine, 365.0, 10.0)
    scan(engine, 350.0, 20.0)
    engine.tick(30.0)
    (t,) = engine.tick(60.0)
    assert t.to_state == AlarmState.NORMAL
