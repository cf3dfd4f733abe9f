"""``respond`` encodes models in one pass into the JSON ``model_dump(mode="json")`` gives."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from analytics.alarm_types import Severity
from analytics.tanks import TankTrend
from gateway.northbound.http.compat.alerts import Alert
from gateway.northbound.http.compat.common import EquipmentStatus
from gateway.northbound.http.compat.inventory import SuppliesData, TankRow
from gateway.northbound.http.compat.normalized import EquipmentRow
from gateway.northbound.http.openapi import respond

RAISED = datetime(2026, 11, 26, 14, 5, 3, 123456, tzinfo=UTC)
ALERT = Alert(id=42, timestamp=RAISED, time=RAISED, unit_id="CDU-101", unit_name="Crude unit",
              tag_id="TI-101", tag_name="Heater outlet", value=365.25, threshold=None,
              severity=Severity.MEDIUM, message="TI-101: HI alarm, 365 °C > 360 °C",
              acknowledged=False, key="TI-101/PROCESS", kind="HI", state="UNACK")
TANK = TankRow(id="TK-101", name="Crude", product="crude", capacity=80000.0, current_level=None,
               level_pct=1e-05, status=TankTrend.FILLING, last_updated=RAISED)
EQUIPMENT = EquipmentRow(equipment_id="PUMP-101", equipment_name="Feed pump",
                         equipment_type="pump", unit_id="CDU-101",
                         status=EquipmentStatus.MAINTENANCE, manufacturer="",
                         installation_date=date(2019, 4, 1))


def model_dump_json(value) -> object:
    """What the routes answered before: ``model_dump(mode="json")`` through ``json``."""
    if isinstance(value, list):
        return [model_dump_json(v) for v in value]
    return json.loads(json.dumps(value.model_dump(mode="json")))


def test_a_model_list_is_the_json_of_its_model_dumps():
    alerts = [ALERT, ALERT.model_copy(update={"acknowledged_by": "oscar"})]
    assert json.loads(respond(alerts).body) == model_dump_json(alerts)


def test_nested_models_dates_enums_and_nulls_keep_their_json_form():
    body = json.loads(respond(SuppliesData(tanks=[TANK], inventory=[])).body)
    assert body == model_dump_json(SuppliesData(tanks=[TANK], inventory=[]))
    assert body["tanks"][0]["last_updated"] == "2026-11-26T14:05:03.123456Z"
    assert json.loads(respond(EQUIPMENT).body)["installation_date"] == "2019-04-01"


def test_the_answer_is_utf8_json_with_its_status():
    response = respond(ALERT, status=201)
    assert response.status == 201
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "365 °C" in response.body.decode("utf-8")
