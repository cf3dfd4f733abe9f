"""The `[writes]` section: setpoints and commands written to devices (one write path for the
HTTP API, the northbound OPC-UA server and the status page; see gateway/services/writes/)."""

from __future__ import annotations

from pydantic import Field, model_validator

from plant.schema import Strict


class WritesSettings(Strict):
    """How the gateway writes to devices. Which tags may be written, their limits and the role
    they need are the plant catalog's (``writable``, ``write_min``/``write_max``, ``max_step``,
    ``write_role``, ``permissive`` in plant.toml)."""

    # Off: no tag is writable through the gateway, whatever the catalog says.
    enabled: bool = True
    # How long a device may take to answer one write. A write that times out is journaled
    # `unconfirmed` (it may have reached the device) and never retried.
    write_timeout_s: float = Field(default=2.0, gt=0, le=30)
    # How long the read-back after a write may take to agree with the value written, and the
    # pause between read-back attempts.
    read_back_timeout_s: float = Field(default=2.0, gt=0, le=30)
    read_back_interval_s: float = Field(default=0.05, gt=0, le=5)
    # A live value older than this (the current value for max_step, a permissive tag) is not
    # trusted: the write is rejected.
    max_value_age_s: float = Field(default=15.0, gt=0)
    # Writes to one tag run one at a time, in request order; at most this many may wait.
    max_queued_per_tag: int = Field(default=8, ge=1, le=1000)
    # At shutdown a write in flight gets this long to finish; after it is journaled `unknown`.
    shutdown_wait_s: float = Field(default=3.0, ge=0, le=5)
    # The write journal (<state_dir>/writes.sqlite) keeps finished writes this long.
    retention_days: float = Field(default=365, gt=0)

    @model_validator(mode="after")
    def _interval_below_timeout(self) -> WritesSettings:
        if self.read_back_interval_s > self.read_back_timeout_s:
            raise ValueError("read_back_interval_s must not exceed read_back_timeout_s")
        return self
