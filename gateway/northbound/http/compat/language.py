"""The language of the seed routes' sentences: the report's Spanish unless the client asks
for English.

The original report's screens are Spanish, so a seed route answers its human-readable
sentences (recommendations, narratives, alert messages, confirmations) in Spanish by default;
an ``Accept-Language`` header preferring English (``en``, ``en-US``, ...) gets the gateway's
own English sentences. Enum words that clients compare against (``OPERATIONAL``, ``HIGH``,
``FILLING``, ``NORMAL``, ...) and field names never change with the language. Error details
(``{"detail": ...}``) stay English, as every error of the API.

:func:`localized` wraps a route handler: it negotiates the language, makes it
:func:`current` while the handler runs and marks the answer with ``Content-Language`` and
``Vary: Accept-Language``. The response cache keys answers by path and query only, so a
cached localized route also names :func:`language_source` among its sources: an answer kept
in one language is not served to a client of the other.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from enum import StrEnum
from typing import Any, TypeVar

from aiohttp import web

from gateway.northbound.http.deps import ApiDeps


class Language(StrEnum):
    """The languages the seed routes speak."""

    ES = "es"
    EN = "en"


DEFAULT = Language.ES
LANGUAGE_NOTE = ("Sentences are in Spanish, the original report's language, unless the "
               "Accept-Language header prefers English (en); enum words do not change.")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)

_current: ContextVar[Language] = ContextVar("seed_language", default=DEFAULT)


def negotiate(header: str | None) -> Language:
    """The language an ``Accept-Language`` header prefers among :class:`Language`
    (RFC 9110 §12.5.4: quality values, ``en-GB`` matches ``en``, ``*`` and no match give
    :data:`DEFAULT`; among equal qualities the first listed wins)."""
    if not header:
        return DEFAULT
    best: tuple[float, int, Language] | None = None
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = tag.strip().lower().split("-")[0]
        language = DEFAULT if primary == "*" else next(
            (lang for lang in Language if lang.value == primary), None)
        if language is None or not 0.0 < q <= 1.0:
            continue
        if best is None or (q, -position) > (best[0], best[1]):
            best = (q, -position, language)
    return DEFAULT if best is None else best[2]


def current() -> Language:
    """The language of the request being answered (:data:`DEFAULT` outside one)."""
    return _current.get()


def language_source(deps: ApiDeps) -> tuple[Any, ...]:
    """A response-cache source: the language of the request being answered."""
    return (_current.get(),)


def localized(handler: H) -> H:
    """Answer ``handler`` in the request's negotiated language (see the module docstring)."""
    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        language = negotiate(request.headers.get("Accept-Language"))
        token = _current.set(language)
        try:
            response = await handler(request)
        finally:
            _current.reset(token)
        response.headers["Content-Language"] = language.value
        vary = response.headers.get("Vary")
        response.headers["Vary"] = f"{vary}, Accept-Language" if vary else "Accept-Language"
        return response
    return answer  # type: ignore[return-value]
