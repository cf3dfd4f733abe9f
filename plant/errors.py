"""Configuration errors that name the file and the field path."""

from __future__ import annotations

from pathlib import Path

from pydantic import (
    ValidationError,
)


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
        # Cross-reference checks report several "field: problem" items in one message.
        for part in msg.split("; "):
            out.append(f"{loc}: {part}" if loc else part)
    return out
