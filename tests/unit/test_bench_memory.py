"""bench/memory.py's grouping of tracemalloc traces and of the process tree's samples."""

from __future__ import annotations

import tracemalloc

from bench.memory import owner_of, package_of, summarize_tree
from tests.support.daemon import ROOT

SITE = "/venv/lib/python3.11/site-packages"


def frames(*filenames: str) -> tracemalloc.Traceback:
    # tracemalloc's raw frames are most recent first; a Traceback holds them oldest first
    return tracemalloc.Traceback(tuple((name, 1) for name in reversed(filenames)))


def test_owner_is_the_innermost_project_frame_else_the_allocating_package():
    catalog = str(ROOT / "plant" / "catalog.py")
    daemon = str(ROOT / "gateway" / "daemon.py")
    # oldest first: the daemon called the catalog, which called pydantic, which allocated
    assert owner_of(frames(daemon, catalog, f"{SITE}/pydantic/main.py")) == "plant.catalog"
    assert owner_of(frames(f"{SITE}/asyncio_x/a.py", f"{SITE}/asyncua/server.py")) == "<library> asyncua"
    assert owner_of(frames("<frozen importlib._bootstrap_external>")) == "<imports>"
    assert package_of("/usr/lib/python3.11/json/decoder.py") == "stdlib decoder"


def test_tree_without_the_simulator_leaves_it_out():
    samples = [[{"role": "daemon", "rss_mb": 100.0, "pss_mb": 90.0},
                {"role": "simulator", "rss_mb": 200.0, "pss_mb": 180.0},
                {"role": "resource_tracker", "rss_mb": 20.0, "pss_mb": 10.0}]] * 3
    whole = summarize_tree(samples, without_simulator=False)
    unit = summarize_tree(samples, without_simulator=True)
    assert (whole["pss_mb"], whole["rss_mb"]) == (280.0, 320.0)
    assert (unit["pss_mb"], unit["rss_mb"]) == (100.0, 120.0)
    assert "simulator" not in unit["pss_by_role_mb"]
