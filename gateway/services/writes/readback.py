"""Reading a tag back from its device: to confirm a write, and to judge one when the live
value is not trusted (a subscribed tag that does not change is never refreshed).

Reads are retried until the deadline (a read is harmless); writes never are.
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

from drivers.base import WriteError
from drivers.quality import Quality
from gateway.services.writes import rules
from plant.schema import Tag

# A driver that ignores its own timeout is cut off this much later.
DRIVER_GRACE_S = 1.0


class WriteDriver(Protocol):
    """What the write path needs of a southbound driver (``drivers.base.Driver``)."""

    @property
    def connected(self) -> bool: ...

    async def write(self, tag: Tag, value: float, timeout_s: float) -> None: ...

    async def read_tag(self, tag: Tag, timeout_s: float) -> tuple[float, int]: ...


async def read_back(driver: WriteDriver, tag: Tag, written: float, timeout_s: float,
                    interval_s: float) -> tuple[float | None, int | None, str | None]:
    """Read ``tag`` until it agrees with ``written`` or ``timeout_s`` passes: (last value, its
    quality, None when confirmed else why not, in words for the journal)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    value: float | None = None
    quality: int | None = None
    error: str | None = None
    while (remaining := deadline - loop.time()) > 0:
        try:
            value, quality = await asyncio.wait_for(driver.read_tag(tag, remaining),
                                                    remaining + DRIVER_GRACE_S)
            error = None
        except (TimeoutError, WriteError) as exc:
            error = exc.reason if isinstance(exc, WriteError) else "no answer"
        except Exception as exc:  # a driver bug: keep trying until the deadline
            error = f"{type(exc).__name__}: {exc}"
        if value is not None and quality is not None and rules.agrees(tag, written, value,
                                                                      quality):
            return value, quality, None
        await asyncio.sleep(min(interval_s, max(0.0, deadline - loop.time())))
    if error is not None and value is None:
        why = f"the read-back failed ({error})"
    elif value is None or quality is None or quality < Quality.GOOD:
        why = f"the read-back had no good value (quality {quality})"
    else:
        why = (f"the read-back {value:g} differs from {written:g} by more than "
               f"{tag.read_back_tolerance():g} {tag.engineering_units}")
    if value is not None and not math.isfinite(value):
        value = None
    return value, quality, f"written, but {why} within {timeout_s:g} s"


async def device_reading(driver: WriteDriver, tag: Tag, timeout_s: float) -> rules.Reading:
    """``tag`` read from its device now (bad when the read fails)."""
    try:
        value, quality = await asyncio.wait_for(driver.read_tag(tag, timeout_s),
                                                timeout_s + DRIVER_GRACE_S)
    except Exception:  # a read that fails leaves no trusted value
        return rules.Reading(math.nan, int(Quality.BAD), math.inf)
    return rules.Reading(float(value), int(quality), 0.0)
