"""Bad quality holds process alarms and raises its own; devices raise COMM_LOSS."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analytics.alarms import AlarmConfig, AlarmEngine, AlarmKind, AlarmState
from drivers.batch import Batch
from drivers.quality import Quality, Reason
from plant.catalog import Catalog
from plant.load import load_plant

CATALOG = Catalog.build(load_plant(Path(__file__).parents[2] / "config" / "plant.toml"))
CONFIG = AlarmConfig(on_delay_s=0, off_delay_s=0, bad_quality_delay_s=10, comm_loss_delay_s=5,
                     auto_ack_after_s=None)


def scan(engine: AlarmEngine, value: float, now: float, quality: Quality = Quality.GOOD,
         tag_id: str = "TI-101", device: str = "plc-1"):
    reason = Reason.NONE if quality == Quality.GOOD else Reason.TIMEOUT
    batch = Batch.build("g", device, now, now, np.array([CATALOG.index[tag_id]]),
                        np.array([value]), np.array([quality]), np.array([reason]))
    return engine.process(batch, now)


def test_bad_quality_never_raises_a_process_alarm():
    engine = AlarmEngine(CATALOG, CONFIG)
    assert scan(engine, 400.0, 0.0, Quality.BAD) == []
    assert engine.alarm("TI-101/PROCESS") is None


def test_bad_quality_never_clears_a_process_alarm():
    engine = AlarmEngine(CATALOG, CONFIG)
    scan(engine, 365.0, 0.0)
    scan(engine, 350.0, 1.0, Quality.BAD)
    engine.tick(100.0)
    assert engine.alarm("TI-101/PROCESS").state == AlarmState.UNACK


def test_bad_quality_alarm_is_raised_after_its_delay():
    engine = AlarmEngine(CATALOG, CONFIG)
    assert scan(engine, np.nan, 0.0, Quality.BAD) == []
    assert scan(engine, np.nan, 9.0, Quality.BAD) == []
    (t,) = scan(engine, np.nan, 10.0, Quality.BAD)
    assert (t.kind, t.to_state, t.key) == (AlarmKind.BAD_QUALITY, AlarmState.UNACK, "TI-101/BAD_QUALITY")


def test_bad_quality_alarm_is_raised_by_tick_when_no_scan_arrives():
    engine = AlarmEngine(CATALOG, CONFIG)
    scan(engine, np.nan, 0.0, Quality.BAD)
    (t,) = engine.tick(10.0)
    assert t.kind == AlarmKind.BAD_QUALITY


def test_short_bad_quality_raises_nothing():
    engine = AlarmEngine(CATALOG, CONFIG)
    scan(engine, np.nan, 0.0, Quality.BAD)
    scan(engine, 350.0, 5.0)
    assert engine.tick(20.0) == []


def test_bad_quality_alarm_clears_when_good_returns():
    engine = AlarmEngine(CATALOG, CONFIG)
    scan(engine, np.nan, 0.0, Quality.BAD)
    engine.tick(10.0)
    (t,) = scan(engine, 350.0, 11.0)
    assert (t.kind, t.to_state) == (AlarmKind.BAD_QUALITY, AlarmState.RTN_UNACK)


def test_doubtful_values_are_evaluated_and_flagged():
    engine = AlarmEngine(CATALOG, CONFIG)
    (t,) = scan(engine, 365.0, 0.0, Quality.DOUBTFUL)
    assert (t.to_state, t.doubtful) == (AlarmState.UNACK, True)
    assert engine.alarm("TI-101/BAD_QUALITY") is None


def test_comm_loss_is_raised_after_its_delay_and_cleared_on_reconnect():
    engine = AlarmEngine(CATALOG, CONFIG)
    assert engine.device_status("plc-1", False, 0.0) == []
    (raised,) = engine.tick(5.0)
    assert (raised.kind, raised.key, raised.tag_id) == (AlarmKind.COMM_LOSS, "plc-1/COMM_LOSS", "plc-1")
    (cleared,) = engine.device_status("plc-1", True, 8.0)
    assert cleared.to_state == AlarmState.RTN_UNACK


def test_short_comm_loss_raises_nothing():
    engine = AlarmEngine(CATALOG, CONFIG)
    engine.device_status("plc-1", False, 0.0)
    engine.device_status("plc-1", True, 2.0)
    assert engine.tick(10.0) == []


def test_comm_loss_suppresses_bad_quality_alarms_of_the_device():
    engine = AlarmEngine(CATALOG, CONFIG)
    engine.device_status("plc-1", False, 0.0)
    for now in (1.0, 6.0, 12.0, 30.0):
        scan(engine, np.nan, now, Quality.BAD)
    engine.tick(40.0)
    assert [a.kind for a in engine.active()] == [AlarmKind.COMM_LOSS]


def test_bad_quality_alarms_are_raised_when_suppression_is_off():
    engine = AlarmEngine(CATALOG, CONFIG.model_copy(update={"comm_loss_suppresses_bad_quality": False}))
    engine.device_status("plc-1", False, 0.0)
    scan(engine, np.nan, 1.0, Quality.BAD)
    engine.tick(20.0)
    assert sorted(a.kind.value for a in engine.active()) == ["BAD_QUALITY", "COMM_LOSS"]


def test_whole_batch_of_quiet_tags_raises_nothing():
    engine = AlarmEngine(CATALOG, CONFIG)
    idx = np.arange(len(CATALOG))
    mid = (CATALOG.normal_min + CATALOG.normal_max) / 2
    batch = Batch.build("g", "plc-1", 0, 0, idx, mid, np.full(len(idx), Quality.GOOD),
                        np.zeros(len(idx)))
    assert engine.process(batch, 0.0) == []
    assert engine.tick(1000.0) == []
