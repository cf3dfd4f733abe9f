"""GET /api/tags/live: each tag's own value, quality words and source time."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from drivers.quality import Quality, Reason
from gateway.ingest.live_cache import LiveCache
from gateway.northbound.http.deps import DEPS_KEY, ApiDeps
from gateway.northbound.http.tags import get_live_tags
from gateway.settings import GatewaySettings
from plant.catalog import Catalog
from plant.load import load_plant

PLANT = load_plant(Path(__file__).parents[2] / "config" / "plant.toml")
SCAN_TS = 1_764_168_000.123456


async def live_rows(catalog: Catalog, live: LiveCache) -> list[dict]:
    app = web.Application()
    # The route reads only the pipeline's live cache (and the cache its scan counter).
    pipeline = SimpleNamespace(live=live, accepted_batches=1)
    app[DEPS_KEY] = ApiDeps(settings=GatewaySettings(), catalog=catalog, pipeline=pipeline,
                            store=None, started_at=0.0)
    response = await get_live_tags(make_mocked_request("GET", "/api/tags/live", app=app))
    return json.loads(response.body)


async def test_tags_sharing_a_scan_and_tags_of_their_own_each_get_their_own_words_and_time():
    catalog = Catalog.build(PLANT)
    live = LiveCache(len(catalog))
    live.values[:] = np.arange(len(catalog), dtype=float)
    live.quality[:], live.reason[:], live.source_ts[:] = Quality.GOOD, Reason.NONE, SCAN_TS
    live.quality[1], live.reason[1], live.source_ts[1] = Quality.DOUBTFUL, Reason.STALE, SCAN_TS - 5
    live.values[2], live.quality[2], live.reason[2] = np.nan, Quality.BAD, Reason.TIMEOUT
    live.source_ts[3] = 0.0  # never read
    rows = await live_rows(catalog, live)
    assert [r["tag_id"] for r in rows] == [t.id for t in catalog.tags]
    assert (rows[0]["value"], rows[0]["quality_text"], rows[0]["reason"],
            rows[0]["source_timestamp"]) == (0.0, "good", None, "2025-11-26T14:40:00.123+00:00")
    assert (rows[1]["quality"], rows[1]["quality_text"], rows[1]["reason"],
            rows[1]["source_timestamp"]) == (128, "doubtful", "stale", "2025-11-26T14:39:55.123+00:00")
    assert (rows[2]["value"], rows[2]["quality_text"], rows[2]["reason"]) == (None, "bad", "timeout")
    assert rows[3]["source_timestamp"] is None
    assert rows[4]["source_timestamp"] == rows[0]["source_timestamp"]
