"""A snapshot restored after a restart behaves exactly like the engine that was never stopped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from analytics.alarms import AlarmConfig, AlarmEngine
from drivers.batch import Batch
from drivers.quality import Quality
from plant.catalog import Catalog
from plant.load import load_plant

CATALOG = Catalog.build(load_plant(Path(__file__).parents[2] / "config" / "plant.toml"))
CONFIG = AlarmConfig(on_delay_s=2, off_delay_s=5, bad_quality_delay_s=3, comm_loss_delay_s=2,
                     auto_ack_after_s=120)
TAGS = ["TI-101", "PI-103", "FI-102", "LI-305"]


def scans(n: int):
    """A deterministic, eventful script: excursions, bad quality, a device outage."""
    rng = np.random.default_rng(42)
    idx = CATALOG.indices(TAGS)
    lo, hi = CATALOG.normal_min[idx], CATALOG.normal_max[idx]
    for k in range(n):
        values = lo + (hi - lo) * rng.uniform(-0.6, 1.6, len(idx))
        quality = np.where(rng.uniform(size=len(idx)) < 0.1, Quality.BAD, Quality.GOOD)
        yield float(k), Batch.build("g", "plc-1", k, k, idx, values, quality, np.zeros(len(idx)))


def run(engine: AlarmEngine, script, on_step=None):
    out = []
    for now, batch in script:
        if now == 40:
            out += engine.device_status("plc-1", False, now)
        if now == 47:
            out += engine.device_status("plc-1", True, now)
        out += engine.process(batch, now)
        out += engine.tick(now + 0.5)
        if now % 17 == 0:
            for alarm in engine.active()[:1]:
                out += engine.acknowledge(alarm.key, "op", None, now + 0.6)
        if now == 23:
            out += engine.shelve("PI-103/PROCESS", "op", until=now + 30, now=now + 0.7)
    return out


def test_snapshot_restore_gives_identical_behaviour():
    script = list(scans(200))
    reference = AlarmEngine(CATALOG, CONFIG)
    expected = run(reference, script)

    first = AlarmEngine(CATALOG, CONFIG)
    before = run(first, script[:100])
    saved = json.loads(json.dumps(first.snapshot()))  # survives the trip through JSON
    restored = AlarmEngine.restore(CATALOG, CONFIG, saved)
    after = run(restored, script[100:])

    assert len(expected) > 50
    assert before + after == expected
    assert restored.active() == reference.active()


def test_restore_continues_seq_beyond_a_newer_journal():
    engine = AlarmEngine(CATALOG, CONFIG)
    run(engine, list(scans(30)))
    restored = AlarmEngine.restore(CATALOG, CONFIG, engine.snapshot(), min_seq=engine.seq + 100)
    out = run(restored, list(scans(60))[30:])
    assert out and out[0].seq == engine.seq + 101


def test_restore_drops_tags_no_longer_in_the_catalog():
    engine = AlarmEngine(CATALOG, CONFIG)
    run(engine, list(scans(50)))
    snap = engine.snapshot()
    snap["tags"]["GONE-1"] = snap["tags"].popitem()[1] if snap["tags"] else {}
    for alarm in snap["alarms"]:
        if alarm["alarm_class"] != "COMM_LOSS":
            alarm["tag_id"] = "GONE-1"
            break
    restored = AlarmEngine.restore(CATALOG, CONFIG, snap)
    assert all(a.tag_id != "GONE-1" for a in restored.active())
