"""Alarm routes: the active alarm list, the journal, alarm-rate KPIs, and operator actions.

Reads (any client):
  ``GET /api/alarms``          active alarms, oldest first; filters ``severity``, ``unit_id``,
                               ``tag_id``, ``state`` (each may list several values, comma-separated)
  ``GET /api/alarms/journal``  transitions newest first; ``limit`` (1..1000, default 100),
                               ``offset``, ``tag_id``, ``severity``, ``kind``, ``since``/``until``
                               (ISO 8601, or epoch seconds; ISO without offset means UTC)
  ``GET /api/alarms/kpis``     ISA-18.2 alarm-rate KPIs over ``window_s`` (default 24 h)

Writes (operator role):
  ``POST /api/alarms/{key}/acknowledge``     ``{"comment"?}``
  ``POST /api/alarms/{key}/shelve``          ``{"duration_s", "comment"?}``
  ``POST /api/alarms/{key}/unshelve``        ``{"comment"?}``
  ``POST /api/alarms/{key}/out-of-service``  ``{"enabled": bool, "comment"?}``

``{key}`` is an alarm key, ``TI-101/PROCESS`` (also ``TI-101/BAD_QUALITY``,
``plc-cdu-fcc/COMM_LOSS``), or an occurrence id ``TI-101/PROCESS#42``. The slash may be sent
as is or URL-encoded (``TI-101%2FPROCESS``); the ``#`` of an occurrence id must be encoded
(``%23``), or a client takes it as the start of a fragment.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import Field, field_validator

from analytics.alarm_lifecycle import AlarmError
from analytics.alarm_types import Alarm, AlarmKind, AlarmState, AlarmTransition, Severity
from gateway.northbound.http.auth import current_user
from gateway.northbound.http.deps import deps_of
from gateway.northbound.http.errors import error
from gateway.northbound.http.history import parse_time
from gateway.northbound.http.openapi import InvalidInput, Operation, QueryModel, add, query_of
from gateway.services.accounts.users import Role
from gateway.services.alarms.journal import MAX_QUERY_ROWS, JournalFilter
from gateway.services.alarms.service import AlarmService

DEFAULT_JOURNAL_LIMIT = 100
DEFAULT_KPI_WINDOW_S = 86400.0
MAX_KPI_WINDOW_S = 366 * 86400.0
MAX_SHELVE_S = 7 * 86400.0
MAX_COMMENT_CHARS = 500
KEY_ROUTE = "/api/alarms/{key:.+}"
TAG = "alarms"


class BadParameter(ValueError):
    """A query parameter or body field is invalid; the message names it."""


# --------------------------------------------------------------------------- JSON shapes

def iso(ts: float | None) -> str | None:
    if ts is None or not math.isfinite(ts):
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _clean(out: dict[str, Any]) -> dict[str, Any]:
    """NaN/inf are not JSON: null them."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in out.items()}


def alarm_json(alarm: Alarm) -> dict[str, Any]:
    """An alarm as the list shows it, with ISO copies of its times."""
    out = _clean(alarm.to_dict())
    for name in ("raised_at", "acked_at", "shelved_until", "unacked_since"):
        out[f"{name}_iso"] = iso(out[name])
    return out


def transition_json(t: AlarmTransition) -> dict[str, Any]:
    out = _clean(t.to_dict())
    out["time_iso"] = iso(t.time)
    return out


# --------------------------------------------------------------------------- parameters

_SEVERITIES = {s.value: s for s in Severity}
_STATES = {s.value: s for s in AlarmState if s is not AlarmState.NORMAL}
_KINDS = {k.value: k for k in AlarmKind}


def _choices(raw: str | None, allowed: dict[str, Any]) -> set[Any] | None:
    """A comma-separated list of allowed words (case-insensitive) as their values; None when
    absent. ValueError naming the first word that is not allowed."""
    if raw is None or raw == "":
        return None
    chosen = set()
    for word in raw.split(","):
        value = allowed.get(word.strip().upper())
        if value is None:
            raise ValueError(f"'{word.strip()}' is not one of {', '.join(sorted(allowed))}")
        chosen.add(value)
    return chosen


def _ids(raw: str | None) -> set[str] | None:
    return None if raw is None or raw == "" else {w.strip() for w in raw.split(",")}


def _known(name: str, chosen: set[str] | None, known: set[str]) -> set[str] | None:
    unknown = sorted((chosen or set()) - known)
    if unknown:
        raise InvalidInput(400, f"{name}: unknown {', '.join(repr(u) for u in unknown)}")
    return chosen


def _one_of(allowed: dict[str, Any], single: bool = False) -> Callable[[str | None], str | None]:
    def check(raw: str | None) -> str | None:
        chosen = _choices(raw, allowed)
        if single and chosen is not None and len(chosen) > 1:
            raise ValueError("give one value here")
        return raw
    return check


def _csv(words: dict[str, Any], what: str) -> str:
    return f"{what}: {', '.join(sorted(words))} (case-insensitive)"


class AlarmsQuery(QueryModel):
    severity: str | None = Field(default=None, description=_csv(_SEVERITIES, "comma-separated"))
    state: str | None = Field(default=None, description=_csv(_STATES, "comma-separated"))
    unit_id: str | None = Field(default=None, max_length=2000, description="comma-separated unit ids")
    tag_id: str | None = Field(default=None, max_length=20000,
                               description="comma-separated tag or device ids")

    _severity = field_validator("severity")(_one_of(_SEVERITIES))
    _state = field_validator("state")(_one_of(_STATES))


class JournalQuery(QueryModel):
    limit: int = Field(default=DEFAULT_JOURNAL_LIMIT, ge=1, le=MAX_QUERY_ROWS)
    offset: int = Field(default=0, ge=0, le=2**62)
    tag_id: str | None = Field(default=None, max_length=200)
    severity: str | None = Field(default=None, description=_csv(_SEVERITIES, "one of"))
    kind: str | None = Field(default=None, description=_csv(_KINDS, "one of"))
    since: str | None = Field(default=None, description="ISO 8601 or epoch s (no offset: UTC)")
    until: str | None = Field(default=None, description="ISO 8601 or epoch s, exclusive")

    _severity = field_validator("severity")(_one_of(_SEVERITIES, single=True))
    _kind = field_validator("kind")(_one_of(_KINDS, single=True))

    @field_validator("since", "until")
    @classmethod
    def _time(cls, v: str | None) -> str | None:
        parse_time(v)
        return v


class KpisQuery(QueryModel):
    window_s: float = Field(default=DEFAULT_KPI_WINDOW_S, gt=0, le=MAX_KPI_WINDOW_S,
                            allow_inf_nan=False, description="seconds back from now")


def _single(chosen: set[Any] | None) -> Any:
    return None if chosen is None else next(iter(chosen))


# --------------------------------------------------------------------------- reads

def _service(request: web.Request) -> AlarmService:
    service = deps_of(request).alarms
    if service is None:
        raise web.HTTPServiceUnavailable(reason="the alarm service is not running")
    return service


async def get_alarms(request: web.Request) -> web.Response:
    """Active alarms (every point not NORMAL), filtered."""
    deps = deps_of(request)
    service = _service(request)
    q: AlarmsQuery = query_of(request)
    severity, state = _choices(q.severity, _SEVERITIES), _choices(q.state, _STATES)
    units = _known("unit_id", _ids(q.unit_id), {u.id for u in deps.catalog.plant.units})
    tags = _known("tag_id", _ids(q.tag_id),
                  set(deps.catalog.index) | {d.id for d in deps.settings.devices})
    out = [alarm_json(a) for a in service.active()
           if (severity is None or a.severity in severity)
           and (state is None or a.state in state)
           and (units is None or a.unit_id in units)
           and (tags is None or a.tag_id in tags)]
    return web.json_response(out)


async def get_journal(request: web.Request) -> web.Response:
    """Journaled transitions, newest first, one page."""
    service = _service(request)
    q: JournalQuery = query_of(request)
    where = JournalFilter(
        tag_id=q.tag_id or None, severity=_single(_choices(q.severity, _SEVERITIES)),
        kind=_single(_choices(q.kind, _KINDS)), since=parse_time(q.since), until=parse_time(q.until))
    page = await service.journal_page(where, q.limit, q.offset)
    total = await service.journal.count(where)
    return web.json_response({"transitions": [transition_json(t) for t in page],
                              "limit": q.limit, "offset": q.offset, "total": total})


async def get_kpis(request: web.Request) -> web.Response:
    """ISA-18.2 alarm-rate KPIs (alarms per 10 min, floods, chattering, stale, top tags)."""
    service = _service(request)
    kpis = await service.kpis(query_of(request).window_s)
    kpis["window_start_iso"] = iso(kpis["window_start"])
    kpis["window_end_iso"] = iso(kpis["window_end"])
    return web.json_response(kpis)


# --------------------------------------------------------------------------- writes

async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    data = await request.json()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadParameter("body: must be a JSON object")
    return data


def _comment(body: dict[str, Any]) -> str | None:
    comment = body.get("comment")
    if comment is None:
        return None
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS:
        raise BadParameter(f"comment: must be text of at most {MAX_COMMENT_CHARS} characters")
    return comment.strip() or None


async def _act(request: web.Request, action: str) -> web.Response:
    service = _service(request)
    key = request.match_info["key"]
    user = current_user(request).name  # require_role guarantees a user
    try:
        body = await _body(request)
        comment = _comment(body)
        if action == "acknowledge":
            out = await service.acknowledge(key, user, comment)
        elif action == "shelve":
            duration = body.get("duration_s")
            if isinstance(duration, bool) or not isinstance(duration, (int, float)) \
                    or not 0 < duration <= MAX_SHELVE_S:
                raise BadParameter(f"duration_s: required, a number of seconds in "
                                   f"(0, {MAX_SHELVE_S:g}]")
            out = await service.shelve(key, user, float(duration), comment)
        elif action == "unshelve":
            out = await service.unshelve(key, user, comment)
        else:
            enabled = body.get("enabled")
            if not isinstance(enabled, bool):
                raise BadParameter("enabled: required, true (out of service) or false")
            out = await service.set_out_of_service(key, enabled, user, comment)
    except BadParameter as exc:
        return error(400, str(exc))
    except json.JSONDecodeError:
        return error(400, "body: not valid JSON")
    except AlarmError as exc:
        return error(404, str(exc.args[0]) if exc.args else "unknown alarm")
    except ValueError as exc:
        return error(400, str(exc))
    alarm = service.alarm(out[-1].key if out else key)
    return web.json_response({"transitions": [transition_json(t) for t in out],
                              "alarm": None if alarm is None else alarm_json(alarm)})


async def post_acknowledge(request: web.Request) -> web.Response:
    return await _act(request, "acknowledge")


async def post_shelve(request: web.Request) -> web.Response:
    return await _act(request, "shelve")


async def post_unshelve(request: web.Request) -> web.Response:
    return await _act(request, "unshelve")


async def post_out_of_service(request: web.Request) -> web.Response:
    return await _act(request, "out-of-service")


_ACTIONS = {404: "no alarm with this key", 400: "a bad body (the detail names the field)"}


def setup(app: web.Application) -> None:
    add(app, Operation("GET", "/api/alarms", get_alarms, "Active alarms, oldest first",
                       query=AlarmsQuery, tag=TAG, errors={503: "the alarm service is not running"}))
    add(app, Operation("GET", "/api/alarms/journal", get_journal,
                       "Alarm transitions, newest first (one page)", query=JournalQuery, tag=TAG))
    add(app, Operation("GET", "/api/alarms/kpis", get_kpis, "ISA-18.2 alarm-rate KPIs",
                       query=KpisQuery, tag=TAG))
    for action, handler, summary, body in (
            ("acknowledge", post_acknowledge, "Acknowledge an alarm", '{"comment"?}'),
            ("shelve", post_shelve, "Shelve an alarm for a while", '{"duration_s", "comment"?}'),
            ("unshelve", post_unshelve, "Return a shelved alarm", '{"comment"?}'),
            ("out-of-service", post_out_of_service, "Take an alarm out of service (or back)",
             '{"enabled": bool, "comment"?}')):
        add(app, Operation("POST", f"{KEY_ROUTE}/{action}", handler, summary, role=Role.OPERATOR,
                           tag=TAG, errors=_ACTIONS, description=f"Body {body}; the answer is "
                           "{transitions, alarm}."))
