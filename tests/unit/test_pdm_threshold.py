"""The decision threshold: the operating point deepest inside both targets, with margins taken
from the spread of the CV folds."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.pdm.dataset import Rows
from analytics.pdm.evaluate import choose_threshold_cv, evaluate, fold_bounds, run_standard_error


def _two_folds(precision_b: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two folds of 10 alarmed rows each (probability 0.9), fold A all true, fold B partly."""
    true_b = int(round(10 * precision_b))
    label = np.array([True] * 10 + [True] * true_b + [False] * (10 - true_b))
    probability = np.full(20, 0.9)
    fold = np.repeat([0, 1], 10)
    return label, probability, fold


def test_equal_folds_give_the_pooled_figures_as_the_bounds():
    label, probability, fold = _two_folds(1.0)
    assert fold_bounds(label, probability, fold, 0.5) == pytest.approx((1.0, 1.0))


def test_spread_between_folds_lowers_the_bound_by_its_standard_error():
    label, probability, fold = _two_folds(0.6)
    # Pooled precision 16/20 = 0.8; fold precisions 1.0 and 0.6: std (ddof 1) 0.283, / sqrt(2)
    # = 0.2. Every true row is alarmed in both folds: recall 1.0 with no spread.
    assert fold_bounds(label, probability, fold, 0.5) == pytest.approx((0.6, 1.0))


def _ladder() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two identical folds. Per fold: 10 failing rows at 0.95, 0.85, ..., 0.05 and 10 healthy
    rows at 0.45, 0.35, 0.25, 0.15, 0.05 (two each)."""
    true_p = np.round(np.arange(0.95, 0.0, -0.1), 2)
    false_p = np.repeat(np.round(np.arange(0.45, 0.0, -0.1), 2), 2)
    one = (np.r_[np.ones(10, bool), np.zeros(10, bool)], np.r_[true_p, false_p])
    label = np.r_[one[0], one[0]]
    probability = np.r_[one[1], one[1]]
    return label, probability, np.repeat([0, 1], 20)


def test_the_threshold_balances_the_two_margins():
    label, probability, fold = _ladder()
    # Thresholds 0.36-0.45 alarm the rows >= 0.45: 6 true + 2 false → precision 0.75, recall 0.6;
    # 0.26-0.35: 7 + 4 → 0.64 / 0.7; 0.16-0.25: 8 + 6 → 0.57 / 0.8; 0.06-0.15: 9 + 8 → 0.53 / 0.9.
    # Targets 0.5 / 0.6: smaller margins 0.0, 0.1, 0.07, 0.03 → the 0.26-0.35 band wins, and
    # its lowest threshold is 0.26.
    threshold, margin = choose_threshold_cv(label, probability, fold, 0.5, 0.6)
    assert threshold == pytest.approx(0.26)
    assert margin == pytest.approx(min(7 / 11 - 0.5, 0.7 - 0.6))


def test_a_recall_target_out_of_reach_gives_a_negative_margin():
    label, probability, fold = _ladder()
    threshold, margin = choose_threshold_cv(label, probability, fold, 0.9, 0.9)
    assert margin < 0
    assert 0.1 <= threshold <= 0.9


def test_disagreeing_folds_move_the_threshold_to_where_they_agree():
    # Fold 0: ten true rows (five at 0.3, five at 0.6). Fold 1: five true rows at 0.6, and at
    # 0.3 one true and four false alarms. At 0.3 the pooled precision is 16/20 = 0.8 but the
    # folds disagree (1.0 vs 0.6, bound 0.6); above 0.3 precision is exact and recall 10/16.
    probability = np.array([0.3] * 5 + [0.6] * 5 + [0.3] * 5 + [0.6] * 5)
    label = np.array([True] * 10 + [True] + [False] * 4 + [True] * 5)
    fold = np.repeat([0, 1], 10)
    threshold, _ = choose_threshold_cv(label, probability, fold, 0.75, 0.5)
    assert threshold == pytest.approx(0.31)


def test_run_standard_error_matches_a_hand_computation():
    # Two runs alarmed 4 rows each, 2 and 0 of them true: pooled precision 2/8 = 0.25;
    # residuals 2 - 0.25 * 4 = 1 and -1; SE = sqrt(2 / 1 * (1 + 1)) / 8 = 0.25.
    assert run_standard_error(np.array([2, 0]), np.array([4, 4])) == pytest.approx(0.25)
    # Runs that agree give no error; one run or nothing alarmed gives none at all.
    assert run_standard_error(np.array([1, 2, 3]), np.array([2, 4, 6])) == pytest.approx(0.0)
    assert run_standard_error(np.array([1]), np.array([2])) is None
    assert run_standard_error(np.array([0, 0]), np.array([0, 0])) is None


def test_held_out_metrics_carry_their_standard_errors_over_runs():
    # Run 7: 4 rows, all failing, all alarmed. Run 9: 4 rows, 2 failing, all alarmed.
    label = np.array([True] * 4 + [True, True, False, False])
    rows = Rows(features=np.zeros((8, 1)), label=label, hours_to_failure=np.arange(8, 0, -1.0),
                healthy=np.zeros(8, bool), time_s=np.arange(8.0), run_id=np.repeat([7, 9], 4))
    metrics = evaluate(rows, np.full(8, 0.9), 0.5)
    # Precision 6/8 = 0.75: residuals 4 - 3 = 1 and 2 - 3 = -1, SE = sqrt(2 * 2) / 8 = 0.25.
    assert metrics["precision"] == pytest.approx(0.75)
    assert metrics["precision_se"] == pytest.approx(0.25)
    # Every failing row alarmed in both runs: recall 1.0 with no spread.
    assert metrics["recall"] == pytest.approx(1.0) and metrics["recall_se"] == pytest.approx(0.0)


def _run(run_id: int, probability: np.ndarray, failure_h: float | None) -> Rows:
    """Hourly rows of one run (t = 0, 1, ... h) with the given probabilities."""
    t = np.arange(len(probability)) * 3600.0
    htf = (np.full(len(t), np.inf) if failure_h is None else failure_h - t / 3600.0)
    return Rows(features=np.zeros((len(t), 1)), label=htf <= 30.0, hours_to_failure=htf,
                healthy=np.isinf(htf), time_s=t, run_id=np.full(len(t), run_id, dtype=np.int64))


def test_the_warning_rule_is_chosen_for_the_event_targets():
    from analytics.pdm.evaluate import WarningRule, choose_warning_cv, timelines_of
    from analytics.pdm.events import event_metrics
    # Run 1 fails at 100 h and reads 0.9 from 60 h; run 2 fails at 100 h and reads 0.5 from
    # 70 h; run 3 is a healthy machine-month reading 0.05 with three one-hour spikes to 0.7.
    p1, p2, p3 = np.full(100, 0.05), np.full(100, 0.05), np.full(730, 0.05)
    p1[60:], p2[70:], p3[[100, 200, 300]] = 0.9, 0.5, 0.7
    rows = Rows.concat([_run(1, p1, 100.0), _run(2, p2, 100.0), _run(3, p3, None)])
    probability = np.r_[p1, p2, p3]
    rule, margin, metrics = choose_warning_cv(rows, probability, planning_lead_h=24.0, horizon_h=30.0)
    # Only thresholds up to 0.5 warn run 2; at those the spikes are three false episodes unless
    # the warning waits for the alarm to hold: 3 h is the shortest delay that leaves no false
    # episode (leads 38 h and 28 h, both >= 24 h). Every threshold 0.10-0.50 ties: the middle, 0.30.
    assert rule == WarningRule(threshold=0.30, on_h=3.0, off_h=0.0)
    assert margin == pytest.approx(1.0)
    assert metrics["warned_share"] == 1.0 and metrics["false_episodes"] == 0
    assert metrics["lead_time_h"]["min"] == pytest.approx(28.0)
    # The same figures from the timelines of the chosen rule.
    again = event_metrics(timelines_of(rows, probability, rule), 24.0, 30.0)
    assert again == {k: v for k, v in metrics.items() if k != "lead_lower_bound_h"}
    # Two failures are too few for a bound on the lead tail.
    assert metrics["lead_lower_bound_h"] is None
    # Without the on-delay, the spikes are 3 false episodes in 870 healthy hours.
    bare = event_metrics(timelines_of(rows, probability, WarningRule(0.30)), 24.0, 30.0)
    assert bare["false_episodes"] == 3 and bare["healthy_hours"] == pytest.approx(870.0)


def test_lead_lower_bound_matches_a_hand_computation():
    from statistics import NormalDist

    from analytics.pdm.evaluate import lead_lower_bound_h
    # Leads 30, 40, 50 h: mean 40, sd 10. The 5 % quantile 40 - 1.645 * 10 = 23.55 h, its
    # standard error 10 * sqrt(1/3 + 1.645^2 / 4) = 10.05 h, the 95 % bound 1.645 of it below.
    z = NormalDist().inv_cdf(0.95)
    expected = 40.0 - z * 10.0 - z * 10.0 * np.sqrt(1 / 3 + z ** 2 / 4)
    assert lead_lower_bound_h([30.0, 40.0, 50.0]) == pytest.approx(expected)
    assert lead_lower_bound_h([30.0, 40.0, 50.0]) == pytest.approx(7.02, abs=0.01)
    # Leads that spread more have a lower bound; identical leads have the lead itself.
    assert lead_lower_bound_h([20.0, 40.0, 60.0]) < lead_lower_bound_h([30.0, 40.0, 50.0])
    assert lead_lower_bound_h([36.0, 36.0, 36.0]) == pytest.approx(36.0)
    assert lead_lower_bound_h([30.0, 40.0]) is None


def _stepped_failures() -> tuple[Rows, np.ndarray]:
    """Five runs failing at 100 h whose probability steps 0.02 -> 0.3 -> 0.6 -> 0.9 with leads
    a + 30, a + 20 and a hours (a = 24, 30, 36, 42, 48), and a healthy machine-month at 0.02
    with one row at 0.2."""
    runs, probabilities = [], []
    for k, a in enumerate((24, 30, 36, 42, 48)):
        p = np.full(100, 0.02)
        p[100 - a - 30:], p[100 - a - 20:], p[100 - a:] = 0.3, 0.6, 0.9
        runs.append(_run(k + 1, p, 100.0))
        probabilities.append(p)
    healthy = np.full(730, 0.02)
    healthy[300] = 0.2
    runs.append(_run(9, healthy, None))
    probabilities.append(healthy)
    return Rows.concat(runs), np.concatenate(probabilities)


def test_within_the_tied_band_the_rule_keeps_room_in_the_lead_tail():
    from analytics.pdm.evaluate import WarningRule, choose_warning_cv, lead_lower_bound_h
    rows, probability = _stepped_failures()
    thresholds = tuple(np.round(np.arange(0.1, 0.91, 0.1), 2))
    rule, margin, metrics = choose_warning_cv(rows, probability, planning_lead_h=24.0, horizon_h=30.0,
                                              thresholds=thresholds, on_delays_h=(0.0,),
                                              off_delays_h=(0.0,))
    # Thresholds 0.1-0.2 raise a false episode on the healthy machine (1 in 1,080 healthy hours:
    # 0.68 a machine-month, over 0.5). 0.3-0.9 warn all five failures at 24 h with no false
    # alarm: one tied band, whose middle (0.6) the count alone would pick. But from 0.7 up the
    # leads are 24-48 h, and their 5 % quantile's 95 % bound is below the planning lead (the
    # shortest lead sits exactly on it); at 0.4-0.6 (leads 44-68 h) and 0.3 (54-78 h) the bound
    # is 29 h and 39 h. The middle of 0.3-0.6 is 0.4.
    assert lead_lower_bound_h([24.0, 30.0, 36.0, 42.0, 48.0]) < 24.0
    assert lead_lower_bound_h([44.0, 50.0, 56.0, 62.0, 68.0]) == pytest.approx(28.95, abs=0.01)
    assert rule == WarningRule(threshold=0.4)
    assert margin == pytest.approx(1.0)
    assert metrics["warned_at_lead"] == 5 and metrics["false_episodes"] == 0
    assert metrics["lead_time_h"]["min"] == pytest.approx(44.0)
    assert metrics["lead_lower_bound_h"] == pytest.approx(28.95, abs=0.01)


def test_a_band_without_room_in_the_lead_tail_keeps_its_middle():
    from analytics.pdm.evaluate import WarningRule, choose_warning_cv
    rows, probability = _stepped_failures()
    # Only 0.7-0.9 offered: all tie (five warned at 24 h, no false alarm) and none has a bound
    # at the lead, so the bound gives no direction: the middle, 0.8.
    rule, _, metrics = choose_warning_cv(rows, probability, planning_lead_h=24.0, horizon_h=30.0,
                                         thresholds=(0.7, 0.8, 0.9), on_delays_h=(0.0,), off_delays_h=(0.0,))
    assert rule == WarningRule(threshold=0.8)
    assert metrics["warned_at_lead"] == 5 and metrics["lead_lower_bound_h"] < 24.0
