"""The ISA-18.2 alarm lifecycle, transition by transition (table-driven)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analytics.alarms import AlarmConfig, AlarmEngine, AlarmError, AlarmKind, AlarmState
from drivers.batch import Batch
from drivers.quality import Quality
from plant.catalog import Catalog
from plant.load import load_plant

N, U, A, R = AlarmState.NORMAL, AlarmState.UNACK, AlarmState.ACKED, AlarmState.RTN_UNACK
SH, SU = AlarmState.SHELVED, AlarmState.SUPPRESSED
KEY = "TI-101/PROCESS"  # TI-101: normal 340-360 degC, LL 320, HH 380

CATALOG = Catalog.build(load_plant(Path(__file__).parents[2] / "config" / "plant.toml"))
# No delays and no auto-ack: each step shows the bare state machine.
IMMEDIATE = AlarmConfig(on_delay_s=0, off_delay_s=0, auto_ack_after_s=None)


def scan(engine: AlarmEngine, tag_id: str, value: float, now: float,
         quality: Quality = Quality.GOOD):
    batch = Batch.build("g", "plc-1", now, now, np.array([CATALOG.index[tag_id]]),
                        np.array([value]), np.array([quality]), np.array([0]))
    return engine.process(batch, now)


def run_step(engine: AlarmEngine, step: tuple, now: float):
    action, *args = step
    if action == "value":
        return scan(engine, "TI-101", args[0], now)
    if action == "ack":
        return engine.acknowledge(KEY, "operator1", "seen", now)
    if action == "shelve":
        return engine.shelve(KEY, "operator1", until=now + args[0], now=now)
    if action == "unshelve":
        return engine.unshelve(KEY, "operator1", now)
    if action == "out_of_service":
        return engine.set_out_of_service(KEY, True, "supervisor", now)
    if action == "return_to_service":
        return engine.set_out_of_service(KEY, False, "supervisor", now)
    if action == "tick":
        return engine.tick(now + args[0])
    raise AssertionError(action)


LIFECYCLES = {
    "raise_ack_clear": [
        (("value", 365), [(N, U)]), (("ack",), [(U, A)]), (("value", 350), [(A, N)])],
    "raise_clear_ack": [
        (("value", 365), [(N, U)]), (("value", 350), [(U, R)]), (("ack",), [(R, N)])],
    "return_to_normal_unacked_then_active_again": [
        (("value", 365), [(N, U)]), (("value", 350), [(U, R)]), (("value", 366), [(R, U)])],
    "escalation_to_hihi_reannunciates_an_acked_alarm": [
        (("value", 365), [(N, U)]), (("ack",), [(U, A)]), (("value", 385), [(A, U)])],
    "escalation_of_severity_keeps_state": [
        (("value", 361), [(N, U)]), (("value", 375), [(U, U)])],
    "shelved_alarm_clears_silently": [
        (("value", 365), [(N, U)]), (("shelve", 600), [(U, SH)]), (("value", 350), []),
        (("unshelve",), [(SH, N)])],
    "shelved_alarm_still_active_annunciates_when_unshelved": [
        (("value", 365), [(N, U)]), (("shelve", 600), [(U, SH)]), (("value", 367), []),
        (("unshelve",), [(SH, U)])],
    "shelve_expires_on_tick": [
        (("value", 365), [(N, U)]), (("shelve", 60), [(U, SH)]), (("tick", 30), []),
        (("tick", 61), [(SH, U)])],
    "out_of_service_hides_activation_until_returned": [
        (("out_of_service",), [(N, SU)]), (("value", 365), []), (("value", 370), []),
        (("return_to_service",), [(SU, U)])],
    "out_of_service_cannot_be_shelved": [
        (("out_of_service",), [(N, SU)]), (("shelve", 60), [])],
    "acknowledge_with_nothing_to_acknowledge_does_nothing": [
        (("ack",), []), (("value", 365), [(N, U)]), (("ack",), [(U, A)]), (("ack",), [])],
    "value_inside_limits_raises_nothing": [
        (("value", 340), []), (("value", 360), []), (("value", 350), [])],
}


@pytest.mark.parametrize("steps", LIFECYCLES.values(), ids=LIFECYCLES.keys())
def test_lifecycle(steps):
    engine = AlarmEngine(CATALOG, IMMEDIATE)
    for n, (step, expected) in enumerate(steps):
        got = run_step(engine, step, now=1000.0 + 10 * n)
        assert [(t.from_state, t.to_state) for t in got] == expected, f"step {n}: {step}"


def test_seq_increases_strictly_across_transitions():
    engine = AlarmEngine(CATALOG, IMMEDIATE)
    seqs = []
    for n, v in enumerate([365, 350, 366, 385, 350]):
        seqs += [t.seq for t in scan(engine, "TI-101", v, float(n))]
    seqs += [t.seq for t in engine.acknowledge(KEY, "op", None, 10.0)]
    assert seqs == sorted(set(seqs)) and len(seqs) == 6


def test_new_activation_gets_a_new_alarm_id_and_acknowledge_keeps_it():
    engine = AlarmEngine(CATALOG, IMMEDIATE)
    first = scan(engine, "TI-101", 365, 1.0)[0]
    ack = engine.acknowledge(KEY, "op", None, 2.0)[0]
    scan(engine, "TI-101", 350, 3.0)
    second = scan(engine, "TI-101", 365, 4.0)[0]
    assert ack.alarm_id == first.alarm_id
    assert second.alarm_id != first.alarm_id


def test_acknowledge_by_occurrence_id_records_user_and_comment():
    engine = AlarmEngine(CATALOG, IMMEDIATE)
    raised = scan(engine, "TI-101", 365, 1.0)[0]
    (ack,) = engine.acknowledge(raised.alarm_id, "operator7", "furnace trimmed", 5.0)
    assert (ack.user, ack.comment, ack.automatic, ack.time) == ("operator7", "furnace trimmed", False, 5.0)
    alarm = engine.alarm(KEY)
    assert (alarm.acked_by, alarm.acked_at, alarm.ack_comment) == ("operator7", 5.0, "furnace trimmed")


def test_unknown_alarm_key_is_an_error():
    engine = AlarmEngine(CATALOG, IMMEDIATE)
    with pytest.raises(AlarmError):
        engine.acknowledge("NO-SUCH-TAG/PROCESS", "op", None, 1.0)
    with pytest.raises(AlarmError):
        engine.acknowledge("TI-101/SOMETHING", "op", None, 1.0)


def test_transition_names_kind_limit_value_and_unit():
    engine = AlarmEngine(CATALOG, IMMEDIATE)
    (t,) = scan(engine, "TI-101", 315.0, 1.0)
    assert (t.kind, t.limit, t.value, t.tag_id, t.unit_id) == (AlarmKind.LOLO, 320.0, 315.0, "TI-101", "CDU-101")
    assert "TI-101" in t.message and "below limit 320" in t.message


def test_active_lists_standing_alarms_only():
    engine = AlarmEngine(CATALOG, IMMEDIATE)
    scan(engine, "TI-101", 365, 1.0)
    scan(engine, "PI-103", 26, 2.0)
    scan(engine, "PI-103", 20, 3.0)
    engine.acknowledge("PI-103/PROCESS", "op", None, 4.0)
    assert [a.key for a in engine.active()] == [KEY]


def test_status_tags_have_no_process_alarms():
    engine = AlarmEngine(CATALOG, IMMEDIATE)
    assert scan(engine, "XS-101", 0.0, 1.0) == []
    assert scan(engine, "XS-101", 5.0, 2.0) == []


def test_shelve_expiry_must_be_in_the_future():
    engine = AlarmEngine(CATALOG, IMMEDIATE)
    with pytest.raises(ValueError):
        engine.shelve(KEY, "op", until=5.0, now=10.0)
