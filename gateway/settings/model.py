"""The whole of `gateway.toml` (its top-level keys, `[[devices]]`, `[[scan_groups]]` and one
field per section) and the loaded configuration that pairs it with the plant catalog."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from analytics.alarm_config import AlarmConfig
from gateway.settings.analytics import AnalyticsSettings, MaintenanceSettings
from gateway.settings.email import EmailSettings
from gateway.settings.http import AuthSettings, HttpSettings
from gateway.settings.logging import LoggingSettings
from gateway.settings.mqtt import MqttSettings
from gateway.settings.opcua_server import OpcUaServerSettings
from gateway.settings.reports import ReportSettings
from gateway.settings.simulator import SimulatorSettings
from gateway.settings.sparkplug import SparkplugSettings
from gateway.settings.store import DatabaseSettings, StoreSettings
from gateway.settings.writes import WritesSettings
from plant.devices import Device, ScanGroup
from plant.schema import Plant, no_duplicates

ENV_PREFIX = "REFINERYIQ_"
DEFAULT_CONFIG = Path("config/gateway.toml")


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
    sparkplug: SparkplugSettings = SparkplugSettings()
    alarms: AlarmConfig = AlarmConfig()
    simulator: SimulatorSettings = SimulatorSettings()
    analytics: AnalyticsSettings = AnalyticsSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    opcua_server: OpcUaServerSettings = OpcUaServerSettings()
    reports: ReportSettings = ReportSettings()
    email: EmailSettings = EmailSettings()
    writes: WritesSettings = WritesSettings()
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
