"""Configuration errors that name the file and the field path."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import (
    ValidationError,
)

# A problem that names a field below the validated object ("modbus.table: ...").
_FIELD_PREFIX = re.compile(r"(?P<field>[a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*): (?P<problem>.+)", re.DOTALL)


class ConfigError(Exception):
    """A configuration file is missing, is not TOML, or fails validation."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


def validation_problems(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        # Cross-reference checks report several "field: problem" items in one message; a model's
        # own check may name a field below it, which extends the location ("tags.3.modbus.table").
        for part in msg.split("; "):
            nested = _FIELD_PREFIX.fullmatch(part) if loc else None
            if nested is not None:
                out.append(f"{loc}.{nested['field']}: {nested['problem']}")
            else:
                out.append(f"{loc}: {part}" if loc else part)
    return out
