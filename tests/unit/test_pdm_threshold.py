"""The decision threshold: a precision margin taken from the spread of the CV folds."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.pdm.evaluate import choose_threshold, choose_threshold_cv, fold_precision_bound


def _two_folds(precision_b: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two folds of 10 alarmed rows each (probability 0.9), fold A all true, fold B partly."""
    true_b = int(round(10 * precision_b))
    label = np.array([True] * 10 + [True] * true_b + [False] * (10 - true_b))
    probability = np.full(20, 0.9)
    fold = np.repeat([0, 1], 10)
    return label, probability, fold


def test_equal_folds_give_the_pooled_precision_as_the_bound():
    label, probability, fold = _two_folds(1.0)
    assert fold_precision_bound(label, probability, fold, 0.5) == pytest.approx(1.0)


def test_spread_between_folds_lowers_the_bound_by_its_standard_error():
    label, probability, fold = _two_folds(0.6)
    # Pooled 16/20 = 0.8; fold precisions 1.0 and 0.6: std (ddof 1) 0.283, / sqrt(2) = 0.2.
    assert fold_precision_bound(label, probability, fold, 0.5) == pytest.approx(0.6)


def test_a_threshold_that_only_the_pooled_precision_reaches_is_not_chosen():
    # Fold 0: ten true rows (five at 0.3, five at 0.6). Fold 1: five true rows at 0.6, and at
    # 0.3 one true and four false alarms. At 0.3 the pooled precision is 16/20 = 0.8 but the
    # folds disagree (1.0 vs 0.6, bound 0.6); above 0.3 both folds are exact.
    probability = np.array([0.3] * 5 + [0.6] * 5 + [0.3] * 5 + [0.6] * 5)
    label = np.array([True] * 10 + [True] + [False] * 4 + [True] * 5)
    fold = np.repeat([0, 1], 10)
    assert choose_threshold(label, probability, 0.75) == pytest.approx(0.10)
    assert choose_threshold_cv(label, probability, fold, 0.75) == pytest.approx(0.31)


def test_with_no_feasible_threshold_the_highest_bound_is_chosen():
    label = np.array([False, True, False, True])
    probability = np.array([0.95, 0.2, 0.95, 0.2])
    fold = np.array([0, 0, 1, 1])
    assert 0.1 <= choose_threshold_cv(label, probability, fold, 0.8) <= 0.9
