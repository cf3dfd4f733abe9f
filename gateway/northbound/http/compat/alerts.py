"""The seed's alerts: the alarm engine's real alarms in the seed's shape.

``GET /api/alerts[?acknowledged=false]``   standing alarms, newest first
``GET /api/alerts/history[?limit=100]``    alarm occurrences from the journal, newest first
``POST /api/alerts/{id}/acknowledge``       acknowledge (operator): ``{"status": "success"}``

An alert is one alarm occurrence; its integer ``id`` is the sequence number of the transition
that raised it (the ``#42`` of the engine's occurrence id ``TI-101/PROCESS#42``), unique over
the gateway's life. The standing list shows what an operator must see: active alarms and
those returned to normal but unacknowledged; shelved and out-of-service alarms are left out
(ISA-18.2 hides them by design; ``/api/alarms`` lists them). ``value`` and ``threshold`` are
null for alarms that have none (bad quality, communication loss). ``time`` and ``timestamp``
are both the raise time (the seed's frontend reads either). History reads the newest
transitions of the journal (at most 1000) and reports each occurrence raised among them;
an occurrence is acknowledged when an acknowledge of it was journaled or it stands acknowledged.
``message`` is the engine's message in the request's language (:mod:`.language`,
:mod:`.alarm_sentences`); ``value`` and ``threshold`` are rounded to 2 decimals.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from analytics.alarm_lifecycle import AlarmError
from analytics.alarm_types import Alarm, AlarmState, AlarmTransition, Severity
from gateway.northbound.http import response_cache as sources
from gateway.northbound.http.auth import current_user
from gateway.northbound.http.compat.alarm_sentences import ALARM_MESSAGE
from gateway.northbound.http.compat.common import finite, running, unit_names, utc
from gateway.northbound.http.compat.language import LANGUAGE_NOTE, language_source, localized
from gateway.northbound.http.compat.rounding import ROUNDED, ProcessValue
from gateway.northbound.http.deps import ApiDeps, deps_of
from gateway.northbound.http.openapi import InvalidInput, Operation, QueryModel, add, query_of, respond
from gateway.northbound.http.response_cache import cached
from gateway.services.accounts.users import Role
from gateway.services.alarms.journal import MAX_QUERY_ROWS, JournalFilter

TAG = "alerts"
DEFAULT_HISTORY = 100
SHOWN_STATES = (AlarmState.UNACK, AlarmState.ACKED, AlarmState.RTN_UNACK)
ACK_FROM = (AlarmState.UNACK, AlarmState.RTN_UNACK)
ACK_TO = (AlarmState.ACKED, AlarmState.NORMAL)
DESCRIBED = f"{ROUNDED} The message is a sentence: {LANGUAGE_NOTE}"


class Alert(BaseModel):
    id: int
    timestamp: datetime | None
    time: datetime | None
    unit_id: str | None
    unit_name: str | None
    tag_id: str
    tag_name: str
    value: ProcessValue | None
    threshold: ProcessValue | None
    severity: Severity
    message: str = Field(description="what happened, a sentence: Spanish, or English on "
                                     "Accept-Language en")
    acknowledged: bool
    key: str
    kind: str
    state: str | None
    acknowledged_by: str | None = None


class AlertsQuery(QueryModel):
    acknowledged: bool | None = Field(default=None, description="false: only unacknowledged")


class HistoryQuery(QueryModel):
    limit: int = Field(default=DEFAULT_HISTORY, ge=1, le=MAX_QUERY_ROWS,
                       description="most occurrences returned")


class AckResult(BaseModel):
    status: str
    id: int
    acknowledged_by: str
    transitions: int


def occurrence_number(alarm_id: str | None) -> int | None:
    """``TI-101/PROCESS#42`` → 42."""
    if not alarm_id or "#" not in alarm_id:
        return None
    try:
        return int(alarm_id.rsplit("#", 1)[1])
    except ValueError:
        return None


def _source_name(deps: ApiDeps, tag_id: str) -> str:
    index = deps.catalog.index.get(tag_id)
    return deps.catalog.tags[index].name if index is not None else tag_id


def alert_of_alarm(deps: ApiDeps, alarm: Alarm, names: dict[str, str]) -> Alert:
    raised = utc(alarm.raised_at)
    return Alert(id=occurrence_number(alarm.alarm_id) or 0, timestamp=raised, time=raised,
                 unit_id=alarm.unit_id, unit_name=names.get(alarm.unit_id or ""),
                 tag_id=alarm.tag_id, tag_name=_source_name(deps, alarm.tag_id),
                 value=finite(alarm.value), threshold=finite(alarm.limit),
                 severity=alarm.severity, message=ALARM_MESSAGE.say(alarm.message) or "",
                 acknowledged=not alarm.state.is_unacknowledged, key=alarm.key,
                 kind=alarm.kind.value, state=alarm.state.value, acknowledged_by=alarm.acked_by)


def alert_of_activation(deps: ApiDeps, t: AlarmTransition, names: dict[str, str],
                        acknowledged_by: str | None, acknowledged: bool,
                        state: str | None) -> Alert:
    raised = utc(t.time)
    return Alert(id=occurrence_number(t.alarm_id) or t.seq, timestamp=raised, time=raised,
                 unit_id=t.unit_id, unit_name=names.get(t.unit_id or ""), tag_id=t.tag_id,
                 tag_name=_source_name(deps, t.tag_id), value=finite(t.value),
                 threshold=finite(t.limit), severity=t.severity,
                 message=ALARM_MESSAGE.say(t.message) or "",
                 acknowledged=acknowledged, key=t.key, kind=t.kind.value, state=state,
                 acknowledged_by=acknowledged_by)


@localized
@cached(sources.catalog, sources.alarms, language_source)
async def get_alerts(request: web.Request) -> web.Response:
    """GET /api/alerts: standing alarms, newest first."""
    deps = deps_of(request)
    query: AlertsQuery = query_of(request)
    names = unit_names(deps)
    alarms = [a for a in running(deps.alarms, "alarms").active() if a.state in SHOWN_STATES]
    alerts = [alert_of_alarm(deps, a, names) for a in alarms]
    if query.acknowledged is not None:
        alerts = [a for a in alerts if a.acknowledged == query.acknowledged]
    alerts.sort(key=lambda a: (a.timestamp.timestamp() if a.timestamp else 0.0, a.id),
                reverse=True)
    return respond(alerts)


def occurrences(deps: ApiDeps, transitions: list[AlarmTransition],
                standing: dict[str, Alarm], limit: int) -> list[Alert]:
    """Alerts for the occurrences raised among ``transitions`` (newest first)."""
    names = unit_names(deps)
    acked_by: dict[str, str | None] = {}
    for t in transitions:
        if t.from_state in ACK_FROM and t.to_state in ACK_TO and t.user is not None:
            acked_by.setdefault(t.alarm_id, t.user)
    out = []
    for t in transitions:
        if not t.is_activation:
            continue
        alarm = standing.get(t.alarm_id)
        if alarm is not None:
            acknowledged = not alarm.state.is_unacknowledged
            state = alarm.state.value
        else:
            acknowledged, state = t.alarm_id in acked_by, AlarmState.NORMAL.value
        out.append(alert_of_activation(deps, t, names, acked_by.get(t.alarm_id), acknowledged,
                                       state))
        if len(out) >= limit:
            break
    return out


@localized
@cached(sources.catalog, sources.alarms, language_source)
async def get_history(request: web.Request) -> web.Response:
    """GET /api/alerts/history: occurrences newest first."""
    deps = deps_of(request)
    query: HistoryQuery = query_of(request)
    alarms = running(deps.alarms, "alarms")
    transitions = await alarms.journal_page(JournalFilter(), MAX_QUERY_ROWS, 0)
    standing = {a.alarm_id: a for a in alarms.active() if a.alarm_id}
    return respond(occurrences(deps, transitions, standing, query.limit))


async def post_acknowledge(request: web.Request) -> web.Response:
    """POST /api/alerts/{id}/acknowledge: acknowledge a standing occurrence as this user."""
    raw = request.match_info["alert_id"]
    alarms = running(deps_of(request).alarms, "alarms")
    try:
        number = int(raw)
    except ValueError:
        raise InvalidInput(404, f"no standing alert with id '{raw}'") from None
    alarm = next((a for a in alarms.active() if occurrence_number(a.alarm_id) == number), None)
    if alarm is None:
        raise InvalidInput(404, f"no standing alert with id {number}")
    user = current_user(request).name
    try:
        done = await alarms.acknowledge(alarm.alarm_id, user)
    except AlarmError as exc:
        raise InvalidInput(404, str(exc.args[0]) if exc.args else "unknown alert") from None
    return respond(AckResult(status="success", id=number, acknowledged_by=user,
                             transitions=len(done)))


def setup(app: web.Application) -> None:
    add(app, Operation("GET", "/api/alerts", get_alerts, "Standing alarms, newest first",
                       list[Alert], query=AlertsQuery, tag=TAG, description=DESCRIBED))
    add(app, Operation("GET", "/api/alerts/history", get_history,
                       "Alarm occurrences, newest first", list[Alert], query=HistoryQuery, tag=TAG,
                       description=DESCRIBED))
    add(app, Operation("POST", "/api/alerts/{alert_id}/acknowledge", post_acknowledge,
                       "Acknowledge a standing alert", AckResult, role=Role.OPERATOR, tag=TAG,
                       errors={404: "no standing alert with this id"}))
