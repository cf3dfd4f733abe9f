"""``GET /api/stream``: Server-Sent Events with live values and alarm transitions, for displays.

Events (``event:`` name, ``data:`` one JSON object):

* ``snapshot`` — once on connect: every plant tag's newest value;
* ``values`` — every ``interval_s``: the plant tags updated since the previous tick;
* ``alarm`` — each alarm transition as the alarm service journals it;
* a ``: keepalive`` comment when nothing else was sent for ``heartbeat_s``.

The events come from the ``stream`` service, :class:`~.stream_hub.StreamHub` (``deps.stream``):
how they are shared between clients and what a slow client loses is described there.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.northbound.http.deps import deps_of
from gateway.northbound.http.errors import error
from gateway.northbound.http.openapi import EVENT_STREAM, Operation, add

RETRY_MS = 3000  # how long a browser's EventSource waits before it reconnects


async def get_stream(request: web.Request) -> web.StreamResponse:
    """GET /api/stream: the event stream (see the module docstring)."""
    hub = deps_of(request).stream
    if hub is None:
        return error(503, "the stream service is not running")
    if hub.full:
        return error(503, f"too many stream clients (at most {hub.max_clients})")
    response = web.StreamResponse(headers={"Content-Type": EVENT_STREAM,
                                           "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    client = hub.connect()
    try:
        await response.write(f"retry: {RETRY_MS}\n\n".encode())
        await response.write(hub.snapshot())
        while not client.closed:
            try:
                await asyncio.wait_for(client.ready.wait(), hub.heartbeat_s)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            client.ready.clear()
            while client.queue:
                await response.write(client.queue.popleft())
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        hub.disconnect(client)
    return response


def setup(app: web.Application) -> None:
    add(app, Operation("GET", "/api/stream", get_stream,
                       "Live values and alarm transitions (Server-Sent Events)",
                       content_type=EVENT_STREAM, tag="gateway",
                       errors={503: "the stream service is not running or is full"}))
