"""The simulator's loopback control API (aiohttp): inject faults, force wear, run scenarios,
make writes misbehave, read state.

- ``POST /faults`` ``{"tag_id": "TI-101", "kind": "stuck|spike|out_of_range|bad_quality",
  "duration_s": 30}`` or ``{"device": "opcua|modbus", "kind": "silence", "duration_s": 5}``
- ``POST /equipment/{id}/degrade`` ``{"health": 0.2}`` (0 fails it now, 1 makes it as new)
- ``GET /scenarios``: ``{"scenarios": [{"name", "description"}], "started": [{"name",
  "started_s"}]}``; ``POST /scenarios`` ``{"name": "furnace-upset"}`` starts one now (an
  unknown name is a 400 whose ``scenarios`` lists the known ones); see :mod:`simulator.scenarios`
- ``POST /writes`` ``{"mode": "normal|refuse|timeout", "device": "modbus|opcua", "apply": false}``
  sets how a device (both when ``device`` is left out) answers writes; ``apply`` (timeout only)
  lets an unanswered write take effect. ``GET /writes``: ``{"modes", "apply_unanswered",
  "writes": [{"device", "tag_id", "value", "time", "time_s", "outcome", "applied"}]}``, the
  writes the servers received, oldest first (see :mod:`simulator.writes`); ``DELETE /writes``
  empties that list.
- ``GET /state``: simulated time, equipment health, active faults, silenced devices, the last
  equipment events, tank levels, write modes and started scenarios.

Durations are simulated seconds. Errors are 400 (invalid body) or 404 (unknown tag or
equipment) with ``{"error": ...}``. The API has no authentication: bind it to loopback only.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from simulator.faults import TAG_FAULTS, Device, FaultRequest, RequestKind
from simulator.model import PlantModel
from simulator.scenarios import SCENARIOS, ScenarioRunner, UnknownScenario
from simulator.writes import WriteDesk, WriteMode

EVENTS_IN_STATE = 50


class UnknownTarget(LookupError):
    """A request names a tag or equipment the catalog does not have."""


class WritesRequest(BaseModel):
    """Body of ``POST /writes``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: WriteMode
    device: Device | None = None
    apply: bool = False


class ScenarioRequest(BaseModel):
    """Body of ``POST /scenarios``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str


def apply(model: PlantModel, request: FaultRequest) -> None:
    """Carry out one fault request on the model (from the API or a schedule)."""
    if request.kind in TAG_FAULTS:
        if request.tag_id not in model.catalog.index:
            raise UnknownTarget(f"unknown tag '{request.tag_id}'")
        model.inject(request.tag_id, TAG_FAULTS[request.kind], request.duration_s)  # type: ignore[arg-type]
    elif request.kind == RequestKind.SILENCE:
        model.silence(Device(request.device), request.duration_s)  # type: ignore[arg-type]
    elif request.kind == RequestKind.DEGRADE:
        if request.equipment_id not in model.equipment_ids:
            raise UnknownTarget(f"unknown equipment '{request.equipment_id}'")
        try:
            model.degrade(request.equipment_id, request.health)  # type: ignore[arg-type]
        except ValueError as exc:
            raise UnknownTarget(str(exc)) from None


def state(model: PlantModel, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-ready snapshot of the simulator's hidden and injected state."""
    now = model.time_s
    tags = model.catalog.tags
    return {
        "time_s": now,
        "seed": model.seed,
        **(extra or {}),
        "equipment": [
            {"id": eid, "type": etype, "health": round(float(h), 4), "failed": bool(f)}
            for eid, etype, h, f in zip(model.equipment_ids, model.degradation.types,
                                        model.equipment_health, model.equipment_failed, strict=True)
        ],
        "faults": [{"tag_id": tags[i].id, "kind": kind.name.lower(), "until_s": until}
                   for i, kind, until in model.faults.active(now)],
        "silenced": {d.value: model.faults.silent_until_s[d] for d in Device
                     if model.faults.is_silent(d, now)},
        "events": [{"time_s": e.time_s, "equipment_id": e.equipment_id, "kind": e.kind.value,
                    "health": e.health} for e in model.events[-EVENTS_IN_STATE:]],
        "tanks": {tid: round(float(lvl), 2) for tid, lvl in zip(model.tanks.tank_ids,
                                                                  model.tanks.level_pct, strict=True)},
    }


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _invalid(exc: ValidationError) -> web.Response:
    """400 naming each invalid field of the request (``body`` for the request as a whole)."""
    return _error(400, "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
                                 for e in exc.errors()))


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except json.JSONDecodeError as exc:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"body is not JSON: {exc}"}),
                                 content_type="application/json") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be a JSON object"}),
                                 content_type="application/json")
    return data


def build_app(model: PlantModel, extra_state: dict[str, Any] | None = None,
              on_change: Callable[[], Awaitable[None]] | None = None, *,
              writes: WriteDesk | None = None, scenarios: ScenarioRunner | None = None) -> web.Application:
    """The control API bound to one model; ``on_change`` republishes values after a request,
    so a fault is visible on the protocols when the response is sent. ``writes`` is the desk
    the servers hand writes to and ``scenarios`` the runner the simulation loop advances (the
    ``/writes`` and ``/scenarios`` routes exist when they are given)."""

    async def changed() -> None:
        if on_change is not None:
            await on_change()

    async def post_fault(request: web.Request) -> web.Response:
        try:
            fault = FaultRequest.model_validate(await _body(request))
        except ValidationError as exc:
            return _invalid(exc)
        if fault.kind == RequestKind.DEGRADE or fault.at_s is not None:
            return _error(400, "use POST /equipment/{id}/degrade; at_s is for schedules only")
        try:
            apply(model, fault)
        except UnknownTarget as exc:
            return _error(404, str(exc))
        await changed()
        return web.json_response({"ok": True, "time_s": model.time_s,
                                  "fault": fault.model_dump(mode="json", exclude_none=True)})

    async def post_degrade(request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            fault = FaultRequest(kind=RequestKind.DEGRADE, equipment_id=request.match_info["equipment_id"],
                                 health=body.get("health"))
        except ValidationError as exc:
            return _invalid(exc)
        try:
            apply(model, fault)
        except UnknownTarget as exc:
            return _error(404, str(exc))
        await changed()
        return web.json_response({"ok": True, "time_s": model.time_s})

    async def get_state(request: web.Request) -> web.Response:
        extra = dict(extra_state or {})
        if writes is not None:
            extra["write_modes"] = writes.state()["modes"]
        if scenarios is not None:
            extra["scenarios"] = scenarios.state()
        return web.json_response(state(model, extra))

    async def get_writes(request: web.Request) -> web.Response:
        assert writes is not None
        return web.json_response(writes.state())

    async def post_writes(request: web.Request) -> web.Response:
        assert writes is not None
        try:
            body = WritesRequest.model_validate(await _body(request))
        except ValidationError as exc:
            return _invalid(exc)
        writes.set_mode(body.mode, body.device, body.apply)
        state_now = writes.state()
        return web.json_response({"ok": True, "modes": state_now["modes"],
                                  "apply_unanswered": state_now["apply_unanswered"]})

    async def delete_writes(request: web.Request) -> web.Response:
        assert writes is not None
        writes.clear()
        return web.json_response({"ok": True})

    async def get_scenarios(request: web.Request) -> web.Response:
        assert scenarios is not None
        return web.json_response({"scenarios": [{"name": s.name, "description": s.description}
                                                for s in SCENARIOS.values()],
                                  "started": scenarios.state()})

    async def post_scenarios(request: web.Request) -> web.Response:
        assert scenarios is not None
        try:
            body = ScenarioRequest.model_validate(await _body(request))
        except ValidationError as exc:
            return _invalid(exc)
        try:
            scenarios.start(body.name, model)
        except UnknownScenario as exc:
            return web.json_response({"error": str(exc.args[0]), "scenarios": list(SCENARIOS)}, status=400)
        except ValueError as exc:
            return _error(400, str(exc))
        await changed()
        return web.json_response({"ok": True, "name": body.name, "time_s": model.time_s})

    app = web.Application()
    app.router.add_post("/faults", post_fault)
    app.router.add_post("/equipment/{equipment_id}/degrade", post_degrade)
    app.router.add_get("/state", get_state)
    if writes is not None:
        app.router.add_get("/writes", get_writes)
        app.router.add_post("/writes", post_writes)
        app.router.add_delete("/writes", delete_writes)
    if scenarios is not None:
        app.router.add_get("/scenarios", get_scenarios)
        app.router.add_post("/scenarios", post_scenarios)
    return app
