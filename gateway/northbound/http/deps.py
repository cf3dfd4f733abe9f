"""What route handlers may use: the running gateway's parts, behind one object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.ingest.pipeline import Pipeline
from gateway.settings import GatewaySettings
from plant.catalog import Catalog

CTX_KEY: web.AppKey[GatewayContext] = web.AppKey("ctx")


@dataclass
class GatewayContext:
    settings: GatewaySettings
    catalog: Catalog
    pipeline: Pipeline
    store: Any
    started_at: float
    extras: dict[str, Any] = field(default_factory=dict)


def ctx_of(request: web.Request) -> GatewayContext:
    return request.app[CTX_KEY]
