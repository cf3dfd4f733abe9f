"""Background work runs in the idle scheduling class with its numeric libraries at one thread.

Each check looks at a real spawned process (its scheduling policy, nice value, environment
and loaded thread pools), never at this test process, which stays as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

from gateway.runtime.child_process import IDLE, THREAD_LIMIT_VARS, run_in_child

ROOT = Path(__file__).resolve().parents[2]

# Loads numpy (whose OpenBLAS starts its thread pool at import), goes to the background, then
# reports every thread's policy, the thread pools and what two joblib workers started later got.
PROBE = """
import json, os
import numpy
from joblib import Parallel, delayed
from threadpoolctl import threadpool_info
from gateway.runtime.child_process import THREAD_LIMIT_VARS, run_in_background

def worker():
    return {"policy": os.sched_getscheduler(0), "openblas": os.environ.get("OPENBLAS_NUM_THREADS"),
            "pools": [p["num_threads"] for p in threadpool_info()]}

got = run_in_background()
threads = [int(t) for t in os.listdir("/proc/self/task")]
print(json.dumps({"got": got, "threads": len(threads),
                  "policies": [os.sched_getscheduler(t) for t in threads],
                  "env": {k: os.environ.get(k) for k in THREAD_LIMIT_VARS},
                  "pools": [p["num_threads"] for p in threadpool_info()],
                  "workers": Parallel(n_jobs=2)(delayed(worker)() for _ in range(4))}))
"""


def _probe(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={k: v for k, v in os.environ.items() if k not in THREAD_LIMIT_VARS})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_run_in_background_puts_every_thread_in_the_idle_class_with_one_library_thread():
    report = _probe(PROBE)
    assert report["got"] == IDLE
    assert report["threads"] > 1  # OpenBLAS's pool was running before the call
    assert report["policies"] == [os.SCHED_IDLE] * report["threads"]
    assert set(report["env"].values()) == {"1"}
    assert report["pools"] and set(report["pools"]) == {1}


def test_worker_processes_started_later_inherit_the_idle_class_and_the_thread_limit():
    workers = _probe(PROBE)["workers"]
    assert [w["policy"] for w in workers] == [os.SCHED_IDLE] * 4
    assert {w["openblas"] for w in workers} == {"1"}
    assert all(set(w["pools"]) <= {1} for w in workers)


def test_a_refused_idle_class_falls_back_to_a_nice_value():
    report = _probe("""
import json, os
from gateway.runtime import child_process

def refuse(*args):
    raise PermissionError(1, "Operation not permitted")

os.sched_setscheduler = refuse  # what a seccomp filter without sched_setscheduler answers
got = child_process.run_in_background()
print(json.dumps({"got": got, "policy": os.sched_getscheduler(0), "nice": os.getpriority(os.PRIO_PROCESS, 0),
                  "fallback": child_process.FALLBACK_NICE}))
""")
    assert report["got"].startswith("SCHED_IDLE refused")
    assert report["policy"] == os.SCHED_OTHER
    assert report["nice"] >= report["fallback"]


async def test_run_in_child_runs_the_call_niced_and_in_the_idle_class():
    assert await run_in_child(os.sched_getscheduler, 0, nice=5) == os.SCHED_IDLE
    assert await run_in_child(os.getpriority, os.PRIO_PROCESS, 0, nice=5) >= 5 + os.getpriority(os.PRIO_PROCESS, 0)
    assert await run_in_child(os.getenv, "OPENBLAS_NUM_THREADS", nice=5) == "1"
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # this process is left as it was


def test_the_training_started_as_the_daemon_starts_it_runs_in_the_idle_class(tmp_path: Path):
    # The daemon's command (gateway.services.maintenance train_command): python -m refineryiq.train.
    proc = subprocess.Popen([sys.executable, "-m", "refineryiq.train", "--runs", "4", "--dt", "3600",
                             "--types", "VALVE", "--jobs", "2", "--out", str(tmp_path)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[int, set[int]] = {}
    while proc.poll() is None:
        try:
            tree = [proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))]
        except psutil.Error:  # ended meanwhile
            break
        for pid in tree:
            try:
                seen.setdefault(pid, set()).add(os.sched_getscheduler(pid))
            except OSError:  # ended meanwhile
                continue
        time.sleep(0.02)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert err.splitlines()[0].startswith(f"scheduling {IDLE}")
    workers = [pid for pid in seen if pid != proc.pid]
    assert workers, "no worker process was seen"
    assert seen[proc.pid] - {os.SCHED_OTHER} == {os.SCHED_IDLE}  # OTHER only before the call
    assert all(seen[pid] == {os.SCHED_IDLE} for pid in workers)
    assert (tmp_path / "VALVE.card.json").is_file()
