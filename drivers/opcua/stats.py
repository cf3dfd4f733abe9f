"""Counters a driver keeps for the health endpoint and metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from drivers.quality import Reason


@dataclass
class DriverStats:
    """What an operator asks of a device connection: is it up, how often it failed and why.

    ``errors`` counts scans (or subscription deliveries) that failed as a whole, by reason;
    ``bad_values`` counts individual values that came back bad, by reason.
    """

    connected: bool = False
    reads: int = 0
    errors: Counter[Reason] = field(default_factory=Counter)
    bad_values: Counter[Reason] = field(default_factory=Counter)
    last_error: str | None = None
    last_error_ts: float | None = None
    last_good_scan: float | None = None
    connects: int = 0
    notifications: int = 0

    def record_error(self, reason: Reason, message: str, now: float) -> None:
        """Count one failed scan or connection attempt and remember why."""
        self.errors[reason] += 1
        self.last_error = message
        self.last_error_ts = now

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot (reason names as keys)."""
        return {
            "connected": self.connected,
            "reads": self.reads,
            "errors": {reason.name: n for reason, n in self.errors.items()},
            "bad_values": {reason.name: n for reason, n in self.bad_values.items()},
            "last_error": self.last_error,
            "last_error_ts": self.last_error_ts,
            "last_good_scan": self.last_good_scan,
            "connects": self.connects,
            "notifications": self.notifications,
        }
