"""The simulator's failures as a maintenance record file (what `maintenance import` reads).

The simulated plant's equipment fails at known times (:mod:`simulator.degradation`); a real
plant would have a work order for each. :class:`RecordWriter` turns every new failure in the
model's event log into one CSV row as it happens (header first, one flushed line per failure):
the equipment, the failure time, a failure mode of the physics that wore it out, and the end of
the repair the simulator has scheduled (the machine is back in service then). Times go through
``to_epoch`` (simulated seconds -> epoch seconds): the live simulator maps them onto the wall
clock its values are stamped with, a faster-than-real-time history onto its own epoch base.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from analytics.pdm.records import COLUMNS, iso
from plant.schema import EquipmentType
from simulator.degradation import EventKind, durations_for
from simulator.model import PlantModel

# What wears out in each type's physics (simulator.model): a pump's and a compressor's bearing
# (vibration, bearing temperature, motor current up; head down), a furnace's tubes (tube-skin
# temperature up), an exchanger's fouling, a control valve's stiction.
FAILURE_MODES: dict[str, str] = {
    EquipmentType.PUMP.value: "bearing failure",
    EquipmentType.COMPRESSOR.value: "bearing failure",
    EquipmentType.FURNACE.value: "tube overheating (coking)",
    EquipmentType.EXCHANGER.value: "fouling",
    EquipmentType.VALVE.value: "stiction",
}


class RecordWriter:
    """Appends a record file row for each failure the model logs (call :meth:`poll` after steps)."""

    def __init__(self, path: Path, model: PlantModel):
        self.path = Path(path)
        self.model = model
        equipment = model.catalog.plant.equipment
        self._types = {e.id: e.type for e in equipment}
        # The repair takes the equipment's repair time (what Degradation schedules at a failure).
        self._repair_s = {e.id: d.repair_h * 3600.0 for e in equipment
                          if (d := durations_for(e)) is not None}
        self._seen = len(model.events)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._file: TextIO = self.path.open("a", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file, lineterminator="\n")
        if new:
            self._csv.writerow(COLUMNS)
            self._file.flush()
        self.written = 0

    def poll(self, to_epoch: Callable[[float], float]) -> int:
        """Write the failures logged since the last poll; returns how many."""
        events = self.model.events
        n = 0
        for event in events[self._seen:]:
            if event.kind != EventKind.FAILURE:
                continue
            repair = self._repair_s.get(event.equipment_id)
            mode = FAILURE_MODES.get(self._types.get(event.equipment_id, ""), "failure")
            self._csv.writerow([event.equipment_id, iso(round(to_epoch(event.time_s))), mode,
                                "" if repair is None else iso(round(to_epoch(event.time_s + repair)))])
            n += 1
        self._seen = len(events)
        if n:
            self._file.flush()
            self.written += n
        return n

    def close(self) -> None:
        self._file.close()
