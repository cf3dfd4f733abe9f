"""The SSE stream's hub: a slow client loses its oldest events, counted; values come from the
gateway's live cache and catalog as they are at each tick."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from drivers.quality import Quality
from gateway.ingest.live_cache import LiveCache
from gateway.northbound.http.deps import ApiDeps
from gateway.northbound.http.stream_hub import SERVICE_NAME, StreamClient, StreamHub, encode_event
from gateway.settings import GatewaySettings
from plant.catalog import Catalog
from plant.load import load_plant

PLANT = load_plant(Path(__file__).parents[2] / "config" / "plant.toml")


class Tasks:
    """Records the tasks started, as the daemon's supervisor would run them."""

    def __init__(self) -> None:
        self.started: dict[str, object] = {}

    def start(self, name, factory) -> None:
        self.started[name] = factory


def deps_with_live(catalog: Catalog) -> ApiDeps:
    live = LiveCache(len(catalog))
    live.values[:], live.quality[:], live.receive_ts[:] = np.arange(len(catalog)), Quality.GOOD, 1.0
    return ApiDeps(settings=GatewaySettings(), catalog=catalog,
                   pipeline=SimpleNamespace(live=live), store=None, started_at=0.0)


def test_a_full_client_queue_drops_its_oldest_event_and_counts_it():
    client = StreamClient(max_events=2)
    for n in range(3):
        client.put(encode_event("values", {"n": n}, n))
    assert client.dropped == 1
    assert [b'"n":1' in f or b'"n":2' in f for f in client.queue] == [True, True]
    assert b'"n":1' in client.queue[0]


def test_the_hub_counts_drops_across_clients():
    hub = StreamHub(deps_with_live(Catalog.build(PLANT)), Tasks(), queue_events=1)
    slow, fast = hub.connect(), hub.connect()
    hub.publish("alarm", {"seq": 1})
    fast.queue.clear()
    hub.publish("alarm", {"seq": 2})
    assert (slow.dropped, fast.dropped, hub.dropped) == (1, 0, 1)


def test_an_event_frame_is_sse_with_id_name_and_one_json_line():
    frame = encode_event("alarm", {"tag_id": "TI-101"}, 7).decode()
    assert frame == 'id: 7\nevent: alarm\ndata: {"tag_id":"TI-101"}\n\n'


def test_start_runs_the_ticker_as_a_named_task():
    tasks = Tasks()
    hub = StreamHub(deps_with_live(Catalog.build(PLANT)), tasks)
    asyncio.run(hub.start())
    assert tasks.started == {SERVICE_NAME: hub.run}


def test_values_name_the_tags_of_the_catalog_the_deps_hold_now():
    deps = deps_with_live(Catalog.build(PLANT))
    hub = StreamHub(deps, Tasks())
    assert hub.values()["values"][0]["tag_id"] == PLANT.tags[0].id
    # A reload replaces deps.catalog; the hub's next event follows it.
    deps.catalog = Catalog.build(PLANT.model_copy(update={"tags": list(reversed(PLANT.tags))}))
    assert hub.values()["values"][0]["tag_id"] == PLANT.tags[-1].id
