"""The `[store]` and `[database]` sections: the embedded store and the historian it forwards to."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from plant.schema import Strict


class StoreSettings(Strict):
    """The embedded store (SQLite in the state directory)."""

    retention_days: float = Field(default=30, gt=0)
    max_bytes: int = Field(default=2_000_000_000, ge=10_000_000)


class DatabaseSettings(Strict):
    """The PostgreSQL/TimescaleDB historian the embedded store forwards to (off without url)."""

    url: SecretStr | None = None
    migrate_on_start: bool = True
    batch_rows: int = Field(default=100_000, ge=1)
    # Tables in this schema (created if missing) instead of the server's default search_path.
    schema_name: str | None = Field(default=None, alias="schema", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # None: TimescaleDB when the server offers it; true: required; false: plain PostgreSQL.
    timescale: bool | None = None
    # How often new rows are folded into the latest-value table and the rollups.
    fold_interval_s: float = Field(default=60.0, gt=0)
    # /health reports degraded when the oldest unforwarded scan is older than this.
    max_lag_s: float = Field(default=60.0, gt=0)
    raw_hot_days: int = Field(default=30, ge=1)
    raw_retention_days: int = Field(default=365, ge=1)
    rollup_retention_days: int = Field(default=5 * 365, ge=1)

    @model_validator(mode="after")
    def _retention_tiers(self) -> DatabaseSettings:
        if not self.raw_hot_days <= self.raw_retention_days <= self.rollup_retention_days:
            raise ValueError("retention must satisfy raw_hot_days <= raw_retention_days <= "
                             "rollup_retention_days")
        return self
