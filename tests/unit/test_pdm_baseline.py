"""The condition baseline (analytics.pdm.baseline): buckets of good running data, the fitted
envelope, scores with per-signal contributions, the deviation flag, and on the simulator a
bearing fault flagged well before the failure after a quiet healthy week."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from analytics.pdm import baseline as bl
from analytics.pdm.signals import Signal, SignalTag, equipment_signals, model_signals
from plant.load import load_plant
from plant.schema import EquipmentType
from simulator.training import run_to_failure

PLANT = load_plant(Path(__file__).resolve().parents[2] / "config" / "plant.toml")
PUMP_SIGNALS = (SignalTag(Signal.VIBRATION, "VI", 0.5, 4.5), SignalTag(Signal.BEARING_TEMP, "TI", 40.0, 75.0),
                SignalTag(Signal.FEED_FLOW, "FI", 9800.0, 10200.0))
RULES = (bl.RunningRule("II", 25.0),)


def _series(n_buckets: int, per_bucket: int = 10, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Samples of VI, TI, FI and the motor current II, ``per_bucket`` in each 5-minute bucket."""
    rng = np.random.default_rng(seed)
    ts = np.arange(n_buckets * per_bucket) * (bl.BUCKET_S / per_bucket)
    feed = 10000 + 100 * rng.standard_normal(len(ts))
    return {"VI": (ts, 2.5 + 0.2 * rng.standard_normal(len(ts))),
            "TI": (ts, 57.5 + 0.002 * (feed - 10000) + 1.0 * rng.standard_normal(len(ts))),
            "FI": (ts, feed), "II": (ts, np.full(len(ts), 50.0))}


def test_a_bucket_counts_only_when_every_signal_has_a_sample_and_the_machine_runs_throughout():
    series = _series(6)
    ts, current = series["II"]
    current = current.copy()
    current[25] = 10.0  # stopped for a moment in the third bucket
    series["II"] = (ts, current)
    vi_ts, vi = series["VI"]
    keep = (vi_ts < 4 * bl.BUCKET_S) | (vi_ts >= 5 * bl.BUCKET_S)  # no vibration in the fifth
    series["VI"] = (vi_ts[keep], vi[keep])
    buckets = bl.bucket_rows(series, PUMP_SIGNALS, RULES, 0.0, 6 * bl.BUCKET_S)
    assert buckets.seen == 6
    assert list(buckets.ts) == [0.0, bl.BUCKET_S, 3 * bl.BUCKET_S, 5 * bl.BUCKET_S]
    first = series["VI"][1][:10].mean()
    assert buckets.rows[0, 0] == pytest.approx((first - 2.5) / 2.0)  # normalised by the range
    # A bucket not complete by `end` waits for the next run.
    assert len(bl.bucket_rows(series, PUMP_SIGNALS, RULES, 0.0, 5.5 * bl.BUCKET_S).ts) == 3


def test_the_envelope_scores_its_own_data_inside_and_names_the_signal_that_moved():
    series = _series(400)
    buckets = bl.bucket_rows(series, PUMP_SIGNALS, RULES, 0.0, 400 * bl.BUCKET_S)
    env = bl.fit(buckets.ts, buckets.rows, PUMP_SIGNALS)
    assert env.signals == ("vibration", "bearing_temp")  # the feed is context, not scored
    inside = bl.score(env, buckets.ts, buckets.rows)
    assert np.mean(inside.score <= 1.0) > 0.99
    moved = buckets.rows[-5:].copy()
    moved[:, 1] += 0.5  # the bearing 9 °C hotter at the same load
    out = bl.score(env, buckets.ts[-5:], moved)
    assert (out.score > 1.0).all()
    np.testing.assert_allclose(out.contribution.sum(axis=1), 1.0)
    top = bl.top_signals(env, out)
    assert (top[0]["signal"], top[0]["tag_id"], top[0]["direction"]) == ("bearing_temp", "TI", "above")
    assert top[0]["contribution_pct"] > 80


def test_a_load_change_alone_is_not_a_deviation():
    series = _series(400)
    buckets = bl.bucket_rows(series, PUMP_SIGNALS, RULES, 0.0, 400 * bl.BUCKET_S)
    env = bl.fit(buckets.ts, buckets.rows, PUMP_SIGNALS)
    rows = buckets.rows[-5:].copy()
    rows[:, 2] += 0.5  # feed up 100 bbl/d: the bearing runs 0.2 °C hotter with it
    rows[:, 1] += 0.002 * 100 / 17.5
    assert (bl.score(env, buckets.ts[-5:], rows).score < 1.0).all()


@pytest.mark.parametrize("method", list(bl.Method))
def test_every_method_fits_and_round_trips_through_its_saved_form(method):
    buckets = bl.bucket_rows(_series(300, seed=2), PUMP_SIGNALS, RULES, 0.0, 300 * bl.BUCKET_S)
    env = bl.fit(buckets.ts, buckets.rows, PUMP_SIGNALS, method)
    again = bl.Envelope.from_dict(env.as_dict())
    np.testing.assert_allclose(bl.score(again, buckets.ts, buckets.rows).score,
                               bl.score(env, buckets.ts, buckets.rows).score)


def test_too_few_buckets_or_bad_values_are_refused_with_the_reason():
    buckets = bl.bucket_rows(_series(20), PUMP_SIGNALS, RULES, 0.0, 20 * bl.BUCKET_S)
    with pytest.raises(ValueError, match="at least 48"):
        bl.fit(buckets.ts, buckets.rows, PUMP_SIGNALS)
    rows = np.zeros((60, 3))
    rows[4, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        bl.fit(np.arange(60) * bl.BUCKET_S, rows, PUMP_SIGNALS)
    saved = {"method": "robust_z", "signals": ["vibration"], "tag_ids": ["VI"], "scored": [0],
             "context": [1], "width": 2, "weights": [[0, 0, 0, 0]], "center": [0],
             "matrix": [[float("nan")]], "threshold": 1.0, "rows": 60}
    with pytest.raises(ValueError, match="non-finite"):
        bl.Envelope.from_dict(saved)


def test_the_flag_needs_three_buckets_outside_to_rise_and_an_hour_inside_to_clear():
    flag = bl.Flag()
    assert not bl.step_flag(flag, [1.5, 1.5, 0.5, 1.5, 1.5]).any()  # broken runs: no flag
    assert bl.step_flag(flag, [1.5]).all() and flag.episodes == 1
    on = bl.step_flag(flag, [0.5] * 11 + [1.2] + [0.5] * 12)  # wavering at the edge: one episode
    assert on[:-1].all() and not on[-1] and flag.episodes == 1
    assert bl.Flag.from_dict(flag.as_dict()) == flag


def test_learning_progress_is_good_running_hours_over_the_window():
    learning = bl.Learning()
    learning.add(bl.bucket_rows(_series(24), PUMP_SIGNALS, RULES, 0.0, 24 * bl.BUCKET_S))
    assert learning.hours() == pytest.approx(2.0)
    assert learning.progress(168.0) == pytest.approx(2.0 / 168.0)
    assert learning.progress(1.0) == 1.0


# ----------------------------------------------------------------------------- on the simulator

LEARN_H, HEALTHY_H = 168.0, 168.0


@functools.cache
def _pump_run():
    """PUMP-101 (seed 2): a learning week, a healthy week, then its bearing wears to failure."""
    kind = EquipmentType.PUMP
    run = run_to_failure(kind.value, seed=2, dt=120.0, healthy_h=LEARN_H + HEALTHY_H)
    signals = model_signals(PLANT, run.equipment_id, kind)
    rules = bl.running_rules(kind, equipment_signals(PLANT, run.equipment_id))
    series = {tag: (run.time_s, run.values[:, j]) for j, tag in enumerate(run.tag_ids)}
    learned = bl.bucket_rows(series, signals, rules, 0.0, LEARN_H * 3600)
    rest = bl.bucket_rows(series, signals, rules, LEARN_H * 3600, run.failure_time_s + 1)
    env = bl.fit(learned.ts, learned.rows, signals)
    scores = bl.score(env, rest.ts, rest.rows)
    return run, env, rest, scores, bl.step_flag(bl.Flag(), scores.score)


def test_the_baseline_stays_quiet_through_a_healthy_week():
    run, env, rest, scores, flags = _pump_run()
    healthy = rest.ts + bl.BUCKET_S <= run.wear_onset_s
    assert healthy.sum() * bl.BUCKET_S / 3600 >= HEALTHY_H - 1
    assert env.rows == LEARN_H * 3600 / bl.BUCKET_S  # every bucket of the week was running
    assert not flags[healthy].any()  # 0 episodes: the target is <= 0.5 per machine-month


def test_the_baseline_flags_the_bearing_wear_well_before_the_failure():
    run, env, rest, scores, flags = _pump_run()
    first = int(np.flatnonzero(flags)[0])
    flagged_s = rest.ts[first] + bl.BUCKET_S
    health = float(np.interp(flagged_s, run.time_s, run.health))
    # Measured on 3 seeds x 5 types (docs/analytics.md, bench/baseline_methods.py): pumps are
    # flagged at health >= 0.91 and >= 59 h before they fail; bounds here: health >= 0.8 and
    # the pump's planning lead (24 h).
    assert health >= 0.8, health
    assert run.failure_time_s - flagged_s >= 24 * 3600
    assert flags[first:].all()  # and stays flagged until the failure
    # Wear raises vibration, bearing temperature and current and lowers the discharge pressure
    # (simulator/model.py): the signal named first is one of them, moved the right way.
    symptoms = {"vibration": "above", "bearing_temp": "above", "motor_current": "above",
                "discharge_pressure": "below"}
    top = bl.top_signals(env, scores, first)
    assert symptoms[top[0]["signal"]] == top[0]["direction"], top
