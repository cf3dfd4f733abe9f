"""The seed routes round their figures as the original backend did (Anexo B examples)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from gateway.northbound.http.compat.assets import Sensor
from gateway.northbound.http.compat.dashboard import (
    AdvancedStats,
    FinancialStats,
    HistoryPoint,
    OeeStats,
    StabilityStats,
    UnitKpi,
)
from gateway.northbound.http.compat.energy import EnergyAnalysis
from gateway.northbound.http.compat.inventory import TankRow
from gateway.northbound.http.compat.normalized import ProcessRecord
from gateway.northbound.http.openapi import respond

NOW = datetime(2026, 2, 11, 10, 30, tzinfo=UTC)


def answered(model) -> dict:
    return json.loads(respond(model).body)


def test_stats_advanced_percentages_have_one_decimal():
    body = answered(AdvancedStats(
        oee=OeeStats(score=97.33652164877716, quality=99.24999, availability=96.8449,
                     performance=89.2999),
        stability=StabilityStats(index=97.45267264634461, trend="stable",
                                 variance=0.0012345678),
        financial=FinancialStats(daily_loss_usd=4350.4999, lost_throughput_bpd=812.51,
                                 excess_energy_kwh_per_day=None),
        last_updated=NOW))
    assert body["oee"] == {"score": 97.3, "quality": 99.2, "availability": 96.8,
                           "performance": 89.3}
    assert body["stability"]["index"] == 97.5
    # 1-2 decimals would print the gateway's variance (a share of the span squared) as 0.0.
    assert body["stability"]["variance"] == 0.0012
    assert body["financial"] == {"daily_loss_usd": 4350.0, "lost_throughput_bpd": 813.0,
                                 "excess_energy_kwh_per_day": None}


def test_kpis_give_percentages_to_one_decimal_and_whole_barrels():
    body = answered(UnitKpi(unit_id="CDU-101", efficiency=92.54999, throughput=12499.7,
                            quality=99.8123, status="OPTIMAL", last_updated=NOW))
    assert (body["efficiency"], body["throughput"], body["quality"]) == (92.5, 12500.0, 99.8)
    point = answered(HistoryPoint(time_label="10:00", timestamp=NOW, efficiency=91.4666,
                                  production=12350.49))
    assert (point["efficiency"], point["production"]) == (91.5, 12350.0)


def test_energy_gives_whole_kwh_and_kwh_per_bbl_to_two_decimals():
    body = answered(EnergyAnalysis(
        id="CDU-101@0", unit_id="CDU-101", unit_name="Destilación Atmosférica",
        consumption_kwh=4850.3333, kwh_per_bbl=45.23456, benchmark=45.0, target=42.0,
        efficiency_score=94.4777, status="GOOD", savings_potential=150.4999,
        recommendation=None, analysis_date=NOW, complete=False))
    assert (body["consumption_kwh"], body["kwh_per_bbl"], body["efficiency_score"],
            body["savings_potential"]) == (4850.0, 45.23, 94.5, 150.0)


def test_process_values_have_two_decimals_and_never_minus_zero():
    sensor = answered(Sensor(tag_id="TI-101", tag_name="Temp. Salida Horno", value=352.41789,
                             units="°C", quality="GOOD", timestamp=NOW))
    assert sensor["value"] == 352.42
    record = answered(ProcessRecord(timestamp=NOW, value=-0.0012, quality=192,
                                    quality_text="GOOD", unit_id="CDU-101", unit_name="x",
                                    tag_id="TI-101", tag_name="y", engineering_units="°C"))
    assert record["value"] == 0.0 and json.dumps(record["value"]) == "0.0"


def test_tanks_give_whole_litres_and_the_level_to_one_decimal():
    body = answered(TankRow(id="TK-101", name="TK-101", product="Crudo", capacity=80000.0,
                            current_level=48000.4444, level_pct=60.00055, status=None,
                            last_updated=NOW))
    assert (body["capacity"], body["current_level"], body["level_pct"]) == (80000.0, 48000.0, 60.0)


def test_process_data_quality_is_the_data_dictionary_integer_with_its_word_beside():
    record = answered(ProcessRecord(timestamp=NOW, value=1.0, quality=128,
                                    quality_text="DOUBTFUL", unit_id=None, unit_name=None,
                                    tag_id="TI-101", tag_name="y", engineering_units="°C"))
    assert record["quality"] == 128 and record["quality_text"] == "DOUBTFUL"


def test_the_schema_says_how_a_figure_is_rounded():
    schema = OeeStats.model_json_schema()
    score = schema["properties"]["score"]["anyOf"][0]
    assert score["description"].startswith("percentage or 0–100 score, rounded to 1 decimal")
