"""Event-level figures of the predictive-maintenance models over several training seeds.

For each seed, exactly what ``refineryiq train --runs R --healthy-runs H --seed S`` does per
equipment type (simulate R run-to-failure lives and H healthy machines of ``--healthy-hours``,
split half/half by run, choose the warning rule by grouped CV on the training half, fit,
evaluate on the held-out half), without writing models. Per type and seed: failures warned at
the planning lead (share), lead-time median / p10 / min / max, false-alarm episodes per healthy
machine-month, the warning rule, and whether the event target is met; the row-level precision
and recall alongside. Writes bench/results/pdm_events-<stamp>.json (and a partial file after
every seed, so a stopped run keeps what it measured).

    .venv/bin/python -m bench.pdm_events --seeds 0-9 --runs 40
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time

from analytics.pdm.model import TrainOptions, train_type
from bench.common import RESULTS, stamp, write_results
from gateway.settings import DEFAULT_CONFIG, load_config
from plant.schema import EquipmentType
from refineryiq.train import RUN_SEED_STRIDE, generate_histories


def _seeds(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-", 1)
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",") if s.strip()]


def one(kind: EquipmentType, seed: int, runs: int, healthy: int, healthy_hours: float, dt: float,
        plant, lead_h: float, jobs: int) -> dict:
    seeds = [seed * RUN_SEED_STRIDE + i for i in range(runs)]
    healthy_seeds = [seed * RUN_SEED_STRIDE + runs + i for i in range(healthy)]
    started = time.monotonic()
    histories = generate_histories(kind, plant, seeds, dt, jobs, stream=io.StringIO(),
                                   healthy_seeds=healthy_seeds, healthy_hours=healthy_hours)
    card = train_type(kind, histories, TrainOptions(seed=seed, n_jobs=jobs), planning_lead_h=lead_h).card
    ev = card["metrics"]["test"]["events"]
    rows = card["metrics"]["test"]["row_level"]
    return {"type": kind.value, "seed": seed, "warning": card["warning"], "meets_target": card["meets_target"],
            "events": ev, "cv_events": card["metrics"]["cross_validation"]["events"],
            "row_level": {k: rows[k] for k in ("precision", "recall", "precision_se", "recall_se")},
            "seconds": round(time.monotonic() - started, 1)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.pdm_events")
    parser.add_argument("--seeds", default="0-9", help="e.g. 0-9 or 0,3,7")
    parser.add_argument("--runs", type=int, default=40, help="run-to-failure lives per type and seed")
    parser.add_argument("--healthy-runs", type=int, default=None, help="default: a quarter of --runs")
    parser.add_argument("--healthy-hours", type=float, default=730.0)
    parser.add_argument("--dt", type=float, default=600.0)
    parser.add_argument("--types", default=",".join(t.value for t in EquipmentType))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    config = load_config(DEFAULT_CONFIG)
    leads = config.settings.maintenance.planning_lead_h
    kinds = [EquipmentType(t.strip().upper()) for t in args.types.split(",") if t.strip()]
    healthy = args.runs // 4 if args.healthy_runs is None else args.healthy_runs
    results: dict = {"runs": args.runs, "healthy_runs": healthy, "healthy_hours": args.healthy_hours,
                     "dt_s": args.dt, "seeds": _seeds(args.seeds), "trainings": []}
    partial = RESULTS / f"pdm_events-partial-{stamp()}.json"
    for seed in results["seeds"]:
        for kind in kinds:
            r = one(kind, seed, args.runs, healthy, args.healthy_hours, args.dt, config.plant,
                    leads[kind], args.jobs)
            results["trainings"].append(r)
            ev = r["events"]
            print(f"seed {seed} {kind.value:<10} warned {ev['warned_at_lead']}/{ev['failures']} "
                  f"lead median {ev['lead_time_h']['median']:.0f} h p10 {ev['lead_time_h']['p10']:.0f} h  "
                  f"false {ev['false_episodes']} in {ev['healthy_machine_months']:.1f} months "
                  f"({ev['false_per_machine_month']:.2f}/month)  rule {r['warning']}  "
                  f"meets {r['meets_target']}  ({r['seconds']:.0f} s)", flush=True)
            RESULTS.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(results, indent=2))
    results["summary"] = {k.value: {"met": sum(r["meets_target"] for r in results["trainings"]
                                               if r["type"] == k.value),
                                    "trainings": sum(r["type"] == k.value for r in results["trainings"])}
                          for k in kinds}
    path = write_results("pdm_events", results)
    partial.unlink(missing_ok=True)
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
