"""Bearer tokens of the HTTP API: HS256 JWTs that expire, and the key that signs them.

A token carries ``sub`` (the user id), ``name``, ``role``, ``iat``, ``exp`` and a random
``jti`` (what logout revokes). The key is the configured one, or a random one generated once
into ``<state_dir>/secrets/jwt.key`` (mode 0600), so tokens survive a restart.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jwt

from gateway.runtime.logs import get_logger
from gateway.services.accounts.users import Role, User
from gateway.settings import AuthSettings

__all__ = ["ALGORITHM", "ISSUER", "KEY_FILE", "MIN_KEY_BYTES", "TokenError", "TokenClaims",
           "TokenSigner", "load_signing_key"]

log = get_logger("gateway.services.accounts.tokens")

ALGORITHM = "HS256"
ISSUER = "refineryiq-edge"
KEY_FILE = Path("secrets") / "jwt.key"
MIN_KEY_BYTES = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash output


class TokenError(Exception):
    """A token that must be refused; the message says why (shown in the 401 body)."""


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says."""

    user_id: int
    role: Role
    jti: str
    issued_at: int
    expires_at: int


class TokenSigner:
    """Issues and verifies HS256 tokens that live ``lifetime_s`` seconds."""

    def __init__(self, key: bytes, lifetime_s: int, clock: Callable[[], float] = time.time):
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the token signing key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key
        self.lifetime_s = lifetime_s
        self._clock = clock

    def issue(self, user: User) -> tuple[str, TokenClaims]:
        """A new token for ``user`` and its claims."""
        now = int(self._clock())
        claims = TokenClaims(user_id=user.id, role=user.role, jti=secrets.token_urlsafe(16),
                             issued_at=now, expires_at=now + self.lifetime_s)
        payload = {"iss": ISSUER, "sub": str(user.id), "name": user.name, "role": user.role.label,
                   "iat": claims.issued_at, "exp": claims.expires_at, "jti": claims.jti}
        return jwt.encode(payload, self._key, algorithm=ALGORITHM), claims

    def verify(self, token: str) -> TokenClaims:
        """The claims of a token this signer issued and that has not expired; TokenError else."""
        try:
            # Expiry is checked below against our own clock, so that tests can move it.
            payload = jwt.decode(token, self._key, algorithms=[ALGORITHM], issuer=ISSUER,
                                 options={"require": ["iss", "sub", "role", "iat", "exp", "jti"],
                                          "verify_exp": False, "verify_iat": False})
            claims = TokenClaims(user_id=int(payload["sub"]), role=Role.parse(payload["role"]),
                                 jti=str(payload["jti"]), issued_at=int(payload["iat"]),
                                 expires_at=int(payload["exp"]))
        except (jwt.InvalidTokenError, ValueError, TypeError):
            raise TokenError("invalid token") from None
        if claims.expires_at <= self._clock():
            raise TokenError("token expired; log in again")
        return claims


def load_signing_key(settings: AuthSettings, state_dir: Path) -> bytes:
    """The configured key, else ``<state_dir>/secrets/jwt.key``, created (mode 0600) on first
    use. Blocking file I/O: call it from a thread."""
    if settings.signing_key is not None:
        return settings.signing_key.get_secret_value().encode()
    path = state_dir / KEY_FILE
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes().strip()
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"{path}: the token signing key is shorter than {MIN_KEY_BYTES} bytes") from None
        if path.stat().st_mode & 0o077:
            log.warning("token signing key is readable by other users; chmod 600 it", path=str(path))
        return key
    key = secrets.token_bytes(32).hex().encode()
    with os.fdopen(fd, "wb") as f:
        f.write(key)
        f.flush()
        os.fsync(f.fileno())
    log.info("generated a new token signing key", path=str(path))
    return key
