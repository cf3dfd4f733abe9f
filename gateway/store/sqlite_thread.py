"""An SQLite connection owned by one dedicated thread, called from asyncio without blocking.

sqlite3 is a blocking library: every statement runs on the connection's own thread and the
event loop awaits a future. One thread per database file keeps SQLite's locking simple and
serialises writes in submission order.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_STOP = object()


class SqliteThread:
    """Runs callables ``fn(conn)`` on a private thread holding one sqlite3 connection.

    The database is opened in WAL mode with ``synchronous=NORMAL`` by default: a committed
    transaction survives a process crash (the WAL is written before commit returns), and
    ``synchronous=FULL`` (``durable=True``) adds survival of power loss at some cost.
    ``schema`` statements run once at open, inside one transaction.
    """

    def __init__(self, path: Path, schema: list[str] | tuple[str, ...] = (), durable: bool = False,
                 name: str = "sqlite"):
        self.path = Path(path)
        self._schema = list(schema)
        self._durable = durable
        self._name = name
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        ready: asyncio.Future = loop.create_future()
        self._thread = threading.Thread(target=self._run, args=(loop, ready), name=self._name,
                                        daemon=True)
        self._thread.start()
        await ready

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if self._durable else 'NORMAL'}")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("BEGIN")
        for statement in self._schema:
            conn.execute(statement)
        conn.execute("COMMIT")
        return conn

    def _run(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future) -> None:
        try:
            self._conn = self._connect()
        except Exception as exc:  # reported to open()'s caller
            loop.call_soon_threadsafe(_set_exception, ready, exc)
            return
        loop.call_soon_threadsafe(_set_result, ready, None)
        while True:
            job = self._jobs.get()
            if job is _STOP:
                break
            fn, fut, job_loop = job
            try:
                result = fn(self._conn)
            except BaseException as exc:
                self._roll_back()
                job_loop.call_soon_threadsafe(_set_exception, fut, exc)
            else:
                job_loop.call_soon_threadsafe(_set_result, fut, result)
        self._conn.close()

    def _roll_back(self) -> None:
        """End a failed job's open transaction. SQLite may already have rolled it back (a full
        disk or an I/O error does); a ROLLBACK that fails must not end this thread, whose
        callers would then wait for ever."""
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the database thread and return its result."""
        if self._thread is None or not self._thread.is_alive():
            raise RuntimeError(f"{self._name}: database {self.path} is not open")
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._jobs.put((fn, fut, loop))
        return await fut

    async def transaction(self, fn: Callable[[sqlite3.Connection], T],
                          on_abort: Callable[[], None] | None = None) -> T:
        """Run ``fn(conn)`` inside BEGIN IMMEDIATE ... COMMIT (rolled back if it or the
        COMMIT raises). ``on_abort`` runs on the database thread after such a rollback, for
        callers that cache what the transaction wrote (the cache must forget it)."""
        def wrapped(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if on_abort is not None:
                    self._roll_back()
                    on_abort()
                raise
            return result
        return await self.call(wrapped)

    async def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._jobs.put(_STOP)
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        self._thread = None


def _set_result(fut: asyncio.Future, value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future, exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
