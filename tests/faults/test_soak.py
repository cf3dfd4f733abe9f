"""Soak (long version only): `refineryiq run --simulate` at 10,000 synthetic tags for
REFINERYIQ_SOAK_S seconds (default 3600). After a warm-up, resident memory grows by less than
5 %, and neither the open file descriptors nor the threads of the daemon grow.

(The daemon does not expose its asyncio task count; threads and descriptors are what /proc
shows. A task leak that holds sockets or files shows up in the descriptors.)
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.daemon import DaemonProcess
from tests.support.faults import process_use, simulate_config, synthetic_group

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SOAK_S = float(os.environ.get("REFINERYIQ_SOAK_S", "3600"))
SYNTHETIC_TAGS = 10_000
WARM_UP_S = min(300.0, SOAK_S / 4)
SAMPLE_EVERY_S = 10.0
MAX_RSS_GROWTH = 0.05
# Descriptors and threads may wobble by a few (a reconnect in progress, an executor thread).
SLACK = 4
# Where the samples are written (the closing figures of a soak come from this file).
RESULTS_DIR = Path(os.environ.get("REFINERYIQ_SOAK_RESULTS",
                                  Path(__file__).resolve().parents[2] / "bench" / "results"))


def write_results(samples: list, health: dict) -> Path:
    """The soak's samples and a summary as `bench/results/soak-<UTC time>.json`."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    first, last = samples[0], samples[-1]
    summary = {
        "soak_s": SOAK_S, "warm_up_s": WARM_UP_S, "synthetic_tags": SYNTHETIC_TAGS,
        "samples": len(samples),
        "rss_after_warm_up_bytes": first.rss_bytes, "rss_last_bytes": last.rss_bytes,
        "rss_peak_second_half_bytes": max(s.rss_bytes for s in samples[len(samples) // 2:]),
        "rss_growth_ratio": max(s.rss_bytes for s in samples[len(samples) // 2:])
        / first.rss_bytes - 1,
        "open_fds_first": first.open_fds, "open_fds_last": last.open_fds,
        "threads_first": first.threads, "threads_last": last.threads,
        "health_status": health.get("status"),
        "store_errors": health.get("counters", {}).get("store_errors"),
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"soak-{stamp}.json"
    path.write_text(json.dumps({
        "summary": summary,
        "series": [[s.rss_bytes, s.open_fds, s.threads] for s in samples],
        "series_every_s": SAMPLE_EVERY_S,
    }, indent=1) + "\n")
    return path


@pytest.mark.timeout(int(SOAK_S + WARM_UP_S + 600))
def test_a_long_run_at_ten_thousand_tags_does_not_grow(tmp_path):
    config = simulate_config(tmp_path, synthetic_group(SYNTHETIC_TAGS, 1000))
    daemon = DaemonProcess(tmp_path / "state", "run", "--config", str(config), "--simulate",
                           env={"REFINERYIQ_SIMULATOR__SYNTHETIC_TAGS": str(SYNTHETIC_TAGS)}).start()
    try:
        daemon.wait_healthy(180)
        time.sleep(WARM_UP_S)
        samples = []
        end = time.monotonic() + SOAK_S
        while time.monotonic() < end:
            assert daemon.proc.poll() is None
            samples.append(process_use(daemon.proc.pid))
            time.sleep(SAMPLE_EVERY_S)
        health = daemon.get("/health")[1]
    finally:
        daemon.kill()
    print("soak results:", write_results(samples, health))
    first, last = samples[0], samples[-1]
    peak_rss = max(s.rss_bytes for s in samples[len(samples) // 2:])
    assert peak_rss <= first.rss_bytes * (1 + MAX_RSS_GROWTH), (first, last, peak_rss)
    assert last.open_fds <= first.open_fds + SLACK, (first, last)
    assert last.threads <= first.threads + SLACK, (first, last)
    assert health["status"] == "healthy", health["reasons"]
    assert health["counters"]["store_errors"] == 0
