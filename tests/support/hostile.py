"""Hostile network peers for fault tests, each on its own event-loop thread.

Fault tests drive a daemon subprocess with blocking calls; the peers that misbehave on its
behalf (a Modbus server that answers garbage, a proxy cut in front of PostgreSQL or the MQTT
broker) must keep serving while the test thread waits. ``LoopThread`` runs an asyncio loop on
a daemon thread; ``ProxyThread`` and ``HostileModbusThread`` host the existing asyncio peers
(``TcpProxy``, ``HostileModbusServer``) on it, so a module-scoped fixture can share them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from tests.integration.hostile_modbus import HostileModbusServer, Mode
from tests.support.tcp_proxy import TcpProxy

T = TypeVar("T")

CALL_TIMEOUT_S = 30.0


class LoopThread:
    """An asyncio event loop on a background thread; ``run`` executes a coroutine on it."""

    def __init__(self, name: str = "hostile-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT_S) -> T:
        """Run ``coro`` on the loop thread and return its result (blocking the caller)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn, *args) -> None:
        """Run a plain callable on the loop thread (thread-safe attribute changes)."""
        done = threading.Event()

        def wrapped() -> None:
            try:
                fn(*args)
            finally:
                done.set()

        self.loop.call_soon_threadsafe(wrapped)
        done.wait(CALL_TIMEOUT_S)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(CALL_TIMEOUT_S)
        self.loop.close()


class ProxyThread:
    """A ``TcpProxy`` to ``host:port`` served from its own thread: ``cut()`` / ``restore()``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._loop = LoopThread("tcp-proxy")
        self._proxy = TcpProxy(target_host, target_port)
        self._loop.run(self._proxy.start())
        self.port = self._proxy.port

    def cut(self) -> None:
        """Drop every forwarded connection and refuse new ones."""
        self._loop.call(self._proxy.cut)

    def restore(self) -> None:
        """Accept and forward connections again."""
        self._loop.call(self._proxy.restore)

    def close(self) -> None:
        self._loop.run(self._proxy.close())
        self._loop.close()


class HostileModbusThread:
    """A ``HostileModbusServer`` on a free loopback port, switchable from the test thread."""

    def __init__(self, mode: Mode = Mode.ANSWER, exception_code: int = 2) -> None:
        self._loop = LoopThread("hostile-modbus")
        self.server = HostileModbusServer(mode, exception_code=exception_code)
        self._loop.run(self.server.start())
        self.port = self.server.port

    @property
    def requests(self) -> int:
        """Requests received so far (every connection)."""
        return self.server.requests

    def set_mode(self, mode: Mode) -> None:
        """How the server answers from now on (every start address)."""
        self._loop.call(setattr, self.server, "mode", mode)

    def drop_connections(self) -> None:
        """Close every client connection (the server keeps listening)."""
        def close_all() -> None:
            for writer in list(self.server._writers):
                writer.close()
        self._loop.call(close_all)

    def close(self) -> None:
        self._loop.run(self.server.close())
        self._loop.close()
