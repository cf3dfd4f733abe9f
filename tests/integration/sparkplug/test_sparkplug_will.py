"""A hard death of the gateway (SIGKILL): the broker publishes the node's will, an NDEATH whose
bdSeq is the one of the NBIRTH it ends; the next start uses the next bdSeq (kept in the state
directory). The node runs in a child process (tests/support/sparkplug_node.py) fed every
0.2 s, against the real Mosquitto."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.sparkplug_host import seq_gaps

ROOT = Path(__file__).resolve().parents[3]




def start_node(state_dir: Path, group: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.support.sparkplug_node", str(state_dir),
                             group], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=open(state_dir / "node.log", "ab"), start_new_session=True)


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


async def test_will_ndeath_after_sigkill_carries_the_bdseq_of_the_nbirth(tmp_path, group, host):
    proc = start_node(tmp_path, group)
    try:
        births = await host.wait_kind("NBIRTH", timeout=30)
        await host.wait_kind("DDATA", count=3)
        kill(proc)
        death = (await host.wait_kind("NDEATH", timeout=30))[0]
        first = births[0].metric("bdSeq").value
        assert death.metric("bdSeq").value == first
        assert [m.name for m in death.metrics] == ["bdSeq"] and death.seq is None

        mark = len(host.messages)
        proc = start_node(tmp_path, group)
        second = (await host.wait_kind("NBIRTH", since=mark, timeout=30))[0]
        assert second.metric("bdSeq").value == (first + 1) % 256
        await host.wait_kind("DDATA", count=3, since=mark)
        kill(proc)
        death = (await host.wait_kind("NDEATH", since=mark, timeout=30))[0]
        assert death.metric("bdSeq").value == second.metric("bdSeq").value
        assert seq_gaps(host.messages) == []
    finally:
        kill(proc)
