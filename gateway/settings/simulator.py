"""The `[simulator]` section: the bundled simulator `refineryiq run --simulate` starts."""

from __future__ import annotations

from pydantic import Field

from plant.schema import Strict


class SimulatorSettings(Strict):
    """Used by `refineryiq run --simulate` when it starts the bundled simulator."""

    seed: int = 7
    speed: float = Field(default=1.0, gt=0)
    synthetic_tags: int = Field(default=0, ge=0, le=30000)
    opcua_port: int = Field(default=4840, ge=0, le=65535)
    modbus_port: int = Field(default=5020, ge=0, le=65535)
