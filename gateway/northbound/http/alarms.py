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
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from analytics.alarm_lifecycle import AlarmError
from analytics.alarm_types import Alarm, AlarmKind, AlarmState, AlarmTransition, Severity
from gateway.northbound.http.auth import current_user, require_role
from gateway.northbound.http.deps import deps_of
from gateway.northbound.http.errors import error
from gateway.services.accounts.users import Role
from gateway.services.alarms.journal import MAX_QUERY_ROWS, JournalFilter
from gateway.services.alarms.service import AlarmService

DEFAULT_JOURNAL_LIMIT = 100
DEFAULT_KPI_WINDOW_S = 86400.0
MAX_KPI_WINDOW_S = 366 * 86400.0
MAX_SHELVE_S = 7 * 86400.0
MAX_COMMENT_CHARS = 500
KEY_ROUTE = "/api/alarms/{key:.+}"


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

def _choices(request: web.Request, name: str, allowed: dict[str, Any]) -> set[Any] | None:
    """A comma-separated list of allowed values (case-insensitive), or None when absent."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    chosen = set()
    for word in raw.split(","):
        value = allowed.get(word.strip().upper())
        if value is None:
            raise BadParameter(f"{name}: '{word.strip()}' is not one of "
                               f"{', '.join(sorted(allowed))}")
        chosen.add(value)
    return chosen


def _ids(request: web.Request, name: str, known: set[str]) -> set[str] | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    chosen = {w.strip() for w in raw.split(",")}
    unknown = sorted(chosen - known)
    if unknown:
        raise BadParameter(f"{name}: unknown {', '.join(repr(u) for u in unknown)}")
    return chosen


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(f"{name}: '{raw}' is not an integer") from None
    if not low <= value <= high:
        raise BadParameter(f"{name}: {value} is outside {low}..{high}")
    return value


def _float(request: web.Request, name: str, default: float, low: float, high: float) -> float:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadParameter(f"{name}: '{raw}' is not a number") from None
    if not (math.isfinite(value) and low < value <= high):
        raise BadParameter(f"{name}: {raw} is outside ({low:g}, {high:g}]")
    return value


def parse_time(name: str, raw: str) -> float:
    """Epoch seconds from epoch seconds or ISO 8601 (no offset: UTC)."""
    try:
        value = float(raw)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise BadParameter(f"{name}: '{raw}' is neither ISO 8601 nor epoch seconds") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    if not math.isfinite(value):
        raise BadParameter(f"{name}: '{raw}' is not a finite time")
    return value


def _time(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    return None if raw is None or raw == "" else parse_time(name, raw)


_SEVERITIES = {s.value: s for s in Severity}
_STATES = {s.value: s for s in AlarmState if s is not AlarmState.NORMAL}
_KINDS = {k.value: k for k in AlarmKind}


def _single(chosen: set[Any] | None, name: str) -> Any:
    if chosen is not None and len(chosen) > 1:
        raise BadParameter(f"{name}: give one value here")
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
    try:
        severity = _choices(request, "severity", _SEVERITIES)
        state = _choices(request, "state", _STATES)
        units = _ids(request, "unit_id", {u.id for u in deps.catalog.plant.units})
        sources = set(deps.catalog.index) | {d.id for d in deps.settings.devices}
        tags = _ids(request, "tag_id", sources)
    except BadParameter as exc:
        return error(400, str(exc))
    out = [alarm_json(a) for a in service.active()
           if (severity is None or a.severity in severity)
           and (state is None or a.state in state)
           and (units is None or a.unit_id in units)
           and (tags is None or a.tag_id in tags)]
    return web.json_response(out)


async def get_journal(request: web.Request) -> web.Response:
    """Journaled transitions, newest first, one page."""
    service = _service(request)
    try:
        limit = _int(request, "limit", DEFAULT_JOURNAL_LIMIT, 1, MAX_QUERY_ROWS)
        offset = _int(request, "offset", 0, 0, 2**62)
        where = JournalFilter(
            tag_id=request.query.get("tag_id") or None,
            severity=_single(_choices(request, "severity", _SEVERITIES), "severity"),
            kind=_single(_choices(request, "kind", _KINDS), "kind"),
            since=_time(request, "since"), until=_time(request, "until"))
    except BadParameter as exc:
        return error(400, str(exc))
    page = await service.journal_page(where, limit, offset)
    total = await service.journal.count(where)
    return web.json_response({"transitions": [transition_json(t) for t in page],
                              "limit": limit, "offset": offset, "total": total})


async def get_kpis(request: web.Request) -> web.Response:
    """ISA-18.2 alarm-rate KPIs (alarms per 10 min, floods, chattering, stale, top tags)."""
    service = _service(request)
    try:
        window_s = _float(request, "window_s", DEFAULT_KPI_WINDOW_S, 0.0, MAX_KPI_WINDOW_S)
    except BadParameter as exc:
        return error(400, str(exc))
    kpis = await service.kpis(window_s)
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


@require_role(Role.OPERATOR)
async def post_acknowledge(request: web.Request) -> web.Response:
    return await _act(request, "acknowledge")


@require_role(Role.OPERATOR)
async def post_shelve(request: web.Request) -> web.Response:
    return await _act(request, "shelve")


@require_role(Role.OPERATOR)
async def post_unshelve(request: web.Request) -> web.Response:
    return await _act(request, "unshelve")


@require_role(Role.OPERATOR)
async def post_out_of_service(request: web.Request) -> web.Response:
    return await _act(request, "out-of-service")


def setup(app: web.Application) -> None:
    app.router.add_get("/api/alarms", get_alarms)
    app.router.add_get("/api/alarms/journal", get_journal)
    app.router.add_get("/api/alarms/kpis", get_kpis)
    app.router.add_post(f"{KEY_ROUTE}/acknowledge", post_acknowledge)
    app.router.add_post(f"{KEY_ROUTE}/shelve", post_shelve)
    app.router.add_post(f"{KEY_ROUTE}/unshelve", post_unshelve)
    app.router.add_post(f"{KEY_ROUTE}/out-of-service", post_out_of_service)
