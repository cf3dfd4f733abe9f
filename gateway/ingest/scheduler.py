"""Drift-free periodic scheduling on the monotonic clock, with overrun accounting."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass


@dataclass
class ScanSchedule:
    """Deadlines at start + k * interval. A scan still running when the next is due is an
    overrun: the missed deadlines are counted as skipped and the schedule jumps to the next
    future deadline, so late scans never pile up and the cadence never drifts."""

    interval: float
    next_due: float
    scans: int = 0
    overruns: int = 0
    skipped: int = 0

    @classmethod
    def starting_at(cls, now: float, interval: float) -> ScanSchedule:
        return cls(interval=interval, next_due=now)

    def advance(self, now: float) -> float:
        """Account for the scan that started at ``next_due`` and finished at ``now``;
        return the next deadline."""
        self.scans += 1
        due = self.next_due + self.interval
        if now > due:
            missed = math.floor((now - due) / self.interval) + 1
            self.overruns += 1
            self.skipped += missed
            due += missed * self.interval
        self.next_due = due
        return due


async def sleep_until(deadline: float) -> None:
    """Sleep until the monotonic clock reaches ``deadline``."""
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
