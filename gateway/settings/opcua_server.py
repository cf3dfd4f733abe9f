"""The `[opcua_server]` section and its `[[opcua_server.users]]`: the northbound OPC-UA server."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from gateway.settings.hosts import is_loopback
from plant.schema import Strict


class OpcUaServerSecurity(StrEnum):
    """Security of the northbound OPC-UA server."""

    NONE = "None"  # no encryption, anonymous clients: loopback only
    BASIC256SHA256 = "Basic256Sha256"  # SignAndEncrypt with the gateway's certificate


class OpcUaServerUser(Strict):
    """A client account of the northbound OPC-UA server. ``password_hash`` is an argon2 hash
    (print one with ``python -m gateway.northbound.opcua.security``), never the password.
    ``role`` is what the account may write, as for API users: a writable tag needs its
    ``write_role`` (default supervisor) or higher; a viewer only reads."""

    username: str = Field(min_length=1, max_length=64)
    password_hash: SecretStr
    role: Literal["viewer", "operator", "supervisor", "admin"] = "viewer"

    @field_validator("password_hash")
    @classmethod
    def _argon2(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value().startswith("$argon2"):
            raise ValueError("must be an argon2 hash (python -m gateway.northbound.opcua.security)")
        return v


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
