"""What the daemon loads at start-up: libraries of services that are off stay out of memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_daemon_loads_asyncpg_only_with_a_historian():
    code = ("import sys, gateway.daemon, gateway.services.reports.service, "
            "gateway.services.reports.sources; print('asyncpg' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"
