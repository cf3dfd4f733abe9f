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


def write_results(name: str, results: dict) -> Path:
    """Write one dated file for this run and merge the figures into latest.json under `name`."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    doc = {"benchmark": name, "time": stamp, "machine": machine(), **results}
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(doc, indent=2))
    latest_path = RESULTS / "latest.json"
    try:
        latest = json.loads(latest_path.read_text())
    except (OSError, ValueError):
        latest = {}
    latest[name] = doc
    latest_path.write_text(json.dumps(latest, indent=2))
    return path
