"""Background work of the daemon: one call in a spawned child, and the low priority it runs at.

The daemon runs PdM predictions, baseline fits and daily reports through :func:`run_in_child`
so scikit-learn and matplotlib are loaded by a short-lived child and never stay resident in the
daemon. The child is spawned (not forked: the daemon's threads and sockets stay behind), runs
in the background (:func:`run_in_background`), and ignores Ctrl-C and SIGTERM: the daemon
decides when its work ends, and the child exits after its one task or when the daemon's end of
the pipe closes. The first-start training (``refineryiq train``) puts itself in the background
the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import structlog

IDLE = "SCHED_IDLE"
# What the background gets when the idle class is refused (a seccomp filter without
# sched_setscheduler): at least this nice value.
FALLBACK_NICE = 10
# Read by the numeric libraries when they load (OpenMP, OpenBLAS, MKL, ...) and inherited by
# the processes started later (joblib's workers keep a value that is already set).
THREAD_LIMIT_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                     "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def _threads() -> list[int]:
    """Thread ids of this process (the library thread pools started at import included)."""
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # no /proc: the calling thread only
        return [0]


def run_in_background(threads: int = 1) -> str:
    """Put this process in the background for the rest of its life; returns what it got.

    Every thread of the process goes to the idle scheduling class (``SCHED_IDLE``): it runs
    only on a CPU no normal task wants, and a waking scan or HTTP handler of the daemon
    preempts it at once instead of waiting out its time slice, as it would against a nice
    value. Processes started later inherit the class, and the kernel gives its tasks the idle
    I/O class too. If the class is refused, each thread gets at least ``FALLBACK_NICE``. The
    numeric libraries are held to ``threads`` threads (through the environment for the
    libraries and processes loaded later, threadpoolctl for those already loaded), so the work
    never runs more threads than it was given processes."""
    for name in THREAD_LIMIT_VARS:
        os.environ[name] = str(threads)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=threads)
    except ImportError:  # only installed with scikit-learn; nothing loaded to limit then
        pass
    try:
        for tid in _threads():
            try:
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            except ProcessLookupError:  # a thread that ended meanwhile
                continue
        return IDLE
    except (OSError, AttributeError) as exc:  # a seccomp filter; not Linux
        refused = f"SCHED_IDLE refused ({exc})"
    try:
        for tid in _threads():
            with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
                os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), FALLBACK_NICE))
        return f"{refused}; nice {os.getpriority(os.PRIO_PROCESS, 0)}"
    except OSError as exc:
        return f"{refused}; nice refused too ({exc})"


def child_init(nice: int) -> None:
    """Initializer of the child: ``nice`` added to its priority, then the background
    (:func:`run_in_background`); SIGINT and SIGTERM ignored.

    A sandbox that refuses ``setpriority`` and ``sched_setscheduler`` (a seccomp filter) leaves
    the child at the daemon's priority: the work still runs, more aggressively, rather than
    failing at every start, with one warning line on its output (the daemon's journal)."""
    try:
        os.nice(nice)
    except OSError:
        pass
    got = run_in_background()
    if got != IDLE:
        structlog.get_logger(__name__).warning("child_process.not_idle", scheduling=got)
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
