"""Run-to-failure histories as training rows, the train/test split of runs, and the CV folds.

A history is one machine from healthy to failure (the simulator's
:func:`simulator.training.run_to_failure` produces them; this module only needs its fields).
Rows are split **by run**: every row of a run lands in the same split, so the model is never
evaluated on a machine life it has seen. Runs are dealt machine by machine, so every machine of a
type (the plant has two pumps) has its share of runs in each split and each fold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np

from analytics.pdm.features import SECONDS_PER_HOUR, Scaling, fails_within, feature_matrix
from analytics.pdm.signals import model_signals
from plant.schema import EquipmentType, Plant

# Rows with less history than this are not used (the windows would hold a few samples, and
# live inference refuses to predict on as little history: see analytics.pdm.predict).
MIN_HISTORY_H = 6.0
# Runs are dealt round-robin: position 0 of every 2 → test, the other → train. Half are held
# out because a smaller test set moves precision as much as the room above the target
# (measurements in docs/analytics.md, "Predictive maintenance").
SPLIT_CYCLE = 2
# The fewest runs a training splits: two test runs and two training runs (the least that
# cross-validation can split).
MIN_RUNS = 4
# Training runs are dealt round-robin into this many cross-validation folds (fewer when
# there are fewer training runs): the decision threshold is chosen on out-of-fold predictions.
CV_FOLDS = 4


class SplitName(StrEnum):
    TRAIN = "train"
    TEST = "test"


class RunLike(Protocol):
    """The fields of :class:`simulator.training.RunToFailure` a history is built from."""

    equipment_id: str
    seed: int
    tag_ids: tuple[str, ...]
    time_s: np.ndarray
    values: np.ndarray
    failure_time_s: float
    wear_onset_s: float


@dataclass(frozen=True)
class RunHistory:
    """One machine's life: signal columns in the type's order, failure and wear-onset times."""

    run_id: int
    equipment_id: str
    time_s: np.ndarray
    values: np.ndarray
    scaling: Scaling
    failure_time_s: float
    wear_onset_s: float


def history_from_run(run: RunLike, plant: Plant, kind: EquipmentType) -> RunHistory:
    """Pick the type's signal columns out of a simulator run."""
    signals = model_signals(plant, run.equipment_id, kind)
    cols = [run.tag_ids.index(s.tag_id) for s in signals]
    return RunHistory(run_id=int(run.seed), equipment_id=run.equipment_id, time_s=run.time_s,
                      values=run.values[:, cols], scaling=Scaling.of(signals),
                      failure_time_s=float(run.failure_time_s), wear_onset_s=float(run.wear_onset_s))


@dataclass(frozen=True)
class Rows:
    """Feature rows of one or more runs with their labels and bookkeeping columns."""

    features: np.ndarray  # (rows, features)
    label: np.ndarray  # bool: fails within the horizon
    hours_to_failure: np.ndarray
    healthy: np.ndarray  # bool: before wear onset
    time_s: np.ndarray
    run_id: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.label)

    def take(self, mask: np.ndarray) -> Rows:
        return Rows(self.features[mask], self.label[mask], self.hours_to_failure[mask],
                    self.healthy[mask], self.time_s[mask], self.run_id[mask])

    def runs(self) -> list[Rows]:
        """Rows grouped per run, in order of first appearance."""
        ids = list(dict.fromkeys(self.run_id.tolist()))
        return [self.take(self.run_id == r) for r in ids]

    @classmethod
    def concat(cls, parts: Sequence[Rows]) -> Rows:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("features", "label", "hours_to_failure", "healthy", "time_s", "run_id")))


def rows_of(history: RunHistory, kind: EquipmentType, horizon_h: float) -> Rows:
    """Features and labels of every row of a run that has at least MIN_HISTORY_H of history."""
    features = feature_matrix(kind, history.time_s, history.values, history.scaling)
    keep = history.time_s - history.time_s[0] >= MIN_HISTORY_H * SECONDS_PER_HOUR
    t = history.time_s[keep]
    # float32: what the forests split on anyway (scikit-learn casts X to float32), at half the memory.
    return Rows(features=features[keep].astype(np.float32),
                label=fails_within(t, history.failure_time_s, horizon_h),
                hours_to_failure=(history.failure_time_s - t) / SECONDS_PER_HOUR,
                healthy=t < history.wear_onset_s, time_s=t,
                run_id=np.full(len(t), history.run_id, dtype=np.int64))


def dealing_order(run_ids: Sequence[int], machine_of: Mapping[int, str] | None = None) -> list[int]:
    """Distinct run ids sorted by (machine, id): the order runs are dealt in.

    Dealing this order round-robin gives every machine its share (within one run) of each
    split and fold, whatever the run ids say about the machine (the simulator picks the
    machine from the run's seed, so dealing by id alone can put one pump in every test run).
    """
    machines = machine_of or {}
    return sorted(set(run_ids), key=lambda r: (machines.get(r, ""), r))


def split_runs(run_ids: Sequence[int], machine_of: Mapping[int, str] | None = None
               ) -> dict[SplitName, list[int]]:
    """Deal runs (in :func:`dealing_order`) round-robin into test and train (1 : 1).

    Deterministic and disjoint by construction; needs at least MIN_RUNS runs. Each list comes
    back sorted.
    """
    ordered = dealing_order(run_ids, machine_of)
    if len(ordered) < MIN_RUNS:
        raise ValueError(f"need at least {MIN_RUNS} runs to split into train/test, got {len(ordered)}")
    out: dict[SplitName, list[int]] = {s: [] for s in SplitName}
    for position, run_id in enumerate(ordered):
        out[SplitName.TEST if position % SPLIT_CYCLE == 0 else SplitName.TRAIN].append(run_id)
    return {name: sorted(ids) for name, ids in out.items()}


def cv_folds(train_ids: Sequence[int], folds: int = CV_FOLDS,
             machine_of: Mapping[int, str] | None = None) -> list[list[int]]:
    """Deal training runs (in :func:`dealing_order`) round-robin into at most ``folds`` groups.

    Grouped by run: a fold's rows are predicted by a model that saw none of its runs.
    Needs at least 2 runs. Each fold comes back sorted.
    """
    ordered = dealing_order(train_ids, machine_of)
    if len(ordered) < 2:
        raise ValueError(f"need at least 2 training runs for cross-validation, got {len(ordered)}")
    k = min(folds, len(ordered))
    return [sorted(ordered[i::k]) for i in range(k)]
