"""Where accepted scans go after the embedded store: the pipeline's sinks.

A sink receives every list of Batches the pipeline accepted, after they are durable in the
embedded store and in the live cache. The daemon (:mod:`gateway.daemon`) attaches each sink by
name in one place; a sink that raises is logged and the others still run. A sink sits on the
accept path, so it must return quickly: heavy work belongs on its own task or executor.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from drivers.batch import Batch


@runtime_checkable
class Sink(Protocol):
    """Anything with ``async on_batches(batches)``: alarms, MQTT values, the northbound OPC-UA
    server, analytics."""

    async def on_batches(self, batches: list[Batch]) -> None: ...
