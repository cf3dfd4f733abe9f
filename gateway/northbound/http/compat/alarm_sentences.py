"""Alarm messages in the report's Spanish, for the seed's alerts (see :mod:`.sentences`).

The alarm engine writes ``"<tag id> <tag name>: <what happened>"`` for every transition
(``analytics/alarm_lifecycle.py``); the source label is kept and what happened is rendered in
Spanish with the same figures. Severity and kind stay enum words in their own fields; in the
sentence they are read as prose ("alarma alta", "severidad media").
"""

from __future__ import annotations

import re

from gateway.northbound.http.compat.sentences import Phrasebook

KIND_WORDS = {"HI": "alta", "HIHI": "muy alta", "LO": "baja", "LOLO": "muy baja",
              "BAD_QUALITY": "de calidad mala", "COMM_LOSS": "de pérdida de comunicación"}
SEVERITY_WORDS = {"LOW": "baja", "MEDIUM": "media", "HIGH": "alta"}

_DETAIL = re.compile(r"(?P<value>\S+)(?P<eu> .+?)? (?P<side>above|below) limit (?P<limit>\S+)"
                     r"(?P<eu2> .+)?")
_PREFIX = [(re.compile(r"shelve expired"), lambda m: "venció la espera"),
           (re.compile(r"unshelved by (?P<user>.+)"), lambda m: f"sacada de espera por {m['user']}"),
           (re.compile(r"returned to service by (?P<user>.+)"),
            lambda m: f"devuelta a servicio por {m['user']}")]


def _kind(word: str) -> str:
    return KIND_WORDS.get(word, word)


def _severity(word: str) -> str:
    return SEVERITY_WORDS.get(word, word)


def _detail(text: str | None) -> str:
    """``365.2 °C above limit 360 °C`` → ``365.2 °C sobre el límite 360 °C``."""
    if not text:
        return ""
    m = _DETAIL.fullmatch(text)
    if m is None:
        return text
    side = "sobre" if m["side"] == "above" else "bajo"
    return f"{m['value']}{m['eu'] or ''} {side} el límite {m['limit']}{m['eu2'] or ''}"


def _prefix(text: str | None) -> str:
    if not text:
        return ""
    for pattern, render in _PREFIX:
        m = pattern.fullmatch(text)
        if m is not None:
            return f"{render(m)}; "
    return f"{text}; "


def _raised(m: re.Match[str]) -> str:
    detail = _detail(m["detail"])
    detail = f", {detail}" if detail else ""
    return (f"{m['label']}: {_prefix(m['prefix'])}alarma {_kind(m['kind'])}{detail} "
            f"(severidad {_severity(m['sev'])})")


_LABEL = r"(?P<label>.+?): "
_KIND = r"(?P<kind>[A-Z_]+)"
_USER = r"(?P<user>.+)"

ALARM_MESSAGE = Phrasebook([
    (_LABEL + r"(?:(?P<prefix>shelve expired|unshelved by .+?|returned to service by .+?); )?"
     + _KIND + r" alarm(?:, (?P<detail>.+))? \((?P<sev>[A-Z]+)\)", _raised),
    (_LABEL + r"severity (?P<s1>[A-Z]+) to (?P<s2>[A-Z]+), (?P<detail>.*)",
     lambda m: f"{m['label']}: severidad {_severity(m['s1'])} a {_severity(m['s2'])}"
               + (f", {_detail(m['detail'])}" if m["detail"] else "")),
    (_LABEL + r"(?P<k1>[A-Z_]+) to (?P<k2>[A-Z_]+), (?P<detail>.*)",
     lambda m: f"{m['label']}: alarma {_kind(m['k1'])} pasó a {_kind(m['k2'])}"
               + (f", {_detail(m['detail'])}" if m["detail"] else "")),
    (_LABEL + _KIND + r" returned to normal(?P<where> \(.*\))?",
     lambda m: f"{m['label']}: alarma {_kind(m['kind'])} volvió a la normalidad{m['where'] or ''}"),
    (_LABEL + _KIND + r" automatically acknowledged",
     lambda m: f"{m['label']}: alarma {_kind(m['kind'])} reconocida automáticamente"),
    (_LABEL + _KIND + r" acknowledged by " + _USER,
     lambda m: f"{m['label']}: alarma {_kind(m['kind'])} reconocida por {m['user']}"),
    (_LABEL + r"shelved by (?P<user>.+) until (?P<until>\S+)",
     lambda m: f"{m['label']}: puesta en espera por {m['user']} hasta {m['until']}"),
    (_LABEL + r"removed from service by " + _USER,
     lambda m: f"{m['label']}: puesta fuera de servicio por {m['user']}"),
    (_LABEL + r"shelve expired", lambda m: f"{m['label']}: venció la espera"),
    (_LABEL + r"unshelved by " + _USER, lambda m: f"{m['label']}: sacada de espera por {m['user']}"),
    (_LABEL + r"returned to service by " + _USER,
     lambda m: f"{m['label']}: devuelta a servicio por {m['user']}"),
])
