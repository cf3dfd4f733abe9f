"""The writes the simulator's servers receive: what each device answers, and the log of them.

Both protocol servers hand every write they receive to one :class:`WriteDesk`, which decides
as the device would and keeps a log (device, tag, value, time, outcome), so a test can prove
what reached the device and how often. Per device, a mode set through the control API
(``POST /writes``) makes it misbehave:

- ``normal``: a write to a writable tag inside its instrument range is applied to the model
  (:meth:`simulator.model.PlantModel.write`) and answered; a write to any other address is
  refused as not writable (Modbus exception 0x02 IllegalDataAddress, OPC-UA BadNotWritable),
  a value outside the instrument range as such (0x03 IllegalDataValue, BadOutOfRange).
- ``refuse``: every write is refused (Modbus exception 0x04 ServerDeviceFailure, OPC-UA
  BadNotWritable) and changes nothing, as a PLC in local or program mode does.
- ``timeout``: no write is answered, ever (reads still are). With ``apply`` the write takes
  effect all the same (it reached the device, the answer was lost); without, it does not.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from simulator.controls import OutOfRange, WriteRejected
from simulator.faults import Device
from simulator.model import PlantModel

LOG_SIZE = 1000


class WriteMode(StrEnum):
    NORMAL = "normal"
    REFUSE = "refuse"
    TIMEOUT = "timeout"


class Verdict(StrEnum):
    """What a device did with one write."""

    APPLIED = "applied"
    NOT_WRITABLE = "not_writable"
    OUT_OF_RANGE = "out_of_range"
    REFUSED = "refused"
    UNANSWERED = "unanswered"


@dataclass(frozen=True)
class ReceivedWrite:
    """One write as a server received it: ``time`` is wall clock (epoch s), ``time_s`` simulated."""

    device: Device
    tag_id: str
    value: float
    time: float
    time_s: float
    outcome: Verdict
    applied: bool

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device.value, "tag_id": self.tag_id, "value": self.value, "time": self.time,
                "time_s": self.time_s, "outcome": self.outcome.value, "applied": self.applied}


class WriteDesk:
    """Decides every write the servers receive (see the module docstring) and logs it."""

    def __init__(self, model: PlantModel):
        self.model = model
        self.modes: dict[Device, WriteMode] = {d: WriteMode.NORMAL for d in Device}
        self.apply_unanswered: dict[Device, bool] = {d: False for d in Device}
        self.log: deque[ReceivedWrite] = deque(maxlen=LOG_SIZE)
        self._listeners: list[Callable[[int], None]] = []

    def on_applied(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(index)`` after every write that changed the model, with the catalog
        index of the written tag: a server republishes that tag at once (a write changes no
        other reported value until the model's next step)."""
        self._listeners.append(listener)

    def set_mode(self, mode: WriteMode, device: Device | None = None, apply: bool = False) -> None:
        """Set how ``device`` (both when None) answers writes from now on."""
        for d in Device if device is None else (device,):
            self.modes[d] = mode
            self.apply_unanswered[d] = apply and mode == WriteMode.TIMEOUT

    def clear(self) -> None:
        self.log.clear()

    def receive(self, device: Device, index: int, value: float) -> Verdict:
        """Decide one write of ``value`` to catalog tag ``index`` arriving at ``device``."""
        mode = self.modes[device]
        applied = False
        if mode == WriteMode.REFUSE:
            verdict = Verdict.REFUSED if self.model.catalog.tags[index].writable else Verdict.NOT_WRITABLE
        else:
            verdict = Verdict.UNANSWERED if mode == WriteMode.TIMEOUT else Verdict.APPLIED
            if mode == WriteMode.NORMAL or self.apply_unanswered[device]:
                try:
                    self.model.write(index, value)
                    applied = True
                except OutOfRange:
                    verdict = verdict if mode == WriteMode.TIMEOUT else Verdict.OUT_OF_RANGE
                except WriteRejected:
                    verdict = verdict if mode == WriteMode.TIMEOUT else Verdict.NOT_WRITABLE
        self.log.append(ReceivedWrite(device, self.model.catalog.tags[index].id, value, time.time(),
                                      self.model.time_s, verdict, applied))
        if applied:
            for listener in self._listeners:
                listener(index)
        return verdict

    def state(self) -> dict[str, Any]:
        """The modes and the log, for ``GET /writes``."""
        return {"modes": {d.value: m.value for d, m in self.modes.items()},
                "apply_unanswered": {d.value: a for d, a in self.apply_unanswered.items()},
                "writes": [w.as_dict() for w in self.log]}
