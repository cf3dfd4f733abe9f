"""The seed's HTTP API contract against a running gateway on the simulator: field names as the
seed's frontend reads them, real data, roles on writes, 404s, and the live stream.

One daemon for the module (``refineryiq run --simulate``), analytics every 2 s.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from datetime import datetime

import pytest

from gateway.services.accounts.users import Role
from plant.load import load_plant
from tests.support.daemon import ROOT, DaemonProcess, state_with_users

PASSWORD = "correct horse battery"
# The catalog's own tags (config/plant.toml), the count the seed's views report.
PLANT_TAGS = len(load_plant(ROOT / "config" / "plant.toml").tags)
USERS = {"vera": Role.VIEWER, "oscar": Role.OPERATOR, "sofia": Role.SUPERVISOR}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    state = state_with_users(tmp_path_factory.mktemp("seedapi") / "state", PASSWORD,
                             USERS)
    d = DaemonProcess(state, env={"REFINERYIQ_ANALYTICS__KPI_INTERVAL_S": "2",
                                  "REFINERYIQ_ANALYTICS__FIRST_RUN_DELAY_S": "1",
                                  "REFINERYIQ_ALARMS__BAD_QUALITY_DELAY_S": "1"}).start()
    health = d.wait_healthy(timeout=90)
    d.control = f"http://127.0.0.1:{health['simulator']['control_port']}"
    d.wait_for(lambda: all(r["efficiency"] is not None for r in d.get("/api/kpis")[1]), 30,
               "KPIs of every unit")
    yield d
    d.kill()


def call(daemon, method: str, path: str, body: dict | None = None,
         user: str | None = None) -> tuple[int, object]:
    headers = {"Content-Type": "application/json"}
    if user is not None:
        headers["Authorization"] = f"Bearer {token(daemon, user)}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(daemon.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


_tokens: dict[tuple[str, str], str] = {}


def token(daemon, user: str) -> str:
    key = (daemon.url, user)
    if key not in _tokens:
        status, body = call(daemon, "POST", "/api/auth/login",
                            {"username": user, "password": PASSWORD})
        assert status == 200, body
        _tokens[key] = body["token"]
    return _tokens[key]


def is_iso_with_offset(text: str) -> bool:
    return datetime.fromisoformat(text).utcoffset() is not None


def has_fields(row: dict, names: str) -> bool:
    missing = set(names.split()) - set(row)
    assert not missing, f"missing {missing} in {row}"
    return True


# ----------------------------------------------------------------------------- root, dashboard


def test_root_says_online_with_links_to_docs_and_health(daemon):
    status, body = daemon.get("/")
    assert status == 200
    has_fields(body, "message status timestamp docs health")
    assert body["status"] == "online" and is_iso_with_offset(body["timestamp"])
    assert daemon.get(body["docs"].replace("/api/docs", "/api/openapi.json"))[0] == 200


def test_kpis_give_every_unit_numbers_on_a_0_to_100_scale(daemon):
    status, rows = daemon.get("/api/kpis")
    assert status == 200
    assert {r["unit_id"] for r in rows} == {"CDU-101", "FCC-201", "HT-305", "ALK-400"}
    for r in rows:
        has_fields(r, "unit_id efficiency throughput quality status last_updated")
        assert 0 <= r["efficiency"] <= 100 and 0 <= r["quality"] <= 100
        assert r["throughput"] > 0 and is_iso_with_offset(r["last_updated"])


def test_dashboard_history_is_24_hourly_points_with_the_current_hour_filled(daemon):
    status, rows = daemon.get("/api/dashboard/history")
    assert status == 200 and len(rows) == 24
    assert all(r["time_label"].endswith(":00") and len(r["time_label"]) == 5 for r in rows)
    assert isinstance(rows[-1]["efficiency"], float) and rows[-1]["production"] > 0


def test_advanced_stats_give_oee_stability_and_a_documented_daily_loss(daemon):
    status, body = daemon.get("/api/stats/advanced")
    assert status == 200
    has_fields(body["oee"], "score quality availability performance")
    assert all(0 <= body["oee"][k] <= 100 for k in ("score", "quality", "availability", "performance"))
    has_fields(body["stability"], "index trend variance")
    assert body["stability"]["trend"] in ("improving", "stable", "deteriorating")
    # No margin or energy price is configured: the money figure is not invented.
    assert body["financial"]["daily_loss_usd"] is None
    assert body["financial"]["lost_throughput_bpd"] >= 0


# ----------------------------------------------------------------------------- supplies


def test_supplies_give_tanks_in_litres_from_level_tags_and_the_seeded_inventory(daemon):
    status, body = daemon.get("/api/supplies/data")
    assert status == 200
    tanks = {t["id"]: t for t in body["tanks"]}
    assert set(tanks) == {"TK-101", "TK-102", "TK-201", "TK-305", "TK-400"}
    for t in tanks.values():
        has_fields(t, "id name product capacity current_level status last_updated")
        assert 0 <= t["current_level"] <= t["capacity"]
        assert t["status"] in ("FILLING", "DRAINING", "STABLE")
    assert tanks["TK-101"]["capacity"] == 80000
    skus = {i["sku"] for i in body["inventory"]}
    assert {"CAT-ZSM5", "PSV-02-CS"} <= skus
    for i in body["inventory"]:
        has_fields(i, "id item sku quantity unit status location last_updated")
        assert i["status"] in ("OK", "LOW", "CRITICAL")


def test_inventory_write_without_a_token_is_401(daemon):
    status, body = call(daemon, "POST", "/api/inventory",
                        {"item": "Filtro", "sku": "F-1", "quantity": 1, "unit": "pza"})
    assert status == 401 and "detail" in body


def test_inventory_write_by_an_operator_is_403(daemon):
    status, body = call(daemon, "POST", "/api/inventory",
                        {"item": "Filtro", "sku": "F-1", "quantity": 1, "unit": "pza"}, "oscar")
    assert status == 403 and "supervisor" in body["detail"]


def test_supervisor_creates_updates_and_deletes_an_item(daemon):
    status, row = call(daemon, "POST", "/api/inventory",
                       {"item": "Filtro de Aire HEPA", "sku": "FILT-HEPA-01", "quantity": 10,
                        "unit": "pzas", "location": "Almacén Central", "reorder_level": 5,
                        "critical_level": 2}, "sofia")
    assert status == 201
    has_fields(row, "id item sku quantity unit status location last_updated")
    assert row["status"] == "OK"
    status, row = call(daemon, "PUT", f"/api/inventory/{row['id']}", {"quantity": 4}, "sofia")
    assert (status, row["quantity"], row["status"]) == (200, 4, "LOW")
    assert daemon.get(f"/api/inventory/{row['id']}")[1]["quantity"] == 4
    status, body = call(daemon, "DELETE", f"/api/inventory/{row['id']}", user="sofia")
    assert status == 200 and body["status"] == "success" and body["message"]
    assert daemon.get(f"/api/inventory/{row['id']}")[0] == 404


def test_a_given_status_is_kept_over_the_derived_one(daemon):
    status, row = call(daemon, "POST", "/api/inventory",
                       {"item": "Sensor", "sku": "SENS-TEMP-01", "quantity": 25, "unit": "pza",
                        "status": "CRITICAL"}, "sofia")
    assert (status, row["status"]) == (201, "CRITICAL")
    call(daemon, "DELETE", f"/api/inventory/{row['id']}", user="sofia")


def test_duplicate_sku_is_400_naming_the_sku(daemon):
    status, body = call(daemon, "POST", "/api/inventory",
                        {"item": "Otro", "sku": "CAT-ZSM5", "quantity": 1, "unit": "kg"}, "sofia")
    assert status == 400 and body["detail"].startswith("sku")


def test_invalid_body_names_the_field(daemon):
    status, body = call(daemon, "POST", "/api/inventory",
                        {"item": "X", "sku": "X-1", "quantity": -5, "unit": "kg"}, "sofia")
    assert status == 422 and body["detail"].startswith("quantity")


def test_unknown_inventory_ids_are_404(daemon):
    assert daemon.get("/api/inventory/999999")[0] == 404
    assert daemon.get("/api/inventory/not-a-number")[0] == 404
    assert call(daemon, "PUT", "/api/inventory/999999", {"quantity": 1}, "sofia")[0] == 404
    assert call(daemon, "DELETE", "/api/inventory/999999", user="sofia")[0] == 404


# ----------------------------------------------------------------------------- assets, energy


def test_assets_list_each_equipment_with_its_own_live_sensors(daemon):
    status, rows = daemon.get("/api/assets/overview")
    assert status == 200 and len(rows) == 9
    pump = next(r for r in rows if r["equipment_id"] == "PUMP-101")
    has_fields(pump, "equipment_id equipment_name equipment_type status unit_id unit_name sensors")
    assert pump["status"] in ("OPERATIONAL", "MAINTENANCE", "FAULT")
    assert pump["unit_name"] == "Destilación Atmosférica"
    tags = {s["tag_id"]: s for s in pump["sensors"]}
    assert {"VI-101", "TI-107", "XS-101"} <= set(tags) and "TI-101" not in tags
    has_fields(tags["VI-101"], "tag_id tag_name value units quality")
    assert tags["VI-101"]["units"] == "mm/s" and isinstance(tags["VI-101"]["value"], float)


def test_energy_analysis_gives_each_unit_its_benchmark_and_target(daemon):
    status, rows = daemon.get("/api/energy/analysis")
    assert status == 200
    by_unit = {r["unit_id"]: r for r in rows}
    assert set(by_unit) == {"CDU-101", "FCC-201", "HT-305", "ALK-400"}
    cdu = by_unit["CDU-101"]
    has_fields(cdu, "id unit_id unit_name consumption_kwh kwh_per_bbl benchmark target "
                    "efficiency_score status savings_potential recommendation analysis_date")
    assert (cdu["benchmark"], cdu["target"]) == (45, 42)
    assert is_iso_with_offset(cdu["analysis_date"])


def test_maintenance_predictions_are_a_list_without_invented_rows(daemon):
    status, rows = daemon.get("/api/maintenance/predictions")
    assert status == 200 and isinstance(rows, list)
    for r in rows:
        has_fields(r, "equipment_id equipment_name equipment_type failure_probability rul_hours "
                      "is_anomaly anomaly_score prediction recommendation narrative confidence "
                      "model_source timestamp shap_explanation")


def test_the_condition_baseline_shows_learning_progress_from_the_first_run(daemon):
    # No model is trained yet; the baseline says it learns and how far it got, per machine.
    daemon.wait_for(lambda: daemon.get("/api/maintenance/baseline")[1], 30, "the first baseline run")
    status, rows = daemon.get("/api/maintenance/baseline")
    assert status == 200
    assert {r["equipment_type"] for r in rows} == {"PUMP", "COMPRESSOR", "FURNACE", "EXCHANGER", "VALVE"}
    for r in rows:
        has_fields(r, "equipment_id equipment_name state progress_pct learned_h learning_h score "
                      "deviating top_signals")
        assert r["state"] == "learning" and 0 <= r["progress_pct"] < 100 and r["learning_h"] == 168
    _, health = daemon.get("/health")
    baseline = health["maintenance"]["baseline"]
    assert baseline["enabled"] and set(baseline["equipment"]) == {r["equipment_id"] for r in rows}


# ----------------------------------------------------------------------------- normalized


def test_normalized_stats_count_the_plant(daemon):
    status, body = daemon.get("/api/normalized/stats")
    assert status == 200
    has_fields(body, "total_units active_units total_tags total_equipment operational_equipment "
                     "total_process_records process_records_today total_alerts active_alerts "
                     "database_normalized last_updated")
    assert (body["total_units"], body["total_tags"], body["total_equipment"]) == (4, PLANT_TAGS, 9)
    assert body["active_units"] == 4 and body["total_process_records"] > 0
    assert body["database_normalized"] is True


def test_normalized_units_tags_and_equipment_carry_the_seed_fields(daemon):
    units = daemon.get("/api/normalized/units")[1]
    has_fields(units[0], "unit_id name type description capacity status unit_status")
    tags = daemon.get("/api/normalized/tags")[1]
    assert len(tags) == PLANT_TAGS
    has_fields(tags[0], "tag_id tag_name unit_id unit_name engineering_units min_val max_val "
                        "description tag_type is_critical")
    equipment = daemon.get("/api/normalized/equipment")[1]
    has_fields(equipment[0], "equipment_id equipment_name equipment_type unit_id status "
                             "manufacturer installation_date")


def test_enriched_process_data_is_newest_first_and_limited(daemon):
    status, rows = daemon.get("/api/normalized/process-data/enriched?limit=20")
    assert status == 200 and len(rows) == 20
    has_fields(rows[0], "timestamp value quality unit_id unit_name tag_id tag_name "
                        "engineering_units")
    times = [datetime.fromisoformat(r["timestamp"]) for r in rows]
    assert times == sorted(times, reverse=True)


def test_a_limit_out_of_range_is_400_naming_it(daemon):
    status, body = daemon.get("/api/normalized/process-data/enriched?limit=0")
    assert status == 400 and body["detail"].startswith("limit")


# ----------------------------------------------------------------------------- gateway routes


def test_devices_report_their_connection(daemon):
    status, rows = daemon.get("/api/devices")
    assert status == 200
    assert {r["id"] for r in rows} == {"plc-cdu-fcc", "scada-ht-alk"}
    assert all(r["state"] == "connected" for r in rows)
    assert daemon.get("/api/devices/plc-cdu-fcc")[1]["protocol"] == "modbus"
    assert daemon.get("/api/devices/nope")[0] == 404


def test_tag_history_is_reduced_to_max_points(daemon):
    daemon.wait_for(lambda: len(daemon.get("/api/tags/TI-101/history")[1]["points"]) > 3, 20,
                    "more than 3 samples of TI-101")
    status, body = daemon.get("/api/tags/TI-101/history?max_points=3")
    assert status == 200 and body["downsampled"] and 1 <= len(body["points"]) <= 3
    point = body["points"][-1]
    assert point["min"] <= point["mean"] <= point["max"] and point["count"] >= 1


def test_tag_history_refuses_an_unknown_tag_and_a_bad_time(daemon):
    assert daemon.get("/api/tags/NOPE/history")[0] == 404
    status, body = daemon.get("/api/tags/TI-101/history?start=yesterday")
    assert status == 400 and body["detail"].startswith("start")


def test_reports_daily_is_printable_html_with_the_units(daemon):
    with urllib.request.urlopen(daemon.url + "/api/reports/daily", timeout=10) as resp:
        text = resp.read().decode()
        assert resp.headers["Content-Type"].startswith("text/html")
    assert "@page { size: A4" in text
    assert all(u in text for u in ("CDU-101", "FCC-201", "HT-305", "ALK-400"))


# ----------------------------------------------------------------------------- alerts


def test_alerts_are_empty_without_alarms_and_history_is_a_list(daemon):
    status, rows = daemon.get("/api/alerts")
    assert status == 200 and isinstance(rows, list)
    assert daemon.get("/api/alerts/history")[0] == 200


def test_a_fault_becomes_an_alert_an_operator_acknowledges(daemon):
    status, _ = _post_control(daemon, {"tag_id": "PI-103", "kind": "out_of_range",
                                       "duration_s": 30})
    assert status == 200

    def standing():
        return [a for a in daemon.get("/api/alerts?acknowledged=false")[1] if a["tag_id"] == "PI-103"]

    (alert,) = daemon.wait_for(standing, 30, "PI-103 alert")
    has_fields(alert, "id timestamp time unit_id unit_name tag_id tag_name value threshold "
                      "severity message acknowledged")
    assert alert["severity"] in ("HIGH", "MEDIUM", "LOW") and alert["acknowledged"] is False
    path = f"/api/alerts/{alert['id']}/acknowledge"
    assert call(daemon, "POST", path)[0] == 401
    assert call(daemon, "POST", path, user="vera")[0] == 403
    status, body = call(daemon, "POST", path, user="oscar")
    assert (status, body["status"], body["acknowledged_by"]) == (200, "success", "oscar")
    acked = [a for a in daemon.get("/api/alerts")[1] if a["id"] == alert["id"]]
    assert not acked or acked[0]["acknowledged"] is True
    history = daemon.get("/api/alerts/history")[1]
    assert any(a["id"] == alert["id"] and a["acknowledged"] for a in history)


def test_acknowledging_an_unknown_alert_is_404(daemon):
    assert call(daemon, "POST", "/api/alerts/987654/acknowledge", user="oscar")[0] == 404
    assert call(daemon, "POST", "/api/alerts/abc/acknowledge", user="oscar")[0] == 404


def _post_control(daemon, body: dict) -> tuple[int, object]:
    request = urllib.request.Request(daemon.control + "/faults", data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.status, json.loads(resp.read())


# ----------------------------------------------------------------------------- stream, openapi


def test_stream_sends_a_snapshot_then_live_values(daemon):
    events = []
    with urllib.request.urlopen(daemon.url + "/api/stream", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        name = None
        for raw in resp:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
                if name == "values":
                    break
    assert events[0][0] == "snapshot"
    assert {v["tag_id"] for v in events[0][1]["values"]} >= {"TI-101", "FI-102"}
    assert events[-1][0] == "values" and events[-1][1]["values"]


def test_openapi_document_lists_the_seed_routes_with_their_schemas(daemon):
    status, doc = daemon.get("/api/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")
    for path in ("/api/kpis", "/api/inventory/{item_id}", "/api/alerts/{alert_id}/acknowledge",
                 "/api/normalized/process-data/enriched", "/api/tags/{tag_id}/history"):
        assert path in doc["paths"], path
    post = doc["paths"]["/api/inventory"]["post"]
    assert post["x-required-role"] == "supervisor"
    assert "NewItem" in doc["components"]["schemas"]
    assert "UnitKpi" in doc["components"]["schemas"]


def test_docs_page_renders_the_document_without_scripts(daemon):
    with urllib.request.urlopen(daemon.url + "/api/docs", timeout=10) as resp:
        text = resp.read().decode()
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert "/api/supplies/data" in text and "<script" not in text


# ----------------------------------------------------------------------------- figures, language


def get_in(daemon, path: str, language: str | None = None) -> tuple[object, str | None]:
    """The JSON answer and its Content-Language, asking with ``Accept-Language: language``."""
    headers = {} if language is None else {"Accept-Language": language}
    request = urllib.request.Request(daemon.url + path, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read()), resp.headers.get("Content-Language")


def decimals(x: float | None) -> int:
    return 0 if x is None or float(x).is_integer() else len(repr(float(x)).split(".")[1])


def test_stats_advanced_rounds_what_the_analytics_route_keeps_in_full(daemon):
    def same_run():
        before = daemon.get("/api/analytics/kpis")[1]
        seed = daemon.get("/api/stats/advanced")[1]
        after = daemon.get("/api/analytics/kpis")[1]
        return (before, seed) if before["ts"] == after["ts"] else None

    full, seed = daemon.wait_for(same_run, 20, "two reads within one analytics run")
    plant = full["plant"]
    assert seed["oee"]["score"] == round(plant["oee_pct"], 1)
    assert seed["oee"]["availability"] == round(plant["availability_pct"], 1)
    assert seed["stability"]["index"] == round(plant["stability_index"], 1)
    assert seed["stability"]["variance"] == round(plant["stability_variance"], 4)
    assert seed["financial"]["lost_throughput_bpd"] == round(seed["financial"]["lost_throughput_bpd"])
    assert all(decimals(v) <= 1 for v in seed["oee"].values())
    # The gateway's own route keeps full precision.
    assert max(decimals(plant[k]) for k in ("oee_pct", "stability_index")) > 2


def test_seed_kpis_and_history_have_one_decimal_percentages_and_whole_barrels(daemon):
    for row in daemon.get("/api/kpis")[1]:
        assert decimals(row["efficiency"]) <= 1 and decimals(row["quality"]) <= 1
        assert decimals(row["throughput"]) == 0
    point = daemon.get("/api/dashboard/history")[1][-1]
    assert decimals(point["efficiency"]) <= 1 and decimals(point["production"]) == 0


def test_enriched_process_data_quality_is_the_data_dictionary_integer(daemon):
    rows = daemon.get("/api/normalized/process-data/enriched?limit=50")[1]
    words = {192: "GOOD", 128: "DOUBTFUL", 64: "BAD"}
    for r in rows:
        assert r["quality"] in words and r["quality_text"] == words[r["quality"]]
        assert decimals(r["value"]) <= 2


def test_energy_recommendations_are_spanish_unless_english_is_asked_for(daemon):
    from gateway.northbound.http.compat.sentences import ENERGY

    # Asked in turn, so that an answer kept in one language is never served in the other.
    answers = [get_in(daemon, "/api/energy/analysis", language)
               for language in (None, "en-US,en;q=0.9", "es-VE", "fr, en;q=0.5", None)]
    assert [lang for _, lang in answers] == ["es", "en", "es", "en", "es"]
    english_words = re.compile(r"\b(the|is|of|and|at|or|check|feed|exceeds|covers)\b")
    for rows, lang in answers:
        assert rows
        for r in rows:
            text = r["recommendation"]
            if lang == "en":  # analytics' own sentence, one of the templates translated
                assert ENERGY.spanish(text) is not None, text
            else:
                assert ENERGY.spanish(text) is None and not english_words.search(text), text
            assert decimals(r["consumption_kwh"]) == 0 and decimals(r["kwh_per_bbl"]) <= 2


def test_alert_messages_are_spanish_unless_english_is_asked_for(daemon):
    status, _ = _post_control(daemon, {"tag_id": "TI-306", "kind": "out_of_range",
                                       "duration_s": 30})
    assert status == 200

    def raised(language):
        rows, lang = get_in(daemon, "/api/alerts/history", language)
        found = [a for a in rows if a["tag_id"] == "TI-306"]
        return (found[0], lang) if found else None

    (alert, lang) = daemon.wait_for(lambda: raised(None), 30, "TI-306 alert")
    assert lang == "es" and ": alarma " in alert["message"] and "severidad" in alert["message"]
    assert alert["severity"] in ("HIGH", "MEDIUM", "LOW")  # the enum word does not change
    english, lang = raised("en")
    assert lang == "en" and " alarm" in english["message"] and english["id"] == alert["id"]
    assert decimals(alert["value"]) <= 2


def test_the_root_message_is_spanish_by_default(daemon):
    assert get_in(daemon, "/")[0]["message"].startswith("Pasarela RefineryIQ Edge")
    assert get_in(daemon, "/", "en")[0]["message"].startswith("RefineryIQ Edge gateway")


def test_openapi_says_which_seed_routes_round_and_speak_spanish(daemon):
    doc = daemon.get("/api/openapi.json")[1]
    energy = doc["paths"]["/api/energy/analysis"]["get"]["description"]
    assert "rounded" in energy and "Spanish" in energy and "Accept-Language" in energy
    assert "rounded" in doc["paths"]["/api/stats/advanced"]["get"]["description"]
    record = doc["components"]["schemas"]["ProcessRecord"]["properties"]
    assert record["quality"]["type"] == "integer" and "192" in record["quality"]["description"]
