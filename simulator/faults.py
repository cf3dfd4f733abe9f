"""Fault injection: what can go wrong with an instrument or a protocol front-end.

Instrument faults act on one tag's *reported* value, never on the process itself:

- ``stuck``: the value freezes at its value when the fault starts.
- ``spike``: the value jumps by three normal spans (clipped inside the instrument range).
- ``out_of_range``: the value reads 10 % of the instrument span beyond instrument_max.
- ``bad_quality``: OPC-UA reports the value with StatusCode ``BadSensorFailure``; the Modbus
  server answers any read touching the tag's registers or bits with exception 0x04
  (SERVER_DEVICE_FAILURE), as a field device does when a channel's input card fails. (A value
  outside the instrument range is the separate ``out_of_range`` fault.)

Device faults act on a whole front-end:

- ``silence``: the OPC-UA or Modbus server stops answering (requests get no reply, so clients
  time out) for the duration, then answers again on the same connections.

Every duration is in simulated seconds. Requests come from the control API
(``POST /faults``) or from a TOML schedule (``--faults FILE``), both validated by
:class:`FaultRequest`; ``degrade`` requests (``POST /equipment/{id}/degrade``) set an
equipment's hidden health. A schedule file looks like::

    [[faults]]
    at_s = 60
    tag_id = "TI-101"
    kind = "stuck"
    duration_s = 30

    [[faults]]
    at_s = 120
    device = "modbus"
    kind = "silence"
    duration_s = 5

    [[faults]]
    at_s = 300
    equipment_id = "PUMP-101"
    kind = "degrade"
    health = 0.2
"""

from __future__ import annotations

import tomllib
from enum import IntEnum, StrEnum
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# OPC-UA StatusCode BadSensorFailure (Part 4, 7.34): the value is unusable.
BAD_SENSOR_FAILURE = 0x808C0000
STATUS_GOOD = 0
SPIKE_SPANS = 3.0
OUT_OF_RANGE_FRACTION = 0.10


class FaultKind(IntEnum):
    """Instrument fault per tag (int8 column); NONE = reporting the process faithfully."""

    NONE = 0
    STUCK = 1
    SPIKE = 2
    OUT_OF_RANGE = 3
    BAD_QUALITY = 4


class Device(StrEnum):
    OPCUA = "opcua"
    MODBUS = "modbus"


class RequestKind(StrEnum):
    STUCK = "stuck"
    SPIKE = "spike"
    OUT_OF_RANGE = "out_of_range"
    BAD_QUALITY = "bad_quality"
    SILENCE = "silence"
    DEGRADE = "degrade"


TAG_FAULTS = {
    RequestKind.STUCK: FaultKind.STUCK,
    RequestKind.SPIKE: FaultKind.SPIKE,
    RequestKind.OUT_OF_RANGE: FaultKind.OUT_OF_RANGE,
    RequestKind.BAD_QUALITY: FaultKind.BAD_QUALITY,
}


class FaultRequest(BaseModel):
    """One fault, from the control API or a schedule (``at_s`` only in schedules)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: RequestKind
    tag_id: str | None = None
    device: Device | None = None
    equipment_id: str | None = None
    duration_s: float = Field(default=30.0, gt=0)
    health: float | None = Field(default=None, ge=0, le=1)
    at_s: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _target_matches_kind(self) -> FaultRequest:
        if self.kind in TAG_FAULTS and self.tag_id is None:
            raise ValueError(f"kind '{self.kind.value}' needs tag_id")
        if self.kind == RequestKind.SILENCE and self.device is None:
            raise ValueError("kind 'silence' needs device (opcua or modbus)")
        if self.kind == RequestKind.DEGRADE and (self.equipment_id is None or self.health is None):
            raise ValueError("kind 'degrade' needs equipment_id and health")
        return self


class FaultSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    faults: list[FaultRequest] = []


def load_schedule(path: Path) -> list[FaultRequest]:
    """Read a TOML fault schedule, sorted by ``at_s``; raises ValueError naming the field."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
        schedule = FaultSchedule.model_validate(data)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in exc.errors())
        raise ValueError(f"{path}: {problems}") from None
    for i, fault in enumerate(schedule.faults):
        if fault.at_s is None:
            raise ValueError(f"{path}: faults.{i}.at_s: required in a schedule")
    return sorted(schedule.faults, key=lambda f: f.at_s or 0.0)


class FaultBook:
    """Active faults: per-tag columns plus per-device silence, applied to reported values."""

    def __init__(self, n_tags: int, normal_span: np.ndarray, instrument_min: np.ndarray,
                 instrument_max: np.ndarray):
        self.kind = np.zeros(n_tags, dtype=np.int8)
        self.until_s = np.zeros(n_tags)
        self.frozen = np.zeros(n_tags)
        self.silent_until_s: dict[Device, float] = {d: -np.inf for d in Device}
        finite = np.isfinite(instrument_min) & np.isfinite(instrument_max)
        span = np.where(finite, instrument_max - instrument_min, 10.0 * normal_span)
        self._spike_delta = SPIKE_SPANS * np.maximum(normal_span, 1.0)
        self._out_of_range = np.where(np.isfinite(instrument_max),
                                      instrument_max + OUT_OF_RANGE_FRACTION * span, 1e9)
        self._instrument_min = instrument_min
        self._instrument_max = instrument_max
        self._any = False

    def inject(self, index: int, kind: FaultKind, now_s: float, duration_s: float,
               current_value: float) -> None:
        """Start an instrument fault on tag ``index`` for ``duration_s`` simulated seconds."""
        self.kind[index] = kind
        self.until_s[index] = now_s + duration_s
        self.frozen[index] = current_value
        self._any = True

    def silence(self, device: Device, now_s: float, duration_s: float) -> None:
        self.silent_until_s[device] = now_s + duration_s

    def is_silent(self, device: Device, now_s: float) -> bool:
        return now_s < self.silent_until_s[device]

    def active(self, now_s: float) -> list[tuple[int, FaultKind, float]]:
        """(tag index, kind, until_s) of the faults active at ``now_s``."""
        idx = np.flatnonzero((self.kind != FaultKind.NONE) & (self.until_s > now_s))
        return [(int(i), FaultKind(int(self.kind[i])), float(self.until_s[i])) for i in idx]

    def apply(self, now_s: float, values: np.ndarray, status: np.ndarray) -> None:
        """Overwrite, in place, the reported values and status codes of faulty tags."""
        status[:] = STATUS_GOOD
        if not self._any:
            return
        expired = (self.kind != FaultKind.NONE) & (self.until_s <= now_s)
        self.kind[expired] = FaultKind.NONE
        if not self.kind.any():
            self._any = False
            return
        stuck = self.kind == FaultKind.STUCK
        values[stuck] = self.frozen[stuck]
        spike = self.kind == FaultKind.SPIKE
        values[spike] = np.minimum(values[spike] + self._spike_delta[spike], self._instrument_max[spike])
        oor = self.kind == FaultKind.OUT_OF_RANGE
        values[oor] = self._out_of_range[oor]
        status[self.kind == FaultKind.BAD_QUALITY] = BAD_SENSOR_FAILURE

    def bad_quality_mask(self) -> np.ndarray:
        """Tags whose reads must fail (Modbus exception) right now."""
        return self.kind == FaultKind.BAD_QUALITY
