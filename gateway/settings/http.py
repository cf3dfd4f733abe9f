"""The `[http]` and `[auth]` sections: where the HTTP API listens and how its users log in."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from plant.schema import Strict


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
