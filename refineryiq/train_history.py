"""`refineryiq train --from-history`: train the failure models on the plant's own history.

    refineryiq train --from-history [--types PUMP,VALVE] [--out DIR] [--dt SECONDS]
                     [--since TIME] [--until TIME] [--seed S] [--trees N] [--jobs N]
                     [--config PATH]

The history is the gateway's embedded store (``<state_dir>/history.sqlite``); the labels are
the failure records imported with ``refineryiq maintenance import`` (``<state_dir>/
maintenance.sqlite``). Each machine's signals are point-sampled onto a ``--dt`` grid (usable
samples only, as live inference does) and cut at its recorded failures into one run per
failure (:mod:`analytics.pdm.history_dataset`); then the same features, split by run (so by
failure event: no event has rows on both sides), threshold choice and held-out evaluation as
the simulator-trained models (:func:`analytics.pdm.model.train_type`). Models and cards go to
``--out`` (default ``<state_dir>/models``, where the daemon's maintenance service loads them),
replacing the model of each type trained; the card's ``source`` says it was trained on the
plant's history and gives the record files' SHA-256 and what became of every record.

A type needs at least MIN_RUNS failure events (half are held out) with at least two
horizons of gap-free history before each. A type with fewer is refused with the reason (how
many it needs, how many it has, why each unusable record was left out). With ``--types``
every named type must have enough, or nothing is trained; without it, the types that have
enough are trained and the others listed. Exit codes: 0 models written, 3 refused (too few
failure events), 2 configuration error, 1 anything else (no history, a store that cannot be
read). The PostgreSQL historian is not read (the embedded store keeps the retention the
gateway is configured with, 30 days by default: raise ``[store].retention_days`` to keep
months).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from analytics.pdm.dataset import MIN_RUNS
from analytics.pdm.features import SECONDS_PER_HOUR, Scaling
from analytics.pdm.history_dataset import (
    DEFAULT_DOWN_H,
    EquipmentHistory,
    Labelled,
    label_history,
    point_sample,
)
from analytics.pdm.model import HORIZON_H, TrainOptions, save, train_type
from analytics.pdm.records import iso, parse_time, records_sha256
from analytics.pdm.signals import SignalTag, model_signals
from drivers.quality import usable_mask
from gateway.runtime.exit_codes import EXIT_CONFIG, EXIT_ERROR, EXIT_OK, report_config_error
from gateway.settings import DEFAULT_CONFIG, MaintenanceSettings, load_config
from gateway.store.embedded import EmbeddedStore
from gateway.store.maintenance_records import MaintenanceRecords, StoredRecord
from plant.catalog import Catalog
from plant.errors import ConfigError
from plant.schema import EquipmentType, Plant
from refineryiq.train import ProgressBar

# Too few failure events is "anything else" in the house exit codes (0 ok, 2 configuration, 1 else);
# the message says how many events each type needs and has.
EXIT_TOO_FEW_EVENTS = EXIT_ERROR
HISTORY_FILE = "history.sqlite"
DEFAULT_DT_S = MaintenanceSettings.model_fields["train_dt_s"].default
MAX_JOBS = 2
# A failure is used with at least this many horizons of gap-free history before it (half of
# them rows that do not fail within the horizon), and rows more than this many horizons
# before a failure count as healthy time.
MIN_HISTORY_HORIZONS = 2.0
HEALTHY_BEFORE_HORIZONS = 2.0
# A grid time is a gap when a signal has no usable sample this many steps old or newer.
MAX_AGE_STEPS = 3.0
# The store is read per tag in chunks of this much time (bounds the memory of one read).
READ_CHUNK_H = 7 * 24.0
SOURCE = "plant history"


@dataclass
class TypeData:
    """One type's records, runs and what became of each record."""

    kind: EquipmentType
    records: list[StoredRecord]
    labelled: Labelled

    @property
    def usable(self) -> int:
        return len(self.labelled.failing_runs)

    def refusal(self, min_history_h: float) -> str:
        unusable = [e for e in self.labelled.events if not e.used]
        why = "; ".join(f"{e.equipment_id} at {iso(e.failure_s)}: {e.reason}" for e in unusable[:5])
        more = f"; and {len(unusable) - 5} more" if len(unusable) > 5 else ""
        return (f"{self.kind.value}: too few failure events to train: needs {MIN_RUNS} (half to train, "
                f"half to test) with at least {min_history_h:g} h of history each, has {self.usable} "
                f"usable of {len(self.records)} recorded" + (f" ({why}{more})" if why else ""))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="refineryiq train",
        description="train the predictive-maintenance models on the gateway's own history "
                    "(<state_dir>/history.sqlite), labelled by the failure records of "
                    "`refineryiq maintenance import`",
        epilog=f"A type needs at least {MIN_RUNS} failure events (half are held out) with "
               f"{MIN_HISTORY_HORIZONS:g} horizons of history before each; with fewer it is refused "
               f"with the reason. Exit codes: 0 models written, 2 configuration error, 1 anything "
               f"else (too few failure events among them).")
    parser.add_argument("--from-history", action="store_true", required=True,
                        help="train on the plant's history (this command)")
    parser.add_argument("--types", default=None,
                        help="comma-separated equipment types (default: every type the plant has; "
                             "those with too few failure events are skipped)")
    parser.add_argument("--out", type=Path, help="output folder (default <state_dir>/models)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--dt", type=float, default=DEFAULT_DT_S, help="grid step of the history, seconds")
    parser.add_argument("--since", default=None, help="use history from this time (ISO-8601 or epoch s)")
    parser.add_argument("--until", default=None, help="use history up to this time (ISO-8601 or epoch s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the forests")
    parser.add_argument("--trees", type=int, default=TrainOptions.n_estimators, help="trees per forest")
    parser.add_argument("--jobs", type=int, default=MAX_JOBS, help=f"worker threads (at most {MAX_JOBS})")
    return parser


def _types(text: str | None, plant: Plant) -> tuple[list[EquipmentType], bool]:
    if text is None:
        present = {e.type for e in plant.equipment}
        return [t for t in EquipmentType if t.value in present], False
    try:
        return [EquipmentType(t.strip().upper()) for t in text.split(",") if t.strip()], True
    except ValueError as exc:
        raise SystemExit(f"--types: {exc}; choose from {', '.join(t.value for t in EquipmentType)}") from None


def _time(text: str | None, name: str) -> float | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise SystemExit(f"{name}: {exc}") from None


def horizon_of(kind: EquipmentType, options: TrainOptions) -> float:
    return options.horizon_h or HORIZON_H[kind]


async def read_equipment(store: EmbeddedStore, catalog: Catalog, equipment_id: str,
                         signals: Sequence[SignalTag], grid: np.ndarray, dt: float,
                         bar: ProgressBar, done: list[int]) -> EquipmentHistory:
    """One machine's signals point-sampled onto ``grid`` from the store, chunk by chunk."""
    max_age = MAX_AGE_STEPS * dt
    values = np.full((len(grid), len(signals)), np.nan)
    covered = np.ones(len(grid), dtype=bool)
    chunk = READ_CHUNK_H * SECONDS_PER_HOUR
    starts = np.arange(grid[0], grid[-1] + dt, chunk) if len(grid) else np.empty(0)
    for column, signal in enumerate(signals):
        fresh_all = np.zeros(len(grid), dtype=bool)
        for c0 in starts:
            lo, hi = np.searchsorted(grid, [c0, c0 + chunk], side="left")
            if lo >= hi:
                continue
            history = await store.history(catalog.index[signal.tag_id], float(c0) - max_age,
                                          float(grid[hi - 1]) + 1e-6)
            keep = usable_mask(history.quality) & np.isfinite(history.values)
            sampled, fresh = point_sample(grid[lo:hi], history.source_ts[keep], history.values[keep], max_age)
            values[lo:hi, column] = sampled
            fresh_all[lo:hi] = fresh
            done[0] += 1
            bar.update(done[0], equipment_id)
        covered &= fresh_all
    # Forward-fill inside covered stretches is already done by the point sampling; gap rows
    # keep whatever they have (they are never used: a run starts after its last gap).
    values = np.where(np.isnan(values), 0.0, values)
    return EquipmentHistory(equipment_id, grid, values, covered, Scaling.of(signals))


async def collect(state_dir: Path, plant: Plant, kinds: Sequence[EquipmentType], stored: list[StoredRecord],
                  options: TrainOptions, dt: float, since: float | None, until: float | None,
                  stream: TextIO | None = None) -> tuple[dict[EquipmentType, TypeData], tuple[float, float]]:
    """Read the history of every machine of ``kinds`` and cut it at its records."""
    stream = sys.stderr if stream is None else stream
    catalog = Catalog.build(plant)
    machines = [(e.id, EquipmentType(e.type)) for e in plant.equipment
                if e.type in {k.value for k in kinds}]
    try:
        signals = {eid: model_signals(plant, eid, kind) for eid, kind in machines}
    except ValueError as exc:  # a machine without a tag its model needs
        raise LookupError(f"{exc} (see the plant catalog)") from None
    path = state_dir / HISTORY_FILE
    store = EmbeddedStore(path, retention_s=float("inf"), max_bytes=2**62,
                          tag_ids=[t.id for t in catalog.tags])
    await store.open()
    try:
        stats = await store.stats()
        oldest, newest = stats["oldest_ts"], stats["newest_ts"]
        if oldest is None:
            raise LookupError(f"the gateway's history {path} is empty")
        start = max(float(oldest), since) if since is not None else float(oldest)
        end = min(float(newest), until) if until is not None else float(newest)
        if end <= start:
            raise LookupError(f"no history between {iso(start)} and {iso(end)} in {path} "
                              f"(it holds {iso(float(oldest))} to {iso(float(newest))})")
        grid = np.arange(np.ceil(start / dt) * dt, end + 1e-6, dt)
        chunks = max(int(np.ceil((grid[-1] - grid[0] + dt) / (READ_CHUNK_H * SECONDS_PER_HOUR))), 1)
        bar = ProgressBar("read history", sum(len(s) for s in signals.values()) * chunks, stream)
        done = [0]
        data = {k: TypeData(k, [s for s in stored if _type_of(plant, s.record.equipment_id) == k], Labelled())
                for k in kinds}
        next_run = dict.fromkeys(kinds, 0)
        for eid, kind in machines:
            history = await read_equipment(store, catalog, eid, signals[eid], grid, dt, bar, done)
            horizon = horizon_of(kind, options)
            records = [s.record for s in data[kind].records if s.record.equipment_id == eid]
            labelled = label_history(history, records, next_run[kind], MIN_HISTORY_HORIZONS * horizon,
                                     HEALTHY_BEFORE_HORIZONS * horizon, censored_cut_h=horizon)
            next_run[kind] += len(labelled.runs)
            data[kind].labelled.extend(labelled)
        bar.close()
        return data, (float(grid[0]), float(grid[-1]))
    finally:
        await store.close()


def _type_of(plant: Plant, equipment_id: str) -> EquipmentType | None:
    kind = next((e.type for e in plant.equipment if e.id == equipment_id), None)
    return EquipmentType(kind) if kind in EquipmentType.__members__ else None


def source_card(data: TypeData, span: tuple[float, float], history_path: Path, dt: float,
                horizon_h: float) -> dict[str, object]:
    """The card's ``source``: the plant's history, the record files (SHA-256) and every record."""
    used_keys = {(e.equipment_id, e.failure_s) for e in data.labelled.events if e.used}
    used = [s for s in data.records if s.record.key() in used_keys]
    files = sorted({(s.source_file, s.source_sha256) for s in data.records})
    return {
        "kind": SOURCE,
        "history": str(history_path),
        "history_from": iso(span[0]), "history_to": iso(span[1]),
        "grid_dt_s": dt,
        "record_files": [{"file": f, "sha256": h} for f, h in files],
        "records_sha256": records_sha256([s.record for s in used]),
        "records": len(data.records), "events_used": len(used),
        "events": [e.as_dict() for e in data.labelled.events],
        "min_history_h": MIN_HISTORY_HORIZONS * horizon_h,
        "healthy": f"rows more than {HEALTHY_BEFORE_HORIZONS * horizon_h:g} h before a recorded failure "
                   "(the records carry no wear onset)",
        "down_without_repair_end_h": DEFAULT_DOWN_H,
        "healthy_runs": len(data.labelled.healthy_runs),
        "healthy_run_h": round(data.labelled.healthy_h, 1),
        "censored_h_not_used": round(data.labelled.censored_h, 1),
        "gap_h": round(data.labelled.gap_h, 1),
    }


def _report(kind: EquipmentType, card: dict, out: TextIO) -> None:
    test = card["metrics"]["test"]
    source, sizes = card["source"], card["sizes"]
    held_out = sizes["test_runs"] - sizes.get("test_healthy_runs", 0)
    line = (f"{kind.value:<11} {source['events_used']} failure events ({held_out} held out), "
            f"{source['healthy_run_h']:.0f} h healthy-only, horizon {card['horizon_h']:g} h:")
    events = test.get("events")
    if isinstance(events, dict):
        lead = events.get("lead_time_h") or {}
        line += (f"  warned at the {events.get('planning_lead_h', 0):g} h lead {events.get('warned_at_lead')}"
                 f"/{events.get('failures')}  lead time median {lead.get('median') or 0:.1f} h  "
                 f"false alarms {events.get('false_per_machine_month') or 0:.2f} per healthy machine-month")
    rows = test.get("row_level", test)
    if "precision" in rows:
        line += f"  rows: precision {rows['precision']:.3f} recall {rows['recall']:.3f}"
    line += f"  meets target: {'yes' if card.get('meets_target') else 'NO'}"
    print(line, file=out)
    if not card.get("meets_target"):
        print(f"WARNING: {kind.value} misses the target on its held-out failure events; model written "
              f"anyway (few events make these figures uncertain: see the card)", file=out)


def _print_skipped(data: TypeData, out: TextIO) -> None:
    for event in data.labelled.events:
        if not event.used:
            print(f"  not used: {event.equipment_id} failure at {iso(event.failure_s)}: {event.reason}", file=out)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    plant, state_dir = config.plant, config.settings.state_dir
    kinds, explicit = _types(args.types, plant)
    if args.dt <= 0:
        print("--dt: must be more than 0 seconds", file=sys.stderr)
        return EXIT_CONFIG
    since, until = _time(args.since, "--since"), _time(args.until, "--until")
    options = TrainOptions(seed=args.seed, n_estimators=max(args.trees, 10),
                           n_jobs=min(max(args.jobs, 1), MAX_JOBS))
    records_path = MaintenanceRecords.in_state_dir(state_dir).path
    stored: list[StoredRecord] = []
    if records_path.exists():
        with MaintenanceRecords(records_path) as db:
            stored = db.records()
    history_path = state_dir / HISTORY_FILE
    # Refuse at once, before reading any history, a type whose records alone are too few.
    by_type = {k: [s for s in stored if _type_of(plant, s.record.equipment_id) == k] for k in kinds}
    too_few = [k for k in kinds if len(by_type[k]) < MIN_RUNS]
    for kind in too_few:
        print(f"{kind.value}: too few failure events to train: needs {MIN_RUNS} (half to train, half to "
              f"test), has {len(by_type[kind])} recorded in {records_path} "
              f"(import more with `refineryiq maintenance import FILE`)", file=sys.stderr)
    if explicit and too_few:
        return EXIT_TOO_FEW_EVENTS
    kinds = [k for k in kinds if k not in too_few]
    if not kinds:
        print("refused: no equipment type has enough failure events to train", file=sys.stderr)
        return EXIT_TOO_FEW_EVENTS
    if not history_path.exists():
        print(f"no gateway history at {history_path}: run the gateway (refineryiq run) first", file=sys.stderr)
        return EXIT_ERROR
    try:
        data, span = asyncio.run(collect(state_dir, plant, kinds, stored, options, args.dt, since, until))
    except LookupError as exc:
        print(f"refineryiq train --from-history: {exc}", file=sys.stderr)
        return EXIT_ERROR
    refused = [d for d in data.values() if d.usable < MIN_RUNS]
    for d in refused:
        print(d.refusal(MIN_HISTORY_HORIZONS * horizon_of(d.kind, options)), file=sys.stderr)
    if (explicit and refused) or len(refused) == len(data):
        print("refused: " + ("nothing trained (every type named in --types needs enough events)"
                             if explicit else "no equipment type has enough failure events to train"),
              file=sys.stderr)
        return EXIT_TOO_FEW_EVENTS
    out_dir = args.out or state_dir / "models"
    cards = {}
    for d in data.values():
        if d.usable < MIN_RUNS:
            continue
        bar = ProgressBar(f"{d.kind.value}: train", 100, sys.stderr)
        model = train_type(d.kind, d.labelled.runs, options,
                           lambda stage, f, bar=bar: bar.update(100 * f, stage),
                           planning_lead_h=config.settings.maintenance.planning_lead_h[d.kind])
        bar.close()
        model.card["source"] = source_card(d, span, history_path, args.dt, model.horizon_h)
        model_path, card_path = save(model, out_dir)
        print(f"wrote {model_path} and {card_path}", file=sys.stderr)
        cards[d.kind] = (model.card, d)
    print(f"trained on the plant's history {iso(span[0])} to {iso(span[1])} (models in {out_dir}):")
    for kind, (card, d) in cards.items():
        _report(kind, card, sys.stdout)
        _print_skipped(d, sys.stdout)
    return EXIT_OK


def main(argv: list[str]) -> int:
    """Body of `refineryiq train --from-history`; see the module docstring."""
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except ConfigError as exc:
        return report_config_error(exc)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
