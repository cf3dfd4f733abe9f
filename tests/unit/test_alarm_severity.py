"""Severity from the deviation beyond the violated limit, as % of the normal span (seed bands)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analytics.alarm_limits import LimitColumns, evaluate, severity_rank
from analytics.alarms import AlarmConfig, AlarmEngine, Severity
from drivers.batch import Batch
from drivers.quality import Quality
from plant.catalog import Catalog
from plant.load import load_plant
from plant.schema import Plant

CATALOG = Catalog.build(load_plant(Path(__file__).parents[2] / "config" / "plant.toml"))
IMMEDIATE = AlarmConfig(on_delay_s=0, off_delay_s=0, auto_ack_after_s=None)


def raise_with(value: float, tag_id: str = "TI-101", config: AlarmConfig = IMMEDIATE):
    engine = AlarmEngine(CATALOG, config)
    batch = Batch.build("g", "plc-1", 0, 0, np.array([CATALOG.index[tag_id]]), np.array([value]),
                        np.array([Quality.GOOD]), np.array([0]))
    return engine.process(batch, 0.0)


# TI-101: normal 340-360 (span 20), LL 320, HH 380. 1 % of span = 0.2 degC.
@pytest.mark.parametrize(("value", "severity"), [
    (360.2, Severity.LOW),      # 1 %
    (362.98, Severity.LOW),     # 14.9 %
    (363.0, Severity.MEDIUM),   # 15 % exactly: the MEDIUM band starts here
    (366.0, Severity.MEDIUM),   # 30 % exactly: still MEDIUM ("15-30 %")
    (366.02, Severity.HIGH),    # 30.1 %
    (337.0, Severity.MEDIUM),   # 15 % below L
    (334.0, Severity.MEDIUM),   # 30 % below L
    (333.9, Severity.HIGH),     # 30.5 % below L
])
def test_severity_band_edges(value, severity):
    (t,) = raise_with(value)
    assert t.severity == severity


def test_hihi_violation_is_at_least_high_even_when_just_beyond_hh():
    # HH just 1 % of span above H: the deviation alone would be LOW.
    plant = _plant(normal=(0, 100), hh=101)
    engine = AlarmEngine(Catalog.build(plant), IMMEDIATE)
    (t,) = engine.process(_batch(0, 101.5), 0.0)
    assert (t.kind.value, t.severity) == ("HIHI", Severity.HIGH)


def test_lolo_violation_is_high():
    (t,) = raise_with(319.0)
    assert (t.kind.value, t.severity) == ("LOLO", Severity.HIGH)


def test_bands_come_from_the_config():
    config = IMMEDIATE.model_copy(update={"medium_from_pct": 5.0, "high_above_pct": 10.0})
    assert raise_with(361.0, config=config)[0].severity == Severity.MEDIUM
    assert raise_with(362.1, config=config)[0].severity == Severity.HIGH


def test_bands_out_of_order_are_a_config_error():
    with pytest.raises(ValueError, match="medium_from_pct"):
        AlarmConfig(medium_from_pct=40, high_above_pct=30)


def test_zero_span_tag_is_rated_against_its_limit_magnitude():
    catalog = Catalog.build(_plant(normal=(50, 50)))
    limits = LimitColumns.from_catalog(catalog, IMMEDIATE)
    tags = np.array([0, 0])
    values = np.array([55.0, 70.0])  # 10 % and 40 % of |50|
    raw = evaluate(limits, tags, values, np.zeros(2, dtype=np.int8))
    rank = severity_rank(limits, tags, values, raw, IMMEDIATE)
    assert rank.tolist() == [1, 3]


def test_severity_escalates_while_active_and_never_drops():
    engine = AlarmEngine(CATALOG, IMMEDIATE)
    out = []
    for n, v in enumerate([361.0, 364.0, 361.0, 370.0]):
        out += engine.process(_batch(CATALOG.index["TI-101"], v), float(n))
    assert [t.severity for t in out] == [Severity.LOW, Severity.MEDIUM, Severity.HIGH]
    assert all(t.alarm_id == out[0].alarm_id for t in out)


def _batch(tag: int, value: float) -> Batch:
    return Batch.build("g", "plc-1", 0, 0, np.array([tag]), np.array([value]),
                       np.array([Quality.GOOD]), np.array([0]))


def _plant(normal: tuple[float, float], hh: float | None = None, deadband: float | None = None) -> Plant:
    return Plant.model_validate({
        "units": [{"id": "U-1", "name": "Unit", "type": "TEST", "capacity_bpd": 1}],
        "tags": [{"id": "TX-1", "name": "Test", "unit_id": "U-1", "engineering_units": "u",
                  "tag_type": "ANALOG", "normal_min": normal[0], "normal_max": normal[1],
                  "hh": hh, "deadband": deadband}]})
