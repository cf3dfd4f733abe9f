"""Alarm engine settings: severity bands, deadband, delays, auto-acknowledge, KPI thresholds.

A frozen pydantic model so it can sit in ``GatewaySettings`` as the ``[alarms]`` section of
``config/gateway.toml`` and be validated with the rest of the configuration at start-up.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from analytics.alarm_types import Severity


class AlarmConfig(BaseModel):
    """How process, bad-quality and communication-loss alarms are raised, cleared and rated.

    Severity bands come from the seed: the deviation beyond the violated limit, as a percentage
    of the tag's normal span, is LOW below ``medium_from_pct``, MEDIUM from it up to and including
    ``high_above_pct``, HIGH above. Delays and deadband follow ISA-18.2 practice against
    chattering: an alarm is raised only after its condition has held ``on_delay_s`` and cleared
    only after the value has stayed back inside the limit (less the deadband) ``off_delay_s``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    medium_from_pct: float = Field(default=15.0, ge=0)
    high_above_pct: float = Field(default=30.0, ge=0)
    # Deadband for tags without their own `deadband` (engineering units): % of the normal span.
    deadband_pct: float = Field(default=1.0, ge=0, le=50)
    on_delay_s: float = Field(default=0.0, ge=0)
    off_delay_s: float = Field(default=5.0, ge=0)
    # The seed acknowledges every alert automatically after 30 minutes; 0 (or None) turns it off.
    auto_ack_after_s: float | None = Field(default=1800.0, ge=0)

    @field_validator("auto_ack_after_s")
    @classmethod
    def _zero_is_off(cls, v: float | None) -> float | None:
        return None if v == 0 else v
    bad_quality_delay_s: float = Field(default=10.0, ge=0)
    bad_quality_severity: Severity = Severity.MEDIUM
    comm_loss_delay_s: float = Field(default=5.0, ge=0)
    comm_loss_severity: Severity = Severity.HIGH
    # While a device is known to be disconnected its tags' bad quality is a consequence of the
    # COMM_LOSS alarm, not news: do not flood the operator with one BAD_QUALITY alarm per tag.
    comm_loss_suppresses_bad_quality: bool = True
    # Alarm-rate KPIs (ISA-18.2 section 16 / EEMUA 191 benchmarks).
    flood_threshold: int = Field(default=10, ge=1)
    flood_period_s: float = Field(default=600.0, gt=0)
    chattering_activations: int = Field(default=3, ge=2)
    chattering_window_s: float = Field(default=60.0, gt=0)
    stale_after_s: float = Field(default=86400.0, gt=0)

    @model_validator(mode="after")
    def _bands_in_order(self) -> AlarmConfig:
        if self.medium_from_pct > self.high_above_pct:
            raise ValueError(f"medium_from_pct {self.medium_from_pct} is above high_above_pct "
                             f"{self.high_above_pct}")
        return self
