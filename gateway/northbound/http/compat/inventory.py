"""The seed's supplies routes: tanks with their live level, and the inventory (CRUD).

``GET /api/supplies/data``            ``{tanks: [...], inventory: [...]}``
``GET /api/inventory``                every item; ``GET /api/inventory/{id}`` one
``POST /api/inventory``               a new item (supervisor); duplicate SKU 400
``PUT /api/inventory/{id}``           change some fields of an item (supervisor)
``DELETE /api/inventory/{id}``        remove an item (supervisor): ``{status, message}``

A tank's ``capacity`` and ``current_level`` are litres: the level tag (in % of capacity) from
the live cache when its quality is good or doubtful, else null; litres are whole and the level
has 1 decimal, as the original backend's (:mod:`.rounding`). ``status`` is the level trend
of the analytics service (FILLING, DRAINING, STABLE; null before its first run).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from analytics.tanks import TankTrend
from drivers.quality import Quality
from gateway.northbound.http import response_cache as sources
from gateway.northbound.http.compat.common import analytics_latest, by_key, running, utc
from gateway.northbound.http.compat.language import LANGUAGE_NOTE, localized
from gateway.northbound.http.compat.rounding import ROUNDED, Litres, Percent
from gateway.northbound.http.compat.sentences import deleted_message
from gateway.northbound.http.deps import deps_of
from gateway.northbound.http.openapi import BodyModel, InvalidInput, Operation, add, body_of, respond
from gateway.northbound.http.response_cache import cached
from gateway.services.accounts.users import Role
from gateway.services.inventory import DuplicateSku, InventoryStore, ItemNotFound, StockItem, StockStatus

TAG = "supplies"
MAX_QUANTITY = 1e12
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=128)]
Quantity = Annotated[float, Field(ge=0, le=MAX_QUANTITY, allow_inf_nan=False)]


class TankRow(BaseModel):
    id: str
    name: str
    product: str
    capacity: Litres
    current_level: Litres | None
    level_pct: Percent | None
    status: TankTrend | None
    last_updated: datetime | None


class InventoryRow(BaseModel):
    id: int
    item: str
    sku: str
    quantity: float
    unit: str
    status: StockStatus
    location: str
    category: str | None
    reorder_level: float
    critical_level: float
    last_updated: datetime | None


class SuppliesData(BaseModel):
    tanks: list[TankRow]
    inventory: list[InventoryRow]


class NewItem(BodyModel):
    """``POST /api/inventory``: status is derived from the levels unless given."""

    item: Text
    sku: Text
    quantity: Quantity
    unit: Text
    status: StockStatus | None = None
    location: OptionalText = ""
    category: OptionalText | None = None
    reorder_level: Quantity = 0.0
    critical_level: Quantity = 0.0


class ItemChange(BodyModel):
    """``PUT /api/inventory/{id}``: only the fields given change."""

    item: Text | None = None
    sku: Text | None = None
    quantity: Quantity | None = None
    unit: Text | None = None
    status: StockStatus | None = None
    location: OptionalText | None = None
    category: OptionalText | None = None
    reorder_level: Quantity | None = None
    critical_level: Quantity | None = None


class Deleted(BaseModel):
    status: str
    message: str = Field(description="a sentence: Spanish, or English on Accept-Language en")


def inventory_row(i: StockItem) -> InventoryRow:
    return InventoryRow(id=i.id, item=i.item, sku=i.sku, quantity=i.quantity, unit=i.unit,
                        status=i.status, location=i.location, category=i.category,
                        reorder_level=i.reorder_level, critical_level=i.critical_level,
                        last_updated=utc(i.last_updated))


def tank_rows(request: web.Request) -> list[TankRow]:
    deps = deps_of(request)
    live = deps.pipeline.live
    latest = analytics_latest(request)
    states = by_key(latest.tanks, "tank_id") if latest is not None else {}
    out = []
    for tank in deps.catalog.plant.tanks:
        i = deps.catalog.index[tank.level_tag]
        level = float(live.values[i])
        usable = live.quality[i] >= Quality.DOUBTFUL and math.isfinite(level)
        trend = states.get(tank.id, {}).get("trend")
        out.append(TankRow(
            id=tank.id, name=tank.name, product=tank.product, capacity=tank.capacity_l,
            current_level=tank.capacity_l * level / 100.0 if usable else None,
            level_pct=level if usable else None,
            status=TankTrend(trend) if trend in TankTrend.__members__ else None,
            last_updated=utc(float(live.source_ts[i]))))
    return out


def _store(request: web.Request) -> InventoryStore:
    return running(deps_of(request).inventory, "inventory")


def _item_id(request: web.Request) -> int:
    raw = request.match_info["item_id"]
    try:
        item_id = int(raw)
    except ValueError:
        raise InvalidInput(404, f"no inventory item with id '{raw}'") from None
    if not 0 < item_id < 2**63:
        raise InvalidInput(404, f"no inventory item with id '{raw}'")
    return item_id


@cached(sources.catalog, sources.scans, sources.analytics_latest, sources.inventory)
async def get_supplies(request: web.Request) -> web.Response:
    """GET /api/supplies/data: tanks and inventory."""
    items = await _store(request).list()
    return respond(SuppliesData(tanks=tank_rows(request),
                                inventory=[inventory_row(i) for i in items]))


@cached(sources.inventory)
async def list_inventory(request: web.Request) -> web.Response:
    return respond([inventory_row(i) for i in await _store(request).list()])


@cached(sources.inventory)
async def get_item(request: web.Request) -> web.Response:
    try:
        return respond(inventory_row(await _store(request).get(_item_id(request))))
    except ItemNotFound as exc:
        raise InvalidInput(404, str(exc)) from None


async def post_item(request: web.Request) -> web.Response:
    body: NewItem = body_of(request)
    fields = body.model_dump(exclude={"status"})
    try:
        item = await _store(request).add(fields, body.status)
    except DuplicateSku as exc:
        raise InvalidInput(400, f"sku: {exc}") from None
    return respond(inventory_row(item), status=201)


async def put_item(request: web.Request) -> web.Response:
    body: ItemChange = body_of(request)
    fields = body.model_dump(exclude={"status"}, exclude_none=True)
    try:
        item = await _store(request).update(_item_id(request), fields, body.status)
    except ItemNotFound as exc:
        raise InvalidInput(404, str(exc)) from None
    except DuplicateSku as exc:
        raise InvalidInput(400, f"sku: {exc}") from None
    return respond(inventory_row(item))


@localized
async def delete_item(request: web.Request) -> web.Response:
    try:
        item = await _store(request).delete(_item_id(request))
    except ItemNotFound as exc:
        raise InvalidInput(404, str(exc)) from None
    return respond(Deleted(status="success", message=deleted_message(item.id, item.sku)))


def setup(app: web.Application) -> None:
    not_found = {404: "no item with this id"}
    add(app, Operation("GET", "/api/supplies/data", get_supplies, "Tanks and inventory",
                       SuppliesData, tag=TAG, description=ROUNDED))
    add(app, Operation("GET", "/api/inventory", list_inventory, "Every inventory item",
                       list[InventoryRow], tag=TAG))
    add(app, Operation("GET", "/api/inventory/{item_id}", get_item, "One inventory item",
                       InventoryRow, tag=TAG, errors=not_found))
    add(app, Operation("POST", "/api/inventory", post_item, "Add an inventory item",
                       InventoryRow, body=NewItem, role=Role.SUPERVISOR, status=201, tag=TAG,
                       errors={400: "duplicate SKU or invalid body"}))
    add(app, Operation("PUT", "/api/inventory/{item_id}", put_item,
                       "Change fields of an inventory item", InventoryRow, body=ItemChange,
                       role=Role.SUPERVISOR, tag=TAG,
                       errors={**not_found, 400: "duplicate SKU or invalid body"}))
    add(app, Operation("DELETE", "/api/inventory/{item_id}", delete_item,
                       "Remove an inventory item", Deleted, role=Role.SUPERVISOR, tag=TAG,
                       errors=not_found, description=f"The message is a sentence: {LANGUAGE_NOTE}"))
