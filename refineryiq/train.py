"""`refineryiq train`: generate run-to-failure histories, train and evaluate one model per type.

    refineryiq train [--runs N] [--seed S] [--out DIR] [--types PUMP,COMPRESSOR] [--dt SECONDS]
                     [--config PATH]

Histories come straight from the simulator's degradation physics (no protocol in between,
much faster than real time). Each type's model and model card go to ``--out`` (default
``<state_dir>/models``); the held-out metrics are printed at the end, with a WARNING line when
a type misses the target (recall >= 0.9 at precision >= 0.8; the card says
``"meets_target": false``). Exit 0 when the models were written, 2 on a configuration error,
1 otherwise. The default (160 runs per type, half of them held out, dt 600 s) takes about
2.5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from joblib import Parallel, delayed

from analytics.pdm.dataset import MIN_RUNS, RunHistory, history_from_run
from analytics.pdm.model import TARGET_PRECISION, TARGET_RECALL, TrainOptions, save, train_type
from gateway.settings import DEFAULT_CONFIG, MaintenanceSettings, load_config
from plant.errors import ConfigError
from plant.schema import EquipmentType, Plant
from simulator.training import run_to_failure

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

    def __init__(self, label: str, total: int, stream: TextIO = sys.stderr):
        self.label, self.total, self.stream = label, max(total, 1), stream
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
                       stream: TextIO = sys.stderr) -> list[RunHistory]:
    """Simulate one run to failure per seed (in up to ``jobs`` processes), with a progress bar."""
    bar = ProgressBar(f"{kind.value}: simulate", len(seeds), stream)
    runs: Iterable = Parallel(n_jobs=jobs, return_as="generator")(
        delayed(run_to_failure)(kind.value, s, dt, plant=plant) for s in seeds)
    histories = []
    for n, run in enumerate(runs, start=1):
        histories.append(history_from_run(run, plant, kind))
        bar.update(n, f"{n}/{len(seeds)} runs")
    bar.close()
    return histories


def _with_se(metrics: dict, name: str) -> str:
    se = metrics.get(f"{name}_se")
    return f"{metrics[name]:.3f}" + ("" if se is None else f" ± {se:.3f}")


def _report(kind: EquipmentType, card: dict, out: TextIO) -> None:
    test = card["metrics"]["test"]
    lead = test["lead_time_h"]
    rul = test.get("rul_mae_h")
    print(f"{kind.value:<11} horizon {card['horizon_h']:g} h  threshold {card['threshold']:.2f}  "
          f"test runs {card['sizes']['test_runs']}: precision {_with_se(test, 'precision')}  "
          f"recall {_with_se(test, 'recall')}  F1 {test['f1']:.3f}  brier {test['brier']:.3f}  "
          f"lead time median {lead['median']:.1f} h (p10 {lead['p10']:.1f} h)  "
          f"false alarms (healthy) {100 * test['false_alarm_rate_healthy']:.2f} %  "
          f"RUL MAE {'n/a' if rul is None else f'{rul:.1f} h'}  "
          f"meets target: {'yes' if card['meets_target'] else 'NO'}", file=out)
    if not card["meets_target"]:
        print(f"WARNING: {kind.value} misses the target (recall >= {TARGET_RECALL} at precision >= "
              f"{TARGET_PRECISION}) on held-out runs; model written anyway", file=out)


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
    out_dir = args.out or config.settings.state_dir / "models"
    jobs = min(max(args.jobs, 1), MAX_JOBS)
    options = TrainOptions(seed=args.seed, n_jobs=jobs)
    seeds = [args.seed * RUN_SEED_STRIDE + i for i in range(args.runs)]
    cards = {}
    for kind in _types(args.types):
        histories = generate_histories(kind, config.plant, seeds, args.dt, jobs)
        bar = ProgressBar(f"{kind.value}: train", 100)
        model = train_type(kind, histories, options, lambda stage, f, bar=bar: bar.update(100 * f, stage))
        bar.close()
        model_path, card_path = save(model, out_dir)
        print(f"wrote {model_path} and {card_path}", file=sys.stderr)
        cards[kind] = model.card
    print(f"held-out metrics (models in {out_dir}):")
    for kind, card in cards.items():
        _report(kind, card, sys.stdout)
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
