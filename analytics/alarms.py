"""The alarm engine: Batches and time in, ISA-18.2 alarm transitions out.

Pure: no I/O and no clock reads; the caller passes ``now`` (epoch seconds) to every call and
journals/publishes the transitions returned. Per scan the limit check is a handful of numpy
column operations over the Batch; Python-level work happens only for tags whose condition,
pending delay or severity differs from what the engine already holds, so a quiet scan of
10,000 tags costs well under a millisecond.

Three alarm points per source (see :class:`AlarmClass`): a tag's PROCESS alarm (LO/LOLO/HI/
HIHI, one occurrence at a time), a tag's BAD_QUALITY alarm, a device's COMM_LOSS alarm.
Bad quality never raises or clears a process alarm: the process alarm holds its state.

One cohesive thing, kept in one module (~430 lines): the engine's per-scan evaluation, timers,
operator actions and snapshot all read and write the same alarm points; limits, lifecycle and
KPIs are in ``alarm_limits``, ``alarm_lifecycle`` and ``alarm_kpis``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from analytics.alarm_config import AlarmConfig
from analytics.alarm_lifecycle import AlarmError, AlarmLifecycle, AlarmPoint, Reading
from analytics.alarm_limits import CONDITION_DTYPE, LimitColumns, evaluate, severity_rank
from analytics.alarm_types import (
    AUTO_ACK_USER,
    SYSTEM_USER,
    Alarm,
    AlarmClass,
    AlarmKind,
    AlarmState,
    AlarmTransition,
    Condition,
    Severity,
    alarm_key,
)
from drivers.batch import Batch
from drivers.quality import Quality
from plant.catalog import Catalog

SNAPSHOT_VERSION = 1
_NO_PENDING = -1
_NORMAL = int(Condition.NORMAL)

__all__ = ["AlarmEngine", "AlarmError", "AlarmConfig", "AlarmState", "AlarmKind", "AlarmClass",
           "AlarmTransition", "Alarm", "Severity"]


class AlarmEngine:
    """Evaluates every scan against the catalog's limits and runs the alarm lifecycle."""

    def __init__(self, catalog: Catalog, config: AlarmConfig | None = None):
        self.catalog = catalog
        self.config = config or AlarmConfig()
        self.limits = LimitColumns.from_catalog(catalog, self.config)
        n = len(catalog)
        self._cond = np.zeros(n, dtype=CONDITION_DTYPE)  # debounced process condition
        self._sev = np.zeros(n, dtype=np.int8)  # severity rank held by the active condition
        self._pend = np.full(n, _NO_PENDING, dtype=CONDITION_DTYPE)  # condition awaiting delay
        self._pend_since = np.full(n, np.nan)
        self._pend_value = np.full(n, np.nan)
        self._pend_doubtful = np.zeros(n, dtype=bool)
        self._bad = np.zeros(n, dtype=bool)  # debounced bad-quality condition
        self._bad_since = np.full(n, np.nan)
        self._tag_device = np.full(n, -1, dtype=np.int32)  # device code of the last scan
        self._devices: list[str] = []
        self._device_codes: dict[str, int] = {}
        self._connected: dict[str, bool] = {}
        self._comm_since: dict[str, float] = {}
        self._comm_active: dict[str, bool] = {}
        self._lifecycle = AlarmLifecycle()

    # ------------------------------------------------------------------ scans

    def process(self, batch: Batch, now: float) -> list[AlarmTransition]:
        """Evaluate one scan; returns the transitions it caused, in ``seq`` order."""
        idx = batch.tag_index
        if len(idx) == 0:
            return []
        self._tag_device[idx] = self._device_code(batch.device)
        bad = batch.quality < Quality.DOUBTFUL
        out = self._process_quality(idx, bad, batch.device, now)
        out += self._process_limits(idx, batch.values, batch.quality, bad, now)
        return out

    def _device_code(self, device_id: str) -> int:
        code = self._device_codes.get(device_id)
        if code is None:
            code = self._device_codes[device_id] = len(self._devices)
            self._devices.append(device_id)
        return code

    def _device_of(self, t: int) -> str | None:
        code = int(self._tag_device[t])
        return None if code < 0 else self._devices[code]

    def _process_quality(self, idx: np.ndarray, bad: np.ndarray, device: str,
                         now: float) -> list[AlarmTransition]:
        held = self._bad[idx]
        since = self._bad_since[idx]
        pending = ~np.isnan(since)
        if self._quality_suppressed(device):
            self._bad_since[idx[pending & ~held]] = np.nan
            start = np.zeros_like(bad)
        else:
            start = bad & ~held & ~pending
        self._bad_since[idx[start]] = now
        self._bad_since[idx[~bad & pending]] = np.nan
        out: list[AlarmTransition] = []
        clears = idx[~bad & held]
        for t in clears.tolist():
            out += self._set_bad(t, False, now)
        if start.any() or pending.any():
            due = bad & ~held & (self._bad_since[idx] + self.config.bad_quality_delay_s <= now)
            for t in idx[due].tolist():
                out += self._set_bad(t, True, now)
        return out

    def _process_limits(self, idx: np.ndarray, values: np.ndarray, quality: np.ndarray,
                        bad: np.ndarray, now: float) -> list[AlarmTransition]:
        # A bad value says nothing about the process: the alarm holds, pending changes lapse.
        if bad.any():
            self._pend[idx[bad]] = _NO_PENDING
        with np.errstate(invalid="ignore"):
            usable = ~bad & self.limits.has_limits[idx] & np.isfinite(values)
        if not usable.all():
            idx, values, quality = idx[usable], values[usable], quality[usable]
        if len(idx) == 0:
            return []
        held = self._cond[idx]
        raw = evaluate(self.limits, idx, values, held)
        rank = np.zeros(len(idx), dtype=np.int8)
        violated = raw != _NORMAL
        if violated.any():
            k = np.flatnonzero(violated)
            rank[k] = severity_rank(self.limits, idx[k], values[k], raw[k], self.config)
        changed = (raw != held) | (self._pend[idx] != _NO_PENDING) | (rank > self._sev[idx])
        out: list[AlarmTransition] = []
        for j in np.flatnonzero(changed).tolist():
            out += self._step(int(idx[j]), Condition(int(raw[j])), int(rank[j]),
                              float(values[j]), bool(quality[j] == Quality.DOUBTFUL), now)
        return out

    def _step(self, t: int, raw: Condition, rank: int, value: float, doubtful: bool,
              now: float) -> list[AlarmTransition]:
        """One tag whose raw condition, pending delay or severity changed."""
        held = Condition(int(self._cond[t]))
        if raw == held:
            self._pend[t] = _NO_PENDING
            if raw != Condition.NORMAL and rank > self._sev[t]:
                self._sev[t] = rank
                return self._lifecycle.update(self._point(t, AlarmClass.PROCESS),
                                              self._reading(t, raw, rank, value, doubtful), now)
            return []
        out: list[AlarmTransition] = []
        if held != Condition.NORMAL and raw != Condition.NORMAL:
            self._pend[t] = _NO_PENDING
            if held.is_high == raw.is_high:  # HI <-> HIHI, LO <-> LOLO: the same occurrence
                self._cond[t] = raw
                self._sev[t] = max(int(self._sev[t]), rank)
                return self._lifecycle.update(
                    self._point(t, AlarmClass.PROCESS),
                    self._reading(t, raw, int(self._sev[t]), value, doubtful), now)
            # Straight from one side to the other between scans: the high alarm has cleared
            # (the value is far outside its deadband) and a low one begins.
            out += self._apply(t, Condition.NORMAL, 0, value, doubtful, now)
        activating = raw != Condition.NORMAL
        delay = self.config.on_delay_s if activating else self.config.off_delay_s
        pend = int(self._pend[t])
        if pend == _NO_PENDING or (pend != Condition.NORMAL) != activating:
            self._pend_since[t] = now
        self._pend[t] = raw
        self._pend_value[t] = value
        self._pend_doubtful[t] = doubtful
        if now - self._pend_since[t] >= delay:
            self._pend[t] = _NO_PENDING
            out += self._apply(t, raw, rank, value, doubtful, now)
        return out

    def _apply(self, t: int, cond: Condition, rank: int, value: float, doubtful: bool,
               now: float) -> list[AlarmTransition]:
        """The debounced process condition of tag ``t`` changes to ``cond``."""
        self._cond[t] = cond
        point = self._point(t, AlarmClass.PROCESS)
        if cond == Condition.NORMAL:
            self._sev[t] = 0
            return self._lifecycle.clear(point, value, doubtful, now)
        self._sev[t] = rank
        return self._lifecycle.activate(point, self._reading(t, cond, rank, value, doubtful), now)

    def _set_bad(self, t: int, bad: bool, now: float) -> list[AlarmTransition]:
        self._bad[t] = bad
        self._bad_since[t] = np.nan
        point = self._point(t, AlarmClass.BAD_QUALITY)
        if not bad:
            return self._lifecycle.clear(point, None, False, now)
        return self._lifecycle.activate(
            point, Reading(AlarmKind.BAD_QUALITY, self.config.bad_quality_severity), now)

    def _quality_suppressed(self, device: str | None) -> bool:
        return (self.config.comm_loss_suppresses_bad_quality and device is not None
                and not self._connected.get(device, True))

    # ------------------------------------------------------------------ devices and timers

    def device_status(self, device_id: str, connected: bool, now: float) -> list[AlarmTransition]:
        """Report a device's connection; loss raises COMM_LOSS after ``comm_loss_delay_s``."""
        was_connected = self._connected.get(device_id, True)
        self._connected[device_id] = connected
        point = self._device_point(device_id)
        if connected:
            self._comm_since.pop(device_id, None)
            if self._comm_active.pop(device_id, False):
                return self._lifecycle.clear(point, None, False, now)
            return []
        if not was_connected:
            return self.tick(now)
        self._comm_since[device_id] = now
        return self.tick(now)

    def tick(self, now: float) -> list[AlarmTransition]:
        """Fire due timers: on/off delays, bad-quality and comm-loss delays, shelve expiry,
        auto-acknowledge. Call it every second or so, and after :meth:`restore`."""
        out: list[AlarmTransition] = []
        delay = np.where(self._pend == Condition.NORMAL, self.config.off_delay_s,
                         self.config.on_delay_s)
        with np.errstate(invalid="ignore"):
            due = np.flatnonzero((self._pend != _NO_PENDING) & (self._pend_since + delay <= now))
        for t in due.tolist():
            cond = Condition(int(self._pend[t]))
            value = float(self._pend_value[t])
            rank = int(severity_rank(self.limits, np.array([t]), np.array([value]),
                                     np.array([cond], dtype=CONDITION_DTYPE), self.config)[0])
            self._pend[t] = _NO_PENDING
            if cond == Condition(int(self._cond[t])):
                continue
            out += self._apply(t, cond, rank, value, bool(self._pend_doubtful[t]), now)
        with np.errstate(invalid="ignore"):
            due = np.flatnonzero(~self._bad & (self._bad_since + self.config.bad_quality_delay_s <= now))
        for t in due.tolist():
            if self._quality_suppressed(self._device_of(t)):
                self._bad_since[t] = np.nan
            else:
                out += self._set_bad(t, True, now)
        for device_id, since in sorted(self._comm_since.items()):
            if since + self.config.comm_loss_delay_s <= now:
                del self._comm_since[device_id]
                self._comm_active[device_id] = True
                out += self._lifecycle.activate(
                    self._device_point(device_id),
                    Reading(AlarmKind.COMM_LOSS, self.config.comm_loss_severity), now)
        for alarm in self._lifecycle.due_unshelves(now):
            out += self._lifecycle.restore_to_service(
                self._point_of(alarm.key), AlarmState.SHELVED, SYSTEM_USER, None, now,
                automatic=True)
        for alarm in self._lifecycle.due_auto_acks(now, self.config.auto_ack_after_s):
            out += self._lifecycle.acknowledge(self._point_of(alarm.key), AUTO_ACK_USER, None,
                                               now, automatic=True)
        return out

    # ------------------------------------------------------------------ operator actions

    def acknowledge(self, alarm_key: str, user: str, comment: str | None,
                    now: float) -> list[AlarmTransition]:
        """Operator acknowledge by alarm key (``"TI-101/PROCESS"``) or occurrence id.

        Returns no transition when there is nothing to acknowledge; raises :class:`AlarmError`
        for a key that names no alarm point.
        """
        return self._lifecycle.acknowledge(self._resolve(alarm_key), user, comment, now)

    def shelve(self, alarm_key: str, user: str, until: float, now: float,
               comment: str | None = None) -> list[AlarmTransition]:
        """Shelve an alarm point until ``until`` (epoch s); :meth:`tick` unshelves it then."""
        if until <= now:
            raise ValueError(f"{alarm_key}: shelve expiry {until} is not after now {now}")
        point = self._resolve(alarm_key)
        return self._lifecycle.shelve(point, self._current_reading(point), user, until, comment, now)

    def unshelve(self, alarm_key: str, user: str, now: float,
                 comment: str | None = None) -> list[AlarmTransition]:
        return self._lifecycle.restore_to_service(self._resolve(alarm_key), AlarmState.SHELVED,
                                                  user, comment, now)

    def set_out_of_service(self, alarm_key: str, out_of_service: bool, user: str, now: float,
                           comment: str | None = None) -> list[AlarmTransition]:
        """Remove an alarm point from service (SUPPRESSED) or return it to service."""
        point = self._resolve(alarm_key)
        if out_of_service:
            return self._lifecycle.remove_from_service(point, self._current_reading(point), user,
                                                       comment, now)
        return self._lifecycle.restore_to_service(point, AlarmState.SUPPRESSED, user, comment, now)

    # ------------------------------------------------------------------ views

    def active(self) -> list[Alarm]:
        """Every alarm point that is not NORMAL (active, awaiting ack, shelved, suppressed)."""
        return sorted(self._lifecycle.alarms.values(),
                      key=lambda a: (a.raised_at if a.raised_at is not None else math.inf, a.key))

    def alarm(self, alarm_key: str) -> Alarm | None:
        """The standing of one alarm point or occurrence id (None when NORMAL)."""
        return self._lifecycle.get(self._resolve(alarm_key).key)

    @property
    def seq(self) -> int:
        """The ``seq`` of the last transition journaled."""
        return self._lifecycle.seq

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> dict[str, Any]:
        """The engine's whole state as plain JSON data (tags by id, so a catalog may change)."""
        tags: dict[str, dict[str, Any]] = {}
        busy = np.flatnonzero((self._cond != 0) | (self._pend != _NO_PENDING) | self._bad
                              | ~np.isnan(self._bad_since))
        for t in busy.tolist():
            tags[self.catalog.tags[t].id] = {
                "cond": int(self._cond[t]), "sev": int(self._sev[t]), "pend": int(self._pend[t]),
                "pend_since": _num(self._pend_since[t]), "pend_value": _num(self._pend_value[t]),
                "pend_doubtful": bool(self._pend_doubtful[t]), "bad": bool(self._bad[t]),
                "bad_since": _num(self._bad_since[t]), "device": self._device_of(t)}
        devices = sorted(set(self._connected) | set(self._comm_active))
        return {
            "version": SNAPSHOT_VERSION,
            "seq": self._lifecycle.seq,
            "tags": tags,
            "devices": {d: {"connected": self._connected.get(d, True),
                            "since": self._comm_since.get(d),
                            "active": self._comm_active.get(d, False)} for d in devices},
            "alarms": [a.to_dict() for a in self._lifecycle.alarms.values()],
        }

    @classmethod
    def restore(cls, catalog: Catalog, config: AlarmConfig | None, snapshot: dict[str, Any],
                min_seq: int = 0) -> AlarmEngine:
        """An engine continuing from :meth:`snapshot`. Tags no longer in the catalog are
        dropped. ``min_seq`` (e.g. the outbox's highest seq) keeps ``seq`` increasing even when
        the snapshot is older than the last published transition."""
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"alarm snapshot version {snapshot.get('version')!r} is not "
                             f"{SNAPSHOT_VERSION}")
        engine = cls(catalog, config)
        for tag_id, s in snapshot["tags"].items():
            t = catalog.index.get(tag_id)
            if t is None:
                continue
            engine._cond[t] = s["cond"]
            engine._sev[t] = s["sev"]
            engine._pend[t] = s["pend"]
            engine._pend_since[t] = _nan(s["pend_since"])
            engine._pend_value[t] = _nan(s["pend_value"])
            engine._pend_doubtful[t] = s["pend_doubtful"]
            engine._bad[t] = s["bad"]
            engine._bad_since[t] = _nan(s["bad_since"])
            if s["device"] is not None:
                engine._tag_device[t] = engine._device_code(s["device"])
        for device_id, s in snapshot["devices"].items():
            engine._connected[device_id] = s["connected"]
            if s["since"] is not None:
                engine._comm_since[device_id] = s["since"]
            if s["active"]:
                engine._comm_active[device_id] = True
        alarms = [Alarm.from_dict(a) for a in snapshot["alarms"]]
        engine._lifecycle = AlarmLifecycle(
            seq=max(int(snapshot["seq"]), min_seq),
            alarms={a.key: a for a in alarms
                    if a.alarm_class == AlarmClass.COMM_LOSS or a.tag_id in catalog.index})
        return engine

    # ------------------------------------------------------------------ internals

    def _point(self, t: int, alarm_class: AlarmClass) -> AlarmPoint:
        tag = self.catalog.tags[t]
        return AlarmPoint(key=alarm_key(tag.id, alarm_class), alarm_class=alarm_class,
                          tag_id=tag.id, name=tag.name, engineering_units=tag.engineering_units,
                          unit_id=tag.unit_id, device_id=self._device_of(t))

    def _device_point(self, device_id: str) -> AlarmPoint:
        return AlarmPoint(key=alarm_key(device_id, AlarmClass.COMM_LOSS),
                          alarm_class=AlarmClass.COMM_LOSS, tag_id=device_id,
                          name="communication", device_id=device_id)

    def _point_of(self, key: str) -> AlarmPoint:
        source, _, cls_name = key.rpartition("/")
        alarm_class = AlarmClass(cls_name)
        if alarm_class == AlarmClass.COMM_LOSS:
            return self._device_point(source)
        return self._point(self.catalog.index[source], alarm_class)

    def _resolve(self, key_or_id: str) -> AlarmPoint:
        """An alarm key, or the occurrence id of a standing alarm, as its point."""
        if "#" in key_or_id:
            found = self._lifecycle.find(key_or_id)
            if found is None:
                raise AlarmError(f"no standing alarm with id '{key_or_id}'")
            key_or_id = found.key
        source, _, cls_name = key_or_id.rpartition("/")
        try:
            alarm_class = AlarmClass(cls_name)
        except ValueError:
            raise AlarmError(f"'{key_or_id}' is not an alarm key (<source>/PROCESS|BAD_QUALITY|"
                             f"COMM_LOSS)") from None
        if alarm_class != AlarmClass.COMM_LOSS and source not in self.catalog.index:
            raise AlarmError(f"unknown tag '{source}' in alarm key '{key_or_id}'")
        return self._point_of(key_or_id)

    def _reading(self, t: int, cond: Condition, rank: int, value: float,
                 doubtful: bool) -> Reading:
        return Reading(cond.kind, Severity.from_rank(max(rank, 1)), value,
                       self.limits.limit(t, cond), doubtful)

    def _current_reading(self, point: AlarmPoint) -> Reading | None:
        """The present condition of a point (for shelving one that is not yet standing)."""
        if point.alarm_class == AlarmClass.COMM_LOSS:
            if not self._comm_active.get(point.tag_id, False):
                return None
            return Reading(AlarmKind.COMM_LOSS, self.config.comm_loss_severity)
        t = self.catalog.index[point.tag_id]
        if point.alarm_class == AlarmClass.BAD_QUALITY:
            return Reading(AlarmKind.BAD_QUALITY, self.config.bad_quality_severity) \
                if self._bad[t] else None
        cond = Condition(int(self._cond[t]))
        if cond == Condition.NORMAL:
            return None
        return Reading(cond.kind, Severity.from_rank(max(int(self._sev[t]), 1)),
                       None, self.limits.limit(t, cond))


def _num(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)
