"""Encoded answers of the read routes, kept until what they were computed from changes.

Dashboards poll the read routes far more often than the gateway's state changes: a scan group
is accepted about once a second, analytics runs every minute, inventory and alarms change
when something happens. A read handler declares the *sources* its answer is computed from
(``@cached(sources.catalog, sources.analytics_latest)``); each source gives cheap tokens of
its state, either

* counters bumped after a write: ``Pipeline.accepted_batches`` once the embedded store and
  the live cache took a scan, ``AnalyticsStore.version`` once a run was saved,
  ``InventoryStore.version``, the alarm engine's ``seq`` and the alarm service's journaled
  ``transitions`` and ``trimmed`` (rows the journal retention deleted); or
* objects that are replaced, never changed in place, when their content changes: the catalog
  and settings on reload, the latest analytics results, the PdM predictions. They are
  compared by identity.

Answers that depend on the clock name it as a source too (the hour of hourly rows; the second
for answers about "now", so that one is never more than a second old).

The tokens are read before the handler runs, so a kept answer was computed from a state at
least as new as its tokens; it is served only while every token is still the same. Only
plain 200 answers are kept; errors are computed every time. Concurrent requests for an answer
being computed wait for it instead of computing it again.

Authentication and roles are not cached: the middleware and the role guard run on every
request before the cache is asked, and only what the handler computes is kept (no cached
route's answer depends on who asks). Memory is bounded by ``MAX_BYTES`` of bodies, least
recently used dropped first (a route whose path or query varies, such as a tag's history,
keeps one entry per distinct request).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from gateway.northbound.http.deps import ApiDeps, deps_of

__all__ = ["MAX_BYTES", "CACHE_KEY", "ResponseCache", "cached", "catalog", "scans",
           "analytics_latest", "analytics_rows", "alarms", "inventory", "predictions",
           "clock_second"]

# Bodies kept at most, in bytes (/api/tags/live of 10,051 tags is 2.7 MB).
MAX_BYTES = 8 * 1024 * 1024
HOUR_S = 3600.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)
Source = Callable[[ApiDeps], tuple[Any, ...]]


# --------------------------------------------------------------------------- sources


def catalog(deps: ApiDeps) -> tuple[Any, ...]:
    """The catalog and the settings, both replaced on reload."""
    return deps.catalog, deps.settings


def scans(deps: ApiDeps) -> tuple[Any, ...]:
    """The live cache and the embedded store: ``accepted_batches`` grows once a scan is in
    both (the live cache object itself is replaced on reload)."""
    pipeline = deps.pipeline
    return pipeline.live, pipeline.accepted_batches


def analytics_latest(deps: ApiDeps) -> tuple[Any, ...]:
    """The latest analytics results (a new object after every run)."""
    analytics = deps.analytics
    return (None if analytics is None else analytics.latest,)


def analytics_rows(deps: ApiDeps) -> tuple[Any, ...]:
    """The stored analytics rows and the clock hour of the analytics clock (hourly rows and
    24 h trends move on with the hour)."""
    analytics = deps.analytics
    if analytics is None or analytics.results is None:
        return None, 0, 0
    results = analytics.results
    return results, results.version, int(analytics.clock() // HOUR_S)


def alarms(deps: ApiDeps) -> tuple[Any, ...]:
    """Standing alarms (``seq`` grows with every transition) and the journal (``transitions``
    grows once they are journaled, ``trimmed`` once the retention deleted some); the engine is
    replaced on reload."""
    service = deps.alarms
    if service is None or service.engine is None:
        return None, 0, 0, 0
    return service.engine, service.engine.seq, service.transitions, service.trimmed


def inventory(deps: ApiDeps) -> tuple[Any, ...]:
    """The inventory items (``version`` grows with every write)."""
    store = deps.inventory
    return (None, 0) if store is None else (store, store.version)


def predictions(deps: ApiDeps) -> tuple[Any, ...]:
    """The PdM service's predictions mapping (replaced by every prediction run)."""
    return (getattr(deps.maintenance, "predictions", None),)


def clock_second(deps: ApiDeps) -> tuple[Any, ...]:
    """The current second: answers about "now" (last 24 h, today, the last hour) are
    recomputed at least once a second."""
    return (int(time.time()),)


def _unchanged(kept: tuple[Any, ...], now: tuple[Any, ...]) -> bool:
    """Counters compare by value, objects by identity (never by their own ``==``: a catalog
    holds numpy arrays)."""
    for a, b in zip(kept, now, strict=True):
        if a is not b and not (type(a) is int and type(b) is int and a == b):
            return False
    return True


# --------------------------------------------------------------------------- the cache


@dataclass(frozen=True, slots=True)
class _Entry:
    tokens: tuple[Any, ...]
    body: bytes
    content_type: str
    charset: str | None

    def response(self) -> web.Response:
        return web.Response(body=self.body, content_type=self.content_type, charset=self.charset)


class ResponseCache:
    """Kept answers by request path and query, at most ``max_bytes`` of bodies."""

    def __init__(self, max_bytes: int = MAX_BYTES):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._computing: dict[str, tuple[tuple[Any, ...], asyncio.Future[_Entry | None]]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def serve(self, key: str, tokens: tuple[Any, ...], handler: Handler,
                    request: web.Request) -> web.StreamResponse:
        """The kept answer for ``key`` if its tokens are still ``tokens``; else the handler's
        (kept when it is a plain 200 answer)."""
        entry = self._entries.get(key)
        if entry is not None and _unchanged(entry.tokens, tokens):
            self._entries.move_to_end(key)
            return entry.response()
        computing = self._computing.get(key)
        if computing is not None and _unchanged(computing[0], tokens):
            entry = await asyncio.shield(computing[1])
            return entry.response() if entry is not None else await handler(request)
        done: asyncio.Future[_Entry | None] = asyncio.get_running_loop().create_future()
        self._computing[key] = (tokens, done)
        entry = None
        try:
            response = await handler(request)
            entry = self._keep(key, tokens, response)
            return response
        finally:
            if self._computing.get(key, (None, None))[1] is done:
                del self._computing[key]
            done.set_result(entry)  # waiters compute their own answer when this is None

    def _keep(self, key: str, tokens: tuple[Any, ...],
              response: web.StreamResponse) -> _Entry | None:
        if (type(response) is not web.Response or response.status != 200
                or not isinstance(response.body, bytes) or len(response.headers) != 1
                or len(response.body) > self.max_bytes):
            return None  # an error, a stream, or extra headers the entry would not keep
        entry = _Entry(tokens, response.body, response.content_type, response.charset)
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= len(old.body)
        self._entries[key] = entry
        self.bytes += len(entry.body)
        while self.bytes > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self.bytes -= len(dropped.body)
        return entry


CACHE_KEY: web.AppKey[ResponseCache] = web.AppKey("response_cache", ResponseCache)


def cached(*sources: Source) -> Callable[[H], H]:
    """Decorate a GET handler whose answer is computed only from ``sources`` (and the
    request's path and query): answers are kept in the application's :class:`ResponseCache`
    while the sources are unchanged."""
    def decorate(handler: H) -> H:
        @functools.wraps(handler)
        async def serve(request: web.Request) -> web.StreamResponse:
            cache = request.app.get(CACHE_KEY)
            if cache is None or request.method not in ("GET", "HEAD"):
                return await handler(request)
            deps = deps_of(request)
            tokens = tuple(token for source in sources for token in source(deps))
            return await cache.serve(request.raw_path, tokens, handler, request)
        return serve  # type: ignore[return-value]
    return decorate
