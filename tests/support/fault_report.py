"""The counts a fault scenario proved, written where the benchmark report finds them.

Each scenario in tests/faults calls :func:`record` with what it counted (values lost,
duplicated, alarm messages delivered, ...) before it asserts on them, so a failing run leaves
its counts too. Nothing is written unless ``REFINERYIQ_FAULT_RESULTS`` names a directory:
`make test-long` sets it to ``bench/results/faults``; the README's quick test command leaves the
tree untouched. One file per scenario, ``<scenario>.json``, replaced by the next run of it.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

ENV = "REFINERYIQ_FAULT_RESULTS"


def record(scenario: str, claim: str, **counts: object) -> Path | None:
    """Write one scenario's counts (and what they prove) as JSON; returns the file or None."""
    directory = os.environ.get(ENV)
    if not directory:
        return None
    path = Path(directory) / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', scenario).strip('-')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"scenario": scenario, "claim": claim,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "counts": counts}
    path.write_text(json.dumps(body, indent=1, sort_keys=False, default=str) + "\n")
    return path
