"""A committed append survives SIGKILL of the process that made it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from gateway.store.embedded import EmbeddedStore

REPO = Path(__file__).resolve().parents[2]
IDS_BEFORE_KILL = 40

# The child appends 1,000-value batches as fast as it can and prints each id once committed.
CHILD = """
import asyncio, sys
from pathlib import Path
import numpy as np
from drivers.batch import Batch
from gateway.store.embedded import EmbeddedStore

async def main():
    store = EmbeddedStore(Path(sys.argv[1]), retention_s=1e9, max_bytes=10**10, forwarding=True)
    await store.open()
    tags = np.arange(1000)
    i = 0
    while True:
        batch = Batch.build("fast", "plc-1", 1000.0 + i, 1000.0 + i, tags, tags + float(i),
                            np.full(1000, 192), np.zeros(1000))
        print("committed", await store.append(batch), i, flush=True)
        i += 1

asyncio.run(main())
"""


async def test_every_acknowledged_append_survives_sigkill(tmp_path):
    path = tmp_path / "store.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(path), cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    acknowledged: dict[int, int] = {}
    try:
        while len(acknowledged) < IDS_BEFORE_KILL:
            line = await asyncio.wait_for(child.stdout.readline(), timeout=30)
            assert line, "the child exited before appending"
            if line.startswith(b"committed "):  # other lines are the store's logs
                batch_id, sequence = map(int, line.split()[1:])
                acknowledged[batch_id] = sequence
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL

    store = EmbeddedStore(path, retention_s=1e9, max_bytes=10**10, forwarding=True)
    await store.open()
    try:
        stored = {s.id: s.batch for s in await store.pending(after_id=0, max_values=10**9)}
    finally:
        await store.close()
    assert set(acknowledged) <= set(stored)
    for batch_id, sequence in acknowledged.items():
        assert stored[batch_id].values[0] == float(sequence)
