"""What every long-lived piece of the daemon has in common.

A service is constructed by the daemon (:mod:`gateway.daemon`) with the narrow things it uses
(its settings section, the catalog, the store, a :class:`Tasks` to run its loops, other
services it reads), started after the pipeline is built, and stopped after the last scan is
accepted. It never receives the daemon itself: the daemon attaches it where it belongs (a
pipeline sink, an alarm listener, a health section, an HTTP dependency) in one visible place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from plant.catalog import Catalog


class Tasks(Protocol):
    """Starts named, supervised background tasks (``gateway.runtime.supervisor.Supervisor``)."""

    def start(self, name: str, factory: Callable[[], Awaitable[None]]) -> None: ...


class Service(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Reloadable(Protocol):
    """A service that applies a new configuration on SIGHUP without losing its state."""

    async def reload(self, settings: Any, catalog: Catalog) -> None: ...


@dataclass
class RunStats:
    """Counters of a service's scheduled runs (analytics, maintenance), for /health and
    /metrics."""

    runs: int = 0
    failures: int = 0
    last_run_ts: float | None = None
    last_duration_s: float | None = None
    last_error: str | None = None

    def succeeded(self, ts: float, duration_s: float) -> None:
        self.runs += 1
        self.last_run_ts, self.last_duration_s, self.last_error = ts, duration_s, None

    def failed(self, error: str) -> None:
        self.failures += 1
        self.last_error = error


T = TypeVar("T")


async def run_counted(run: Callable[[], Awaitable[T]], stats: RunStats, log: Any,
                      event: str) -> T | None:
    """One scheduled run whose failure is logged (``event``) and counted instead of raised:
    the next run comes on schedule."""
    try:
        return await run()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        stats.failed(f"{type(exc).__name__}: {exc}")
        log.exception(event, failures=stats.failures)
        return None
