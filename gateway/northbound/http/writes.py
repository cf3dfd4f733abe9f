"""Tag writes over HTTP: the front door of the write path (``gateway.services.writes``).

``POST /api/tags/{tag_id}/write`` ``{"value": <number>, "reason": "<text>"}`` with a bearer
token. The role needed is the tag's ``write_role`` in plant.toml (default supervisor). The
answer carries the write's journal row:

=========================  ======  ===================================================
outcome                    status  body
=========================  ======  ===================================================
confirmed                  200     the journal row (read back within tolerance)
unconfirmed                202     the journal row (written, or perhaps written: a
                                   timeout or a read-back that disagreed; not retried)
rejected                   4xx     ``{"detail": why, "write": row}``: 403 role, 404 no
                                   such tag, 409 not writable / no good current value /
                                   permissive not met / device not connected, 422 not
                                   finite / outside the write range / step too large /
                                   not encodable, 429 too many writes to the tag waiting
rejected (shutting down),  503     ``{"detail": why, "write": row}``
unknown
failed                     502     ``{"detail": why, "write": row}``: the device refused
                                   the write or could not be reached
=========================  ======  ===================================================

A body that is not ``{"value": number, "reason": text}`` is 422 before the write path sees
it; no token 401. Every request that reaches the write path has a journal row.

``GET /api/tags/writes`` the journal, newest first: ``tag_id``, ``outcome``, ``user``,
``since``/``until`` (ISO 8601 or epoch seconds, on the request time), ``limit`` (1..1000,
default 100), ``offset``. ``GET /api/tags/writable``: the writable tags, their limits, role
and current value (what the status page offers to change).
"""

from __future__ import annotations

import math
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field, StrictFloat, field_validator

from gateway.northbound.http.auth import current_user
from gateway.northbound.http.deps import deps_of
from gateway.northbound.http.history import parse_time
from gateway.northbound.http.openapi import (
    BodyModel,
    InvalidInput,
    Operation,
    QueryModel,
    add,
    body_of,
    query_of,
    respond,
)
from gateway.services.accounts.users import Role
from gateway.services.writes.journal import MAX_QUERY_ROWS, WriteFilter
from gateway.services.writes.records import Outcome, Refusal, WriteRecord, WriteRequest
from gateway.services.writes.service import WriteService

TAG = "writes"
ORIGIN = "http"
MAX_REASON_CHARS = 500
DEFAULT_LIMIT = 100

REFUSAL_STATUS = {
    Refusal.UNKNOWN_TAG: 404, Refusal.ROLE: 403, Refusal.NOT_WRITABLE: 409,
    Refusal.NO_CURRENT_VALUE: 409, Refusal.PERMISSIVE: 409, Refusal.NO_DEVICE: 409,
    Refusal.NOT_CONNECTED: 409, Refusal.NOT_FINITE: 422, Refusal.OUT_OF_RANGE: 422,
    Refusal.STEP: 422, Refusal.NOT_ENCODABLE: 422, Refusal.BUSY: 429,
    Refusal.SHUTTING_DOWN: 503,
}
OUTCOME_STATUS = {Outcome.CONFIRMED: 200, Outcome.UNCONFIRMED: 202, Outcome.FAILED: 502,
                  Outcome.UNKNOWN: 503, Outcome.PENDING: 503}

OutcomeWord = Literal["pending", "confirmed", "rejected", "failed", "unconfirmed", "unknown"]


def http_status(record: WriteRecord) -> int:
    """The HTTP status that answers a write with this outcome."""
    if record.outcome is Outcome.REJECTED:
        return REFUSAL_STATUS.get(record.refusal, 409) if record.refusal else 409
    return OUTCOME_STATUS[record.outcome]


# --------------------------------------------------------------------------- shapes


class WriteBody(BodyModel):
    value: StrictFloat = Field(description="the new value in the tag's engineering units "
                                           "(a coil: 0 or 1)")
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS,
                        description="why the value is changed (journaled)")

    @field_validator("reason")
    @classmethod
    def _reason(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()


class WriteRow(BaseModel):
    """One row of the write journal."""

    id: int
    tag_id: str
    user: str
    role: str | None
    origin: str = Field(description="the front door: http, opcua, ...")
    client: str | None = Field(description="the caller's address")
    reason: str | None = Field(description="the caller's reason for the change")
    requested_value: float | None
    old_value: float | None = Field(description="the tag's value when the write was judged")
    old_quality: int | None
    read_back_value: float | None
    read_back_quality: int | None
    outcome: OutcomeWord
    refusal: str | None = Field(description="why a rejected write was refused (a code)")
    device_id: str | None
    device_status: str | None = Field(description="the device's answer when it failed")
    detail: str = Field(description="what happened, in words")
    requested_at: float
    finished_at: float | None
    requested_at_iso: str | None
    finished_at_iso: str | None


class WriteRefusedAnswer(BaseModel):
    detail: str
    write: WriteRow


class WritesPage(BaseModel):
    writes: list[WriteRow]
    limit: int
    offset: int
    total: int


class WritesQuery(QueryModel):
    tag_id: str | None = Field(default=None, max_length=200)
    outcome: OutcomeWord | None = None
    user: str | None = Field(default=None, max_length=64)
    since: str | None = Field(default=None, description="ISO 8601 or epoch s (request time)")
    until: str | None = Field(default=None, description="ISO 8601 or epoch s, exclusive")
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_QUERY_ROWS)
    offset: int = Field(default=0, ge=0, le=2**62)

    @field_validator("since", "until")
    @classmethod
    def _time(cls, v: str | None) -> str | None:
        parse_time(v)
        return v


class PermissiveRow(BaseModel):
    tag: str
    value: float


class WritableTag(BaseModel):
    tag_id: str
    tag_name: str
    unit_id: str | None
    engineering_units: str
    write_min: float
    write_max: float
    max_step: float | None
    write_role: str
    permissive: PermissiveRow | None
    device_id: str | None
    coil: bool = Field(description="a command with two states, 0 and 1")
    value: float | None = Field(description="the current live value")
    quality: int


# --------------------------------------------------------------------------- routes


def _service(request: web.Request) -> WriteService:
    service = deps_of(request).writes
    if service is None:
        raise web.HTTPServiceUnavailable(reason="writes are switched off ([writes] enabled = false)")
    return service


async def post_write(request: web.Request) -> web.Response:
    service = _service(request)
    body: WriteBody = body_of(request)
    user = current_user(request)  # the role guard guarantees one
    record = await service.write(WriteRequest(
        tag_id=request.match_info["tag_id"], value=float(body.value), user=user.name,
        role=user.role, origin=ORIGIN, client=request.remote, reason=body.reason))
    status = http_status(record)
    row = record.to_dict()
    if status < 300:
        return respond(row, status)
    response = respond({"detail": record.detail, "write": row}, status)
    if status in (429, 503):
        response.headers["Retry-After"] = "1"
    return response


async def get_writes(request: web.Request) -> web.Response:
    service = _service(request)
    q: WritesQuery = query_of(request)
    since, until = parse_time(q.since), parse_time(q.until)
    if since is not None and until is not None and not since < until:
        raise InvalidInput(400, "since: must be before until")
    where = WriteFilter(tag_id=q.tag_id or None,
                        outcome=None if q.outcome is None else Outcome(q.outcome),
                        user=q.user or None, since=since, until=until)
    page = await service.page(where, q.limit, q.offset)
    total = await service.journal.count(where)
    return respond({"writes": [r.to_dict() for r in page], "limit": q.limit,
                    "offset": q.offset, "total": total})


async def get_writable(request: web.Request) -> web.Response:
    service = _service(request)
    deps = deps_of(request)
    live = deps.pipeline.live
    out = []
    for tag in service.writable_tags():
        i = deps.catalog.index[tag.id]
        lo, hi = tag.write_range()
        value = float(live.values[i])
        out.append(WritableTag(
            tag_id=tag.id, tag_name=tag.name, unit_id=tag.unit_id,
            engineering_units=tag.engineering_units, write_min=lo, write_max=hi,
            max_step=tag.max_step, write_role=tag.write_role,
            permissive=None if tag.permissive is None else PermissiveRow(
                tag=tag.permissive.tag, value=tag.permissive.value),
            device_id=service.devices_by_tag.get(tag.id),
            coil=bool(tag.modbus is not None and tag.modbus.table.is_bits),
            value=value if math.isfinite(value) else None, quality=int(live.quality[i])))
    return respond(out)


_REFUSALS = {404: "no tag with this id (journaled)",
             409: "refused: not writable, no good current value, permissive not met, device "
                  "not connected (journaled; body {detail, write})",
             422: "refused: not finite, outside the write range, step too large (journaled; "
                  "body {detail, write}); or a body that is not {value, reason}",
             429: "too many writes to this tag waiting (journaled)",
             502: "failed: the device refused the write or could not be reached (journaled)",
             503: "the gateway is shutting down, or writes are switched off"}


def setup(app: web.Application) -> None:
    add(app, Operation(
        "POST", "/api/tags/{tag_id}/write", post_write, "Write a tag (a setpoint or a command)",
        WriteRow, body=WriteBody, role=Role.VIEWER, tag=TAG,
        errors={**_REFUSALS, 403: "below the tag's write_role (journaled)"},
        description="The role needed is the tag's write_role (plant.toml, default supervisor). "
                    "200: confirmed by the read-back; 202: written but not confirmed (a timeout "
                    "or a read-back that disagreed; never retried). Both answer the write's "
                    "journal row; every refusal answers {detail, write}."))
    add(app, Operation("GET", "/api/tags/writes", get_writes,
                       "The write journal, newest first", WritesPage, query=WritesQuery,
                       tag=TAG, errors={503: "writes are switched off"}))
    add(app, Operation("GET", "/api/tags/writable", get_writable,
                       "The writable tags with their limits, role and current value",
                       list[WritableTag], tag=TAG, errors={503: "writes are switched off"}))

