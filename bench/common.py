"""Shared by the benchmarks: where and how results are written."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import os
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()}


def stamp() -> str:
    """This moment in UTC as the results files name it (20260101T000000Z)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def merge_latest(name: str, doc: dict) -> Path:
    """Put ``doc`` into latest.json under ``name`` (the other benchmarks' entries stay)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    latest_path = RESULTS / "latest.json"
    try:
        latest = json.loads(latest_path.read_text())
    except (OSError, ValueError):
        latest = {}
    latest[name] = doc
    latest_path.write_text(json.dumps(latest, indent=2))
    return latest_path


def write_results(name: str, results: dict) -> Path:
    """Write one dated file for this run and merge the figures into latest.json under `name`."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    when = stamp()
    doc = {"benchmark": name, "time": when, "machine": machine(), **results}
    path = RESULTS / f"{name}-{when}.json"
    path.write_text(json.dumps(doc, indent=2))
    merge_latest(name, doc)
    return path


# Libraries whose log lines are not benchmark figures: pymodbus appends its last frames
# (">>>>> send: ...") to every error line, asyncua logs its security policy and session
# negotiation. Failures still surface as exceptions and in the benchmarks' own counters.
NOISY_LIBRARIES = ("pymodbus", "asyncua")


def quiet_library_logs(names: tuple[str, ...] = NOISY_LIBRARIES) -> None:
    """Silence the log output of ``names`` in this process, so a benchmark prints its figures
    and not library debug traffic (call it in every process a benchmark starts)."""
    import logging
    for name in names:
        logger = logging.getLogger(name)
        logger.setLevel(logging.CRITICAL + 1)
        logger.propagate = False
