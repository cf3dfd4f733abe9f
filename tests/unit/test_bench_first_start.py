"""bench/first_start.py's verdict: the training window against the noise floor of the idle ones."""

from __future__ import annotations

from bench.first_start import noise_floor, quantile_interval, verdict


def window(name: str, p50: float, p99: float, overruns: int = 0, half: float = 0.5,
           training: bool = False) -> dict:
    return {"scenario": name, "train_on_first_start": training, "window_overruns": overruns,
            "daemon_runqueue_wait_s": 1.0, "training_state_at_end": "running" if training else "disabled",
            "http": {"p50_ms": p50, "p99_ms": p99, "p50_interval_ms": [p50 - half, p50 + half],
                     "p99_interval_ms": [p99 - half, p99 + half]}}


def test_noise_floor_is_the_larger_of_the_idle_spread_and_the_widest_half_interval():
    idles = [window("idle", 1.0, 10.0, half=0.5), window("idle_2", 1.0, 13.0, half=2.0)]
    assert noise_floor(idles, "p99") == 3.0  # spread 3.0 > widest half interval 2.0
    idles = [window("idle", 1.0, 10.0, half=4.0), window("idle_2", 1.0, 11.0, half=0.5)]
    assert noise_floor(idles, "p99") == 4.0


def test_a_training_p99_within_the_noise_floor_is_not_measurable():
    idles = [window("idle", 1.0, 10.0, half=1.0), window("idle_2", 1.0, 12.0, half=1.0)]
    result = verdict(window("training", 1.0, 13.5, training=True), idles)
    assert result["noise_floor_p99_ms"] == 2.0
    assert result["p99_training_minus_idle_max_ms"] == 1.5
    assert result["p99_exceeds_noise_floor"] is False


def test_a_training_p99_beyond_the_noise_floor_is_measurable_and_so_are_extra_overruns():
    idles = [window("idle", 1.0, 10.0, half=1.0), window("idle_2", 1.0, 11.0, half=1.0)]
    result = verdict(window("training", 1.0, 20.0, overruns=2, training=True), idles)
    assert result["p99_exceeds_noise_floor"] is True
    assert result["p50_exceeds_noise_floor"] is False
    assert result["overruns_exceed_noise_floor"] is True
    assert result["training_ran_through_window"] is True


def test_the_bootstrap_interval_brackets_the_quantile_and_needs_a_hundred_samples():
    samples = [float(i) for i in range(1000)]
    low, high = quantile_interval(samples, 0.99)
    assert low <= 990.0 <= high
    assert quantile_interval(samples[:99], 0.99) is None
