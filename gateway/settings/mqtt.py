"""The `[mqtt]` and `[mqtt.values]` sections: the broker alarms and status are published to."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from plant.schema import Strict


class MqttValuesConfig(Strict):
    """Live values by exception: a tag is published when its value moves by more than the
    deadband (% of its normal span) or its quality changes, at most once per
    ``min_interval_s``. Off by default: alarms and status are the MQTT contract, values are
    an opt-in for control-room displays. (Defined here, not in gateway.northbound.mqtt, so that
    MqttSettings can hold it without an import cycle; the publisher re-exports it.)"""

    enabled: bool = False
    deadband_pct: float = Field(default=0.5, ge=0, le=100)
    min_interval_s: float = Field(default=1.0, ge=0)
    qos: int = Field(default=0, ge=0, le=1)
    retain: bool = False
    # Values handed to paho and not yet written out (QoS 0) or acknowledged (QoS 1). While the
    # broker or the network falls behind, further values wait one per tag (the newest; older
    # ones are dropped and counted), so memory stays bounded: about 1 kB per queued value.
    max_queued: int = Field(default=1000, ge=1, le=1_000_000)


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
