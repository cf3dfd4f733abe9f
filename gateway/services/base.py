"""The extension point of the daemon: a Service starts after the pipeline is built and stops
after the last scan is accepted.

A service adds itself where it needs to be: a sink on ``gateway.ingest.pipeline.sinks`` (called with
each list of accepted Batches), long-running tasks on ``gateway.runtime.supervisor``, and health or
metrics sections on ``gateway.context.extras``. HTTP routes live in ``gateway/northbound/http/`` modules and
reach the service through ``ctx.extras[<name>]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gateway.daemon import Gateway


class Service(Protocol):
    name: str

    async def start(self, gateway: Gateway) -> None: ...

    async def stop(self) -> None: ...
