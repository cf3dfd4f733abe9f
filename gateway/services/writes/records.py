"""The vocabulary of writes: a request, its outcome, why one was refused, and the journal row.

Outcomes (issue 18): ``confirmed`` (written and read back within tolerance), ``rejected``
(refused by the gateway: nothing was sent), ``failed`` (the device said no, or could not be
reached), ``unconfirmed`` (written, or possibly written, but the read-back disagreed or did not
come: a write that timed out is one, since it may have reached the device), and ``unknown``
(the gateway stopped while the write was in flight: it may or may not have reached the
device). ``pending`` is a row whose write is still running.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from gateway.services.accounts.users import Role


class Outcome(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"
    UNKNOWN = "unknown"

    @property
    def final(self) -> bool:
        return self is not Outcome.PENDING


class Refusal(StrEnum):
    """Why the gateway refused a write before sending anything (outcome ``rejected``)."""

    UNKNOWN_TAG = "UNKNOWN_TAG"
    NOT_WRITABLE = "NOT_WRITABLE"  # the catalog does not declare the tag writable
    ROLE = "ROLE"  # anonymous, or the caller's role is below the tag's write_role
    NOT_FINITE = "NOT_FINITE"  # NaN or infinite
    OUT_OF_RANGE = "OUT_OF_RANGE"  # outside write_min..write_max
    STEP = "STEP"  # changes the current value by more than max_step
    NO_CURRENT_VALUE = "NO_CURRENT_VALUE"  # max_step needs a good, fresh current value
    PERMISSIVE = "PERMISSIVE"  # the permissive tag does not read the value it must
    NOT_ENCODABLE = "NOT_ENCODABLE"  # the value does not fit the register's type
    NO_DEVICE = "NO_DEVICE"  # no scan group reads the tag, so no device to write it to
    NOT_CONNECTED = "NOT_CONNECTED"  # the device is not connected
    BUSY = "BUSY"  # too many writes to this tag are waiting
    SHUTTING_DOWN = "SHUTTING_DOWN"  # the gateway is stopping


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """One write as a front door hands it over. ``role`` is None for an anonymous caller;
    ``origin`` names the front door (``http``, ``opcua``, ...), ``client`` its peer address;
    ``reason`` is what the caller gave as the reason for the change."""

    tag_id: str
    value: float
    user: str
    role: Role | None
    origin: str
    client: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """One row of the write journal (see :mod:`gateway.services.writes.journal`).

    ``detail`` says in words what happened (the refusal, the device's answer, the read-back);
    ``reason`` is the caller's stated reason for the write.
    """

    id: int
    tag_id: str
    user: str
    role: str | None
    origin: str
    client: str | None
    reason: str | None
    requested_value: float | None
    old_value: float | None
    old_quality: int | None
    read_back_value: float | None
    read_back_quality: int | None
    outcome: Outcome
    refusal: Refusal | None
    device_id: str | None
    device_status: str | None
    detail: str
    requested_at: float
    finished_at: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: enums as words, NaN/inf as null, times also as ISO 8601."""
        # Field by field: dataclasses.asdict deep-copies and costs several times as much.
        out = {name: getattr(self, name) for name in _FIELDS}
        out["outcome"] = self.outcome.value
        out["refusal"] = None if self.refusal is None else self.refusal.value
        for name in _FLOAT_FIELDS:
            value = out[name]
            if value is not None and not math.isfinite(value):
                out[name] = None
        out["requested_at_iso"] = iso(self.requested_at)
        out["finished_at_iso"] = iso(self.finished_at)
        return out


_FIELDS = tuple(f.name for f in fields(WriteRecord))
_FLOAT_FIELDS = ("requested_value", "old_value", "read_back_value", "requested_at", "finished_at")


def iso(ts: float | None) -> str | None:
    if ts is None or not math.isfinite(ts):
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
