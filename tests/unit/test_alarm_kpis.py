"""Alarm-rate KPIs computed from constructed journals."""

from __future__ import annotations

import json

from analytics.alarm_kpis import alarm_kpis
from analytics.alarm_types import AlarmKind, AlarmState, AlarmTransition, Severity

N, U, A, R = AlarmState.NORMAL, AlarmState.UNACK, AlarmState.ACKED, AlarmState.RTN_UNACK
HOUR = 3600.0
DAY = 86400.0
NOW = 10 * DAY


class Journal:
    """Builds transitions with increasing seq."""

    def __init__(self) -> None:
        self.items: list[AlarmTransition] = []

    def add(self, tag_id: str, time: float, from_state: AlarmState, to_state: AlarmState) -> None:
        seq = len(self.items) + 1
        self.items.append(AlarmTransition(
            seq=seq, alarm_id=f"{tag_id}/PROCESS#{seq}", key=f"{tag_id}/PROCESS", tag_id=tag_id,
            kind=AlarmKind.HI, from_state=from_state, to_state=to_state, severity=Severity.LOW,
            value=1.0, limit=0.0, time=time))

    def occurrence(self, tag_id: str, time: float, duration: float = 30.0) -> None:
        self.add(tag_id, time, N, U)
        self.add(tag_id, time + 5, U, A)
        self.add(tag_id, time + duration, A, N)


def test_empty_journal_gives_zeros():
    kpis = alarm_kpis([], NOW, window_s=DAY)
    assert kpis["activations"] == 0
    assert kpis["per_10min"] == {"average": 0.0, "max": 0}
    assert kpis["flood"]["periods"] == 144 and kpis["flood"]["percent_in_flood"] == 0.0
    assert kpis["standing"] == 0


def test_rates_per_ten_minutes_and_per_hour():
    j = Journal()
    for k in range(12):  # 12 activations in one 10-minute period, one hour ago
        j.occurrence(f"TI-{k:03d}", NOW - HOUR + 10 * k)
    j.occurrence("PI-103", NOW - 3 * HOUR)
    kpis = alarm_kpis(j.items, NOW, window_s=DAY)
    assert kpis["activations"] == 13
    assert kpis["per_10min"]["max"] == 12
    assert kpis["per_10min"]["average"] == round(13 / 144, 3)
    assert kpis["per_hour"] == {"average": round(13 / 24, 3), "max": 12}


def test_ten_minute_period_with_more_than_ten_activations_is_a_flood():
    j = Journal()
    for k in range(11):
        j.occurrence("TI-101", NOW - 2 * HOUR + 50 * k, duration=20)
    for k in range(10):  # exactly ten: not a flood
        j.occurrence("PI-103", NOW - 5 * HOUR + 50 * k, duration=20)
    kpis = alarm_kpis(j.items, NOW, window_s=DAY)
    assert kpis["flood"]["periods_in_flood"] == 1
    assert kpis["flood"]["percent_in_flood"] == round(100 / 144, 2)


def test_three_activations_within_a_minute_is_chattering():
    j = Journal()
    for t in (0, 20, 40):
        j.occurrence("TI-101", NOW - HOUR + t, duration=10)
    for t in (0, 40, 80):  # three within 80 s: not chattering
        j.occurrence("PI-103", NOW - HOUR + t, duration=10)
    kpis = alarm_kpis(j.items, NOW, window_s=DAY)
    assert kpis["chattering"] == {"count": 1, "alarms": ["TI-101/PROCESS"]}


def test_alarm_active_for_more_than_a_day_is_stale():
    j = Journal()
    j.add("TI-101", NOW - 2 * DAY, N, U)
    j.add("TI-101", NOW - 2 * DAY + 60, U, A)
    j.add("PI-103", NOW - HOUR, N, U)
    j.occurrence("FI-102", NOW - 3 * DAY, duration=60)
    kpis = alarm_kpis(j.items, NOW, window_s=DAY)
    assert kpis["stale"] == {"count": 1, "alarms": ["TI-101/PROCESS"]}
    assert kpis["standing"] == 2


def test_returned_unacknowledged_alarm_is_not_standing():
    j = Journal()
    j.add("TI-101", NOW - 60, N, U)
    j.add("TI-101", NOW - 30, U, R)
    assert alarm_kpis(j.items, NOW)["standing"] == 0


def test_top_ten_most_frequent_tags_in_order():
    j = Journal()
    for k in range(12):
        for _ in range(k + 1):
            j.occurrence(f"TAG-{k:02d}", NOW - 20 * HOUR + len(j.items) * 100)
    top = alarm_kpis(j.items, NOW, window_s=DAY)["top_tags"]
    assert len(top) == 10
    assert top[0] == {"tag_id": "TAG-11", "activations": 12}
    assert [t["tag_id"] for t in top][-1] == "TAG-02"


def test_activations_outside_the_window_are_not_counted():
    j = Journal()
    j.occurrence("TI-101", NOW - 2 * DAY)
    j.occurrence("TI-101", NOW - HOUR)
    assert alarm_kpis(j.items, NOW, window_s=DAY)["activations"] == 1


def test_result_is_json_serialisable():
    j = Journal()
    j.occurrence("TI-101", NOW - HOUR)
    json.dumps(alarm_kpis(j.items, NOW), allow_nan=False)
