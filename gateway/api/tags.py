"""Live tag values: GET /api/tags/live."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from aiohttp import web

from drivers.quality import Quality, Reason
from gateway.api.context import ctx_of


def iso(ts: float) -> str | None:
    """ISO 8601 with offset, or None for 'never'."""
    if not ts:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def quality_word(code: int) -> str:
    return Quality(code).name.lower()


async def get_live_tags(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    live = ctx.pipeline.live
    values = live.values.tolist()
    quality = live.quality.tolist()
    reason = live.reason.tolist()
    source_ts = live.source_ts.tolist()
    out = []
    for i, tag in enumerate(ctx.catalog.tags):
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
            "quality_text": quality_word(quality[i]),
            "reason": Reason(reason[i]).name.lower() if reason[i] else None,
            "source_timestamp": iso(source_ts[i]),
        })
    return web.json_response(out)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/tags/live", get_live_tags)
