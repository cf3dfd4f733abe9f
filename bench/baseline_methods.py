"""Condition-baseline methods compared on simulated machines: detection delay vs false flags.

For each equipment type and seed, one machine of the plant runs (``simulator.training.
run_to_failure``) for the learning window, then a healthy week, then wears until it fails.
Each method (:class:`analytics.pdm.baseline.Method`) learns its envelope from the learning
window's good running buckets and scores the rest: false-alarm episodes on the healthy week
(per machine-month) and, on the wear, the first deviation flag's delay after wear onset and
its lead before the failure. Writes bench/results/baseline_methods-<stamp>.json.

    .venv/bin/python -m bench.baseline_methods --seeds 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from analytics.pdm import baseline as bl
from analytics.pdm.signals import equipment_signals, model_signals
from bench.common import write_results
from plant.load import load_plant
from plant.schema import EquipmentType
from simulator.training import DEFAULT_PLANT, run_to_failure

HOURS_PER_MONTH = 730.0


def evaluate(kind: EquipmentType, seed: int, methods: list[bl.Method], learning_h: float,
             healthy_h: float, dt: float, plant, margins: list[float]) -> list[dict]:
    run = run_to_failure(kind.value, seed=seed, dt=dt, healthy_h=learning_h + healthy_h)
    signals = model_signals(plant, run.equipment_id, kind)
    rules = bl.running_rules(kind, equipment_signals(plant, run.equipment_id))
    series = {tag: (run.time_s, run.values[:, j]) for j, tag in enumerate(run.tag_ids)}
    for sig in signals:  # the feed may be outside the machine's own columns: it never is here
        assert sig.tag_id in series, sig.tag_id
    learn_end = learning_h * 3600.0
    learned = bl.bucket_rows(series, signals, rules, 0.0, learn_end)
    rest = bl.bucket_rows(series, signals, rules, learn_end, run.failure_time_s + 1.0)
    out = []
    for method in methods:
        started = time.perf_counter()
        env = bl.fit(learned.ts, learned.rows, signals, method, margin=1.0)
        fit_s = time.perf_counter() - started
        started = time.perf_counter()
        sc1 = bl.score(env, rest.ts, rest.rows)
        score_us = (time.perf_counter() - started) / max(len(rest.ts), 1) * 1e6
        for margin in margins:
            sc = bl.Scores(sc1.score / np.sqrt(margin), sc1.deviation, sc1.contribution)
            flags = bl.step_flag(bl.Flag(), sc.score)
            healthy = rest.ts + bl.BUCKET_S <= run.wear_onset_s
            raised = np.flatnonzero(np.diff(np.concatenate([[False], flags])) > 0)
            false_episodes = int(np.sum(healthy[raised]))
            wear_raise = [i for i in raised if not healthy[i]]
            first = rest.ts[wear_raise[0]] + bl.BUCKET_S if wear_raise else None
            top = bl.top_signals(env, sc, int(wear_raise[0])) if wear_raise else []
            out.append({"type": kind.value, "seed": seed, "equipment": run.equipment_id, "method": method.value,
                        "margin": margin, "score_us_per_bucket": round(score_us, 2), "learning_buckets": len(learned.ts), "fit_s": round(fit_s, 3),
                        "false_episodes_healthy": false_episodes,
                        "healthy_h": round(float(np.sum(healthy)) * bl.BUCKET_S / 3600.0, 1),
                        "wear_h": round((run.failure_time_s - run.wear_onset_s) / 3600.0, 1),
                        "detected": first is not None,
                        "delay_h": None if first is None else round((first - run.wear_onset_s) / 3600.0, 1),
                        "lead_h": None if first is None else round((run.failure_time_s - first) / 3600.0, 1),
                        "health_at_flag": None if first is None else round(float(np.interp(first, run.time_s, run.health)), 3),
                        "top_at_flag": [t["signal"] for t in top]})
    return out


def summarise(rows: list[dict]) -> dict:
    by: dict[str, dict] = {}
    for method, margin in sorted({(r["method"], r["margin"]) for r in rows}):
        mine = [r for r in rows if r["method"] == method and r["margin"] == margin]
        per_type = {}
        for kind in sorted({r["type"] for r in mine}):
            t = [r for r in mine if r["type"] == kind]
            delays = [r["delay_h"] for r in t if r["detected"]]
            per_type[kind] = {
                "runs": len(t), "detected": sum(r["detected"] for r in t),
                "false_episodes_per_machine_month": round(
                    sum(r["false_episodes_healthy"] for r in t) / max(sum(r["healthy_h"] for r in t), 1e-9)
                    * HOURS_PER_MONTH, 2),
                "delay_h_max": max(delays) if delays else None,
                "delay_pct_of_wear_max": max((round(100 * r["delay_h"] / r["wear_h"], 1) for r in t if r["detected"]), default=None),
                "lead_h_min": min((r["lead_h"] for r in t if r["detected"]), default=None),
                "health_at_flag_min": min((r["health_at_flag"] for r in t if r["detected"]), default=None),
                "fit_s_max": max(r["fit_s"] for r in t)}
        by[f"{method} margin {margin:g}"] = per_type
    return by


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=100)
    ap.add_argument("--learning-h", type=float, default=168.0)
    ap.add_argument("--healthy-h", type=float, default=168.0)
    ap.add_argument("--dt", type=float, default=60.0)
    ap.add_argument("--margins", type=float, nargs="*", default=[bl.THRESHOLD_MARGIN])
    ap.add_argument("--types", nargs="*", default=[k.value for k in EquipmentType])
    ap.add_argument("--methods", nargs="*", default=[m.value for m in bl.Method])
    args = ap.parse_args(argv)
    plant = load_plant(DEFAULT_PLANT)
    methods = [bl.Method(m) for m in args.methods]
    rows = []
    for kind in (EquipmentType(t) for t in args.types):
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            rows += evaluate(kind, seed, methods, args.learning_h, args.healthy_h, args.dt, plant, args.margins)
            print(" | ".join(f"{r['type']}/{r['seed']} {r['method']} x{r['margin']:g}: false {r['false_episodes_healthy']} "
                             f"delay {r['delay_h']} h lead {r['lead_h']} h"
                             for r in rows[-len(methods) * len(args.margins):]), flush=True)
    summary = summarise(rows)
    for method, per_type in summary.items():
        for kind, s in per_type.items():
            print(method, kind, s)
    path = write_results("baseline_methods", {"options": vars(args), "summary": summary, "runs": rows})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
