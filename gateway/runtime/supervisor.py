"""Task lifecycle: start named tasks, restart a crashed one with backoff, stop them all."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from gateway.runtime.logs import get_logger

log = get_logger("gateway.runtime.supervisor")

RESTART_MIN_S = 0.5
RESTART_MAX_S = 30.0


class Supervisor:
    """Runs long-lived coroutines. A task that raises is logged and restarted after an
    exponentially growing delay (reset once it has run for a minute); a task that returns
    normally is done. ``stop()`` cancels everything and waits."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task] = {}
        self.restarts: dict[str, int] = {}

    def start(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        self._tasks[name] = asyncio.create_task(self._keep(name, factory), name=name)

    async def _keep(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        delay = RESTART_MIN_S
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                self.restarts[name] = self.restarts.get(name, 0) + 1
                if loop.time() - started > 60:
                    delay = RESTART_MIN_S
                log.exception("task crashed; restarting", task=name, delay_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_MAX_S)

    def names(self) -> list[str]:
        return list(self._tasks)

    async def stop(self, names: list[str] | None = None) -> None:
        chosen = [self._tasks.pop(n) for n in (names if names is not None else list(self._tasks))
                  if n in self._tasks]
        for task in chosen:
            task.cancel()
        await asyncio.gather(*chosen, return_exceptions=True)
