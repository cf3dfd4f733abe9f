"""``GET /api/reports/daily?date=YYYY-MM-DD&format=html|pdf|xlsx``: one plant day's report.

``date`` defaults to the current plant day (covered up to now), ``format`` to html. Any
client that may read the API may ask for any format: PDF and XLSX carry the same figures as
the HTML page and the analytics routes, so no higher role is needed; the cost of rendering is
bounded instead by the ``reports`` service generating one report at a time. PDF and XLSX are
sent as attachments named ``daily-report-<date>.<format>``.
"""

from __future__ import annotations

import time
from datetime import date

from aiohttp import web
from pydantic import Field, field_validator

from gateway.northbound.http.deps import deps_of
from gateway.northbound.http.openapi import InvalidInput, QueryModel, query_of
from gateway.services.reports.generate import RenderedReport, ReportError, generate, today
from gateway.services.reports.model import ReportFormat
from gateway.services.reports.sources import ReportSources


class DailyReportQuery(QueryModel):
    """Which plant day, in which format."""

    date: str | None = Field(default=None, description="plant day YYYY-MM-DD; default today")
    format: ReportFormat = Field(default=ReportFormat.HTML, description="html, pdf or xlsx")

    @field_validator("date")
    @classmethod
    def _iso_day(cls, v: str | None) -> str | None:
        if v:
            try:
                date.fromisoformat(v)
            except ValueError:
                raise ValueError(f"'{v}' is not a date YYYY-MM-DD") from None
        return v or None


async def _render(request: web.Request, day: date, fmt: ReportFormat) -> RenderedReport:
    deps = deps_of(request)
    if deps.reports is not None:
        return await deps.reports.render(day, fmt)
    # Without the service (an app built for tests): open the stores for this one report.
    async with ReportSources(deps.settings.state_dir, [t.id for t in deps.catalog.tags]) as sources:
        return await generate(sources, deps.settings, deps.catalog, day, fmt)


async def get_daily(request: web.Request) -> web.Response:
    """GET /api/reports/daily: the report of a plant day as HTML, PDF or XLSX."""
    query: DailyReportQuery = query_of(request)
    settings = deps_of(request).settings
    day = date.fromisoformat(query.date) if query.date else today(settings, time.time())
    try:
        rendered = await _render(request, day, query.format)
    except ReportError as exc:
        raise InvalidInput(400, str(exc)) from None
    headers = {"Cache-Control": "no-store"}
    if query.format is not ReportFormat.HTML:
        headers["Content-Disposition"] = f'attachment; filename="{rendered.file_name}"'
    else:
        # The page has no script; its charts are inline PNG images.
        headers["Content-Security-Policy"] = ("default-src 'none'; style-src 'unsafe-inline'; "
                                              "img-src data:")
    media = query.format.media_type
    return web.Response(body=rendered.content, headers=headers,
                        content_type=media, charset="utf-8" if query.format is ReportFormat.HTML else None)
