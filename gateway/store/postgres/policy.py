"""Storage back-ends and the retention policy the historian enforces.

Defaults follow the seed report's tiers (Anexo A §4): 30 days of raw data hot, raw data kept
(compressed on TimescaleDB) for one year, hourly/daily rollups, KPIs and energy analyses for
five years.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


class Backend(StrEnum):
    """How process_data is stored: TimescaleDB hypertable or native range partitions."""

    TIMESCALE = "timescale"
    PLAIN = "plain"


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each tier of history is kept.

    ``raw_hot``: raw rows stay uncompressed this long (TimescaleDB compresses after it).
    ``raw_retention``: raw rows are dropped after this (whole chunks/partitions).
    ``rollup_retention``: hourly/daily rollups, kpis and energy_analysis are dropped after this.
    ``partitions_ahead``: plain PostgreSQL only, daily partitions created ahead of now.
    """

    raw_hot: timedelta = timedelta(days=30)
    raw_retention: timedelta = timedelta(days=365)
    rollup_retention: timedelta = timedelta(days=5 * 365)
    partitions_ahead: timedelta = timedelta(days=2)

    def __post_init__(self) -> None:
        if not timedelta(0) < self.raw_hot <= self.raw_retention:
            raise ValueError("retention: raw_hot must be positive and not longer than raw_retention")
        if self.rollup_retention < self.raw_retention:
            raise ValueError("retention: rollups must be kept at least as long as raw data")
        if self.partitions_ahead < timedelta(days=1):
            raise ValueError("retention: partitions_ahead must be at least one day")


DEFAULT_RETENTION = RetentionPolicy()
