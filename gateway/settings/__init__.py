"""The daemon's configuration, `config/gateway.toml`: one model per section, the loader, and
the checks against the plant catalog (`plant.toml`, modelled in :mod:`plant`).

The file is validated once at start-up. Every setting can be overridden from the environment
with the prefix ``REFINERYIQ_`` and ``__`` between nesting levels (``REFINERYIQ_HTTP__PORT=8080``);
a secret may instead come from a file named by the same variable with ``_FILE`` appended
(``REFINERYIQ_DATABASE__URL_FILE=/run/credentials/db``). Errors are raised as
:class:`plant.errors.ConfigError`, whose message names the file and the field path.
"""

from gateway.settings.analytics import AnalyticsSettings, MaintenanceSettings
from gateway.settings.email import EmailSettings, SmtpSecurity
from gateway.settings.hosts import is_loopback
from gateway.settings.http import AuthSettings, HttpSettings
from gateway.settings.load import cross_check, load_config
from gateway.settings.logging import LoggingSettings
from gateway.settings.model import DEFAULT_CONFIG, ENV_PREFIX, Config, GatewaySettings
from gateway.settings.mqtt import MqttSettings, MqttValuesConfig
from gateway.settings.opcua_server import (
    OpcUaServerSecurity,
    OpcUaServerSettings,
    OpcUaServerUser,
)
from gateway.settings.reports import ReportSettings, ReportTargets
from gateway.settings.simulator import SimulatorSettings
from gateway.settings.sparkplug import SparkplugSettings
from gateway.settings.store import DatabaseSettings, StoreSettings
from gateway.settings.writes import WritesSettings

__all__ = [
    "DEFAULT_CONFIG",
    "ENV_PREFIX",
    "AnalyticsSettings",
    "AuthSettings",
    "Config",
    "DatabaseSettings",
    "EmailSettings",
    "GatewaySettings",
    "HttpSettings",
    "LoggingSettings",
    "MaintenanceSettings",
    "MqttSettings",
    "MqttValuesConfig",
    "OpcUaServerSecurity",
    "OpcUaServerSettings",
    "OpcUaServerUser",
    "ReportSettings",
    "ReportTargets",
    "SimulatorSettings",
    "SmtpSecurity",
    "SparkplugSettings",
    "StoreSettings",
    "WritesSettings",
    "cross_check",
    "is_loopback",
    "load_config",
]
