"""Tank levels that integrate their flows and turn around, so tanks visibly fill and drain.

Each tank is linked (hint on its level tag) to one process flow, ``inflow_tag`` (a product
running down into it) or ``outflow_tag`` (a unit's feed drawn from it); the other side is a
batch transfer that the tank farm switches at the turnaround levels: while filling the net flow
is ``+swing * flow``, while draining ``-swing * flow``. A tank without a linked flow moves at a
fixed rate that fills it from the low to the high turnaround in ``fill_h`` hours.
Hints: ``sim = { inflow_tag = "FI-310", swing = 0.3, fill_h = 2 }``.

An overfill (:meth:`TankFarm.overfill`, a scenario's misrouted rundown) overrides a tank for a
while: its level rises at a fixed rate past the turnaround, up to 100 %, and the usual
batch transfer resumes (draining) when the overfill ends.
"""

from __future__ import annotations

import numpy as np

from plant.catalog import Catalog

LITRES_PER_BBL = 158.987
LOW_TURNAROUND_PCT = 20.0
HIGH_TURNAROUND_PCT = 85.0
DEFAULT_SWING = 0.3
DEFAULT_FILL_H = 2.0
LEVEL_NOISE_PCT = 0.05


class TankFarm:
    """Level state of every tank in the catalog (percent of capacity)."""

    def __init__(self, catalog: Catalog, rng: np.random.Generator):
        tanks = catalog.plant.tanks
        self.tank_ids = [t.id for t in tanks]
        self.level_index = np.array([catalog.index[t.level_tag] for t in tanks], dtype=np.int64)
        self.capacity_bbl = np.array([t.capacity_l / LITRES_PER_BBL for t in tanks])
        flow_index, swing, fixed_bpd = [], [], []
        for t in tanks:
            hint = catalog.tag(t.level_tag).sim
            linked = hint.get("inflow_tag") or hint.get("outflow_tag")
            flow_index.append(catalog.index[linked] if linked else -1)
            swing.append(float(hint.get("swing", DEFAULT_SWING)))
            fill_h = float(hint.get("fill_h", DEFAULT_FILL_H))
            travel = (HIGH_TURNAROUND_PCT - LOW_TURNAROUND_PCT) / 100.0 * t.capacity_l / LITRES_PER_BBL
            fixed_bpd.append(travel / fill_h * 24.0)
        self.flow_index = np.array(flow_index, dtype=np.int64)
        self.swing = np.array(swing)
        self.fixed_bpd = np.array(fixed_bpd)
        n = len(tanks)
        self.level_pct = rng.uniform(30.0, 75.0, n)
        self.direction = np.where(rng.uniform(size=n) < 0.5, -1.0, 1.0)
        self.forced_rate_pct_s = np.zeros(n)  # overfill: level rise per second while forced_left_s > 0
        self.forced_left_s = np.zeros(n)

    def overfill(self, tank_id: str, to_full_s: float, hold_s: float) -> None:
        """Make a tank rise from its level now to 100 % in ``to_full_s`` simulated seconds and
        stay full for ``hold_s``; then it drains as usual."""
        k = self.tank_ids.index(tank_id)
        if to_full_s <= 0 or hold_s < 0:
            raise ValueError("to_full_s must be positive and hold_s not negative")
        self.forced_rate_pct_s[k] = (100.0 - self.level_pct[k]) / to_full_s
        self.forced_left_s[k] = to_full_s + hold_s

    def net_flow_bpd(self, pv: np.ndarray) -> np.ndarray:
        """Net flow into each tank (bbl/day), positive while filling."""
        linked = self.flow_index >= 0
        magnitude = np.where(linked, self.swing * np.maximum(pv[np.maximum(self.flow_index, 0)], 0.0),
                             self.fixed_bpd)
        return self.direction * magnitude

    def step(self, dt: float, pv: np.ndarray, measured: np.ndarray, noise: np.ndarray) -> None:
        """Integrate levels over ``dt`` seconds and write them (with noise) into ``measured``."""
        if not len(self.level_index):
            return
        delta_bbl = self.net_flow_bpd(pv) * dt / 86400.0
        delta_pct = 100.0 * delta_bbl / self.capacity_bbl
        forced = self.forced_left_s > 0.0
        if forced.any():
            delta_pct = np.where(forced, self.forced_rate_pct_s * dt, delta_pct)
            self.forced_left_s = np.maximum(self.forced_left_s - dt, 0.0)
            self.direction = np.where(forced, -1.0, self.direction)  # drains once the overfill ends
        self.level_pct = np.clip(self.level_pct + delta_pct, 0.0, 100.0)
        self.direction = np.where(forced, self.direction,
                                  np.where(self.level_pct >= HIGH_TURNAROUND_PCT, -1.0,
                                           np.where(self.level_pct <= LOW_TURNAROUND_PCT, 1.0, self.direction)))
        pv[self.level_index] = self.level_pct
        measured[self.level_index] = self.level_pct + LEVEL_NOISE_PCT * noise
