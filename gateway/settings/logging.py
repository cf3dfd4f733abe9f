"""The `[logging]` section: the level and format of the daemon's own log."""

from __future__ import annotations

from typing import Literal

from plant.schema import Strict


class LoggingSettings(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = "auto"
