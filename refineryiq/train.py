"""`refineryiq train`: generate run-to-failure histories, train and evaluate one model per type.

    refineryiq train [--runs N] [--healthy-runs N] [--healthy-hours H] [--seed S] [--out DIR]
                     [--types PUMP,COMPRESSOR] [--dt SECONDS] [--config PATH]

Histories come straight from the simulator's degradation physics (no protocol in between,
much faster than real time): ``--runs`` run-to-failure lives per type and ``--healthy-runs``
(default a quarter of ``--runs``) machines kept healthy for ``--healthy-hours`` (default 730 h,
a machine-month), the healthy time on which false alarms are counted. Each type's model and
model card go to ``--out`` (default ``<state_dir>/models``); the held-out metrics are printed
at the end, event level first (share of failures warned at the type's planning lead from
``maintenance.planning_lead_h``, lead times, false-alarm episodes per healthy machine-month),
with a WARNING line when a type misses the event target (>= 0.95 warned, <= 0.5 false
episodes per machine-month; the card says ``"meets_target": false``), then the row-level
figures. Exit 0 when the models were written, 2 on a configuration error, 1 otherwise. The
default (160 + 40 runs per type, half of them held out, dt 600 s) takes a few minutes on 2 cores.

Started as ``python -m refineryiq.train`` (how the daemon starts its first-start training) it
runs in the background: the idle scheduling class for it and its worker processes, one thread
per process in the numeric libraries (:func:`gateway.runtime.child_process.run_in_background`),
and without ``--jobs`` one core left for the daemon (1 worker on 2 cores); its first stderr line
says what it got.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TextIO

from joblib import Parallel, delayed

from analytics.pdm.dataset import MIN_RUNS, RunHistory, history_from_run
from analytics.pdm.events import MACHINE_MONTH_H, TARGET_FALSE_PER_MONTH, TARGET_WARNED_SHARE
from analytics.pdm.model import TrainOptions, save, train_type
from gateway.runtime.child_process import IDLE, run_in_background
from gateway.settings import DEFAULT_CONFIG, MaintenanceSettings, load_config
from plant.errors import ConfigError
from plant.schema import EquipmentType, Plant
from simulator.training import healthy_run, run_to_failure

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
DEFAULT_RUNS = MaintenanceSettings.model_fields["train_runs"].default
DEFAULT_DT_S = MaintenanceSettings.model_fields["train_dt_s"].default
DEFAULT_TYPES = tuple(EquipmentType)
MAX_JOBS = 2
# Run seeds of one training are seed * RUN_SEED_STRIDE + 0..N-1: distinct trainings never share runs.
RUN_SEED_STRIDE = 10_000
BAR_WIDTH = 30


class ProgressBar:
    """A one-line text progress bar on a stream (stderr), redrawn in place."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None):
        # The stream is looked up when the bar is made (None: the sys.stderr of that moment),
        # not when this module was imported: a caller may have replaced sys.stderr since.
        self.label, self.total = label, max(total, 1)
        self.stream = sys.stderr if stream is None else stream
        self.started = time.monotonic()

    def update(self, done: float, note: str = "") -> None:
        fraction = min(max(done / self.total, 0.0), 1.0)
        filled = int(round(BAR_WIDTH * fraction))
        elapsed = time.monotonic() - self.started
        self.stream.write(f"\r{self.label:<24} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                          f"{100 * fraction:5.1f}% {elapsed:6.1f}s {note:<12}")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refineryiq train",
                                     description="train the predictive-maintenance models")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="run-to-failure histories per type")
    parser.add_argument("--healthy-runs", type=int, default=None,
                        help="healthy-only machines per type (default: a quarter of --runs)")
    parser.add_argument("--healthy-hours", type=float, default=MACHINE_MONTH_H,
                        help="hours each healthy-only machine runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="output folder (default <state_dir>/models)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--types", default=",".join(t.value for t in DEFAULT_TYPES),
                        help="comma-separated equipment types")
    parser.add_argument("--dt", type=float, default=DEFAULT_DT_S, help="simulation step, seconds")
    parser.add_argument("--jobs", type=int, default=MAX_JOBS, help=f"worker processes (at most {MAX_JOBS})")
    return parser


def _types(text: str) -> list[EquipmentType]:
    try:
        return [EquipmentType(t.strip().upper()) for t in text.split(",") if t.strip()]
    except ValueError as exc:
        raise SystemExit(f"--types: {exc}; choose from {', '.join(t.value for t in EquipmentType)}") from None


def generate_histories(kind: EquipmentType, plant: Plant, seeds: list[int], dt: float, jobs: int,
                       stream: TextIO | None = None, healthy_seeds: Sequence[int] = (),
                       healthy_hours: float = MACHINE_MONTH_H) -> list[RunHistory]:
    """Simulate one run to failure per seed and one healthy-only run of ``healthy_hours`` per
    healthy seed (in up to ``jobs`` processes), with a progress bar."""
    total = len(seeds) + len(healthy_seeds)
    bar = ProgressBar(f"{kind.value}: simulate", total, stream)
    runs: Iterable = Parallel(n_jobs=jobs, return_as="generator")(
        [delayed(healthy_run)(kind.value, s, healthy_hours, dt, plant=plant) for s in healthy_seeds]
        + [delayed(run_to_failure)(kind.value, s, dt, plant=plant) for s in seeds])
    histories = []
    for n, run in enumerate(runs, start=1):
        histories.append(history_from_run(run, plant, kind))
        bar.update(n, f"{n}/{total} runs")
    bar.close()
    return histories


def _with_se(metrics: dict, name: str) -> str:
    se = metrics.get(f"{name}_se")
    return f"{metrics[name]:.3f}" + ("" if se is None else f" ± {se:.3f}")


def _hours(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} h"


def _report(kind: EquipmentType, card: dict, out: TextIO) -> None:
    """Event-level figures of one type's card (then the WARNING line if missed), then row level."""
    events = card["metrics"]["test"]["events"]
    rows = card["metrics"]["test"]["row_level"]
    warning = card.get("warning", {})
    lead = events["lead_time_h"]
    share, rate = events["warned_share"], events["false_per_machine_month"]
    print(f"{kind.value:<11} failures {events['failures']}: warned >= {events['planning_lead_h']:g} h ahead "
          f"{events['warned_at_lead']}/{events['failures']} "
          f"({'n/a' if share is None else f'{share:.3f}'})  lead time median {_hours(lead['median'])} "
          f"(p10 {_hours(lead['p10'])}, min {_hours(lead['min'])}, max {_hours(lead['max'])})  "
          f"false-alarm episodes {events['false_episodes']} in {events['healthy_machine_months']:.1f} "
          f"healthy machine-months ({'n/a' if rate is None else f'{rate:.2f}'} per month)  "
          f"meets target: {'yes' if card['meets_target'] else 'NO'}", file=out)
    if not card["meets_target"]:
        print(f"WARNING: {kind.value} misses the target (>= {TARGET_WARNED_SHARE} of failures warned "
              f"{events['planning_lead_h']:g} h ahead, <= {TARGET_FALSE_PER_MONTH} false-alarm episodes "
              f"per healthy machine-month) on held-out runs; model written anyway", file=out)
    rul = rows.get("rul_mae_h")
    print(f"{'':<11} warning: threshold {card['threshold']:.2f}, on after {warning.get('on_h', 0):g} h, "
          f"off after {warning.get('off_h', 0):g} h; horizon {card['horizon_h']:g} h  "
          f"row level: precision {_with_se(rows, 'precision')}  recall {_with_se(rows, 'recall')}  "
          f"F1 {rows['f1']:.3f}  brier {rows['brier']:.3f}  "
          f"false alarms (healthy rows) {100 * rows['false_alarm_rate_healthy']:.2f} %  "
          f"RUL MAE {'n/a' if rul is None else f'{rul:.1f} h'}", file=out)


def main(argv: list[str]) -> int:
    """Body of `refineryiq train`; see the module docstring."""
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"configuration error: {exc.path}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    if args.runs < MIN_RUNS:
        print(f"--runs: need at least {MIN_RUNS} runs per type (half are held out for the test, "
              f"and cross-validation needs two training runs)", file=sys.stderr)
        return EXIT_ERROR
    healthy = args.runs // 4 if args.healthy_runs is None else args.healthy_runs
    if healthy < 0 or args.runs + healthy > RUN_SEED_STRIDE or not args.healthy_hours > 0:
        print(f"--healthy-runs/--healthy-hours: need 0 <= healthy runs, runs + healthy runs <= "
              f"{RUN_SEED_STRIDE} and healthy hours > 0", file=sys.stderr)
        return EXIT_ERROR
    out_dir = args.out or config.settings.state_dir / "models"
    jobs = min(max(args.jobs, 1), MAX_JOBS)
    options = TrainOptions(seed=args.seed, n_jobs=jobs)
    seeds = [args.seed * RUN_SEED_STRIDE + i for i in range(args.runs)]
    healthy_seeds = [args.seed * RUN_SEED_STRIDE + args.runs + i for i in range(healthy)]
    leads = config.settings.maintenance.planning_lead_h
    cards = {}
    for kind in _types(args.types):
        histories = generate_histories(kind, config.plant, seeds, args.dt, jobs,
                                       healthy_seeds=healthy_seeds, healthy_hours=args.healthy_hours)
        bar = ProgressBar(f"{kind.value}: train", 100)
        model = train_type(kind, histories, options, lambda stage, f, bar=bar: bar.update(100 * f, stage),
                           planning_lead_h=leads[kind])
        bar.close()
        model_path, card_path = save(model, out_dir)
        print(f"wrote {model_path} and {card_path}", file=sys.stderr)
        cards[kind] = model.card
    print(f"held-out metrics, event level then row level (models in {out_dir}):")
    for kind, card in cards.items():
        _report(kind, card, sys.stdout)
    return EXIT_OK


def background_jobs() -> int:
    """Worker processes of a background training without ``--jobs``: every core but one, which
    stays for the daemon beside it (1 on 2 cores), at most MAX_JOBS."""
    return max(1, min(MAX_JOBS, (os.cpu_count() or 1) - 1))


def background_main(argv: list[str]) -> int:
    """:func:`main` in the background (see the module docstring): the scans and HTTP answers
    of a daemon on the same cores come first."""
    if not any(a == "--jobs" or a.startswith("--jobs=") for a in argv):
        argv = [*argv, "--jobs", str(background_jobs())]
    got = run_in_background()
    # The daemon logs a line starting with "WARNING:" at that level.
    print(("" if got == IDLE else "WARNING: not in the idle scheduling class: ")
          + f"scheduling {got}, numeric libraries at 1 thread per process", file=sys.stderr)
    return main(argv)


if __name__ == "__main__":
    raise SystemExit(background_main(sys.argv[1:]))
