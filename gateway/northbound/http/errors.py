"""Every error body is {"detail": "<reason>"}, which is what the seed's clients display."""

from __future__ import annotations

import json

from aiohttp import web

from gateway.runtime.logs import get_logger

log = get_logger("gateway.northbound.http")


def error(status: int, detail: str) -> web.Response:
    return web.json_response({"detail": detail}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Turn aiohttp's HTTP errors into JSON bodies and never let an exception become an
    unexplained 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        return error(exc.status, exc.reason)
    except json.JSONDecodeError:
        return error(400, "request body is not valid JSON")
    except Exception:
        log.exception("unhandled error in HTTP handler", path=request.path)
        return error(500, "internal error; see the gateway log")
