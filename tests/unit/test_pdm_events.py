"""Event-level metrics on small hand-built timelines with known answers (hourly rows)."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.pdm.events import (
    Timeline,
    episodes,
    event_metrics,
    failure_lead_h,
    false_episodes,
    healthy_hours,
    meets_event_target,
    standing_warning,
)

H = 3600.0


def _timeline(n_hours: int, warned_hours: list[range], failure_h: float | None) -> Timeline:
    """Rows at t = 0, 1, ..., n_hours - 1 hours; warning on at the hours in ``warned_hours``."""
    warning = np.zeros(n_hours, dtype=bool)
    for r in warned_hours:
        warning[list(r)] = True
    return Timeline(np.arange(n_hours) * H, warning, None if failure_h is None else failure_h * H)


# Failure at 100 h, rows 0..99 h; horizon 30 h, planning lead 24 h.
WARNED_AT_LEAD = _timeline(100, [range(70, 100)], 100)  # standing from 70 h: lead 30 h
WARNED_TOO_LATE = _timeline(100, [range(90, 100)], 100)  # standing from 90 h: lead 10 h
NEVER_WARNED = _timeline(100, [], 100)
# Warned at 80-95 h but quiet at the last rows: no standing warning, lead 0.
WARNING_CLEARED = _timeline(100, [range(80, 95)], 100)
# A healthy machine (no failure) for 730 h with two episodes split by a quiet gap.
HEALTHY_TWO_EPISODES = _timeline(730, [range(100, 105), range(108, 110)], None)


def test_lead_time_is_from_the_start_of_the_standing_warning_to_the_failure():
    assert failure_lead_h(WARNED_AT_LEAD) == pytest.approx(30.0)
    assert failure_lead_h(WARNED_TOO_LATE) == pytest.approx(10.0)
    assert failure_lead_h(NEVER_WARNED) == 0.0
    assert failure_lead_h(WARNING_CLEARED) == 0.0
    assert failure_lead_h(HEALTHY_TWO_EPISODES) is None


def test_a_warning_interrupted_before_the_failure_only_counts_from_its_last_start():
    # Warned 50-59 h and 80-99 h: the standing warning starts at 80 h (lead 20 h).
    assert failure_lead_h(_timeline(100, [range(50, 60), range(80, 100)], 100)) == pytest.approx(20.0)


def test_rows_at_or_after_the_failure_are_ignored():
    # Rows to 109 h, failure at 100 h; the warning starts only at the failure row itself.
    late = _timeline(110, [range(100, 110)], 100)
    assert failure_lead_h(late) == 0.0 and episodes(late) == []


def test_two_episodes_split_by_a_gap_are_two_false_episodes_on_a_healthy_machine():
    assert episodes(HEALTHY_TWO_EPISODES) == [(100 * H, 104 * H), (108 * H, 109 * H)]
    assert false_episodes(HEALTHY_TWO_EPISODES, 30.0) == 2


def test_an_episode_is_false_only_when_the_machine_does_not_fail_within_the_horizon():
    # Failure at 100 h, horizon 30 h: an episode ending at 65 h is false (35 h before the
    # failure), one ending at 75 h is not (25 h), nor is the standing warning.
    tl = _timeline(100, [range(60, 66), range(72, 76), range(90, 100)], 100)
    assert false_episodes(tl, 30.0) == 1
    assert false_episodes(WARNED_AT_LEAD, 30.0) == 0


def test_healthy_time_leaves_out_the_horizon_before_a_failure():
    # Rows 0..69 h are more than 30 h before the failure at 100 h: 70 rows of 1 h.
    assert healthy_hours(NEVER_WARNED, 30.0) == pytest.approx(70.0)
    assert healthy_hours(HEALTHY_TWO_EPISODES, 30.0) == pytest.approx(730.0)


def test_event_metrics_count_failures_leads_and_false_episodes_per_machine_month():
    timelines = [WARNED_AT_LEAD, WARNED_TOO_LATE, NEVER_WARNED, WARNING_CLEARED, HEALTHY_TWO_EPISODES]
    m = event_metrics(timelines, planning_lead_h=24.0, horizon_h=30.0)
    assert m["failures"] == 4 and m["warned_at_lead"] == 1
    assert m["warned_share"] == pytest.approx(0.25)
    # Leads 30, 10, 0, 0: median 5, min 0, max 30; p10 (linear) 0.
    assert m["lead_time_h"] == {"median": 5.0, "p10": 0.0, "min": 0.0, "max": 30.0}
    # False: the two healthy-machine episodes; WARNING_CLEARED ends at 94 h, within 30 h of its
    # failure, so it is a missed warning, not a false alarm.
    assert m["false_episodes"] == 2
    # Healthy: 70 h of each of the four failure timelines + 730 h = 1010 h = 1.384 months.
    assert m["healthy_hours"] == pytest.approx(1010.0)
    assert m["healthy_machine_months"] == pytest.approx(1010.0 / 730.0)
    assert m["false_per_machine_month"] == pytest.approx(2 / (1010.0 / 730.0))
    assert not meets_event_target(m)


def test_the_target_needs_both_the_warned_share_and_the_false_alarm_rate():
    good = [WARNED_AT_LEAD] * 19 + [WARNED_TOO_LATE] + [_timeline(730, [], None)] * 2
    m = event_metrics(good, 24.0, 30.0)
    assert m["warned_share"] == pytest.approx(0.95) and m["false_episodes"] == 0
    assert meets_event_target(m)
    noisy = good + [_timeline(730, [range(10, 12)] * 1 + [range(50, 51), range(90, 91)], None)]
    m = event_metrics(noisy, 24.0, 30.0)
    # 3 false episodes in 20 * 70 + 3 * 730 h = 3590 h = 4.92 months: 0.61 per month.
    assert m["false_per_machine_month"] == pytest.approx(3 / (3590.0 / 730.0))
    assert not meets_event_target(m)
    assert not meets_event_target(event_metrics([HEALTHY_TWO_EPISODES], 24.0, 30.0))  # no failures


def test_standing_warning_needs_the_alarm_to_hold_and_to_stay_quiet():
    t = np.arange(12) * H
    alarm = np.array([1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0], dtype=bool)
    assert standing_warning(alarm, t).tolist() == alarm.tolist()
    # On after 3 h of alarm (the third alarmed row in a row), off after 2 h of quiet.
    assert standing_warning(alarm, t, on_h=3.0, off_h=2.0).astype(int).tolist() == \
        [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0]
    # Off at once: the one quiet row at 5 h clears it, and it takes 3 h again to come back.
    assert standing_warning(alarm, t, on_h=3.0).astype(int).tolist() == \
        [0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0]


def test_a_timeline_refuses_mismatched_or_unordered_rows():
    with pytest.raises(ValueError, match="same length"):
        Timeline(np.arange(3.0), np.zeros(2, bool), None)
    with pytest.raises(ValueError, match="increasing"):
        Timeline(np.array([0.0, 2.0, 1.0]), np.zeros(3, bool), None)
    with pytest.raises(ValueError, match="failure_time_s"):
        Timeline(np.arange(3.0), np.zeros(3, bool), float("inf"))
