"""A gateway state directory filled with simulated plant history, faster than real time.

The simulator's plant model (every machine wearing, failing and being repaired on its own
schedule) is stepped with a large ``dt``, and every step's values go into the gateway's embedded
store as one scan of every catalog tag, stamped ``start_epoch + simulated seconds``; meanwhile
the simulator's record export (:class:`simulator.records.RecordWriter`) writes the failures as a
maintenance record file on the same clock. What ``refineryiq train --from-history`` would find
on a gateway that had watched the plant for ``hours``. (Composes simulator and gateway, which
never import each other, so it lives here.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drivers.batch import Batch
from drivers.quality import Quality, Reason
from gateway.store.embedded import EmbeddedStore
from plant.catalog import Catalog
from plant.schema import Plant
from simulator.degradation import EquipmentEvent, EventKind
from simulator.model import PlantModel
from simulator.records import RecordWriter

APPEND_CHUNK = 500


@dataclass(frozen=True)
class PlantHistory:
    history_path: Path
    records_path: Path
    start_epoch: float
    failures: list[EquipmentEvent]  # simulated times (add start_epoch for epoch seconds)


def past_start(hours: float) -> float:
    """An hour-aligned epoch start such that ``hours`` of history end before now."""
    return float(np.floor(time.time() / 3600.0) * 3600.0 - (hours + 24.0) * 3600.0)


async def simulate_plant_history(state_dir: Path, records_path: Path, plant: Plant, hours: float,
                                 dt: float = 600.0, seed: int = 1,
                                 start_epoch: float | None = None) -> PlantHistory:
    """Step the plant for ``hours`` at ``dt``, storing every step and exporting its failures."""
    start = past_start(hours) if start_epoch is None else start_epoch
    catalog = Catalog.build(plant)
    model = PlantModel(catalog, seed=seed)
    store = EmbeddedStore(state_dir / "history.sqlite", retention_s=10 * 365 * 86400.0, max_bytes=10**10,
                          tag_ids=[t.id for t in catalog.tags])
    await store.open()
    writer = RecordWriter(records_path, model)
    index = np.arange(len(catalog), dtype=np.int32)
    reason = np.zeros(len(catalog), dtype=np.uint8)
    pending: list[Batch] = []
    try:
        for _ in range(int(hours * 3600.0 / dt)):
            model.step(dt)
            now = start + model.time_s
            quality = np.where(model.status == 0, Quality.GOOD, Quality.BAD).astype(np.uint8)
            pending.append(Batch.build("sim", "simulator", now, now, index, model.values.copy(), quality,
                                       np.where(model.status == 0, 0, Reason.DEVICE_BAD).astype(np.uint8)
                                       if model.status.any() else reason))
            writer.poll(lambda s: start + s)
            if len(pending) >= APPEND_CHUNK:
                await store.append_many(pending)
                pending = []
        await store.append_many(pending)
    finally:
        writer.close()
        await store.close()
    failures = [e for e in model.events if e.kind == EventKind.FAILURE]
    return PlantHistory(state_dir / "history.sqlite", records_path, start, failures)
