"""The seed's predictive-maintenance list, from the PdM service (``ApiDeps.maintenance``).

``GET /api/maintenance/predictions``  one row per equipment with a prediction, in catalog
order: ``failure_probability`` and ``confidence`` in %, ``rul_hours`` null while the
prediction is NORMAL, ``shap_explanation.top_drivers`` with the seed's direction words
(``aumento`` / ``disminución``). Equipment without a trained model for its type has no row;
without the PdM service the list is empty (no prediction is invented). ``recommendation`` and
``narrative`` are in the request's language (:mod:`.language`); ``prediction`` keeps its enum
word (NORMAL / WARNING / FAILURE_IMMINENT) in every language.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
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


@localized
@cached(sources.catalog, sources.predictions, language_source)
async def get_predictions(request: web.Request) -> web.Response:
    """GET /api/maintenance/predictions."""
    deps = deps_of(request)
    found = prediction_dicts(deps.maintenance)
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
            "shap_explanation": p.get("shap_explanation") or {"top_drivers": []}}))
    return respond(out)


def setup(app: web.Application) -> None:
    add(app, Operation("GET", "/api/maintenance/predictions", get_predictions,
                       "Failure predictions per equipment", list[MaintenancePrediction], tag=TAG,
                       description=f"{ROUNDED} recommendation and narrative are sentences: {LANGUAGE_NOTE}"))
