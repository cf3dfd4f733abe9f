"""One call in a spawned child process that exits afterwards, awaited without blocking the loop.

The daemon runs PdM predictions and daily reports this way so scikit-learn and matplotlib are
loaded by a short-lived child and never stay resident in the daemon. The child is spawned
(not forked: the daemon's threads and sockets stay behind), runs at a lower CPU priority than
the scans, and ignores Ctrl-C and SIGTERM: the daemon decides when its work ends, and the
child exits after its one task or when the daemon's end of the pipe closes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def child_init(nice: int) -> None:
    """Initializer of the child: ``nice`` added to its priority, SIGINT and SIGTERM ignored.

    A sandbox that refuses ``setpriority`` (a seccomp filter) leaves the child at the daemon's
    priority: the work still runs, more aggressively, rather than failing at every start."""
    try:
        os.nice(nice)
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


async def run_in_child(function: Callable[..., Any], *args: Any, nice: int) -> Any:
    """``function(*args)`` (picklable, importable) in a spawned child process."""
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=child_init, initargs=(nice,))
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, function, *args)
    finally:
        # Joins the child off the loop; when the run was cancelled midway (shutdown), this
        # waits for its one task, a second or two.
        await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
