"""Run-to-failure histories for the predictive-maintenance model, faster than real time.

``run_to_failure("PUMP", seed=3)`` builds the plant model from the catalog, keeps every other
machine healthy, lets one machine of the type run healthy for a while and then wear until it
fails, and returns the tag values of that machine's tags (plus its unit's feed) at every step,
the hidden health, and the failure time. The physics are exactly the live simulator's
(:class:`simulator.model.PlantModel`), stepped with a large ``dt``: a whole pump life at
``dt = 60`` s is a few thousand steps and takes about a second. Different seeds give different
machines (of the type), wear durations, noise and healthy periods, so a training set is just
``[run_to_failure(t, seed=s) for s in range(n)]``; keep some seeds apart for evaluation.

``healthy_run("PUMP", seed=5, hours=730.0)`` is the same machine kept healthy for ``hours`` (no
wear, no failure: ``failure_time_s`` and ``wear_onset_s`` are infinite): the healthy machine
time on which a model's false alarms are counted. A run-to-failure life holds only a few days
of healthy running; a real machine spends months so.

Example::

    from simulator.training import run_to_failure
    run = run_to_failure("COMPRESSOR", seed=11, dt=60.0)
    run.values[:, run.tag_ids.index("VI-201")]  # vibration, mm/s, one row per step
    run.failure_time_s - run.time_s            # remaining useful life at each step
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plant.catalog import Catalog
from plant.load import load_plant
from plant.schema import EquipmentType, Plant
from simulator.model import PlantModel

DEFAULT_PLANT = Path(__file__).resolve().parent.parent / "config" / "plant.toml"


@dataclass(frozen=True)
class RunToFailure:
    """One machine's history from healthy to failure, one row per model step."""

    equipment_id: str
    equipment_type: str
    seed: int
    dt: float
    tag_ids: tuple[str, ...]
    time_s: np.ndarray  # (steps,) simulated seconds since the run started
    values: np.ndarray  # (steps, len(tag_ids)) reported values
    health: np.ndarray  # (steps,) hidden health, 1 new .. 0 failed
    failure_time_s: float  # when health reached 0 (the last row); inf for a healthy run
    wear_onset_s: float  # when wear started (health below 1); inf for a healthy run


def run_to_failure(equipment_type: str, seed: int, dt: float = 60.0, *,
                   plant: Plant | None = None, equipment_id: str | None = None,
                   healthy_h: float | None = None, wear_h: float | None = None,
                   max_hours: float = 5000.0) -> RunToFailure:
    """Simulate one machine of ``equipment_type`` until it fails; see the module docstring.

    ``healthy_h`` (default: 12-72 h from the seed) is the healthy lead-in before wear starts;
    ``wear_h`` overrides the wear duration drawn for the machine. Raises ValueError for a type
    without degradation physics or if no failure happens within ``max_hours``.
    """
    kind, plant, target, model = _isolated(equipment_type, seed, plant, equipment_id)
    deg = model.degradation
    k = model.equipment_index(target)
    rng = np.random.default_rng([seed, 1])
    lead_in_s = 3600.0 * (healthy_h if healthy_h is not None else rng.uniform(12.0, 72.0))
    deg.start_wear(k, lead_in_s, wear_h)
    columns = _columns(model.catalog, plant, target)
    tag_ids = tuple(model.catalog.tags[i].id for i in columns)
    max_steps = int(max_hours * 3600.0 / dt)
    times = np.empty(max_steps)
    rows = np.empty((max_steps, len(columns)))
    health = np.empty(max_steps)
    for s in range(max_steps):
        model.step(dt)
        times[s] = model.time_s
        rows[s] = model.values[columns]
        health[s] = deg.health[k]
        if deg.failed[k]:
            n = s + 1
            return RunToFailure(equipment_id=target, equipment_type=kind.value, seed=seed, dt=dt,
                                tag_ids=tag_ids, time_s=times[:n].copy(), values=rows[:n].copy(),
                                health=health[:n].copy(), failure_time_s=float(times[s]),
                                wear_onset_s=lead_in_s)
    raise ValueError(f"{target} did not fail within {max_hours} h (seed {seed})")


def healthy_run(equipment_type: str, seed: int, hours: float, dt: float = 60.0, *,
                plant: Plant | None = None, equipment_id: str | None = None) -> RunToFailure:
    """Simulate one machine of ``equipment_type`` kept healthy for ``hours``; see the module docstring.

    Same physics, machine choice (from the seed) and columns as :func:`run_to_failure`; the
    machine never wears, so ``failure_time_s`` and ``wear_onset_s`` are ``inf`` and ``health`` is 1.
    """
    if hours <= 0 or dt <= 0:
        raise ValueError(f"hours and dt must be positive, got hours={hours}, dt={dt}")
    kind, plant, target, model = _isolated(equipment_type, seed, plant, equipment_id)
    columns = _columns(model.catalog, plant, target)
    steps = max(int(hours * 3600.0 / dt), 1)
    times = np.empty(steps)
    rows = np.empty((steps, len(columns)))
    for s in range(steps):
        model.step(dt)
        times[s] = model.time_s
        rows[s] = model.values[columns]
    return RunToFailure(equipment_id=target, equipment_type=kind.value, seed=seed, dt=dt,
                        tag_ids=tuple(model.catalog.tags[i].id for i in columns), time_s=times,
                        values=rows, health=np.ones(steps), failure_time_s=float("inf"),
                        wear_onset_s=float("inf"))


def _isolated(equipment_type: str, seed: int, plant: Plant | None, equipment_id: str | None
              ) -> tuple[EquipmentType, Plant, str, PlantModel]:
    """The plant model of a seed with every machine kept healthy, and the machine to watch."""
    kind = EquipmentType(equipment_type)
    plant = plant or load_plant(DEFAULT_PLANT)
    candidates = [e.id for e in plant.equipment if e.type == kind.value]
    if not candidates:
        raise ValueError(f"the plant has no {kind.value} equipment")
    target = equipment_id or candidates[seed % len(candidates)]
    if target not in candidates:
        raise ValueError(f"{target} is not a {kind.value}")
    model = PlantModel(Catalog.build(plant), seed=seed)
    for i in range(len(model.equipment_ids)):
        model.degradation.disable(i)
    return kind, plant, target, model


def _columns(catalog: Catalog, plant: Plant, equipment_id: str) -> np.ndarray:
    """The machine's own tags, then its unit's feed tag (context for load-dependent symptoms)."""
    unit_id = next(e.unit_id for e in plant.equipment if e.id == equipment_id)
    own = [i for i, t in enumerate(catalog.tags) if t.equipment_id == equipment_id]
    feed = next((u.feed_tag for u in plant.units if u.id == unit_id), None)
    if feed is not None and catalog.index[feed] not in own:
        own.append(catalog.index[feed])
    return np.array(own, dtype=np.int64)
