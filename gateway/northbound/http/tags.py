"""Live tag values: GET /api/tags/live."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from aiohttp import web

from drivers.quality import Quality, Reason
from gateway.northbound.http import response_cache as sources
from gateway.northbound.http.deps import deps_of
from gateway.northbound.http.openapi import respond
from gateway.northbound.http.response_cache import cached


def iso(ts: float) -> str | None:
    """ISO 8601 with offset, or None for 'never'."""
    if not ts:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def quality_word(code: int) -> str:
    return Quality(code).name.lower()


@cached(sources.catalog, sources.scans)
async def get_live_tags(request: web.Request) -> web.Response:
    """GET /api/tags/live: every catalog tag's newest value, quality and source time."""
    deps = deps_of(request)
    live = deps.pipeline.live
    values = live.values.tolist()
    quality = live.quality.tolist()
    reason = live.reason.tolist()
    source_ts = live.source_ts.tolist()
    # Words and timestamps are made once per distinct code or time: the tags of one scan
    # share their source time, and there are few quality and reason codes.
    quality_text = {q: quality_word(q) for q in set(quality)}
    reason_text = {r: Reason(r).name.lower() if r else None for r in set(reason)}
    stamps = {ts: iso(ts) for ts in set(source_ts)}
    out = []
    for i, tag in enumerate(deps.catalog.tags):
        value = values[i]
        out.append({
            "tag_id": tag.id,
            "tag_name": tag.name,
            "unit_id": tag.unit_id,
            "equipment_id": tag.equipment_id,
            "device": live.device[i],
            "value": None if math.isnan(value) else value,
            "engineering_units": tag.engineering_units,
            "quality": quality[i],
            "quality_text": quality_text[quality[i]],
            "reason": reason_text[reason[i]],
            "source_timestamp": stamps[source_ts[i]],
        })
    return respond(out)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/tags/live", get_live_tags)
