"""What the node publishes, decoded by an independent Sparkplug B implementation (pysparkplug,
from PyPI) acting as the host, so we are not only agreeing with ourselves.

pysparkplug requires paho-mqtt < 2 (the gateway uses 2), so it lives in a virtualenv of its
own, build/sparkplug-interop-venv, made here on first use with pip from PyPI; the host runs
there as a child process (tests/support/sparkplug_interop_host.py).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from drivers.quality import Quality
from tests.support.sparkplug_node import NodeHarness

ROOT = Path(__file__).resolve().parents[3]
VENV = ROOT / "build" / "sparkplug-interop-venv"
PYSPARKPLUG = "pysparkplug==0.6.1"
HOST_SCRIPT = ROOT / "tests" / "support" / "sparkplug_interop_host.py"


def interop_python() -> Path:
    """The interpreter of the pysparkplug virtualenv, made if missing."""
    python = VENV / "bin" / "python"
    marker = VENV / f".installed-{PYSPARKPLUG}"
    if not marker.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        result = subprocess.run([str(python), "-m", "pip", "install", "--quiet", PYSPARKPLUG],
                                capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            pytest.skip(f"cannot install {PYSPARKPLUG} from PyPI: {result.stderr[-500:]}")
        marker.touch()
    return python


@pytest.fixture(scope="module")
def python() -> Path:
    return interop_python()


class InteropHost:
    """pysparkplug's host in its own process; its decoded messages as dicts."""

    def __init__(self, python: Path, group: str):
        self.proc = subprocess.Popen([str(python), str(HOST_SCRIPT), group], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.messages: list[dict] = []

    async def ready(self) -> None:
        line = await asyncio.get_running_loop().run_in_executor(None, self.proc.stdout.readline)
        assert line.strip() == "subscribed", self.proc.stderr.read() if not line else line

    def finish(self) -> list[dict]:
        out, err = self.proc.communicate(input="", timeout=20)
        assert self.proc.returncode == 0, err[-3000:]
        self.messages = [json.loads(line) for line in out.splitlines() if line.strip()]
        return self.messages


async def test_pysparkplug_decodes_births_data_and_death(tmp_path, python):
    group = f"test-{uuid.uuid4().hex[:10]}"
    host = InteropHost(python, group)
    await host.ready()
    harness = await NodeHarness(tmp_path, group).start()
    try:
        await harness.wait_born()
        await harness.feed_values("plc-a", [351.0, 10001.0, 21.0, 51.0])
        await harness.wait_caught_up()
        await harness.feed_values("plc-a", [352.0, 10001.0, 21.0, 51.0], quality=Quality.DOUBTFUL)
        await harness.wait_caught_up()
        await harness.feed_values("plc-b", [50.0, 330.0, 90.0])
        await harness.wait_caught_up()
    finally:
        await harness.stop()
    messages = host.finish()
    kinds = [m["type"] for m in messages]
    assert kinds[:3] == ["NBIRTH", "DBIRTH", "DBIRTH"]
    assert kinds[-1] == "NDEATH"

    nbirth = messages[0]["payload"]
    node_metrics = {m["name"]: m for m in nbirth["metrics"]}
    assert node_metrics["Node Control/Rebirth"]["datatype"] == "BOOLEAN"
    assert node_metrics["Node Control/Rebirth"]["value"] is False
    assert node_metrics["bdSeq"]["datatype"] == "INT64"
    death = messages[-1]["payload"]
    assert death["bd_seq_metric"]["value"] == node_metrics["bdSeq"]["value"]

    dbirth = next(m for m in messages if m["type"] == "DBIRTH" and m["device"] == "plc-a")
    born = {m["name"]: m for m in dbirth["payload"]["metrics"]}
    assert born["CDU-101/FURNACE-100/TI-101"]["datatype"] == "DOUBLE"

    # pysparkplug resolved the aliases of DDATA to names and datatypes from our DBIRTH.
    data = [m for m in messages if m["type"] == "DDATA"]
    values = [(m["device"], metric["name"], metric["value"]) for m in data
              for metric in m["payload"]["metrics"]]
    assert ("plc-a", "CDU-101/FURNACE-100/TI-101", 351.0) in values
    assert ("plc-a", "CDU-101/FURNACE-100/TI-101", 352.0) in values
    assert ("plc-b", "ALK-400/AI-400", 90.0) in values
    seqs = [m["payload"]["seq"] for m in messages if m["type"] != "NDEATH"]
    assert seqs == list(range(len(seqs)))
