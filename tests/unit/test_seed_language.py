"""The seed routes speak the report's Spanish unless Accept-Language asks for English.

Every English sentence template of analytics (energy recommendations, PdM recommendations and
narratives, alarm messages) is rendered through the analytics code itself and must come out
in Spanish with the same figures: a template changed in analytics fails here.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from analytics.alarm_lifecycle import AlarmLifecycle, AlarmPoint, Reading
from analytics.alarm_types import AlarmClass, AlarmKind, AlarmState, Severity
from analytics.energy import Action, analyze_energy
from analytics.health import ComponentKind, Contribution, EquipmentHealth, HealthStatus
from analytics.pdm import predict
from analytics.pdm.predict import Direction, Driver, PredictionLevel
from analytics.pdm.signals import Signal
from analytics.window import SampleCounts, TagSeries, Window
from gateway.northbound.http.compat.alarm_sentences import ALARM_MESSAGE
from gateway.northbound.http.compat.language import Language, negotiate
from gateway.northbound.http.compat.sentences import (
    ENERGY,
    MAINTENANCE_NARRATIVE,
    MAINTENANCE_RECOMMENDATION,
    SIGNAL_NAMES,
)
from plant.catalog import Catalog
from plant.load import load_plant

PLANT = load_plant(Path(__file__).parents[2] / "config" / "plant.toml")
CATALOG = Catalog.build(PLANT)
CDU = next(u for u in PLANT.units if u.id == "CDU-101")  # power JI-100, feed FI-102, target 42
HOUR = 3600.0
ENGLISH_WORDS = re.compile(r"\b(the|is|of|and|at|or|by|alarm|acknowledged|returned|check|"
                           r"probability|within|drivers|raises|lowers|feed|exceeds)\b")


def numbers(text: str) -> list[str]:
    return re.findall(r"\d+(?:\.\d+)?", text)


def assert_spanish_with_the_same_figures(english: str, spanish: str | None) -> None:
    assert spanish is not None, f"no Spanish template matches: {english!r}"
    assert not ENGLISH_WORDS.search(spanish), spanish
    assert numbers(spanish) == numbers(english), (english, spanish)


# ----------------------------------------------------------------------------- negotiation


@pytest.mark.parametrize(("header", "language"), [
    (None, Language.ES), ("", Language.ES), ("es", Language.ES), ("en", Language.EN),
    ("en-US,en;q=0.9", Language.EN), ("es-VE, en;q=0.5", Language.ES),
    ("fr-FR, en;q=0.8, es;q=0.9", Language.ES), ("fr, de", Language.ES), ("*", Language.ES),
    ("en;q=0, es;q=0.1", Language.ES), ("de, EN-gb;q=0.3", Language.EN),
    ("en;q=abc", Language.ES), ("es;q=0.5, en;q=0.5", Language.ES),
])
def test_accept_language_picks_the_preferred_supported_language(header, language):
    assert negotiate(header) is language


# ----------------------------------------------------------------------------- energy


def constant(value: float, start: float = 0.0, end: float = HOUR) -> TagSeries:
    ts = np.arange(start, end + 5.0, 10.0)
    return TagSeries.good_only(ts, np.full(len(ts), value))


def energy_messages(power: TagSeries, feed: TagSeries, health=None) -> dict[Action, str]:
    window = Window(0.0, HOUR, {"JI-100": power, "FI-102": feed})
    result = analyze_energy(window, CDU, CATALOG, equipment_health=health)
    return {r.action: r.message for r in result.recommendations}


WORN_PUMP = {"PUMP-101": EquipmentHealth(
    "PUMP-101", "CDU-101", 60.0, HealthStatus.MAINTENANCE, None,
    Contribution(ComponentKind.VIBRATION, "VI-101", 7.5, 60.0), True, (), SampleCounts())}


@pytest.mark.parametrize(("action", "messages"), [
    (Action.NOMINAL, lambda: energy_messages(constant(15000.0), constant(10000.0))),
    (Action.RAISE_THROUGHPUT, lambda: energy_messages(constant(12000.0), constant(5000.0))),
    (Action.IMPROVE_EQUIPMENT_EFFICIENCY,
     lambda: energy_messages(constant(21000.0), constant(10000.0))),
    (Action.INSPECT_EQUIPMENT,
     lambda: energy_messages(constant(21000.0), constant(10000.0), WORN_PUMP)),
    (Action.CHECK_METERING,
     lambda: energy_messages(constant(21000.0, 0.0, HOUR / 2), constant(10000.0))),
])
def test_every_energy_recommendation_has_its_spanish_sentence(action, messages):
    english = messages()[action]
    assert_spanish_with_the_same_figures(english, ENERGY.spanish(english))


def test_the_spanish_inspection_keeps_the_equipment_and_its_worst_tag():
    english = energy_messages(constant(21000.0), constant(10000.0), WORN_PUMP)[
        Action.INSPECT_EQUIPMENT]
    spanish = ENERGY.spanish(english)
    assert spanish.startswith("PUMP-101 tiene la salud más baja de la unidad, 60/100 (VI-101)")


def test_english_is_answered_as_analytics_wrote_it():
    english = energy_messages(constant(12000.0), constant(5000.0))[Action.RAISE_THROUGHPUT]
    assert ENERGY.say(english, Language.EN) == english
    assert ENERGY.say(english, Language.ES).startswith("La carga está al 49 % del diseño")


def test_a_sentence_no_template_knows_is_kept_as_it_is():
    assert ENERGY.say("Something new from analytics", Language.ES) == "Something new from analytics"
    assert ENERGY.say(None, Language.ES) is None


# ----------------------------------------------------------------------------- maintenance


MODEL = SimpleNamespace(kind=SimpleNamespace(value="PUMP"), horizon_h=72.0, threshold=0.35)
DRIVERS = (Driver("vibration.mean_1h", 41.2, Direction.INCREASE),
           Driver("log_excess_bearing_temp.slope_6h", 22.5, Direction.INCREASE),
           Driver("feed_flow.std_1h", 9.8, Direction.DECREASE))


@pytest.mark.parametrize(("level", "rul", "drivers"), [
    (PredictionLevel.NORMAL, None, ()), (PredictionLevel.NORMAL, None, DRIVERS),
    (PredictionLevel.WARNING, 40.3, DRIVERS), (PredictionLevel.WARNING, 40.3, ()),
    (PredictionLevel.FAILURE_IMMINENT, 6.0, DRIVERS),
])
def test_every_maintenance_sentence_has_its_spanish_sentence(level, rul, drivers):
    recommendation = predict._recommendation(level, "PUMP-101", rul, drivers)
    assert_spanish_with_the_same_figures(recommendation,
                                         MAINTENANCE_RECOMMENDATION.spanish(recommendation))
    narrative = predict._narrative(MODEL, "PUMP-101", 0.62, level, rul, drivers)
    assert_spanish_with_the_same_figures(narrative, MAINTENANCE_NARRATIVE.spanish(narrative))


def test_the_spanish_recommendation_names_the_signals_in_spanish():
    english = predict._recommendation(PredictionLevel.WARNING, "PUMP-101", 40.3, DRIVERS)
    assert MAINTENANCE_RECOMMENDATION.spanish(english) == (
        "Planificar el mantenimiento de PUMP-101 dentro de las próximas 40 h; inspeccionar "
        "vibración, temperatura de rodamientos y preparar repuestos.")


def test_the_spanish_narrative_uses_the_seed_prediction_words():
    english = predict._narrative(MODEL, "PUMP-101", 0.95, PredictionLevel.FAILURE_IMMINENT, 6.0,
                                 DRIVERS)
    spanish = MAINTENANCE_NARRATIVE.spanish(english)
    assert spanish.startswith("PUMP-101: 95 % de probabilidad de falla en 72 h (umbral de "
                              "alarma 35 %), FALLA INMINENTE.")
    assert "vibration.mean_1h 41 % (aumenta el riesgo)" in spanish


def test_every_signal_has_a_spanish_name():
    assert set(SIGNAL_NAMES) == set(Signal)


# ----------------------------------------------------------------------------- alarms


def alarm_messages() -> list[str]:
    """One message of every kind of transition the engine journals."""
    point = AlarmPoint("TI-101/PROCESS", AlarmClass.PROCESS, "TI-101", "Temp. Salida Horno",
                       "°C", "CDU-101")
    bad = AlarmPoint("AI-400/BAD_QUALITY", AlarmClass.BAD_QUALITY, "AI-400", "Conc. Ácido",
                     "%", "ALK-400")
    loss = AlarmPoint("plc-1/COMM_LOSS", AlarmClass.COMM_LOSS, "plc-1", "", "", None,
                      device_id="plc-1")
    life = AlarmLifecycle()
    hi = Reading(AlarmKind.HI, Severity.LOW, 362.5, 360.0)
    out = life.activate(point, hi, 0.0)
    out += life.update(point, Reading(AlarmKind.HI, Severity.MEDIUM, 366.0, 360.0), 1.0)
    out += life.update(point, Reading(AlarmKind.HIHI, Severity.HIGH, 385.0, 380.0), 2.0)
    out += life.acknowledge(point, "oscar", None, 3.0)
    out += life.clear(point, 350.1, False, 4.0)
    out += life.activate(point, Reading(AlarmKind.LOLO, Severity.HIGH, 310.0, 320.0), 5.0)
    out += life.acknowledge(point, "system", None, 6.0, automatic=True)
    out += life.shelve(point, None, "oscar", 3600.0, None, 7.0)
    out += life.restore_to_service(point, AlarmState.SHELVED, "oscar", None, 8.0)
    out += life.shelve(point, None, "oscar", 3600.0, None, 9.0)
    out += life.restore_to_service(point, AlarmState.SHELVED, "system", None, 10.0,
                                   automatic=True)
    out += life.remove_from_service(point, None, "sofia", None, 11.0)
    out += life.restore_to_service(point, AlarmState.SUPPRESSED, "sofia", None, 12.0)
    out += life.activate(bad, Reading(AlarmKind.BAD_QUALITY, Severity.MEDIUM), 13.0)
    out += life.activate(loss, Reading(AlarmKind.COMM_LOSS, Severity.HIGH), 14.0)
    out += life.shelve(bad, Reading(AlarmKind.BAD_QUALITY, Severity.MEDIUM), "oscar", 20.0,
                       None, 15.0)
    out += life.restore_to_service(bad, AlarmState.SHELVED, "oscar", None, 16.0)
    return [t.message for t in out]


def test_every_alarm_message_has_its_spanish_sentence():
    messages = alarm_messages()
    assert len(messages) == 17
    for english in messages:
        assert_spanish_with_the_same_figures(english, ALARM_MESSAGE.spanish(english))


def test_a_raised_alarm_reads_in_spanish_with_its_label_and_limit():
    english = alarm_messages()[0]
    assert english == "TI-101 Temp. Salida Horno: HI alarm, 362.5 °C above limit 360 °C (LOW)"
    assert ALARM_MESSAGE.spanish(english) == (
        "TI-101 Temp. Salida Horno: alarma alta, 362.5 °C sobre el límite 360 °C "
        "(severidad baja)")
