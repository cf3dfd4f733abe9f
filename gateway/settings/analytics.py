"""The `[analytics]` and `[maintenance]` sections: scheduled analytics and failure prediction."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from plant.schema import Strict


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
