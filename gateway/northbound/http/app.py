"""Build the aiohttp application from the domain route modules and the gateway's parts."""

from __future__ import annotations

from aiohttp import web

from gateway.northbound.http import (
    alarms,
    analytics,
    auth,
    cors,
    devices,
    health,
    history,
    metrics,
    openapi,
    status_page,
    stream,
    tags,
    writes,
)
from gateway.northbound.http.compat import alerts as seed_alerts
from gateway.northbound.http.compat import assets as seed_assets
from gateway.northbound.http.compat import dashboard as seed_dashboard
from gateway.northbound.http.compat import energy as seed_energy
from gateway.northbound.http.compat import inventory as seed_inventory
from gateway.northbound.http.compat import maintenance as seed_maintenance
from gateway.northbound.http.compat import normalized as seed_normalized
from gateway.northbound.http.compat import reports as seed_reports
from gateway.northbound.http.deps import DEPS_KEY, ApiDeps
from gateway.northbound.http.errors import error_middleware
from gateway.northbound.http.response_cache import CACHE_KEY, ResponseCache

DOMAINS = (health, tags, writes, metrics, auth, alarms, analytics, openapi, devices, history, stream,
           seed_dashboard, seed_inventory, seed_assets, seed_alerts, seed_maintenance,
           seed_energy, seed_normalized, seed_reports, status_page)


def create_app(deps: ApiDeps) -> web.Application:
    """The API, the status page and /health, /metrics over ``deps`` (read at each request, so
    a reload that replaces ``deps.catalog`` or ``deps.settings`` is seen at once)."""
    # Order: CORS preflights first, then errors become JSON, then the caller is authenticated.
    app = web.Application(middlewares=[error_middleware, auth.auth_middleware],
                          client_max_size=1024 * 1024)
    cors.setup(app, deps.settings.http.cors_origins)
    app[DEPS_KEY] = deps
    app[CACHE_KEY] = ResponseCache()
    for domain in DOMAINS:
        domain.setup(app)
    return app
