"""The seed routes' sentences in the report's Spanish (see :mod:`.language`).

Analytics writes its sentences in English from templates (``analytics/energy.py``,
``analytics/pdm/predict.py``, ``analytics/alarm_lifecycle.py``) and keeps only the sentence.
A :class:`Phrasebook` holds each template as a pattern and its Spanish wording: the Spanish
sentence carries exactly the figures and names of the English one. A sentence that matches
no pattern (a template changed in analytics) is answered as it is, in English;
``tests/unit/test_seed_language.py`` renders every template through the analytics code, so
such a change fails there first.

Decimal points stay points, as in the report's own Spanish sentences ("Consumo 45.2 kWh/bbl
excede benchmark 45", Chapter 3.6.2).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from analytics.pdm.signals import Signal
from gateway.northbound.http.compat.language import Language, current

Render = Callable[[re.Match[str]], str]


class Phrasebook:
    """English templates as patterns, each with its Spanish rendering."""

    def __init__(self, entries: Sequence[tuple[str, Render]]):
        self.entries = [(re.compile(pattern, re.DOTALL), render) for pattern, render in entries]

    def spanish(self, text: str) -> str | None:
        """``text`` in Spanish, or None when no template matches it."""
        for pattern, render in self.entries:
            match = pattern.fullmatch(text)
            if match is not None:
                return render(match)
        return None

    def say(self, text: str | None, language: Language | None = None) -> str | None:
        """``text`` in ``language`` (default: the request's): English as analytics wrote it,
        Spanish when a template matches, else unchanged."""
        if text is None or (language or current()) is Language.EN:
            return text
        return self.spanish(text) or text


# --------------------------------------------------------------------------- energy


ENERGY = Phrasebook([
    (r"Power tag (?P<tag>\S+) covers only (?P<pct>\S+) % of the period: check the meter and its "
     r"communication before acting on this analysis",
     lambda m: f"El tag de potencia {m['tag']} cubre solo el {m['pct']} % del período: revise el "
               "medidor y su comunicación antes de actuar según este análisis"),
    (r"(?P<kwh>\S+) kWh/bbl is at or below the target (?P<target>\S+)",
     lambda m: f"{m['kwh']} kWh/bbl está en la meta de {m['target']} o por debajo"),
    (r"Feed is (?P<pct>\S+) % of design: fixed loads \(furnace, compressors, pumps\) are spread "
     r"over fewer barrels; raise feed toward design or consolidate operation",
     lambda m: f"La carga está al {m['pct']} % del diseño: las cargas fijas (horno, compresores, "
               "bombas) se reparten entre menos barriles; suba la carga hacia el diseño o "
               "consolide la operación"),
    (r"(?P<kwh>\S+) kWh/bbl at design feed exceeds the target (?P<target>\S+): look at equipment "
     r"efficiency \(heat-exchanger fouling, furnace excess air, motor loading\)",
     lambda m: f"{m['kwh']} kWh/bbl a carga de diseño excede la meta de {m['target']}: revise la "
               "eficiencia de los equipos (ensuciamiento de intercambiadores, exceso de aire en "
               "el horno, carga de los motores)"),
    (r"(?P<eq>\S+) has the unit's lowest health, (?P<score>\S+)/100(?P<tag> \([^)]+\))?: "
     r"degraded equipment consumes more energy per barrel",
     lambda m: f"{m['eq']} tiene la salud más baja de la unidad, {m['score']}/100{m['tag'] or ''}: "
               "un equipo degradado consume más energía por barril"),
])


# --------------------------------------------------------------------------- maintenance


SIGNAL_NAMES = {
    Signal.VIBRATION: "vibración",
    Signal.BEARING_TEMP: "temperatura de rodamientos",
    Signal.MOTOR_CURRENT: "corriente del motor",
    Signal.DISCHARGE_PRESSURE: "presión de descarga",
    Signal.RUN_STATUS: "estado de marcha",
    Signal.FEED_FLOW: "flujo de carga",
    Signal.FURNACE_OUTLET: "temperatura de salida del horno",
    Signal.TUBE_SKIN: "temperatura de piel de tubos",
    Signal.EXCHANGER_INLET: "temperatura de entrada del intercambiador",
    Signal.EXCHANGER_OUTLET: "temperatura de salida del intercambiador",
    Signal.VALVE_POSITION: "posición de la válvula",
    Signal.VALVE_DEMAND: "demanda de la válvula",
}
# The recommendation names signals as their value with spaces ("bearing temp").
_SIGNAL_WORDS = {s.value.replace("_", " "): name for s, name in SIGNAL_NAMES.items()}
NO_FOCUS = "the main symptoms"

# The seed's own prediction words (Anexo B §7.1, Chapter 3.6.1) and one for the warning level.
LEVEL_WORDS = {"NORMAL": "OPERACIÓN NORMAL", "WARNING": "ADVERTENCIA",
               "FAILURE_IMMINENT": "FALLA INMINENTE"}


def _focus(text: str) -> str:
    if text == NO_FOCUS:
        return "los síntomas principales"
    return ", ".join(_SIGNAL_WORDS.get(word, word) for word in text.split(", "))


MAINTENANCE_RECOMMENDATION = Phrasebook([
    (r"Continue normal operation of (?P<eq>.+); keep routine condition monitoring\.",
     lambda m: f"Continuar la operación normal de {m['eq']}; mantener el monitoreo de condición "
               "de rutina."),
    (r"Plan maintenance of (?P<eq>.+) within the next (?P<rul>\S+) h; inspect (?P<focus>.+) and "
     r"prepare spares\.",
     lambda m: f"Planificar el mantenimiento de {m['eq']} dentro de las próximas {m['rul']} h; "
               f"inspeccionar {_focus(m['focus'])} y preparar repuestos."),
    (r"Intervene on (?P<eq>.+) now: schedule a controlled shutdown or switch to the spare; "
     r"check (?P<focus>.+)\.",
     lambda m: f"Intervenir {m['eq']} ahora: programar una parada controlada o pasar al equipo "
               f"de reserva; revisar {_focus(m['focus'])}."),
])

_DRIVER = re.compile(r"(?P<feature>\S+) (?P<pct>\S+) % \((?P<way>raises|lowers) the risk\)")


def _drivers(text: str) -> str:
    out = []
    for part in text.split("; "):
        m = _DRIVER.fullmatch(part)
        if m is None:
            return text
        way = "aumenta" if m["way"] == "raises" else "reduce"
        out.append(f"{m['feature']} {m['pct']} % ({way} el riesgo)")
    return "; ".join(out)


# The standing warning's phases (analytics.pdm.predict.WarningPhase) and their Spanish words.
WARNING_PHASES = {"standing": "Aviso activo", "on-delay": "Aviso en espera de activación",
                  "off-delay": "Aviso en espera de desactivación", "clear": "Aviso inactivo"}


def _warning(m: re.Match[str]) -> str:
    if m["phase"] in ("standing", "on-delay"):
        least = "al menos " if m["least_a"] else ""
        text = f"alarma durante {least}{m['held_a']}" + (f" de {m['of_a']}" if m["of_a"] else "") + " h"
    elif m["phase"] == "off-delay":
        text = f"sin alarma durante {m['held_c']} de {m['of_c']} h"
    else:
        least = "al menos " if m["least_n"] else ""
        text = f"sin alarma durante {least}{m['held_n']} h"
    partial = f" (con {m['rows']} de {m['need']} h de historial)" if m["rows"] else ""
    return f"{WARNING_PHASES[m['phase']]}: {text}{partial}."


def _narrative(m: re.Match[str]) -> str:
    parts = [f"{m['eq']}: {m['p']} % de probabilidad de falla en {m['h']} h (umbral de alarma "
             f"{m['t']} %), {LEVEL_WORDS.get(m['level'], m['level'])}."]
    if m["phase"] is not None:
        parts.append(_warning(m))
    if m["rul"] is not None:
        parts.append(f"Vida útil remanente estimada {m['rul']} h.")
    if m["drivers"] is not None:
        parts.append(f"Factores principales: {_drivers(m['drivers'])}.")
    return " ".join(parts)


MAINTENANCE_NARRATIVE = Phrasebook([
    (r"(?P<eq>.+?): (?P<p>\S+) % probability of failure within (?P<h>\S+) h \(alarm threshold "
     r"(?P<t>\S+) %\), (?P<level>[A-Z_]+)\."
     r"(?: Warning (?P<phase>standing|on-delay|off-delay|clear): (?:alarm for (?P<least_a>at least )?"
     r"(?P<held_a>\S+)(?: of (?P<of_a>\S+))? h|clear for (?P<held_c>\S+) of (?P<of_c>\S+) h|"
     r"no alarm for (?P<least_n>at least )?(?P<held_n>\S+) h)"
     r"(?: \(from (?P<rows>\S+) of (?P<need>\S+) h of history\))?\.)?"
     r"(?: Estimated remaining useful life (?P<rul>\S+) h\.)?"
     r"(?: Main drivers: (?P<drivers>.+)\.)?",
     _narrative),
])


# --------------------------------------------------------------------------- the seed routes' own


def root_message(gateway_id: str) -> str:
    """``GET /``'s message."""
    if current() is Language.EN:
        return f"RefineryIQ Edge gateway {gateway_id}"
    return f"Pasarela RefineryIQ Edge {gateway_id}"


def deleted_message(item_id: int, sku: str) -> str:
    """``DELETE /api/inventory/{id}``'s message."""
    if current() is Language.EN:
        return f"item {item_id} ({sku}) deleted"
    return f"artículo {item_id} ({sku}) eliminado"
