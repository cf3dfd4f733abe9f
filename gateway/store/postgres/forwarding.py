"""The loop every periodic forwarder into the historian shares (the write journal, the
results kinds): wait until the schema is ready, connect and register the gateway, forward
every ``interval_s``, reconnect with a growing pause while the database is away, and at
shutdown make one last pass within a timeout. A subclass says what one pass forwards."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog

from gateway.store.postgres.catalog_sync import GatewayIdentityError, register_gateway

log = structlog.get_logger(__name__)

# What a failed pass raises when the database, not the row, is the problem.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
    ConnectionError, GatewayIdentityError)


class PeriodicForwarder:
    """``forward_once`` every ``interval_s`` until cancelled; ``stats.last_error`` says why
    the last pass failed (None after a good one)."""

    log_name = "forwarder"  # log events are "<log_name>.failed" and ".flush_incomplete"
    errors: tuple[type[BaseException], ...] = CONNECTION_ERRORS
    stats: Any

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]], gateway_id: str,
                 site: str, ready: Callable[[], Awaitable[None]], interval_s: float,
                 retry_max_s: float = 30.0):
        self._connect = connect
        self.gateway_id = gateway_id
        self.site = site
        self._ready = ready
        self.interval_s = interval_s
        self.retry_max_s = retry_max_s

    async def forward_once(self, conn: asyncpg.Connection) -> int:
        """One pass; returns the rows written."""
        raise NotImplementedError

    async def run(self) -> None:
        await self._ready()
        failures = 0
        while True:
            try:
                conn = await self._connect()
                try:
                    await register_gateway(conn, self.gateway_id, self.site)
                    while True:
                        await self.forward_once(conn)
                        self.stats.last_error = None
                        failures = 0
                        await asyncio.sleep(self.interval_s)
                finally:
                    with contextlib.suppress(Exception):
                        conn.terminate()
            except self.errors as exc:
                failures += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.warning(f"{self.log_name}.failed", error=self.stats.last_error)
                await asyncio.sleep(min(self.retry_max_s, 0.5 * 2 ** min(failures, 8)))

    async def flush(self, timeout_s: float) -> bool:
        """Forward what is there now, within ``timeout_s`` (at shutdown)."""
        async def once() -> None:
            conn = await self._connect()
            try:
                await register_gateway(conn, self.gateway_id, self.site)
                await self.forward_once(conn)
            finally:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1.0)
        try:
            await asyncio.wait_for(once(), timeout_s)
        except (TimeoutError, *self.errors) as exc:
            log.warning(f"{self.log_name}.flush_incomplete", error=f"{type(exc).__name__}: {exc}")
            return False
        return True
