"""CORS by allow-list (``http.cors_origins``): a dashboard served from another origin (e.g.
http://localhost:3000) may call the API once its origin is listed, and no other may.

The API authenticates with a bearer token in the Authorization header, not with cookies, so
no credentials mode is needed and ``Access-Control-Allow-Credentials`` is never sent. The
allowed origin is echoed back, never ``*``, with ``Vary: Origin`` so caches keep answers for
different origins apart.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from gateway.northbound.http.errors import error

ALLOWED_METHODS = ("GET", "POST", "PUT", "DELETE", "OPTIONS")
ALLOWED_HEADERS = ("Authorization", "Content-Type")
# Headers a script on an allowed origin may read besides the simple ones.
EXPOSED_HEADERS = ("Retry-After", "WWW-Authenticate")
PREFLIGHT_MAX_AGE_S = 600


def normalize_origin(origin: str) -> str:
    """Origins compare as scheme://host[:port], lower-case, without a trailing slash."""
    return origin.strip().rstrip("/").lower()


def _add_vary(response: web.StreamResponse) -> None:
    vary = response.headers.get("Vary")
    if vary is None:
        response.headers["Vary"] = "Origin"
    elif "origin" not in {v.strip().lower() for v in vary.split(",")}:
        response.headers["Vary"] = f"{vary}, Origin"


def setup(app: web.Application, origins: Iterable[str]) -> None:
    """Allow exactly ``origins`` on ``app``: answer their preflights, and add the CORS headers
    to every response as it is sent (errors and streamed answers included)."""
    allowed = frozenset(normalize_origin(o) for o in origins if o.strip() and o.strip() != "*")

    @web.middleware
    async def cors_preflight(request: web.Request, handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        method = request.headers.get("Access-Control-Request-Method")
        if request.method == "OPTIONS" and origin is not None and method is not None:
            return _preflight(origin, normalize_origin(origin) in allowed, method)
        return await handler(request)

    async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if origin is None or "Access-Control-Allow-Methods" in response.headers:
            return
        _add_vary(response)
        if normalize_origin(origin) in allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)

    # First, so that a preflight never reaches authentication (browsers send it without a token).
    app.middlewares.insert(0, cors_preflight)
    app.on_response_prepare.append(cors_headers)


def _preflight(origin: str, listed: bool, method: str) -> web.Response:
    if not listed:
        response = error(403, f"origin {origin} is not allowed (http.cors_origins)")
    elif method.upper() not in ALLOWED_METHODS:
        response = error(405, f"method {method} is not allowed by CORS")
    else:
        response = web.Response(status=204, headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ", ".join(ALLOWED_METHODS),
            "Access-Control-Allow-Headers": ", ".join(ALLOWED_HEADERS),
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
        })
    _add_vary(response)
    return response
