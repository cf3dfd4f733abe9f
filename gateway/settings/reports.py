"""The `[reports]` and `[reports.targets]` sections: the daily operations report."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from plant.schema import Strict


class ReportTargets(Strict):
    """What the daily report compares each unit's day against (percentages 0-100)."""

    oee_pct: float = Field(default=85.0, ge=0, le=100)  # the usual world-class OEE
    throughput_pct_of_design: float = Field(default=90.0, ge=0, le=200)
    energy_efficiency: float = Field(default=95.0, ge=0, le=100)  # EXCELLENT from 95
    quality_score: float = Field(default=95.0, ge=0, le=100)
    good_data_pct: float = Field(default=99.0, ge=0, le=100)


class ReportSettings(Strict):
    """The daily operations report (gateway/services/reports/): targets and the scheduled run."""

    # The scheduled run writes the previous plant day's report at this local time (HH:MM,
    # in analytics.timezone) into <state_dir>/reports/.
    scheduled: bool = True
    daily_at: str = Field(default="06:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    formats: list[Literal["html", "pdf", "xlsx"]] = ["html", "pdf", "xlsx"]
    keep_days: int = Field(default=90, ge=1)
    targets: ReportTargets = ReportTargets()
