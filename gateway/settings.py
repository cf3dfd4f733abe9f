"""Configuration models: the daemon (`gateway.toml`) and the plant catalog (`plant.toml`).

Both files are validated once at start-up. Every daemon setting can be overridden from the
environment with the prefix ``REFINERYIQ_`` and ``__`` between nesting levels
(``REFINERYIQ_HTTP__PORT=8080``); a secret may instead come from a file named by the same
variable with ``_FILE`` appended (``REFINERYIQ_DATABASE__URL_FILE=/run/credentials/db``).
Errors are raised as :class:`ConfigError`, whose message names the file and the field path.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

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

ENV_PREFIX = "REFINERYIQ_"
DEFAULT_CONFIG = Path("config/gateway.toml")


class ConfigError(Exception):
    """A configuration file is missing, is not TOML, or fails validation."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors (they are usually typos)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- plant catalog


class TagType(StrEnum):
    TEMPERATURE = "TEMPERATURE"
    FLOW = "FLOW"
    PRESSURE = "PRESSURE"
    CURRENT = "CURRENT"
    LEVEL = "LEVEL"
    ANALYTICAL = "ANALYTICAL"
    VIBRATION = "VIBRATION"
    POWER = "POWER"
    POSITION = "POSITION"
    STATUS = "STATUS"
    ANALOG = "ANALOG"


class DataType(StrEnum):
    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    FLOAT64 = "float64"

    @property
    def registers(self) -> int:
        """16-bit registers one value occupies (bits count as one address)."""
        return {"bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2,
                "float32": 2, "float64": 4}[self.value]


class ByteOrder(StrEnum):
    """Order of the bytes of a multi-register value, A being the most significant byte."""

    ABCD = "ABCD"  # big-endian words, big-endian bytes (Modbus default)
    CDAB = "CDAB"  # word-swapped
    BADC = "BADC"  # byte-swapped
    DCBA = "DCBA"  # little-endian


class ModbusTable(StrEnum):
    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"

    @property
    def is_bits(self) -> bool:
        return self in (ModbusTable.COIL, ModbusTable.DISCRETE)


class ModbusAddress(Strict):
    """Where a tag lives in a Modbus server; engineering value = raw * scale + offset."""

    table: ModbusTable
    address: int = Field(ge=0, le=65535)
    type: DataType = DataType.UINT16
    order: ByteOrder = ByteOrder.ABCD
    scale: float = 1.0
    offset: float = 0.0

    @model_validator(mode="after")
    def _type_fits_table(self) -> ModbusAddress:
        if self.table.is_bits and self.type != DataType.BOOL:
            raise ValueError(f"{self.table.value} addresses hold bits: type must be 'bool'")
        if not self.table.is_bits and self.type == DataType.BOOL:
            raise ValueError(f"{self.table.value} registers cannot have type 'bool'")
        if self.address + self.type.registers - 1 > 65535:
            raise ValueError("value runs past register 65535")
        return self

    @property
    def count(self) -> int:
        return self.type.registers


# OPC-UA node id strings (OPC 10000-6 §5.3.1.10): an optional namespace by index (ns=) or by
# URI (nsu=), then a numeric (i=), string (s=), GUID (g=) or opaque base64 (b=) identifier.
_NODE_ID = re.compile(
    r"(?:(?:ns=(?P<ns>\d+)|nsu=[^;]+);)?"
    r"(?:i=(?P<i>\d+)|s=.+|g=[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}"
    r"|b=[A-Za-z0-9+/]+={0,2})", re.DOTALL)
_MAX_NAMESPACE = 0xFFFF
_MAX_NUMERIC_ID = 0xFFFFFFFF


class OpcUaAddress(Strict):
    node_id: str = Field(min_length=3)

    @field_validator("node_id")
    @classmethod
    def _node_id_syntax(cls, value: str) -> str:
        match = _NODE_ID.fullmatch(value)
        if match is None:
            raise ValueError(f"'{value}' is not an OPC-UA node id (e.g. 'ns=2;s=CDU-101.TI-101', "
                             "'nsu=urn:plant;i=1001')")
        if match["ns"] is not None and int(match["ns"]) > _MAX_NAMESPACE:
            raise ValueError(f"'{value}': namespace index above {_MAX_NAMESPACE}")
        if match["i"] is not None and int(match["i"]) > _MAX_NUMERIC_ID:
            raise ValueError(f"'{value}': numeric identifier above {_MAX_NUMERIC_ID}")
        return value


class Unit(Strict):
    """A process unit of the refinery (seed table process_units)."""

    id: str
    name: str
    type: str
    capacity_bpd: float = Field(gt=0)
    description: str = ""
    feed_tag: str | None = None
    power_tag: str | None = None
    product_tags: list[str] = []
    energy_benchmark_kwh_bbl: float | None = Field(default=None, gt=0)
    energy_target_kwh_bbl: float | None = Field(default=None, gt=0)


class Equipment(Strict):
    """A piece of equipment of a unit (seed table equipment)."""

    id: str
    name: str
    type: str
    unit_id: str
    manufacturer: str = ""
    installation_date: date | None = None
    sim: dict[str, Any] = {}


class Tag(Strict):
    """A measured process variable (seed table process_tags) and its address map."""

    id: str
    name: str
    unit_id: str | None = None
    equipment_id: str | None = None
    engineering_units: str
    tag_type: TagType
    normal_min: float
    normal_max: float
    ll: float | None = None
    hh: float | None = None
    instrument_min: float | None = None
    instrument_max: float | None = None
    deadband: float | None = Field(default=None, ge=0)
    is_critical: bool = False
    description: str = ""
    opcua: OpcUaAddress | None = None
    modbus: ModbusAddress | None = None
    # Hints for the bundled simulator only (setpoint, noise, couplings); the gateway ignores them.
    sim: dict[str, Any] = {}

    @model_validator(mode="after")
    def _limits_in_order(self) -> Tag:
        if self.normal_min > self.normal_max:
            raise ValueError(f"normal_min {self.normal_min} is above normal_max {self.normal_max}")
        if self.ll is not None and self.ll > self.normal_min:
            raise ValueError(f"ll {self.ll} must not be above normal_min {self.normal_min}")
        if self.hh is not None and self.hh < self.normal_max:
            raise ValueError(f"hh {self.hh} must not be below normal_max {self.normal_max}")
        lo = self.instrument_min
        hi = self.instrument_max
        if lo is not None and hi is not None and lo >= hi:
            raise ValueError(f"instrument_min {lo} must be below instrument_max {hi}")
        if lo is not None and lo > min(self.normal_min, self.ll if self.ll is not None else lo):
            raise ValueError("instrument_min must not be above the normal range or ll")
        if hi is not None and hi < max(self.normal_max, self.hh if self.hh is not None else hi):
            raise ValueError("instrument_max must not be below the normal range or hh")
        return self


class Tank(Strict):
    id: str
    name: str
    product: str
    capacity_l: float = Field(gt=0)
    level_tag: str
    unit_id: str | None = None
    low_level_pct: float = Field(default=15.0, ge=0, le=100)
    high_level_pct: float = Field(default=90.0, ge=0, le=100)


class InventoryItem(Strict):
    sku: str
    item: str
    quantity: float = Field(ge=0)
    unit: str
    location: str = ""
    reorder_level: float = Field(default=0, ge=0)
    critical_level: float = Field(default=0, ge=0)


class Plant(Strict):
    """The plant catalog: units, equipment, tags, tanks, inventory seed items."""

    name: str = "RefineryIQ"
    units: list[Unit]
    equipment: list[Equipment] = []
    tags: list[Tag]
    tanks: list[Tank] = []
    inventory: list[InventoryItem] = []

    @model_validator(mode="after")
    def _references_resolve(self) -> Plant:
        problems: list[str] = []
        _no_duplicates("units", [u.id for u in self.units], problems)
        _no_duplicates("equipment", [e.id for e in self.equipment], problems)
        _no_duplicates("tags", [t.id for t in self.tags], problems)
        _no_duplicates("tanks", [t.id for t in self.tanks], problems)
        _no_duplicates("inventory", [i.sku for i in self.inventory], problems)
        units = {u.id for u in self.units}
        equipment = {e.id for e in self.equipment}
        tags = {t.id for t in self.tags}
        for i, e in enumerate(self.equipment):
            if e.unit_id not in units:
                problems.append(f"equipment.{i}.unit_id: unknown unit '{e.unit_id}'")
        for i, t in enumerate(self.tags):
            if t.unit_id is not None and t.unit_id not in units:
                problems.append(f"tags.{i}.unit_id: unknown unit '{t.unit_id}'")
            if t.equipment_id is not None and t.equipment_id not in equipment:
                problems.append(f"tags.{i}.equipment_id: unknown equipment '{t.equipment_id}'")
        for i, u in enumerate(self.units):
            for field in ("feed_tag", "power_tag"):
                ref = getattr(u, field)
                if ref is not None and ref not in tags:
                    problems.append(f"units.{i}.{field}: unknown tag '{ref}'")
            for j, ref in enumerate(u.product_tags):
                if ref not in tags:
                    problems.append(f"units.{i}.product_tags.{j}: unknown tag '{ref}'")
        for i, tank in enumerate(self.tanks):
            if tank.level_tag not in tags:
                problems.append(f"tanks.{i}.level_tag: unknown tag '{tank.level_tag}'")
        problems += _address_conflicts(self.tags)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _no_duplicates(section: str, ids: list[str], problems: list[str]) -> None:
    seen: set[str] = set()
    for i, ident in enumerate(ids):
        if ident in seen:
            problems.append(f"{section}.{i}: duplicate id '{ident}'")
        seen.add(ident)


def _address_conflicts(tags: list[Tag]) -> list[str]:
    """Two tags must not share a Modbus register (of the same table) or an OPC-UA node."""
    problems: list[str] = []
    owner: dict[tuple[str, int], str] = {}
    nodes: dict[str, str] = {}
    for i, tag in enumerate(tags):
        if tag.modbus is not None:
            m = tag.modbus
            for reg in range(m.address, m.address + m.count):
                other = owner.setdefault((m.table.value, reg), tag.id)
                if other != tag.id:
                    problems.append(
                        f"tags.{i}.modbus.address: {m.table.value} register {reg} of '{tag.id}'"
                        f" is already used by '{other}'")
                    break
        if tag.opcua is not None:
            other = nodes.setdefault(tag.opcua.node_id, tag.id)
            if other != tag.id:
                problems.append(f"tags.{i}.opcua.node_id: '{tag.opcua.node_id}' is already used by '{other}'")
    return problems


# --------------------------------------------------------------------------- daemon settings


class OpcUaDevice(Strict):
    id: str
    protocol: Literal["opcua"]
    endpoint: str = "opc.tcp://127.0.0.1:4840"
    security_policy: Literal["None", "Basic256Sha256"] = "None"
    security_mode: Literal["Sign", "SignAndEncrypt"] = "SignAndEncrypt"
    username: str | None = None
    password: SecretStr | None = None
    timeout_s: float = Field(default=4.0, gt=0)
    max_nodes_per_read: int | None = Field(default=None, gt=0)
    # A server certificate outside its validity period is refused (OPC 10000-4 §6.1.3); set
    # true to keep reading a server whose certificate has expired, with a warning per connect.
    accept_expired_certificate: bool = False

    @field_validator("endpoint")
    @classmethod
    def _opc_tcp(cls, v: str) -> str:
        if not v.startswith("opc.tcp://"):
            raise ValueError("must start with opc.tcp://")
        return v


class ModbusDevice(Strict):
    id: str
    protocol: Literal["modbus"]
    host: str = "127.0.0.1"
    port: int = Field(default=502, ge=1, le=65535)
    unit_id: int = Field(default=1, ge=0, le=255)
    timeout_s: float = Field(default=1.0, gt=0)
    max_registers: int = Field(default=125, ge=1, le=125)
    max_bits: int = Field(default=2000, ge=1, le=2000)
    max_gap: int = Field(default=0, ge=0, le=124)
    # TCP connections used in parallel (pymodbus does not pipeline requests on one connection);
    # many PLCs accept only a few Modbus connections, so keep this small.
    max_concurrent: int = Field(default=2, ge=1, le=16)


Device = Annotated[OpcUaDevice | ModbusDevice, Field(discriminator="protocol")]


class ScanGroup(Strict):
    """Tags of one device read together at one interval."""

    id: str
    device: str
    interval_ms: int = Field(default=1000, ge=10)
    mode: Literal["poll", "subscribe"] = "poll"
    tags: list[str] = []
    units: list[str] = []
    synthetic: bool = False
    stale_after_scans: int = Field(default=10, ge=1)
    # OPC-UA subscriptions only: absolute deadband in engineering units, 0 = every change.
    deadband: float = Field(default=0.0, ge=0)
    queue_size: int = Field(default=1, ge=1)


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
    """HTTP API users and tokens (see gateway/api/auth.py)."""

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
    """The daily operations report (gateway/reports/): targets and the scheduled run."""

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
    """The northbound OPC-UA server SCADA reads (see gateway/opcua_server.py)."""

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
    """E-mail notification of alarms (gateway/notify_email.py): the seed's "send email
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
        _no_duplicates("devices", [d.id for d in self.devices], problems)
        _no_duplicates("scan_groups", [g.id for g in self.scan_groups], problems)
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


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(path, ["file not found"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    except OSError as exc:
        raise ConfigError(path, [f"cannot read: {exc.strerror}"]) from None


def _problems(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        # Cross-reference checks report several "field: problem" items in one message.
        for part in msg.split("; "):
            out.append(f"{loc}: {part}" if loc else part)
    return out


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


def load_plant(path: Path) -> Plant:
    try:
        return Plant.model_validate(_read_toml(path))
    except ValidationError as exc:
        raise ConfigError(path, _problems(exc)) from None


def load_config(path: Path | str | None = None, environ: dict[str, str] | None = None) -> Config:
    """Load and validate gateway.toml, the plant catalog it names, and their cross-references."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    data = _read_toml(path)
    env = _secrets_from_files(dict(os.environ if environ is None else environ))
    saved = os.environ.copy()
    try:
        os.environ.clear()
        os.environ.update(env)
        settings = GatewaySettings(**data)
    except ValidationError as exc:
        raise ConfigError(path, _problems(exc)) from None
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
