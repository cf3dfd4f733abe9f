"""The `[analytics]` and `[maintenance]` sections: scheduled analytics and failure prediction."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from plant.schema import EquipmentType, Strict

# The lead a maintenance planner needs per type: a pump or a valve is swapped within a day, a
# compressor needs parts and a crew (two days), a furnace or an exchanger a planned shutdown.
DEFAULT_PLANNING_LEAD_H: dict[EquipmentType, float] = {
    EquipmentType.PUMP: 24.0, EquipmentType.VALVE: 24.0, EquipmentType.COMPRESSOR: 48.0,
    EquipmentType.FURNACE: 72.0, EquipmentType.EXCHANGER: 72.0,
}


class AnalyticsSettings(Strict):
    """The scheduled analytics (KPIs, energy, tanks, balance, equipment health)."""

    enabled: bool = True
    kpi_interval_s: float = Field(default=60.0, ge=0.5)
    first_run_delay_s: float = Field(default=5.0, ge=0)
    kpi_window_s: float = Field(default=3600.0, ge=60)
    # Equipment health judges the mean of the most recent samples.
    health_window_s: float = Field(default=600.0, ge=60)
    # Completed hourly energy rows kept in memory and recomputed (plus the current hour).
    energy_hours: int = Field(default=24, ge=1, le=48)
    max_gap_s: float = Field(default=60.0, gt=0)
    # The plant's day for the daily mass balance (the seed's plant is in Venezuela).
    timezone: str = "America/Caracas"
    retention_days: float = Field(default=30, gt=0)
    # Memory bound of the rolling history per tag (samples); a day at 1 s is 86 400.
    max_samples_per_tag: int = Field(default=200_000, ge=1000)
    # Price of energy for the financial figure; empty: no money figure is reported.
    energy_price_usd_per_kwh: float | None = Field(default=None, ge=0)
    # Margin lost per barrel not produced, for the daily loss of /api/stats/advanced; empty:
    # that figure is null.
    margin_usd_per_bbl: float | None = Field(default=None, ge=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{v}' (use an IANA name such as America/Caracas)") from None
        return v


class MaintenanceSettings(Strict):
    """Predictive maintenance: failure predictions per equipment from the trained type models."""

    enabled: bool = True
    # Predictions every interval; the first one soon after start (and retried sooner while no
    # equipment has enough history yet).
    interval_s: float = Field(default=1800.0, ge=1)
    first_run_delay_s: float = Field(default=30.0, ge=0)
    # No models in <state_dir>/models: train a default set in a background process at start.
    train_on_first_start: bool = True
    # The first-start training waits this long (a daemon that is stopped sooner never trains).
    train_delay_s: float = Field(default=60.0, ge=0)
    train_runs: int = Field(default=160, ge=4)
    train_dt_s: float = Field(default=600.0, gt=0)
    # How far ahead a failure must be warned for maintenance to plan the repair (hours, per
    # equipment type): the event-level target counts a failure as warned only this early.
    planning_lead_h: dict[EquipmentType, float] = Field(default_factory=lambda: dict(DEFAULT_PLANNING_LEAD_H))
    # Condition baseline: the normal operating envelope of each machine learned from the
    # gateway's own good-quality running history, then a continuous deviation score.
    baseline_enabled: bool = True
    # Hours of good-quality running data the baseline learns from before it scores.
    baseline_learning_h: float = Field(default=168.0, gt=0)
    # How often the baseline's score (and, while learning, its progress) is recomputed.
    baseline_interval_s: float = Field(default=300.0, ge=1)

    @field_validator("planning_lead_h")
    @classmethod
    def _every_type_has_a_lead(cls, v: dict[EquipmentType, float]) -> dict[EquipmentType, float]:
        for kind, hours in v.items():
            if not hours > 0:
                raise ValueError(f"{kind.value}: the planning lead must be more than 0 hours")
        return {**DEFAULT_PLANNING_LEAD_H, **v}
