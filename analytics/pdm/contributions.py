"""Per-prediction feature contributions of a tree ensemble, by decomposing decision paths.

For one tree, the predicted probability of a row is the root's value (the training base rate)
plus, along the row's path, the change in node value at each split; each change is credited
to the feature the parent split on. Averaged over the forest this gives, exactly,

    predict_proba(row)[positive] = bias + sum(contributions)

(the decomposition popularised as "treeinterpreter"; for a forest it equals the sum over
trees of path value changes / n_trees). Computed from sklearn's ``tree_`` arrays with a
sparse decision-path product, so no ``shap`` dependency and no Python loop over rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.ensemble import RandomForestClassifier


@dataclass(frozen=True)
class Decomposition:
    """bias (rows,) + contributions (rows, features) sum to the positive-class probability."""

    bias: np.ndarray
    contributions: np.ndarray


def _node_values(tree, positive: int) -> np.ndarray:
    """Positive-class fraction at each node (works whether sklearn stores counts or fractions)."""
    value = tree.value[:, 0, :]
    total = value.sum(axis=1)
    return value[:, positive] / np.where(total > 0, total, 1.0)


def _tree_delta(tree, positive: int, n_features: int) -> tuple[float, sparse.csr_matrix]:
    """Root value and a (nodes, features) matrix: each node's value change, at its parent's feature."""
    values = _node_values(tree, positive)
    parent = np.full(tree.node_count, -1)
    internal = np.flatnonzero(tree.children_left >= 0)
    parent[tree.children_left[internal]] = internal
    parent[tree.children_right[internal]] = internal
    child = np.flatnonzero(parent >= 0)
    delta = values[child] - values[parent[child]]
    feature = tree.feature[parent[child]]
    matrix = sparse.csr_matrix((delta, (child, feature)), shape=(tree.node_count, n_features))
    return float(values[0]), matrix


def decompose(forest: RandomForestClassifier, rows: np.ndarray) -> Decomposition:
    """Bias and per-feature contributions to P(positive class) for each row."""
    rows = np.atleast_2d(np.asarray(rows, dtype=np.float32))
    positive = int(np.flatnonzero(forest.classes_ == 1)[0]) if 1 in forest.classes_ else len(forest.classes_) - 1
    n_features = rows.shape[1]
    contributions = np.zeros((rows.shape[0], n_features))
    bias = 0.0
    for estimator in forest.estimators_:
        tree = estimator.tree_
        root, delta = _tree_delta(tree, positive, n_features)
        path = tree.decision_path(rows)
        contributions += (path @ delta).toarray()
        bias += root
    n = len(forest.estimators_)
    return Decomposition(bias=np.full(rows.shape[0], bias / n), contributions=contributions / n)
