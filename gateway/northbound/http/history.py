"""One tag's history from the embedded store, reduced for charts.

``GET /api/tags/{tag_id}/history?start=&end=&max_points=``

``start``/``end`` are ISO 8601 (no offset: UTC) or epoch seconds; by default the last hour.
With more samples than ``max_points`` (default 500), the range is cut into that many equal
buckets and each bucket gives its last sample, its min/mean/max of usable values and its
worst quality (``gateway.store.history.downsample``), so spikes and bad readings survive.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from aiohttp import web
from pydantic import BaseModel, Field, field_validator

from drivers.quality import Quality
from gateway.northbound.http import response_cache as sources
from gateway.northbound.http.deps import deps_of
from gateway.northbound.http.openapi import InvalidInput, Operation, QueryModel, add, query_of, respond
from gateway.northbound.http.response_cache import cached

TAG = "gateway"
DEFAULT_SPAN_S = 3600.0
MAX_SPAN_S = 366 * 86400.0
DEFAULT_POINTS = 500
MAX_POINTS = 10_000


def parse_time(value: str | float | None) -> float | None:
    """Epoch seconds from epoch seconds or ISO 8601 (no offset: UTC)."""
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            raise ValueError("neither ISO 8601 nor epoch seconds") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        seconds = parsed.timestamp()
    if not math.isfinite(seconds) or not 0 <= seconds < 4e9:
        raise ValueError("outside the years 1970..2096")
    return seconds


class HistoryQuery(QueryModel):
    start: str | None = Field(default=None, description="ISO 8601 or epoch s; default end - 1 h")
    end: str | None = Field(default=None, description="ISO 8601 or epoch s; default now")
    max_points: int = Field(default=DEFAULT_POINTS, ge=1, le=MAX_POINTS)

    @field_validator("start", "end")
    @classmethod
    def _time(cls, v: str | None) -> str | None:
        parse_time(v)
        return v


class HistoryPoint(BaseModel):
    timestamp: datetime
    value: float | None
    quality: str
    min: float | None = None
    mean: float | None = None
    max: float | None = None
    count: int | None = None


class TagHistoryAnswer(BaseModel):
    tag_id: str
    engineering_units: str
    start: datetime
    end: datetime
    downsampled: bool
    points: list[HistoryPoint]


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


@cached(sources.catalog, sources.scans, sources.clock_second)
async def get_history(request: web.Request) -> web.Response:
    deps = deps_of(request)
    tag_id = request.match_info["tag_id"]
    index = deps.catalog.index.get(tag_id)
    if index is None:
        raise InvalidInput(404, f"no tag '{tag_id}'")
    query: HistoryQuery = query_of(request)
    end = parse_time(query.end) or time.time()
    start = parse_time(query.start)
    start = end - DEFAULT_SPAN_S if start is None else start
    if not start < end:
        raise InvalidInput(400, "start: must be before end")
    if end - start > MAX_SPAN_S:
        raise InvalidInput(400, f"start: the range may span at most {MAX_SPAN_S / 86400:g} days")
    h = await deps.store.history(index, start, end, query.max_points)
    ts, values, quality = h.source_ts.tolist(), h.values.tolist(), h.quality.tolist()
    extra = ([a.tolist() for a in (h.minimum, h.mean, h.maximum, h.count)]
             if h.downsampled else None)
    points = []
    for k in range(len(ts)):
        if not math.isfinite(ts[k]):
            continue
        usable = quality[k] >= Quality.DOUBTFUL
        point = HistoryPoint(timestamp=datetime.fromtimestamp(ts[k], UTC),
                             value=_num(values[k]) if usable else None,
                             quality=Quality(quality[k]).name)
        if extra is not None:
            point.min, point.mean, point.max = (_num(extra[0][k]), _num(extra[1][k]),
                                                _num(extra[2][k]))
            point.count = int(extra[3][k])
        points.append(point)
    return respond(TagHistoryAnswer(
        tag_id=tag_id, engineering_units=deps.catalog.tags[index].engineering_units,
        start=datetime.fromtimestamp(start, UTC), end=datetime.fromtimestamp(end, UTC),
        downsampled=h.downsampled, points=points))


def setup(app: web.Application) -> None:
    add(app, Operation("GET", "/api/tags/{tag_id}/history", get_history,
                       "One tag's history, reduced to at most max_points", TagHistoryAnswer,
                       query=HistoryQuery, tag=TAG, errors={404: "no tag with this id"}))

