"""Configuration models: the daemon (`gateway.toml`) and the plant catalog (`plant.toml`).

Both files are validated once at start-up. Every daemon setting can be overridden from the
environment with the prefix ``REFINERYIQ_`` and ``__`` between nesting levels
(``REFINERYIQ_HTTP__PORT=8080``); a secret may instead come from a file named by the same
variable with ``_FILE`` appended (``REFINERYIQ_DATABASE__URL_FILE=/run/credentials/db``).
Errors are raised as :class:`ConfigError`, whose message names the file and the field path.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from analytics.alarm_config import AlarmConfig
from analytics.alarm_types import Severity
from plant.devices import Device, ModbusDevice, OpcUaDevice, ScanGroup  # noqa: F401
from plant.errors import ConfigError, validation_problems  # noqa: F401
from plant.load import load_plant, read_toml  # noqa: F401
from plant.schema import Plant, Strict, no_duplicates  # noqa: F401

ENV_PREFIX = "REFINERYIQ_"
DEFAULT_CONFIG = Path("config/gateway.toml")


class HttpSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    cors_origins: list[str] = []

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, v: list[str]) -> list[str]:
        if "*" in v:
            raise ValueError("'*' is not allowed: list each origin (e.g. http://localhost:3000)")
        return v


class AuthSettings(Strict):
    """HTTP API users and tokens (see gateway/northbound/http/auth.py)."""

    # A token lives one shift by default; after it expires the user logs in again.
    token_lifetime_s: int = Field(default=8 * 3600, ge=60, le=7 * 86400)
    # None: reads need a token only when the API listens beyond loopback (http.host).
    require_token_for_reads: bool | None = None
    # HS256 signing key (at least 32 characters). Unset: <state_dir>/secrets/jwt.key, generated
    # on first start. From a file: REFINERYIQ_AUTH__SIGNING_KEY_FILE=/run/credentials/jwt-key.
    signing_key: SecretStr | None = None

    @field_validator("signing_key")
    @classmethod
    def _long_enough(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return v


class LoggingSettings(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = "auto"


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


class MqttValuesConfig(Strict):
    """Live values by exception: a tag is published when its value moves by more than the
    deadband (% of its normal span) or its quality changes, at most once per
    ``min_interval_s``. Off by default: alarms and status are the MQTT contract, values are
    an opt-in for control-room displays. (Defined here, not in gateway.mqtt, so that
    MqttSettings can hold it without an import cycle; gateway.mqtt re-exports it.)"""

    enabled: bool = False
    deadband_pct: float = Field(default=0.5, ge=0, le=100)
    min_interval_s: float = Field(default=1.0, ge=0)
    qos: int = Field(default=0, ge=0, le=1)
    retain: bool = False


class MqttSettings(Strict):
    host: str | None = None
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    values: MqttValuesConfig = MqttValuesConfig()


class SimulatorSettings(Strict):
    """Used by `refineryiq run --simulate` when it starts the bundled simulator."""

    seed: int = 7
    speed: float = Field(default=1.0, gt=0)
    synthetic_tags: int = Field(default=0, ge=0, le=30000)
    opcua_port: int = Field(default=4840, ge=0, le=65535)
    modbus_port: int = Field(default=5020, ge=0, le=65535)


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
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{v}' (use an IANA name such as America/Caracas)") from None
        return v


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


class OpcUaServerSecurity(StrEnum):
    """Security of the northbound OPC-UA server."""

    NONE = "None"  # no encryption, anonymous clients: loopback only
    BASIC256SHA256 = "Basic256Sha256"  # SignAndEncrypt with the gateway's certificate


class OpcUaServerUser(Strict):
    """A client account of the northbound OPC-UA server. ``password_hash`` is an argon2 hash
    (print one with ``python -m gateway.opcua_server_security``), never the password."""

    username: str = Field(min_length=1, max_length=64)
    password_hash: SecretStr

    @field_validator("password_hash")
    @classmethod
    def _argon2(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value().startswith("$argon2"):
            raise ValueError("must be an argon2 hash (python -m gateway.opcua_server_security)")
        return v


def is_loopback(host: str) -> bool:
    """True for a host name or address that only this machine can reach."""
    import ipaddress
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OpcUaServerSettings(Strict):
    """The northbound OPC-UA server SCADA reads (see gateway/northbound/opcua/service.py)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=4841, ge=0, le=65535)
    security: OpcUaServerSecurity = OpcUaServerSecurity.NONE
    users: list[OpcUaServerUser] = []
    # Changed tags are written to the address space at most this often.
    publish_interval_ms: int = Field(default=200, ge=50, le=5000)
    # KPIs, equipment health, gateway health and the alarm list are refreshed this often.
    summary_interval_s: float = Field(default=2.0, ge=0.2)

    @model_validator(mode="after")
    def _secure_beyond_loopback(self) -> OpcUaServerSettings:
        if self.security == OpcUaServerSecurity.NONE and not is_loopback(self.host):
            raise ValueError(f"security 'None' is only allowed on a loopback host, not "
                             f"'{self.host}': use 'Basic256Sha256' with users")
        if self.security == OpcUaServerSecurity.BASIC256SHA256 and not self.users:
            raise ValueError("security 'Basic256Sha256' needs at least one entry in users")
        return self


class SmtpSecurity(StrEnum):
    """How the e-mail notifier protects its SMTP connection."""

    NONE = "none"  # plain SMTP: a relay on loopback or a trusted segment only
    STARTTLS = "starttls"  # SMTP then STARTTLS (submission, usually port 587)
    SSL = "ssl"  # implicit TLS from the first byte (SMTPS, usually port 465)


class EmailSettings(Strict):
    """E-mail notification of alarms (gateway/northbound/email.py): the seed's "send email
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


class GatewaySettings(BaseSettings):
    """The daemon's configuration (`config/gateway.toml` plus REFINERYIQ_* overrides)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True)

    gateway_id: str = Field(default="edge-01", pattern=r"^[A-Za-z0-9_.-]+$")
    site: str = Field(default="plant", pattern=r"^[A-Za-z0-9_.-]+$")
    state_dir: Path = Path("state")
    plant_file: Path = Path("plant.toml")
    http: HttpSettings = HttpSettings()
    auth: AuthSettings = AuthSettings()
    logging: LoggingSettings = LoggingSettings()
    store: StoreSettings = StoreSettings()
    database: DatabaseSettings = DatabaseSettings()
    mqtt: MqttSettings = MqttSettings()
    alarms: AlarmConfig = AlarmConfig()
    simulator: SimulatorSettings = SimulatorSettings()
    analytics: AnalyticsSettings = AnalyticsSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    opcua_server: OpcUaServerSettings = OpcUaServerSettings()
    reports: ReportSettings = ReportSettings()
    email: EmailSettings = EmailSettings()
    devices: list[Device] = []
    scan_groups: list[ScanGroup] = []

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        # The file's values come in as init kwargs; the environment overrides them.
        return env_settings, init_settings

    @model_validator(mode="after")
    def _groups_reference_devices(self) -> GatewaySettings:
        problems: list[str] = []
        no_duplicates("devices", [d.id for d in self.devices], problems)
        no_duplicates("scan_groups", [g.id for g in self.scan_groups], problems)
        devices = {d.id for d in self.devices}
        for i, group in enumerate(self.scan_groups):
            if group.device not in devices:
                problems.append(f"scan_groups.{i}.device: device '{group.device}' is not defined")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Config(BaseModel):
    """A loaded, validated, cross-checked configuration: daemon settings and plant catalog."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path
    settings: GatewaySettings
    plant: Plant

    def device(self, device_id: str) -> Device:
        return next(d for d in self.settings.devices if d.id == device_id)


def _secrets_from_files(environ: dict[str, str]) -> dict[str, str]:
    """Resolve REFINERYIQ_X_FILE variables into REFINERYIQ_X (file content, stripped)."""
    resolved = dict(environ)
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and key.endswith("_FILE"):
            target = key.removesuffix("_FILE")
            del resolved[key]
            try:
                resolved[target] = Path(value).read_text().strip()
            except OSError as exc:
                raise ConfigError(value, [f"{key}: cannot read secret file: {exc.strerror}"]) from None
    return resolved


def load_config(path: Path | str | None = None, environ: dict[str, str] | None = None) -> Config:
    """Load and validate gateway.toml, the plant catalog it names, and their cross-references."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    data = read_toml(path)
    env = _secrets_from_files(dict(os.environ if environ is None else environ))
    saved = os.environ.copy()
    try:
        os.environ.clear()
        os.environ.update(env)
        settings = GatewaySettings(**data)
    except ValidationError as exc:
        raise ConfigError(path, validation_problems(exc)) from None
    finally:
        os.environ.clear()
        os.environ.update(saved)
    base = path.parent
    state_dir = settings.state_dir if settings.state_dir.is_absolute() else base.parent / settings.state_dir
    if "REFINERYIQ_STATE_DIR" in env:
        state_dir = Path(env["REFINERYIQ_STATE_DIR"])
    plant_path = settings.plant_file if settings.plant_file.is_absolute() else base / settings.plant_file
    settings = settings.model_copy(update={"state_dir": state_dir, "plant_file": plant_path})
    plant = load_plant(plant_path)
    problems = cross_check(settings, plant)
    if problems:
        raise ConfigError(path, problems)
    return Config(path=path, settings=settings, plant=plant)


def cross_check(settings: GatewaySettings, plant: Plant) -> list[str]:
    """Checks that need both files: scan groups name known tags and units with addresses."""
    problems: list[str] = []
    tags = {t.id: t for t in plant.tags}
    units = {u.id for u in plant.units}
    devices = {d.id: d for d in settings.devices}
    claimed: dict[tuple[str, str], str] = {}
    for i, group in enumerate(settings.scan_groups):
        device = devices[group.device]
        if group.mode == "subscribe" and device.protocol != "opcua":
            problems.append(f"scan_groups.{i}.mode: 'subscribe' needs an OPC-UA device")
        for j, unit_id in enumerate(group.units):
            if unit_id not in units:
                problems.append(f"scan_groups.{i}.units.{j}: unknown unit '{unit_id}'")
        for j, tag_id in enumerate(group.tags):
            tag = tags.get(tag_id)
            if tag is None:
                problems.append(f"scan_groups.{i}.tags.{j}: unknown tag '{tag_id}'")
            elif getattr(tag, device.protocol) is None:
                problems.append(f"scan_groups.{i}.tags.{j}: tag '{tag_id}' has no {device.protocol} address")
            else:
                other = claimed.setdefault((device.id, tag_id), group.id)
                if other != group.id:
                    problems.append(f"scan_groups.{i}.tags.{j}: tag '{tag_id}' is already scanned by group '{other}'")
    return problems
