"""The `[email]` section: e-mail notification of alarms over SMTP."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import ConfigDict, Field, SecretStr, model_validator

from analytics.alarm_types import Severity
from plant.schema import Strict


class SmtpSecurity(StrEnum):
    """How the e-mail notifier protects its SMTP connection."""

    NONE = "none"  # plain SMTP: a relay on loopback or a trusted segment only
    STARTTLS = "starttls"  # SMTP then STARTTLS (submission, usually port 587)
    SSL = "ssl"  # implicit TLS from the first byte (SMTPS, usually port 465)


class EmailSettings(Strict):
    """E-mail notification of alarms (gateway/northbound/email/): the seed's "send email
    notification" step. Off by default. Only activations (and, with ``escalations``, escalations)
    of alarms at ``min_severity`` or above are mailed, at most ``max_per_window`` mails per
    ``window_s``; what the limit holds back is summarised in the next mail. The password may
    come from a file: REFINERYIQ_EMAIL__PASSWORD_FILE=/run/credentials/refineryiq/smtp."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    enabled: bool = False
    host: str | None = None
    port: int = Field(default=587, ge=1, le=65535)
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    # CA bundle to verify the server's certificate; empty: the system's trust store.
    ca_file: Path | None = None
    username: str | None = None
    password: SecretStr | None = None
    sender: str | None = Field(default=None, alias="from")
    to: list[str] = []
    min_severity: Severity = Severity.HIGH
    escalations: bool = True
    max_per_window: int = Field(default=5, ge=1)
    window_s: float = Field(default=600.0, gt=0)
    subject_prefix: str = "[RefineryIQ]"
    # Alarms waiting to be mailed; beyond this the oldest are dropped (and counted).
    queue_size: int = Field(default=200, ge=1)
    timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> EmailSettings:
        if not self.enabled:
            return self
        missing = [name for name, value in (("host", self.host), ("from", self.sender),
                                            ("to", self.to)) if not value]
        if missing:
            raise ValueError(f"enabled e-mail needs {', '.join(missing)}")
        if self.password is not None and self.username is None:
            raise ValueError("password is set but username is not")
        return self
