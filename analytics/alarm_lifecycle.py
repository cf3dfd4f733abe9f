"""The ISA-18.2 state machine of alarm points, and the journal of its transitions.

The engine (`analytics.alarms`) decides *when* a condition becomes present or absent; this
module decides what that means for the alarm the operator sees (ISA-18.2 / IEC 62682 state
diagram) and journals every change as an :class:`AlarmTransition` with a strictly increasing
``seq``. It holds only the points that are not NORMAL.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from analytics.alarm_types import (
    AUTO_ACK_USER,
    SYSTEM_USER,
    Alarm,
    AlarmClass,
    AlarmKind,
    AlarmState,
    AlarmTransition,
    Severity,
)


@dataclass(frozen=True, slots=True)
class AlarmPoint:
    """Where an alarm comes from: the key, the source (tag or device) and words for messages."""

    key: str
    alarm_class: AlarmClass
    tag_id: str
    name: str = ""
    engineering_units: str = ""
    unit_id: str | None = None
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """The alarm condition as the engine sees it: what is violated, by what value, how badly."""

    kind: AlarmKind
    severity: Severity
    value: float | None = None
    limit: float | None = None
    doubtful: bool = False


class AlarmError(KeyError):
    """An operator action names an alarm that does not exist."""


class AlarmLifecycle:
    """Alarm points that are not NORMAL, their transitions, and the journal sequence."""

    def __init__(self, seq: int = 0, alarms: dict[str, Alarm] | None = None):
        self.seq = seq
        self.alarms: dict[str, Alarm] = dict(alarms or {})

    def get(self, key: str) -> Alarm | None:
        return self.alarms.get(key)

    def find(self, alarm_id: str) -> Alarm | None:
        """The standing alarm of an occurrence id (e.g. from the HTTP API)."""
        return next((a for a in self.alarms.values() if a.alarm_id == alarm_id), None)

    # ------------------------------------------------------------------ condition events

    def activate(self, point: AlarmPoint, reading: Reading, now: float) -> list[AlarmTransition]:
        """The condition became present: annunciate a new occurrence (unless shelved/suppressed)."""
        current = self.alarms.get(point.key)
        if current is not None and current.state in (AlarmState.SHELVED, AlarmState.SUPPRESSED):
            self._store(_with_reading(current, reading, condition_active=True))
            return []
        if current is not None and current.state.is_active:
            return self.update(point, reading, now)
        return [self._raise(point, current, reading, now)]

    def update(self, point: AlarmPoint, reading: Reading, now: float) -> list[AlarmTransition]:
        """The active condition changed level (HI to HIHI) or its severity escalated.

        Escalation to HH/LL re-annunciates an acknowledged alarm: the operator acknowledged a
        lesser condition (ISA-18.2 treats HH as an alarm of its own).
        """
        current = self.alarms.get(point.key)
        if current is None or not current.state.is_active:
            if current is not None and current.state in (AlarmState.SHELVED, AlarmState.SUPPRESSED):
                self._store(_with_reading(current, reading, condition_active=True))
            return []
        to_state = current.state
        if reading.kind in (AlarmKind.HIHI, AlarmKind.LOLO) and current.kind not in (
                AlarmKind.HIHI, AlarmKind.LOLO) and current.state == AlarmState.ACKED:
            to_state = AlarmState.UNACK
        severity = max(current.severity, reading.severity, key=lambda s: s.rank)
        new = replace(_with_reading(current, replace(reading, severity=severity)), state=to_state,
                      unacked_since=now if to_state != current.state else current.unacked_since)
        change = (f"{current.kind.value} to {reading.kind.value}" if reading.kind != current.kind
                  else f"severity {current.severity.value} to {severity.value}")
        return [self._journal(point, current, new, now, message=f"{_label(point)}: {change}, "
                              f"{_value_text(point, reading.value, reading.limit, reading.kind)}")]

    def clear(self, point: AlarmPoint, value: float | None, doubtful: bool,
              now: float) -> list[AlarmTransition]:
        """The condition is gone: an acknowledged alarm returns to normal, else awaits ack."""
        current = self.alarms.get(point.key)
        if current is None:
            return []
        if current.state in (AlarmState.SHELVED, AlarmState.SUPPRESSED):
            self._store(replace(current, condition_active=False))
            return []
        if not current.state.is_active:
            return []
        to_state = AlarmState.NORMAL if current.state == AlarmState.ACKED else AlarmState.RTN_UNACK
        new = replace(current, state=to_state, value=value, doubtful=doubtful,
                      condition_active=False)
        where = f" ({_number(value)} {point.engineering_units})".rstrip() if value is not None else ""
        return [self._journal(point, current, new, now,
                              message=f"{_label(point)}: {current.kind.value} returned to normal{where}")]

    # ------------------------------------------------------------------ operator actions

    def acknowledge(self, point: AlarmPoint, user: str, comment: str | None, now: float,
                    automatic: bool = False) -> list[AlarmTransition]:
        """Operator (or auto-) acknowledge: UNACK to ACKED, RTN_UNACK to NORMAL, else nothing."""
        current = self.alarms.get(point.key)
        if current is None or not current.state.is_unacknowledged:
            return []
        to_state = AlarmState.ACKED if current.state == AlarmState.UNACK else AlarmState.NORMAL
        new = replace(current, state=to_state, acked_at=now, acked_by=user, ack_comment=comment,
                      automatic_ack=automatic, unacked_since=None)
        how = "automatically acknowledged" if automatic else f"acknowledged by {user}"
        return [self._journal(point, current, new, now, user=user, comment=comment,
                              automatic=automatic,
                              message=f"{_label(point)}: {current.kind.value} {how}")]

    def shelve(self, point: AlarmPoint, reading: Reading | None, user: str, until: float,
               comment: str | None, now: float) -> list[AlarmTransition]:
        """Shelve until ``until`` (epoch s): the alarm is hidden, its condition still tracked."""
        current = self._standing(point, reading)
        if current.state == AlarmState.SUPPRESSED:
            return []
        new = replace(current, state=AlarmState.SHELVED, shelved_until=until, shelved_by=user,
                      condition_active=reading is not None)
        when = datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds")
        return [self._journal(point, current, new, now, user=user, comment=comment,
                              message=f"{_label(point)}: shelved by {user} until {when}")]

    def remove_from_service(self, point: AlarmPoint, reading: Reading | None, user: str,
                            comment: str | None, now: float) -> list[AlarmTransition]:
        """Out of service (suppressed by design or maintenance) until returned to service."""
        current = self._standing(point, reading)
        if current.state == AlarmState.SUPPRESSED:
            return []
        new = replace(current, state=AlarmState.SUPPRESSED, shelved_until=None, shelved_by=user,
                      condition_active=reading is not None)
        return [self._journal(point, current, new, now, user=user, comment=comment,
                              message=f"{_label(point)}: removed from service by {user}")]

    def restore_to_service(self, point: AlarmPoint, from_state: AlarmState, user: str,
                           comment: str | None, now: float,
                           automatic: bool = False) -> list[AlarmTransition]:
        """Unshelve or return to service: a condition still present is annunciated anew."""
        current = self.alarms.get(point.key)
        if current is None or current.state != from_state:
            return []
        verb = "unshelved" if from_state == AlarmState.SHELVED else "returned to service"
        who = "shelve expired" if automatic else f"{verb} by {user}"
        released = replace(current, shelved_until=None, shelved_by=None)
        if current.condition_active:
            reading = Reading(current.kind, current.severity, current.value, current.limit,
                              current.doubtful)
            return [self._raise(point, released, reading, now, user=user, comment=comment,
                                automatic=automatic, prefix=f"{who}; ")]
        new = replace(released, state=AlarmState.NORMAL)
        return [self._journal(point, current, new, now, user=user, comment=comment,
                              automatic=automatic, message=f"{_label(point)}: {who}")]

    # ------------------------------------------------------------------ timers

    def due_auto_acks(self, now: float, after_s: float | None) -> list[Alarm]:
        """Unacknowledged alarms the seed's auto-acknowledge rule now applies to."""
        if after_s is None:
            return []
        return [a for a in self.alarms.values() if a.state.is_unacknowledged
                and a.unacked_since is not None and now - a.unacked_since >= after_s]

    def due_unshelves(self, now: float) -> list[Alarm]:
        return [a for a in self.alarms.values() if a.state == AlarmState.SHELVED
                and a.shelved_until is not None and a.shelved_until <= now]

    # ------------------------------------------------------------------ internals

    def _standing(self, point: AlarmPoint, reading: Reading | None) -> Alarm:
        current = self.alarms.get(point.key)
        if current is not None:
            return current
        kind = reading.kind if reading is not None else _default_kind(point.alarm_class)
        severity = reading.severity if reading is not None else Severity.LOW
        return Alarm(key=point.key, alarm_class=point.alarm_class, tag_id=point.tag_id,
                     state=AlarmState.NORMAL, kind=kind, severity=severity,
                     value=None if reading is None else reading.value,
                     limit=None if reading is None else reading.limit,
                     unit_id=point.unit_id, device_id=point.device_id)

    def _raise(self, point: AlarmPoint, previous: Alarm | None, reading: Reading, now: float,
               user: str | None = None, comment: str | None = None, automatic: bool = False,
               prefix: str = "") -> AlarmTransition:
        alarm_id = f"{point.key}#{self.seq + 1}"
        new = Alarm(key=point.key, alarm_class=point.alarm_class, tag_id=point.tag_id,
                    state=AlarmState.UNACK, kind=reading.kind, severity=reading.severity,
                    alarm_id=alarm_id, value=reading.value, limit=reading.limit, raised_at=now,
                    unacked_since=now, condition_active=True, doubtful=reading.doubtful,
                    unit_id=point.unit_id, device_id=point.device_id)
        text = f"{_label(point)}: {prefix}{reading.kind.value} alarm"
        detail = _value_text(point, reading.value, reading.limit, reading.kind)
        message = f"{text}, {detail} ({reading.severity.value})" if detail else \
            f"{text} ({reading.severity.value})"
        return self._journal(point, previous, new, now, user=user, comment=comment,
                             automatic=automatic, message=message)

    def _journal(self, point: AlarmPoint, previous: Alarm | None, new: Alarm, now: float,
                 message: str, user: str | None = None, comment: str | None = None,
                 automatic: bool = False) -> AlarmTransition:
        self.seq += 1
        new = replace(new, message=message)
        self._store(new)
        return AlarmTransition(
            seq=self.seq, alarm_id=new.alarm_id or f"{point.key}#{self.seq}", key=point.key,
            tag_id=point.tag_id, kind=new.kind,
            from_state=previous.state if previous is not None else AlarmState.NORMAL,
            to_state=new.state, severity=new.severity, value=new.value, limit=new.limit,
            time=now, user=user, comment=comment, automatic=automatic, doubtful=new.doubtful,
            unit_id=point.unit_id, device_id=point.device_id, message=message)

    def _store(self, alarm: Alarm) -> None:
        if alarm.state == AlarmState.NORMAL:
            self.alarms.pop(alarm.key, None)
        else:
            self.alarms[alarm.key] = alarm


def _with_reading(alarm: Alarm, reading: Reading, condition_active: bool | None = None) -> Alarm:
    return replace(alarm, kind=reading.kind, severity=reading.severity, value=reading.value,
                   limit=reading.limit, doubtful=reading.doubtful,
                   condition_active=alarm.condition_active if condition_active is None
                   else condition_active)


def _default_kind(alarm_class: AlarmClass) -> AlarmKind:
    # A process point shelved while normal has no violated limit yet; HI names it until one is.
    return {AlarmClass.PROCESS: AlarmKind.HI, AlarmClass.BAD_QUALITY: AlarmKind.BAD_QUALITY,
            AlarmClass.COMM_LOSS: AlarmKind.COMM_LOSS}[alarm_class]


def _label(point: AlarmPoint) -> str:
    return f"{point.tag_id} {point.name}".rstrip()


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:.6g}"


def _value_text(point: AlarmPoint, value: float | None, limit: float | None,
                kind: AlarmKind) -> str:
    if kind in (AlarmKind.BAD_QUALITY, AlarmKind.COMM_LOSS) or value is None or limit is None:
        return ""
    side = "above" if kind in (AlarmKind.HI, AlarmKind.HIHI) else "below"
    eu = f" {point.engineering_units}" if point.engineering_units else ""
    return f"{_number(value)}{eu} {side} limit {_number(limit)}{eu}"


__all__ = ["AUTO_ACK_USER", "SYSTEM_USER", "AlarmError", "AlarmLifecycle", "AlarmPoint", "Reading"]
