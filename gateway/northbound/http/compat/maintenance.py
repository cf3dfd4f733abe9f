"""The seed's predictive-maintenance list, from the PdM service (``ApiDeps.maintenance``).

``GET /api/maintenance/predictions``  one row per equipment with a prediction, in catalog
order: ``failure_probability`` and ``confidence`` in %, ``rul_hours`` null while the
prediction is NORMAL, ``shap_explanation.top_drivers`` with the seed's direction words
(``aumento`` / ``disminución``). Equipment without a trained model for its type has no row;
without the PdM service the list is empty (no prediction is invented). ``recommendation`` and
``narrative`` are in the request's language (:mod:`.language`); ``prediction`` keeps its enum
word (NORMAL / WARNING / FAILURE_IMMINENT) in every language. Each row also carries the
equipment's ``condition_baseline`` (below; null when it has none), an addition to the seed's
fields, and the model card's warning rule: ``alarm`` (this prediction's own alarm), ``warning``
(the standing warning, after the card's on/off delays, which ``prediction`` follows) and
``warning_state`` (``on-delay: alarm for 3.0 of 6.0 h``; English words, like ``prediction``),
``warning_partial`` while the history is shorter than the rule needs.

``GET /api/maintenance/baseline``  the condition baseline of every pump, compressor, furnace,
exchanger and valve, in catalog order (not in the seed; it needs no trained model): ``state``
``learning`` (with ``progress_pct`` = good running hours learned / ``learning_h``) or
``active`` (with ``score``, 1.0 at the edge of the learned normal envelope, ``deviating``, and
``top_signals``: which signal moved, its share of the deviation and its direction). Equipment
the baseline cannot watch (a signal without a tag) is listed with ``state`` ``unavailable``
and the reason. Empty without the PdM service or with ``maintenance.baseline_enabled`` off.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from gateway.northbound.http import response_cache as sources
from gateway.northbound.http.compat.common import finite
from gateway.northbound.http.compat.language import LANGUAGE_NOTE, language_source, localized
from gateway.northbound.http.compat.rounding import ROUNDED, Hours, Percent
from gateway.northbound.http.compat.sentences import MAINTENANCE_NARRATIVE, MAINTENANCE_RECOMMENDATION
from gateway.northbound.http.deps import deps_of
from gateway.northbound.http.openapi import Operation, add, respond
from gateway.northbound.http.response_cache import cached

TAG = "maintenance"
SENTENCE = "Spanish, or English on Accept-Language en"


class Driver(BaseModel):
    feature: str
    contribution_pct: Percent
    direction: Literal["aumento", "disminución"]


class ShapExplanation(BaseModel):
    top_drivers: list[Driver]


class BaselineSignal(BaseModel):
    signal: str
    tag_id: str
    contribution_pct: Percent
    direction: Literal["above", "below"]


class ConditionBaseline(BaseModel):
    equipment_id: str
    equipment_name: str = ""
    equipment_type: str
    state: Literal["learning", "active", "unavailable"]
    progress_pct: Percent = Field(description="good running hours learned / learning_h (100 once active)")
    learned_h: Hours
    learning_h: Hours
    method: str | None = None
    signals: list[str] = []
    running: bool | None = Field(default=None, description="in service in the newest 5-minute bucket")
    score: float | None = Field(default=None, description="deviation; 1.0 = edge of the normal envelope")
    deviating: bool = False
    episodes: int = 0
    scored_at: datetime | None = None
    top_signals: list[BaselineSignal] = []
    reason: str | None = None


class MaintenancePrediction(BaseModel):
    equipment_id: str
    equipment_name: str
    equipment_type: str
    failure_probability: Percent
    rul_hours: Hours | None
    estimated_failure_date: str | None = None
    is_anomaly: bool
    anomaly_score: float
    prediction: str
    recommendation: str = Field(description=SENTENCE)
    narrative: str = Field(description=SENTENCE)
    confidence: Percent
    model_source: str
    timestamp: datetime
    shap_explanation: ShapExplanation
    condition_baseline: ConditionBaseline | None = None
    alarm: bool = Field(default=False, description="this prediction's own alarm: probability at or "
                                                   "above the model card's threshold")
    warning: bool = Field(default=False, description="the model card's standing warning (alarm held for "
                                                     "its on-delay, cleared after its off-delay); "
                                                     "prediction is NORMAL unless it stands")
    warning_state: str = Field(default="", description="e.g. 'on-delay: alarm for 3.0 of 6.0 h', "
                                                       "'off-delay: clear for 1.0 of 4.0 h' (English)")
    warning_partial: bool = Field(default=False, description="less history than the warning rule needs "
                                                             "(on_h + off_h): decided from what there is")


def prediction_dicts(maintenance: Any) -> dict[str, dict]:
    """The PdM service's current predictions by equipment_id, as plain dicts.

    Accepted (the service is written separately): ``predictions`` as a mapping of
    equipment_id to a prediction with ``as_dict()`` or to a dict, or a ``latest()`` method
    returning such a mapping.
    """
    if maintenance is None:
        return {}
    source = getattr(maintenance, "predictions", None)
    if source is None and callable(getattr(maintenance, "latest", None)):
        source = maintenance.latest()
    if callable(source):
        source = source()
    if not isinstance(source, Mapping):
        return {}
    out = {}
    for equipment_id, p in source.items():
        out[equipment_id] = p.as_dict() if hasattr(p, "as_dict") else dict(p)
    return out


def baseline_source(deps: Any) -> tuple[Any, ...]:
    """The PdM service's baseline view (replaced by every baseline run)."""
    return (getattr(deps.maintenance, "baseline_view", None),)


def baseline_rows(maintenance: Any, catalog: Any) -> dict[str, ConditionBaseline]:
    """Each watched equipment's baseline by equipment_id (catalog order)."""
    view = getattr(maintenance, "baseline_view", None) or {}
    unavailable = getattr(maintenance, "baseline_unavailable", None) or {}
    learning_h = getattr(getattr(maintenance, "settings", None), "baseline_learning_h", 0.0)
    out = {}
    for eq in catalog.plant.equipment:
        if eq.id in view:
            v = view[eq.id]
            scored = v.get("scored_ts")
            out[eq.id] = ConditionBaseline.model_validate({
                **v, "equipment_name": eq.name,
                "scored_at": None if scored is None else datetime.fromtimestamp(scored, UTC),
                "reason": v.get("error")})
        elif eq.id in unavailable:
            out[eq.id] = ConditionBaseline(equipment_id=eq.id, equipment_name=eq.name, equipment_type=eq.type,
                                           state="unavailable", progress_pct=0.0, learned_h=0.0,
                                           learning_h=learning_h, reason=unavailable[eq.id])
    return out


@cached(sources.catalog, baseline_source)
async def get_baseline(request: web.Request) -> web.Response:
    """GET /api/maintenance/baseline."""
    deps = deps_of(request)
    return respond(list(baseline_rows(deps.maintenance, deps.catalog).values()))


@localized
@cached(sources.catalog, sources.predictions, baseline_source, language_source)
async def get_predictions(request: web.Request) -> web.Response:
    """GET /api/maintenance/predictions."""
    deps = deps_of(request)
    found = prediction_dicts(deps.maintenance)
    baselines = baseline_rows(deps.maintenance, deps.catalog)
    out = []
    for eq in deps.catalog.plant.equipment:
        p = found.get(eq.id)
        if p is None or finite(p.get("failure_probability")) is None:
            continue
        out.append(MaintenancePrediction.model_validate({
            **p, "equipment_id": eq.id, "equipment_name": eq.name, "equipment_type": eq.type,
            "rul_hours": finite(p.get("rul_hours")),
            "recommendation": MAINTENANCE_RECOMMENDATION.say(p.get("recommendation")),
            "narrative": MAINTENANCE_NARRATIVE.say(p.get("narrative")),
            "shap_explanation": p.get("shap_explanation") or {"top_drivers": []},
            "condition_baseline": baselines.get(eq.id)}))
    return respond(out)


def setup(app: web.Application) -> None:
    add(app, Operation("GET", "/api/maintenance/predictions", get_predictions,
                       "Failure predictions per equipment", list[MaintenancePrediction], tag=TAG,
                       description=f"{ROUNDED} recommendation and narrative are sentences: {LANGUAGE_NOTE}"))
    add(app, Operation("GET", "/api/maintenance/baseline", get_baseline,
                       "Condition baseline per equipment: learning progress, or deviation score and "
                       "the signals that moved", list[ConditionBaseline], tag=TAG,
                       description=f"{ROUNDED} Learned from the gateway's own running history; no "
                                   "trained model needed."))
