"""The seed's daily report route: ``GET /api/reports/daily``.

The report itself (HTML for A4, PDF and XLSX of a plant day) lives in ``gateway.services.reports``;
this module only declares the route in the API's OpenAPI table, beside the other seed routes.
"""

from __future__ import annotations

from aiohttp import web

from gateway.northbound.http.openapi import HTML, Operation, add

TAG = "reports"


def setup(app: web.Application) -> None:
    """Declare ``GET /api/reports/daily``, served by :mod:`gateway.northbound.http.reports`."""
    # Imported here so that building the API does not load the report renderers until needed.
    from gateway.northbound.http.reports import DailyReportQuery
    from gateway.northbound.http.reports import get_daily as get_daily_report
    add(app, Operation("GET", "/api/reports/daily", get_daily_report,
                       "Daily operations report of a plant day (HTML for A4, PDF or XLSX)",
                       query=DailyReportQuery, content_type=HTML, tag=TAG,
                       errors={400: "date is not YYYY-MM-DD, the day has not begun, or format "
                                    "is not html, pdf or xlsx"}))
