"""The control-room status page: ``/`` for browsers, its assets under ``/static/``.

``GET /`` answers by content negotiation: a browser (``Accept`` preferring ``text/html``) gets
the page; a JSON client keeps the seed's answer (``seed_dashboard.get_root``). ``/status``
always serves the page. The page is static HTML with ES modules (``gateway/northbound/http/static/``) that
read the same API as any client (``/api/tags/live``, ``/api/stream``, ``/api/alarms``,
``/api/analytics/*``, ``/api/maintenance/baseline``, ``/api/tags/{tag_id}/history``,
``/api/tags/writable``, ``/api/tags/writes``): no build step, no separate web server. A logged-in user with a tag's
``write_role`` changes it through ``POST /api/tags/{tag_id}/write`` after a confirmation step
that shows the old and the new value (``static/js/writes.js``).

The equipment table shows, per machine, the condition baseline
(:mod:`analytics.pdm.baseline`): ``learning n %`` from the first baseline run after start,
then the deviation score with the signal that moved most (its contributions in the cell's
title), in red while the machine deviates.

Layout: no table may be wider than its panel at 1366x768, 1600x900 or 1920x1080 (the
equipment table's headers and worst-signal column wrap; one column per table, ``td.fill``,
takes the width the others leave and cuts its text with an ellipsis, the full text in the
cell's title); tests/e2e/test_status_page.py measures it in Chromium.

Charts use plotly.js served from the installed ``plotly`` Python package
(``plotly/package_data/plotly.min.js``), a dependency rather than copied source.

Content-Security-Policy: scripts only from this origin (no inline script, no eval); styles
from this origin plus inline ``style`` elements, which plotly.js inserts for its own chart
styling (an inline style cannot run code).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from gateway.northbound.http.errors import error

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX_FILE = STATIC_DIR / "index.html"
PAGE_PATH = "/status"
STATIC_PREFIX = "/static"
PLOTLY_PATH = "/vendor/plotly.min.js"
HTML = "text/html"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def plotly_bundle() -> Path | None:
    """plotly.min.js inside the installed plotly package (None when it is not installed)."""
    try:
        import plotly
    except ImportError:
        return None
    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


def _quality(accept: str, media: str) -> float:
    """The q-value ``accept`` gives ``media`` (exact type, then ``type/*``, then ``*/*``)."""
    best, best_rank = 0.0, -1
    kind = media.split("/")[0]
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        name = fields[0].lower()
        rank = 2 if name == media else 1 if name == f"{kind}/*" else 0 if name == "*/*" else -1
        if rank < best_rank or rank < 0:
            continue
        q = 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        best, best_rank = q, rank
    return best


def wants_html(request: web.Request) -> bool:
    """A browser navigating: ``text/html`` preferred over ``application/json``."""
    accept = request.headers.get("Accept", "")
    html_q = _quality(accept, HTML)
    return html_q > 0 and html_q > _quality(accept, "application/json")


async def get_page(request: web.Request) -> web.StreamResponse:
    """GET /status (and / for browsers): the status page."""
    return web.FileResponse(INDEX_FILE, headers={**SECURITY_HEADERS, "Content-Type": HTML})


async def get_plotly(request: web.Request) -> web.StreamResponse:
    """GET /vendor/plotly.min.js from the installed plotly package."""
    path = plotly_bundle()
    if path is None:
        return error(404, "plotly is not installed: charts are unavailable")
    return web.FileResponse(path, headers={"Content-Type": "text/javascript",
                                           "Cache-Control": "public, max-age=86400"})


@web.middleware
async def negotiate_root(request: web.Request, handler) -> web.StreamResponse:
    """``GET /`` from a browser: the page instead of the seed's JSON."""
    if request.path == "/" and request.method in ("GET", "HEAD") and wants_html(request):
        return await get_page(request)
    return await handler(request)


def setup(app: web.Application) -> None:
    app.middlewares.append(negotiate_root)
    app.router.add_get(PAGE_PATH, get_page)
    app.router.add_get(PLOTLY_PATH, get_plotly)
    app.router.add_static(STATIC_PREFIX, STATIC_DIR, follow_symlinks=False, show_index=False)
