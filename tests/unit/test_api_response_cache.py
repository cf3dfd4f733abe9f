"""The read routes' response cache: kept while its sources are unchanged, never longer."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.northbound.http.deps import DEPS_KEY
from gateway.northbound.http.response_cache import CACHE_KEY, ResponseCache, cached


class Gateway:
    """Stands in for the app's ``ApiDeps``: what the test sources read, a counter and a
    replaceable object."""

    def __init__(self) -> None:
        self.counter = 0
        self.results = SimpleNamespace(rows=np.arange(3.0))  # numpy inside: never compared by ==
        self.calls = 0


def counter(deps: Gateway) -> tuple:
    return (deps.counter,)


def results(deps: Gateway) -> tuple:
    return (deps.results,)


async def start(gw: Gateway, routes: dict, cache: ResponseCache | None = None) -> TestClient:
    app = web.Application()
    app[DEPS_KEY] = gw
    app[CACHE_KEY] = cache if cache is not None else ResponseCache()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


def answer(gw: Gateway):
    @cached(counter, results)
    async def handler(request: web.Request) -> web.Response:
        gw.calls += 1
        return web.json_response({"counter": gw.counter, "calls": gw.calls,
                                  "query": request.query.get("q")})
    return handler


@pytest.fixture
async def served():
    gw = Gateway()
    client = await start(gw, {"/r": answer(gw)})
    yield gw, client
    await client.close()


async def get(client: TestClient, path: str) -> tuple[int, dict]:
    resp = await client.get(path)
    return resp.status, await resp.json()


async def test_unchanged_sources_serve_the_kept_body_without_running_the_handler(served):
    gw, client = served
    first = await client.get("/r")
    second = await client.get("/r")
    assert await first.read() == await second.read()
    assert gw.calls == 1
    assert second.headers["Content-Type"] == "application/json; charset=utf-8"


async def test_a_counter_that_moved_on_computes_the_answer_again(served):
    gw, client = served
    await get(client, "/r")
    gw.counter += 1
    assert (await get(client, "/r"))[1] == {"counter": 1, "calls": 2, "query": None}


async def test_a_replaced_object_computes_again_even_when_its_content_is_equal(served):
    gw, client = served
    await get(client, "/r")
    gw.results = SimpleNamespace(rows=np.arange(3.0))
    assert (await get(client, "/r"))[1]["calls"] == 2


async def test_each_query_string_has_its_own_answer(served):
    gw, client = served
    assert (await get(client, "/r?q=a"))[1]["query"] == "a"
    assert (await get(client, "/r?q=b"))[1]["query"] == "b"
    assert (await get(client, "/r?q=a"))[1] == {"counter": 0, "calls": 1, "query": "a"}


async def test_error_answers_are_not_kept():
    gw = Gateway()

    @cached(counter)
    async def flaky(request: web.Request) -> web.Response:
        gw.calls += 1
        return web.json_response({"calls": gw.calls}, status=503 if gw.calls == 1 else 200)

    client = await start(gw, {"/flaky": flaky})
    try:
        assert (await get(client, "/flaky")) == (503, {"calls": 1})
        assert (await get(client, "/flaky")) == (200, {"calls": 2})
        assert (await get(client, "/flaky")) == (200, {"calls": 2})
    finally:
        await client.close()


async def test_concurrent_requests_for_an_answer_being_computed_wait_for_it():
    gw = Gateway()
    release = asyncio.Event()

    @cached(counter)
    async def slow(request: web.Request) -> web.Response:
        gw.calls += 1
        await release.wait()
        return web.json_response({"calls": gw.calls})

    client = await start(gw, {"/slow": slow})
    try:
        requests = [asyncio.create_task(get(client, "/slow")) for _ in range(5)]
        while gw.calls == 0:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the other four have arrived and wait
        release.set()
        answers = await asyncio.gather(*requests)
        assert answers == [(200, {"calls": 1})] * 5
        assert gw.calls == 1
    finally:
        await client.close()


async def test_the_least_recently_used_answers_go_first_beyond_the_byte_budget():
    gw = Gateway()

    @cached(counter)
    async def sized(request: web.Request) -> web.Response:
        gw.calls += 1
        return web.json_response({"pad": "x" * 100})

    cache = ResponseCache(max_bytes=250)  # two bodies of 111 bytes fit, three do not
    client = await start(gw, {"/sized": sized}, cache)
    try:
        for q in ("a", "b", "a", "c"):
            await get(client, f"/sized?q={q}")
        assert (len(cache), gw.calls) == (2, 3)
        await get(client, "/sized?q=a")  # kept: used more recently than b
        assert gw.calls == 3
        await get(client, "/sized?q=b")  # dropped
        assert gw.calls == 4
        assert cache.bytes <= cache.max_bytes
    finally:
        await client.close()


async def test_a_body_larger_than_the_budget_is_served_but_not_kept():
    gw = Gateway()
    cache = ResponseCache(max_bytes=10)
    client = await start(gw, {"/r": answer(gw)}, cache)
    try:
        await get(client, "/r")
        await get(client, "/r")
        assert (len(cache), cache.bytes, gw.calls) == (0, 0, 2)
    finally:
        await client.close()
