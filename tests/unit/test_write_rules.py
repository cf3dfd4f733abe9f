"""What a write must satisfy before anything is sent (gateway/services/writes/rules.py), and
how each outcome answers over HTTP and OPC-UA."""

from __future__ import annotations

import math

import pytest
from asyncua import ua

from gateway.northbound.http.writes import http_status
from gateway.northbound.opcua.writes import numeric_value, status_of
from gateway.services.accounts.users import Role
from gateway.services.writes.records import Outcome, Refusal, WriteRecord
from gateway.services.writes.rules import Reading, agrees, check_live, check_static
from gateway.settings import OpcUaServerSettings, WritesSettings
from plant.schema import Tag

FRESH = 15.0


def setpoint(**extra) -> Tag:
    return Tag.model_validate({
        "id": "TIC-1.SP", "name": "SP", "engineering_units": "°C", "tag_type": "TEMPERATURE",
        "normal_min": 330, "normal_max": 370, "instrument_min": 0, "instrument_max": 600,
        "modbus": {"table": "holding", "address": 1, "type": "int16", "scale": 0.1},
        "writable": True, "write_min": 330, "write_max": 370, "max_step": 10, **extra})


def coil(**extra) -> Tag:
    return Tag.model_validate({
        "id": "HS-1", "name": "pump", "engineering_units": "on/off", "tag_type": "STATUS",
        "normal_min": 1, "normal_max": 1, "instrument_min": 0, "instrument_max": 1,
        "modbus": {"table": "coil", "address": 1, "type": "bool"}, "writable": True,
        "write_role": "operator", "permissive": {"tag": "XV-1", "value": 1}, **extra})


def good(value: float, age_s: float = 1.0) -> Reading:
    return Reading(value, 192, age_s)


@pytest.mark.parametrize(("value", "role", "refusal"), [
    (350.0, None, Refusal.ROLE),
    (350.0, Role.VIEWER, Refusal.ROLE),
    (350.0, Role.OPERATOR, Refusal.ROLE),
    (math.nan, Role.SUPERVISOR, Refusal.NOT_FINITE),
    (-math.inf, Role.ADMIN, Refusal.NOT_FINITE),
    (329.99, Role.SUPERVISOR, Refusal.OUT_OF_RANGE),
    (370.01, Role.SUPERVISOR, Refusal.OUT_OF_RANGE),
])
def test_static_checks_refuse_with_their_reason(value, role, refusal):
    rejection = check_static(setpoint(), value, role)
    assert rejection is not None and rejection.refusal is refusal and rejection.detail


@pytest.mark.parametrize("value", [330.0, 350.0, 370.0])
def test_a_value_inside_the_write_range_by_a_supervisor_or_above_passes(value):
    assert check_static(setpoint(), value, Role.SUPERVISOR) is None
    assert check_static(setpoint(), value, Role.ADMIN) is None


def test_a_tag_that_is_not_writable_is_refused_first():
    tag = Tag.model_validate({"id": "TI-1", "name": "t", "engineering_units": "°C",
                              "tag_type": "TEMPERATURE", "normal_min": 0, "normal_max": 1})
    assert check_static(tag, 0.5, Role.ADMIN).refusal is Refusal.NOT_WRITABLE


def test_the_role_message_says_what_is_needed():
    assert "supervisor role" in check_static(setpoint(), 350.0, Role.VIEWER).detail
    assert "authenticated" in check_static(setpoint(), 350.0, None).detail


@pytest.mark.parametrize(("current", "value", "refusal"), [
    (good(350.0), 360.0, None),
    (good(350.0), 360.5, Refusal.STEP),
    (good(350.0), 339.0, Refusal.STEP),
    (None, 351.0, Refusal.NO_CURRENT_VALUE),
    (Reading(350.0, 64, 1.0), 351.0, Refusal.NO_CURRENT_VALUE),  # bad quality
    (Reading(350.0, 128, 1.0), 351.0, Refusal.NO_CURRENT_VALUE),  # doubtful is not enough
    (good(350.0, age_s=FRESH + 1), 351.0, Refusal.NO_CURRENT_VALUE),  # too old
    (good(math.nan), 351.0, Refusal.NO_CURRENT_VALUE),
])
def test_the_step_is_judged_from_a_good_fresh_current_value(current, value, refusal):
    rejection = check_live(setpoint(), value, current, None, FRESH)
    assert (rejection.refusal if rejection else None) is refusal


def test_without_max_step_no_current_value_is_needed():
    assert check_live(setpoint(max_step=None), 365.0, None, None, FRESH) is None


@pytest.mark.parametrize(("permissive", "refusal"), [
    (good(1.0), None), (good(0.0), Refusal.PERMISSIVE), (None, Refusal.PERMISSIVE),
    (Reading(1.0, 64, 1.0), Refusal.PERMISSIVE), (good(1.0, age_s=FRESH + 1), Refusal.PERMISSIVE)])
def test_a_permissive_must_read_its_value_with_good_fresh_quality(permissive, refusal):
    rejection = check_live(coil(), 1.0, None, permissive, FRESH)
    assert (rejection.refusal if rejection else None) is refusal


def test_a_read_back_agrees_within_the_tags_tolerance_and_only_with_good_quality():
    tag = setpoint()  # int16 x0.1: half a count
    assert agrees(tag, 355.0, 355.04, 192)
    assert not agrees(tag, 355.0, 355.1, 192)
    assert not agrees(tag, 355.0, 355.0, 128)
    assert not agrees(tag, 355.0, math.nan, 192)
    assert agrees(coil(), 1.0, 1.0, 192) and not agrees(coil(), 1.0, 0.0, 192)


def record(outcome: Outcome, refusal: Refusal | None = None,
           device_status: str | None = None) -> WriteRecord:
    return WriteRecord(id=1, tag_id="T", user="u", role=None, origin="http", client=None,
                       reason=None, requested_value=1.0, old_value=None, old_quality=None,
                       read_back_value=None, read_back_quality=None, outcome=outcome,
                       refusal=refusal, device_id=None, device_status=device_status, detail="",
                       requested_at=1.0, finished_at=2.0)


@pytest.mark.parametrize(("row", "status"), [
    (record(Outcome.CONFIRMED), 200), (record(Outcome.UNCONFIRMED), 202),
    (record(Outcome.FAILED, device_status="IllegalDataAddress"), 502),
    (record(Outcome.UNKNOWN), 503), (record(Outcome.REJECTED, Refusal.ROLE), 403),
    (record(Outcome.REJECTED, Refusal.UNKNOWN_TAG), 404),
    (record(Outcome.REJECTED, Refusal.PERMISSIVE), 409),
    (record(Outcome.REJECTED, Refusal.STEP), 422), (record(Outcome.REJECTED, Refusal.BUSY), 429),
    (record(Outcome.REJECTED, Refusal.SHUTTING_DOWN), 503)])
def test_each_outcome_has_its_http_status(row, status):
    assert http_status(row) == status


def test_every_refusal_is_a_4xx_over_http_except_a_shutdown():
    for refusal in Refusal:
        status = http_status(record(Outcome.REJECTED, refusal))
        assert 400 <= status < 500 or (refusal is Refusal.SHUTTING_DOWN and status == 503)


@pytest.mark.parametrize(("row", "code"), [
    (record(Outcome.CONFIRMED), ua.StatusCodes.Good),
    (record(Outcome.UNCONFIRMED), ua.StatusCodes.Uncertain),
    (record(Outcome.REJECTED, Refusal.ROLE), ua.StatusCodes.BadUserAccessDenied),
    (record(Outcome.REJECTED, Refusal.OUT_OF_RANGE), ua.StatusCodes.BadOutOfRange),
    (record(Outcome.REJECTED, Refusal.STEP), ua.StatusCodes.BadOutOfRange),
    (record(Outcome.FAILED, device_status="BadNotWritable"), ua.StatusCodes.BadNotWritable),
    (record(Outcome.FAILED, device_status="ServerDeviceFailure"), ua.StatusCodes.BadDeviceFailure),
    (record(Outcome.FAILED, device_status="NotConnected"), ua.StatusCodes.BadNotConnected),
    (record(Outcome.UNKNOWN), ua.StatusCodes.BadShutdown)])
def test_each_outcome_has_its_opcua_status_code(row, code):
    assert status_of(row) == code


@pytest.mark.parametrize(("variant", "value"), [
    (ua.Variant(351.5, ua.VariantType.Double), 351.5), (ua.Variant(2.5, ua.VariantType.Float), 2.5),
    (ua.Variant(7, ua.VariantType.Int32), 7.0), (ua.Variant(True, ua.VariantType.Boolean), 1.0),
    (ua.Variant("1", ua.VariantType.String), None), (ua.Variant([1.0, 2.0]), None), (None, None)])
def test_an_opcua_write_value_must_be_a_scalar_number(variant, value):
    assert numeric_value(variant) == value


def test_the_writes_section_and_opcua_user_roles_have_safe_defaults():
    settings = WritesSettings()
    assert settings.enabled and settings.write_timeout_s > 0 and settings.shutdown_wait_s <= 5
    with pytest.raises(ValueError):
        WritesSettings(read_back_interval_s=3, read_back_timeout_s=1)
    server = OpcUaServerSettings(security="Basic256Sha256", users=[
        {"username": "scada", "password_hash": "$argon2id$v=19$m=1024,t=1,p=1$abc$def"}])
    assert server.users[0].role == "viewer"  # an account reads until given a role
