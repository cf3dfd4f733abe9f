"""Build the aiohttp application from the domain route modules."""

from __future__ import annotations

from aiohttp import web

from gateway.api import health, metrics, tags
from gateway.api.context import CTX_KEY, GatewayContext
from gateway.api.errors import error_middleware

DOMAINS = (health, tags, metrics)


def create_app(ctx: GatewayContext) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=1024 * 1024)
    app[CTX_KEY] = ctx
    for domain in DOMAINS:
        domain.setup(app)
    return app
