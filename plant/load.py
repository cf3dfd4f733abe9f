"""Reading TOML files and loading the plant catalog."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import (
    ValidationError,
)

from plant.errors import ConfigError, validation_problems
from plant.schema import Plant


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(path, ["file not found"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    except OSError as exc:
        raise ConfigError(path, [f"cannot read: {exc.strerror}"]) from None


def load_plant(path: Path) -> Plant:
    try:
        return Plant.model_validate(read_toml(path))
    except ValidationError as exc:
        raise ConfigError(path, validation_problems(exc)) from None
