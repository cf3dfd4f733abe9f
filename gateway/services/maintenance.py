"""The ``maintenance`` service: live failure predictions per equipment from the trained models.

At start it loads the type models from ``<state_dir>/models``
(:func:`analytics.pdm.predict.describe_models`); when there are none and
``maintenance.train_on_first_start`` is set, it runs ``refineryiq train`` in a child process
(the event loop never waits on it; its progress is logged, a line saying WARNING or ERROR at
that level with the path of the model card to read) and loads the result. Every
``interval_s`` (the first run ``first_run_delay_s`` after start, retried sooner while no
equipment has enough history) it reads each equipment's signal tags from the embedded store
and hands them to a prediction child, which loads the models and computes features and
predictions (:func:`analytics.pdm.predict.predict_fleet`). The history read is the model's
feature window behind every row its card's warning rule reads (``HISTORY_H + on_h + off_h``
hours and a step, :attr:`~analytics.pdm.predict.ModelInfo.history_h`), so the warning shown is
the card's standing warning, not the raw alarm; each equipment's previous warning goes along
for a run whose rows cannot decide it. Equipment without enough good
history, without a model for its type or without a tag for one of its signals gets no
prediction: it is listed in :attr:`MaintenanceService.unavailable` with the reason, never
invented.

Why a child process per run, not a thread: scikit-learn, SciPy and joblib hold about 90 MB
of resident memory once imported, for a computation of a second or two every half hour. A
spawned child (never forked: the daemon runs threads) with a lower CPU priority loads them,
answers and exits, so the daemon never imports them. One executor per run, not a pool kept
with ``max_tasks_per_child=1``: such a pool starts the next worker as soon as one exits, and
that idle child would sit in memory between runs.

Condition baseline (``baseline_enabled``; :mod:`analytics.pdm.baseline`): no model and no
failure labels needed. Every ``baseline_interval_s`` the service reads, per pump, compressor,
furnace, exchanger and valve, the good samples its signal tags collected since the last run
(a new equipment looks back ``baseline_learning_h`` into the store's history, a day per run at
most) and reduces them to 5-minute buckets of running data. While *learning* it keeps the
buckets (progress = good running hours / ``baseline_learning_h``); when the window is full the
envelope is fitted in a child process at low priority (the robust covariance needs
scikit-learn, which stays out of the daemon); once *active* every new bucket is scored with
numpy in a worker thread: a score (1.0 = the envelope's edge), the signals that contribute
most and a deviation flag with hysteresis. Buckets, envelopes and flags are kept in
``maintenance.sqlite``, so a restart goes on where it stopped instead of learning again.

Results: ``predictions`` (equipment_id → :class:`~analytics.pdm.predict.Prediction`, read by
``GET /api/maintenance/predictions``), ``failure_probabilities()`` (read by the analytics
service), persisted in ``maintenance.sqlite`` so they are served again after a restart;
``baseline_view`` (equipment_id → the baseline's state, read by
``GET /api/maintenance/baseline`` and the status page); a ``maintenance`` section in /health
and inference and baseline metrics in /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from analytics.pdm import baseline as bl
from analytics.pdm.card import CARD_SUFFIX
from analytics.pdm.features import SECONDS_PER_HOUR
from analytics.pdm.predict import (
    EquipmentSeries,
    FleetPredictions,
    ModelInfo,
    Prediction,
    PredictionLevel,
    PreviousWarning,
    Unavailable,
    describe_models,
    predict_fleet,
)
from analytics.pdm.signals import SignalTag, equipment_signals, model_signals
from drivers.quality import usable_mask
from gateway.runtime.child_process import run_in_child
from gateway.runtime.logs import get_logger
from gateway.services.base import RunStats, Tasks, run_counted
from gateway.settings import MaintenanceSettings
from gateway.store.sqlite_thread import SqliteThread
from plant.catalog import Catalog
from plant.schema import EquipmentType


class HistorySource(Protocol):
    """Where each equipment's signal history is read from (the embedded store)."""

    async def history(self, tag_index: int, start: float, end: float,
                      max_points: int | None = None) -> Any: ...

log = get_logger("gateway.maintenance")

SERVICE_NAME = "maintenance"
TRAIN_TASK = "maintenance-train"
FILE_NAME = "maintenance.sqlite"
MODELS_DIR = "models"
# While no equipment has enough history, the next run comes after at most this long.
RETRY_S = 600.0
# History is read in at most this many buckets per dt of the model (each keeps its last sample).
BUCKETS_PER_STEP = 2
# Progress lines of the training child are logged at most this often.
TRAIN_LOG_EVERY_S = 10.0
# The training and prediction children run at a lower CPU priority than the scans.
TRAIN_NICE = 10
PREDICT_NICE = 10

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS prediction (equipment_id TEXT PRIMARY KEY, ts REAL NOT NULL, "
    "body TEXT NOT NULL) WITHOUT ROWID",
    # The condition baseline of each equipment (state, envelope, flag) and, while it learns,
    # its good running buckets.
    "CREATE TABLE IF NOT EXISTS baseline (equipment_id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS baseline_bucket (equipment_id TEXT NOT NULL, ts REAL NOT NULL, "
    "row TEXT NOT NULL, PRIMARY KEY (equipment_id, ts)) WITHOUT ROWID",
]
BASELINE_TASK = "maintenance-baseline"
# History read per store call (and per equipment and run at most, while catching up).
BASELINE_CHUNK_S = 6 * 3600.0
BASELINE_CATCH_UP_S = 24 * 3600.0
# The first baseline run comes this long after start (the scans fill the store first).
BASELINE_FIRST_DELAY_S = 5.0
FIT_NICE = TRAIN_NICE


# A child's line that says its level: it starts with the level in capitals ("WARNING: ...",
# "ERROR ...") or followed by a colon ("Warning: ..."), or it is Python's own "UserWarning: ..."
# (the warnings module) or "ValueError: ..." (a traceback's last line).
_LEVEL_WORD = re.compile(r"(?:(?P<upper>WARNING|WARN|ERROR|CRITICAL|FATAL)\b"
                         r"|(?P<any>(?i:warning|warn|error|critical|fatal)):)")
_PYTHON_CATEGORY = re.compile(r"(?:^|\s|:)\w*(?P<kind>Warning|Error|Exception):\s")


def line_level(line: str) -> str | None:
    """``"warning"`` or ``"error"`` when the line says it is one (see above), else None."""
    word = _LEVEL_WORD.match(line)
    if word is not None:
        return "warning" if (word["upper"] or word["any"]).lower().startswith("warn") else "error"
    category = _PYTHON_CATEGORY.search(line)
    if category is not None:
        return "warning" if category["kind"] == "Warning" else "error"
    return None


class TrainingState(StrEnum):
    """Where the first-start training stands (in /health)."""

    NOT_NEEDED = "not_needed"
    DISABLED = "disabled"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass
class EquipmentBaseline:
    """One equipment's condition baseline: what it learns from, where it stands."""

    equipment_id: str
    kind: EquipmentType
    signals: tuple[SignalTag, ...]
    rules: tuple[bl.RunningRule, ...]
    cursor: float  # history before this time is taken into account (a bucket boundary)
    learning: bl.Learning = field(default_factory=bl.Learning)
    envelope: bl.Envelope | None = None
    flag: bl.Flag = field(default_factory=bl.Flag)
    running: bool | None = None  # in service in the newest bucket read (None: no data yet)
    last: dict[str, Any] | None = None  # the newest scored bucket: ts, score, top signals
    error: str | None = None  # why the envelope could not be fitted

    @property
    def signature(self) -> list[str]:
        """What the baseline was learned on: a different one (catalog change) starts over."""
        return [f"{s.signal.value}={s.tag_id}" for s in self.signals] + \
               [f"run:{r.tag_id}>={r.minimum:g}" for r in self.rules]

    @property
    def state(self) -> bl.BaselineState:
        return bl.BaselineState.ACTIVE if self.envelope is not None else bl.BaselineState.LEARNING

    def body(self) -> dict[str, Any]:
        """What is persisted (the learning buckets are kept in their own table)."""
        return {"signature": self.signature, "cursor": self.cursor,
                "envelope": None if self.envelope is None else self.envelope.as_dict(),
                "flag": self.flag.as_dict(), "running": self.running, "last": self.last}

    def view(self, learning_h: float) -> dict[str, Any]:
        """The baseline as /health, the API and the status page show it."""
        active = self.envelope is not None
        last = self.last or {}
        return {"equipment_id": self.equipment_id, "equipment_type": self.kind.value,
                "state": self.state.value,
                "progress_pct": 100.0 if active else round(100.0 * self.learning.progress(learning_h), 1),
                "learned_h": round(self.envelope.rows * bl.BUCKET_S / 3600.0 if active
                                   else self.learning.hours(), 2),
                "learning_h": learning_h,
                "method": self.envelope.method.value if active else None,
                "signals": [s.signal.value for s in self.signals],
                "running": self.running,
                "score": last.get("score") if active else None,
                "deviating": self.flag.deviating if active else False,
                "episodes": self.flag.episodes,
                "scored_ts": last.get("ts") if active else None,
                "top_signals": list(last.get("top_signals", [])) if active else [],
                "error": self.error}


def fit_envelopes(jobs: list[tuple[np.ndarray, np.ndarray, tuple[SignalTag, ...]]]) -> list[bl.Envelope | str]:
    """Fit each job's envelope (runs in the fitting child, which may import scikit-learn); an
    error message instead of an envelope for a job that cannot be fitted."""
    out: list[bl.Envelope | str] = []
    for ts, rows, signals in jobs:
        try:
            out.append(bl.fit(ts, rows, signals))
        except (ValueError, np.linalg.LinAlgError) as exc:
            out.append(f"{type(exc).__name__}: {exc}")
    return out


class MaintenanceService:
    """The ``maintenance`` service (see the module docstring)."""

    name = SERVICE_NAME

    def __init__(self, settings: MaintenanceSettings, catalog: Catalog, store: HistorySource,
                 state_dir: Path, tasks: Tasks, config_path: Path | None = None,
                 clock: Callable[[], float] = time.time):
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.tasks = tasks
        self.models_dir = state_dir / MODELS_DIR
        self.results_path = state_dir / FILE_NAME
        self.config_path = config_path  # handed to the first-start training
        self.clock = clock
        self.models: dict[EquipmentType, ModelInfo] = {}
        self.predictions: dict[str, Prediction] = {}
        self.unavailable: dict[str, str] = {}
        self.stats = RunStats()
        self.training = TrainingState.NOT_NEEDED
        self._predict = predict_fleet  # what the prediction child runs (replaceable in tests)
        self._db: SqliteThread | None = None
        self._run_lock = asyncio.Lock()
        self._models_ready = asyncio.Event()
        self.baselines: dict[str, EquipmentBaseline] = {}
        self.baseline_view: dict[str, dict[str, Any]] = {}  # replaced by every baseline run
        self.baseline_unavailable: dict[str, str] = {}
        self.baseline_stats = RunStats()
        self._fit = fit_envelopes  # what the fitting child runs (replaceable in tests)
        self._baseline_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the results file, restore the last predictions, load (or train) the models and
        schedule the runs."""
        self._db = SqliteThread(self.results_path, schema=SCHEMA, name="maintenance")
        await self._db.open()
        await self.restore()
        if self.settings.baseline_enabled:
            await self.restore_baselines()
        await self.load()
        if not self.models:
            if self.settings.train_on_first_start:
                self.training = TrainingState.RUNNING
                self.tasks.start(TRAIN_TASK, self.train_first_models)
            else:
                self.training = TrainingState.DISABLED
                log.warning("maintenance.no_models", models_dir=str(self.models_dir),
                            hint="run `refineryiq train` to create them")
        self.tasks.start(SERVICE_NAME, self.run_forever)
        if self.settings.baseline_enabled:
            self.tasks.start(BASELINE_TASK, self.baseline_forever)

    async def stop(self) -> None:
        """Close the results file (a run's child is ended by the run itself)."""
        if self._db is not None:
            await self._db.close()

    async def reload(self, settings: Any, catalog: Catalog) -> None:
        """SIGHUP: predict on the new catalog from the next run on."""
        self.catalog = catalog

    async def load(self) -> int:
        """(Re)load the models from the models folder in a child process; returns how many."""
        if self.models_dir.is_dir():
            self.models = await self._in_child(describe_models, self.models_dir)
        else:  # a new state directory: no child needed to find nothing
            self.models = {}
        if self.models:
            self._models_ready.set()
            log.info("maintenance.models_loaded", types=sorted(k.value for k in self.models),
                     sources=[m.source for m in self.models.values()])
        return len(self.models)

    async def _in_child(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` in a spawned child process (see the module docstring)."""
        return await run_in_child(function, *args, nice=PREDICT_NICE)

    # -- first-start training --------------------------------------------------------------

    def train_command(self) -> list[str]:
        """The ``refineryiq train`` command line of the first-start training."""
        cmd = [sys.executable, "-m", "refineryiq.train", "--out", str(self.models_dir),
               "--runs", str(self.settings.train_runs), "--dt", f"{self.settings.train_dt_s:g}"]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        return cmd

    async def train_first_models(self) -> None:
        """Train the default models in a child process, log its progress, then load them."""
        await asyncio.sleep(self.settings.train_delay_s)
        log.info("maintenance.training_started", runs=self.settings.train_runs,
                 dt_s=self.settings.train_dt_s, out=str(self.models_dir))
        started = time.monotonic()
        # Its own process group (its workers are stopped with it) but the daemon's session:
        # with the kernel's autogroup scheduling (a desktop or a shell, not a systemd unit
        # with CPUWeight=) a new session would be a scheduling group of its own, as heavy as
        # the daemon's whatever its nice value.
        proc = await asyncio.create_subprocess_exec(
            *self.train_command(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            process_group=0)
        try:
            os.setpriority(os.PRIO_PROCESS, proc.pid, TRAIN_NICE)  # its workers inherit it
        except OSError as exc:  # a seccomp filter without setpriority (see systemd/README.md)
            log.warning("maintenance.training_not_niced", error=str(exc))
        try:
            said: set[str] = set()
            await asyncio.gather(self._log_output(proc.stdout, progress=False, said=said),
                                 self._log_output(proc.stderr, progress=True, said=said))
            code = await proc.wait()
        except asyncio.CancelledError:
            # Kill the whole group: worker processes hold the output pipes open, and the
            # child is not "finished" for asyncio until every pipe is closed.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise
        if code != 0:
            self.training = TrainingState.FAILED
            self.stats.last_error = f"first-start training exited with code {code}"
            log.error("maintenance.training_failed", exit_code=code)
            return
        await self.load()
        self.training = TrainingState.DONE
        log.info("maintenance.training_done", duration_s=round(time.monotonic() - started, 1),
                 types=len(self.models))

    async def _log_output(self, stream: asyncio.StreamReader | None, progress: bool,
                          said: set[str] | None = None) -> None:
        """Log the child's lines; progress-bar redraws (``\\r``) at most every few seconds.

        A line that says it is a warning or an error (:func:`line_level`) is logged at that
        level, once per training (``said`` holds those already logged, shared by both
        streams), with the path of the model card that tells the details.
        """
        if stream is None:
            return
        said = set() if said is None else said
        pending, last = b"", 0.0
        while chunk := await stream.read(4096):
            pending += chunk
            *parts, pending = pending.replace(b"\r", b"\n").split(b"\n")
            for part in parts:
                line = part.decode(errors="replace").strip()
                if not line:
                    continue
                level = line_level(line)
                if level is not None:
                    if line not in said:
                        said.add(line)
                        getattr(log, level)("maintenance.training", line=line,
                                            card=str(self.card_of(line)))
                    continue
                if progress and "[" in line and "]" in line:
                    if time.monotonic() - last >= TRAIN_LOG_EVERY_S:
                        last = time.monotonic()
                        log.info("maintenance.training_progress", line=" ".join(line.split()))
                    continue
                log.info("maintenance.training", line=line)

    def card_of(self, line: str) -> Path:
        """The model card a training line is about: ``<models dir>/<TYPE>.card.json`` for the
        first equipment type the line names, else the models folder (every card is there)."""
        for word in re.findall(r"[A-Z]+", line):
            if word in EquipmentType.__members__:
                return self.models_dir / f"{word}{CARD_SUFFIX}"
        return self.models_dir

    # -- runs ------------------------------------------------------------------------------

    async def run_forever(self) -> None:
        """Predict every ``interval_s``; sooner while no equipment has enough history."""
        await asyncio.sleep(self.settings.first_run_delay_s)
        while True:
            if not self.models:
                await self._models_ready.wait()
            await self.run_safely()
            wait = self.settings.interval_s if self.predictions else min(self.settings.interval_s, RETRY_S)
            await asyncio.sleep(wait)

    async def run_safely(self) -> dict[str, Prediction] | None:
        """One run whose failure is logged and counted instead of raised."""
        return await run_counted(self.run_once, self.stats, log, "maintenance.run_failed")

    async def run_once(self) -> dict[str, Prediction]:
        """Read each equipment's history, predict in a child process, keep and persist the
        results."""
        async with self._run_lock:
            now = self.clock()
            inputs, unavailable = await self._inputs(now)
            result: FleetPredictions = await self._in_child(self._predict, self.models_dir, inputs, now)
            predictions, inference_s = result.predictions, result.inference_s
            unavailable.update(result.unavailable)
            self.predictions = {**{k: v for k, v in self.predictions.items() if k not in unavailable},
                                **predictions}
            self.unavailable = unavailable
            await self._save(predictions, now)
            self.stats.succeeded(now, inference_s)
            log.info("maintenance.run", predicted=len(predictions), unavailable=len(unavailable),
                     inference_s=round(inference_s, 3),
                     alarms=sorted(k for k, p in predictions.items() if p.prediction != PredictionLevel.NORMAL))
            return predictions

    async def _inputs(self, now: float) -> tuple[list[EquipmentSeries], dict[str, str]]:
        """Each equipment's model, signals and recent good samples (reads on the store's thread)."""
        plant = self.catalog.plant
        inputs: list[EquipmentSeries] = []
        unavailable: dict[str, str] = {}
        for equipment in plant.equipment:
            try:
                kind = EquipmentType(equipment.type)
            except ValueError:
                continue  # a type that does not wear out (no model exists for it)
            model = self.models.get(kind)
            if model is None:
                unavailable[equipment.id] = Unavailable.NO_MODEL.value
                continue
            try:
                signals = model_signals(plant, equipment.id, kind)
            except (KeyError, ValueError) as exc:
                unavailable[equipment.id] = f"{Unavailable.NO_SIGNAL_TAG.value}: {exc}"
                continue
            series = {}
            for sig in signals:
                if sig.tag_id not in self.catalog.index:
                    break
                series[sig.tag_id] = await self._good_samples(sig.tag_id, model, now)
            if len(series) < len(signals):
                unavailable[equipment.id] = f"{Unavailable.NO_SIGNAL_TAG.value}: not in the catalog"
                continue
            inputs.append(EquipmentSeries(equipment.id, kind, signals, series,
                                          previous=self._previous_warning(equipment.id)))
        return inputs, unavailable

    def _previous_warning(self, equipment_id: str) -> PreviousWarning | None:
        """The standing warning of the equipment's last prediction (None without one)."""
        p = self.predictions.get(equipment_id)
        if p is None:
            return None
        try:
            time_s = datetime.fromisoformat(p.timestamp).timestamp()
        except ValueError:
            return None
        return PreviousWarning(time_s=time_s, warning=p.warning, model_source=p.model_source)

    async def _good_samples(self, tag_id: str, model: ModelInfo, now: float) -> tuple[np.ndarray, np.ndarray]:
        """The tag's usable samples over the model's history window (the features' window behind
        each row of the warning rule), reduced to a few per dt."""
        dt = model.dt_s if model.dt_s > 0 else 60.0
        window_s = model.history_h * SECONDS_PER_HOUR + dt
        buckets = int(BUCKETS_PER_STEP * window_s / dt) + 1
        history = await self.store.history(self.catalog.index[tag_id], now - window_s, now + 1e-3,
                                           max_points=buckets)
        keep = usable_mask(history.quality) & np.isfinite(history.values)
        return history.source_ts[keep], history.values[keep]

    # -- condition baseline ----------------------------------------------------------------

    async def baseline_forever(self) -> None:
        """Update every equipment's baseline every ``baseline_interval_s``."""
        await asyncio.sleep(min(BASELINE_FIRST_DELAY_S, self.settings.baseline_interval_s))
        while True:
            await run_counted(self.run_baseline_once, self.baseline_stats, log,
                              "maintenance.baseline_failed")
            await asyncio.sleep(self.settings.baseline_interval_s)

    def baseline_specs(self) -> tuple[dict[str, tuple[EquipmentType, tuple[SignalTag, ...],
                                                       tuple[bl.RunningRule, ...]]], dict[str, str]]:
        """The signals and running rules of every equipment that can have a baseline, and why
        the others cannot."""
        plant, index = self.catalog.plant, self.catalog.index
        specs, unavailable = {}, {}
        for equipment in plant.equipment:
            try:
                kind = EquipmentType(equipment.type)
            except ValueError:
                continue
            try:
                signals = model_signals(plant, equipment.id, kind)
                rules = bl.running_rules(kind, equipment_signals(plant, equipment.id))
            except (KeyError, ValueError) as exc:
                unavailable[equipment.id] = f"{Unavailable.NO_SIGNAL_TAG.value}: {exc}"
                continue
            missing = [t for t in [s.tag_id for s in signals] + [r.tag_id for r in rules] if t not in index]
            if missing:
                unavailable[equipment.id] = f"{Unavailable.NO_SIGNAL_TAG.value}: {', '.join(missing)} not in the catalog"
                continue
            specs[equipment.id] = (kind, signals, rules)
        return specs, unavailable

    async def run_baseline_once(self) -> dict[str, dict[str, Any]]:
        """Take the history since the last run into each baseline (learn, or score), fit the
        envelopes whose learning window is full, persist, and publish ``baseline_view``."""
        async with self._baseline_lock:
            started = time.monotonic()
            now = self.clock()
            end = float(np.floor(now / bl.BUCKET_S) * bl.BUCKET_S)  # complete buckets only
            learning_h = self.settings.baseline_learning_h
            specs, unavailable = self.baseline_specs()
            new_buckets: dict[str, bl.Buckets] = {}
            for equipment_id, (kind, signals, rules) in specs.items():
                b = self.baselines.get(equipment_id)
                fresh = EquipmentBaseline(equipment_id, kind, signals, rules,
                                          cursor=end - learning_h * 3600.0)
                if b is None or b.signature != fresh.signature:
                    if b is not None:
                        log.info("maintenance.baseline_restarted", equipment_id=equipment_id,
                                 reason="its signals changed")
                    await self._forget_buckets(equipment_id)
                    b = self.baselines[equipment_id] = fresh
                new_buckets[equipment_id] = await self._take_in(b, end)
            for gone in set(self.baselines) - set(specs):
                del self.baselines[gone]
            full = [b for b in self.baselines.values()
                    if b.envelope is None and b.learning.progress(learning_h) >= 1.0]
            if full:
                await self._fit_full(full)
            await self._save_baselines(new_buckets)
            self.baseline_unavailable = unavailable
            self.baseline_view = {k: b.view(learning_h) for k, b in self.baselines.items()}
            self.baseline_stats.succeeded(now, time.monotonic() - started)
            return self.baseline_view

    async def _take_in(self, b: EquipmentBaseline, end: float) -> bl.Buckets:
        """Read the equipment's history from its cursor (at most a day with samples per run)
        and learn from it or score it; returns the new learning buckets (to persist)."""
        learned: list[bl.Buckets] = []
        budget = BASELINE_CATCH_UP_S  # of history with samples (an empty stretch costs little)
        tags = list(dict.fromkeys([s.tag_id for s in b.signals] + [r.tag_id for r in b.rules]))
        while b.cursor < end and budget > 0:
            chunk_end = min(end, b.cursor + BASELINE_CHUNK_S)
            series = {tag: await self._usable(tag, b.cursor, chunk_end) for tag in tags}
            if any(len(ts) for ts, _ in series.values()):
                budget -= chunk_end - b.cursor
            buckets = await asyncio.to_thread(bl.bucket_rows, series, b.signals, b.rules,
                                              b.cursor, chunk_end)
            if buckets.seen:
                last_bucket = chunk_end - bl.BUCKET_S
                b.running = bool(len(buckets.ts) and buckets.ts[-1] >= last_bucket)
            if b.envelope is None:
                b.learning.add(buckets)
                learned.append(buckets)
            elif len(buckets.ts):
                await asyncio.to_thread(self._score, b, buckets)
            b.cursor = chunk_end
        if not learned:
            return bl.Buckets(np.zeros(0), np.zeros((0, len(b.signals))))
        return bl.Buckets(np.concatenate([x.ts for x in learned]),
                          np.concatenate([x.rows for x in learned]))

    @staticmethod
    def _score(b: EquipmentBaseline, buckets: bl.Buckets) -> None:
        """Score new buckets of an active baseline and advance its flag (worker thread)."""
        assert b.envelope is not None
        scores = bl.score(b.envelope, buckets.ts, buckets.rows)
        was = b.flag.deviating
        bl.step_flag(b.flag, scores.score)
        b.last = {"ts": float(buckets.ts[-1] + bl.BUCKET_S), "score": round(float(scores.score[-1]), 3),
                  "top_signals": bl.top_signals(b.envelope, scores)}
        if b.flag.deviating != was:
            (log.warning if b.flag.deviating else log.info)(
                "maintenance.baseline_deviation" if b.flag.deviating else "maintenance.baseline_normal",
                equipment_id=b.equipment_id, score=b.last["score"],
                signals=[t["signal"] for t in b.last["top_signals"]])

    async def _usable(self, tag_id: str, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
        """A tag's good samples (doubtful and bad ones dropped) with source time in [start, end)."""
        history = await self.store.history(self.catalog.index[tag_id], start, end)
        keep = usable_mask(history.quality) & np.isfinite(history.values)
        return history.source_ts[keep], history.values[keep]

    async def _fit_full(self, full: list[EquipmentBaseline]) -> None:
        """Fit the envelopes of the baselines whose learning window is full (one child)."""
        jobs = [(*b.learning.arrays(len(b.signals)), b.signals) for b in full]
        started = time.monotonic()
        results = await run_in_child(self._fit, jobs, nice=FIT_NICE)
        for b, result in zip(full, results, strict=True):
            if isinstance(result, str):
                b.error = result
                log.error("maintenance.baseline_not_fitted", equipment_id=b.equipment_id, error=result)
                continue
            b.envelope, b.error, b.learning = result, None, bl.Learning()
            await self._forget_buckets(b.equipment_id)
            log.info("maintenance.baseline_active", equipment_id=b.equipment_id,
                     method=result.method.value, buckets=result.rows)
        log.info("maintenance.baseline_fitted", equipment=len(full),
                 duration_s=round(time.monotonic() - started, 2))

    async def _save_baselines(self, new_buckets: Mapping[str, bl.Buckets]) -> None:
        assert self._db is not None
        states = [(k, json.dumps(b.body())) for k, b in self.baselines.items()]
        rows = [(k, float(t), json.dumps(r.tolist())) for k, buckets in new_buckets.items()
                if self.baselines[k].envelope is None for t, r in zip(buckets.ts, buckets.rows, strict=True)]

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT INTO baseline (equipment_id, body) VALUES (?, ?) ON CONFLICT "
                             "(equipment_id) DO UPDATE SET body = excluded.body", states)
            conn.executemany("INSERT OR REPLACE INTO baseline_bucket (equipment_id, ts, row) "
                             "VALUES (?, ?, ?)", rows)

        await self._db.transaction(write)

    async def _forget_buckets(self, equipment_id: str) -> None:
        assert self._db is not None
        await self._db.transaction(lambda conn: conn.execute(
            "DELETE FROM baseline_bucket WHERE equipment_id = ?", (equipment_id,)))

    async def restore_baselines(self) -> None:
        """The baselines as the last run before a restart left them (learning buckets,
        envelopes, flags); one that no longer matches the catalog starts over at its next run."""
        assert self._db is not None
        specs, _ = self.baseline_specs()

        def read(conn: sqlite3.Connection) -> tuple[list, list]:
            return (conn.execute("SELECT equipment_id, body FROM baseline").fetchall(),
                    conn.execute("SELECT equipment_id, ts, row FROM baseline_bucket "
                                 "ORDER BY equipment_id, ts").fetchall())

        states, buckets = await self._db.call(read)
        by_equipment: dict[str, list[tuple[float, list[float]]]] = {}
        for equipment_id, ts, row in buckets:
            by_equipment.setdefault(equipment_id, []).append((ts, row))
        for equipment_id, body in states:
            if equipment_id not in specs:
                continue
            kind, signals, rules = specs[equipment_id]
            b = EquipmentBaseline(equipment_id, kind, signals, rules, cursor=0.0)
            try:
                saved = json.loads(body)
                if saved["signature"] != b.signature:
                    continue
                b.cursor = float(saved["cursor"])
                b.envelope = None if saved["envelope"] is None else bl.Envelope.from_dict(saved["envelope"])
                b.flag = bl.Flag.from_dict(saved.get("flag") or {})
                b.running, b.last = saved.get("running"), saved.get("last")
                for ts, row in by_equipment.get(equipment_id, []):
                    values = json.loads(row)
                    if len(values) == len(signals):
                        b.learning.ts.append(float(ts))
                        b.learning.rows.append([float(v) for v in values])
            except (KeyError, ValueError, TypeError) as exc:
                log.warning("maintenance.unreadable_baseline", equipment_id=equipment_id, error=str(exc))
                continue
            self.baselines[equipment_id] = b
        self.baseline_view = {k: b.view(self.settings.baseline_learning_h) for k, b in self.baselines.items()}
        if self.baselines:
            log.info("maintenance.baselines_restored", active=sorted(
                k for k, b in self.baselines.items() if b.envelope is not None),
                learning=sorted(k for k, b in self.baselines.items() if b.envelope is None))

    # -- persistence -----------------------------------------------------------------------

    async def _save(self, predictions: Mapping[str, Prediction], now: float) -> None:
        assert self._db is not None
        rows = [(k, now, json.dumps(p.as_dict())) for k, p in predictions.items()]

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT INTO prediction (equipment_id, ts, body) VALUES (?, ?, ?) "
                             "ON CONFLICT (equipment_id) DO UPDATE SET ts = excluded.ts, "
                             "body = excluded.body", rows)

        await self._db.transaction(write)

    async def restore(self) -> None:
        """The predictions of the last run before a restart (served until the first run)."""
        assert self._db is not None
        rows = await self._db.call(lambda conn: conn.execute(
            "SELECT equipment_id, body FROM prediction ORDER BY equipment_id").fetchall())
        for equipment_id, body in rows:
            try:
                self.predictions[equipment_id] = Prediction.from_dict(json.loads(body))
            except (KeyError, ValueError, TypeError):
                log.warning("maintenance.unreadable_prediction", equipment_id=equipment_id)

    # -- reporting -------------------------------------------------------------------------

    def failure_probabilities(self) -> dict[str, float]:
        """Failure probability (%) by equipment_id (read by the analytics service)."""
        return {k: p.failure_probability for k, p in self.predictions.items()}

    def report(self) -> dict:
        """The ``maintenance`` section of /health."""
        s = self.stats
        return {"models": {k.value: m.source for k, m in self.models.items()},
                "training": self.training.value, "runs": s.runs, "failures": s.failures,
                "last_run_ts": s.last_run_ts, "last_inference_s": s.last_duration_s,
                "last_error": s.last_error, "predictions": len(self.predictions),
                "alarms": sorted(k for k, p in self.predictions.items() if p.prediction != PredictionLevel.NORMAL),
                "no_prediction": dict(self.unavailable),
                "baseline": self.baseline_report()}

    def baseline_report(self) -> dict:
        """The condition baseline's part of the ``maintenance`` section of /health."""
        s = self.baseline_stats
        view = self.baseline_view
        return {"enabled": self.settings.baseline_enabled,
                "learning_h": self.settings.baseline_learning_h, "runs": s.runs, "failures": s.failures,
                "last_run_ts": s.last_run_ts, "last_run_s": s.last_duration_s, "last_error": s.last_error,
                "deviating": sorted(k for k, v in view.items() if v["deviating"]),
                "equipment": {k: {"state": v["state"], "progress_pct": v["progress_pct"],
                                  "score": v["score"], "deviating": v["deviating"],
                                  "top_signals": [t["signal"] for t in v["top_signals"]]}
                              for k, v in view.items()},
                "unavailable": dict(self.baseline_unavailable)}

    def metrics(self) -> Iterator[Metric]:
        """Prometheus families: runs, failures, last inference time, failure probabilities."""
        s = self.stats
        runs = CounterMetricFamily("refineryiq_maintenance_runs", "Predictive-maintenance runs completed")
        runs.add_metric([], s.runs)
        failures = CounterMetricFamily("refineryiq_maintenance_failures",
                                       "Predictive-maintenance runs that failed")
        failures.add_metric([], s.failures)
        inference = GaugeMetricFamily("refineryiq_maintenance_inference_seconds",
                                      "Feature and prediction time of the last run (all equipment)")
        inference.add_metric([], s.last_duration_s or 0.0)
        probability = GaugeMetricFamily("refineryiq_maintenance_failure_probability",
                                        "Predicted probability of failure within the horizon (%)",
                                        labels=["equipment"])
        for equipment_id, p in self.predictions.items():
            probability.add_metric([equipment_id], p.failure_probability)
        yield from (runs, failures, inference, probability)
        progress = GaugeMetricFamily("refineryiq_maintenance_baseline_progress_ratio",
                                     "Condition baseline: good running hours learned / learning window",
                                     labels=["equipment"])
        score = GaugeMetricFamily("refineryiq_maintenance_baseline_score",
                                  "Condition baseline deviation score (1 = edge of the normal envelope)",
                                  labels=["equipment"])
        deviating = GaugeMetricFamily("refineryiq_maintenance_baseline_deviating",
                                      "1 while the condition baseline flags the equipment", labels=["equipment"])
        for equipment_id, v in self.baseline_view.items():
            progress.add_metric([equipment_id], v["progress_pct"] / 100.0)
            if v["score"] is not None:
                score.add_metric([equipment_id], v["score"])
            deviating.add_metric([equipment_id], float(v["deviating"]))
        yield from (progress, score, deviating)
