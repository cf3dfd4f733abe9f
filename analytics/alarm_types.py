"""The vocabulary of alarms: states, kinds, severities, a transition and an alarm's standing.

States follow ISA-18.2 / IEC 62682 (figure "alarm state transition diagram"): an alarm is
normal, active and unacknowledged, active and acknowledged, returned to normal but still
unacknowledged, shelved by an operator (with an expiry) or suppressed (out of service).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import IntEnum, StrEnum
from typing import Any


class Severity(StrEnum):
    """The seed's three severities (alert_severity table)."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"

    @property
    def rank(self) -> int:
        """1 LOW, 2 MEDIUM, 3 HIGH: comparable, and the engine's numeric column."""
        return _SEVERITY_RANK[self]

    @classmethod
    def from_rank(cls, rank: int) -> Severity:
        return _RANK_SEVERITY[rank]


_SEVERITY_RANK = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3}
_RANK_SEVERITY = {v: k for k, v in _SEVERITY_RANK.items()}


class AlarmState(StrEnum):
    """ISA-18.2 alarm states."""

    NORMAL = "NORMAL"
    UNACK = "ACTIVE_UNACK"
    ACKED = "ACTIVE_ACK"
    RTN_UNACK = "RTN_UNACK"
    SHELVED = "SHELVED"
    SUPPRESSED = "SUPPRESSED"  # out of service

    @property
    def is_active(self) -> bool:
        """The alarm condition is annunciated as present."""
        return self in (AlarmState.UNACK, AlarmState.ACKED)

    @property
    def is_unacknowledged(self) -> bool:
        return self in (AlarmState.UNACK, AlarmState.RTN_UNACK)


ACTIVE_STATES = (AlarmState.UNACK, AlarmState.ACKED)


class AlarmKind(StrEnum):
    """What raised an alarm: a process limit, bad quality of a tag, or loss of a device."""

    LO = "LO"
    LOLO = "LOLO"
    HI = "HI"
    HIHI = "HIHI"
    BAD_QUALITY = "BAD_QUALITY"
    COMM_LOSS = "COMM_LOSS"


class AlarmClass(StrEnum):
    """The alarm points of a source: one process alarm (LO/LOLO/HI/HIHI) and one bad-quality
    alarm per tag, one communication-loss alarm per device. The class names the point in an
    alarm key, ``"<tag_id>/PROCESS"``, ``"<tag_id>/BAD_QUALITY"``, ``"<device_id>/COMM_LOSS"``."""

    PROCESS = "PROCESS"
    BAD_QUALITY = "BAD_QUALITY"
    COMM_LOSS = "COMM_LOSS"


class Condition(IntEnum):
    """The debounced process condition of a tag, as stored in the engine's int8 column."""

    NORMAL = 0
    LO = 1
    LOLO = 2
    HI = 3
    HIHI = 4

    @property
    def kind(self) -> AlarmKind:
        return AlarmKind[self.name]

    @property
    def is_high(self) -> bool:
        return self in (Condition.HI, Condition.HIHI)


AUTO_ACK_USER = "system:auto-ack"
SYSTEM_USER = "system"


def alarm_key(source: str, alarm_class: AlarmClass) -> str:
    """The stable key of an alarm point: ``"TI-101/PROCESS"``."""
    return f"{source}/{alarm_class.value}"


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """One journaled change of an alarm: the unit the journal, the outbox and MQTT carry.

    ``seq`` increases strictly over the engine's life (and across restarts via snapshots);
    ``alarm_id`` names one occurrence, from activation to return to normal, so consumers can
    de-duplicate and group. ``tag_id`` is the source: the tag, or the device for COMM_LOSS.
    A transition with ``from_state == to_state`` records an escalation of kind or severity.
    """

    seq: int
    alarm_id: str
    key: str
    tag_id: str
    kind: AlarmKind
    from_state: AlarmState
    to_state: AlarmState
    severity: Severity
    value: float | None
    limit: float | None
    time: float
    user: str | None = None
    comment: str | None = None
    automatic: bool = False
    doubtful: bool = False
    unit_id: str | None = None
    device_id: str | None = None
    message: str = ""

    @property
    def is_activation(self) -> bool:
        """The alarm became active: an alarm-rate KPI counts these."""
        return self.to_state == AlarmState.UNACK and not self.from_state.is_active

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (enums as their string values, NaN as None)."""
        out = asdict(self)
        for name in ("kind", "from_state", "to_state", "severity"):
            out[name] = out[name].value
        for name in ("value", "limit"):
            if out[name] is not None and out[name] != out[name]:
                out[name] = None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlarmTransition:
        return cls(**{**data, "kind": AlarmKind(data["kind"]),
                      "from_state": AlarmState(data["from_state"]),
                      "to_state": AlarmState(data["to_state"]),
                      "severity": Severity(data["severity"])})


@dataclass(frozen=True, slots=True)
class Alarm:
    """The standing of one alarm point that is not NORMAL (what an alarm list displays)."""

    key: str
    alarm_class: AlarmClass
    tag_id: str
    state: AlarmState
    kind: AlarmKind
    severity: Severity
    alarm_id: str | None = None
    value: float | None = None
    limit: float | None = None
    raised_at: float | None = None
    # When the current unacknowledged period began (the auto-acknowledge timer starts here).
    unacked_since: float | None = None
    acked_at: float | None = None
    acked_by: str | None = None
    ack_comment: str | None = None
    automatic_ack: bool = False
    shelved_until: float | None = None
    shelved_by: str | None = None
    # Condition underneath a shelved or suppressed alarm, so unshelving annunciates it.
    condition_active: bool = False
    doubtful: bool = False
    unit_id: str | None = None
    device_id: str | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("alarm_class", "state", "kind", "severity"):
            out[name] = out[name].value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alarm:
        return cls(**{**data, "alarm_class": AlarmClass(data["alarm_class"]),
                      "state": AlarmState(data["state"]), "kind": AlarmKind(data["kind"]),
                      "severity": Severity(data["severity"])})
