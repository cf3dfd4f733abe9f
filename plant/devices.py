"""The southbound devices (OPC-UA servers, Modbus TCP PLCs) and the scan groups that read
their tags: the `[[devices]]` and `[[scan_groups]]` tables of `config/gateway.toml`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    SecretStr,
    field_validator,
)

from plant.schema import Strict


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
