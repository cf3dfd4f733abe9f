"""Security of the northbound OPC-UA server: its certificate and its client accounts.

- ``None``: no encryption and anonymous clients; the settings allow it only on loopback.
- ``Basic256Sha256``: SignAndEncrypt only, with the gateway's own self-signed certificate,
  generated on first use into ``<state_dir>/pki/server/`` (key readable by the owner only);
  clients log in with a username and password from ``opcua_server.users``, whose passwords
  are stored as argon2 hashes. Print a hash with ``python -m gateway.northbound.opcua.security``.
  Each account's ``role`` (default viewer) decides which writable tags it may write
  (see :mod:`gateway.northbound.opcua.writes`); anonymous sessions of ``None`` never write.

asyncua asks the user manager synchronously, so an argon2 check runs on the OPC-UA
server's own thread (see gateway/northbound/opcua/service.py), never on the ingestion loop; argon2-cffi
releases the GIL while it hashes. Checks are throttled (``MAX_CHECKS_PER_S``) so a client
guessing passwords cannot keep that thread busy.
"""

from __future__ import annotations

import getpass
import os
import socket
import sys
import time
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.settings import OpcUaServerUser

PKI_DIR = Path("pki") / "server"
KEY_FILE = "gateway-key.pem"
CERT_FILE = "gateway-cert.der"
APPLICATION_URI = "urn:refineryiq:gateway"
MAX_CHECKS_PER_S = 4.0


class AnonymousReader(UserManager):
    """Security None on loopback: every session is an ordinary (non-admin) user."""

    def get_user(self, iserver, username=None, password=None, certificate=None) -> User | None:
        return User(role=UserRole.User, name=username or "anonymous")


class HashedUsers(UserManager):
    """Username/password accounts checked against argon2 hashes, with a check-rate limit."""

    def __init__(self, users: list[OpcUaServerUser], hasher: PasswordHasher | None = None,
                 clock=time.monotonic):
        self._hashes = {u.username: u.password_hash.get_secret_value() for u in users}
        self._hasher = hasher or PasswordHasher()
        self._clock = clock
        self._budget = MAX_CHECKS_PER_S
        self._refilled = clock()
        self.rejected = 0

    def get_user(self, iserver, username=None, password=None, certificate=None) -> User | None:
        if not username or password is None or not self._take():
            self.rejected += 1
            return None
        password_hash = self._hashes.get(username)
        if password_hash is None:
            self.rejected += 1
            return None
        try:
            self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            self.rejected += 1
            return None
        return User(role=UserRole.User, name=username)

    def _take(self) -> bool:
        now = self._clock()
        self._budget = min(MAX_CHECKS_PER_S, self._budget + (now - self._refilled) * MAX_CHECKS_PER_S)
        self._refilled = now
        if self._budget < 1.0:
            return False
        self._budget -= 1.0
        return True


async def ensure_certificate(state_dir: Path) -> tuple[Path, Path]:
    """The server's (key, certificate), generated into ``<state_dir>/pki/server/`` if missing."""
    from asyncua.crypto.cert_gen import setup_self_signed_certificate

    pki = state_dir / PKI_DIR
    pki.mkdir(parents=True, exist_ok=True)
    os.chmod(pki, 0o700)
    key, cert = pki / KEY_FILE, pki / CERT_FILE
    await setup_self_signed_certificate(
        key, cert, APPLICATION_URI, socket.gethostname(), [ExtendedKeyUsageOID.SERVER_AUTH],
        {"countryName": "VE", "organizationName": "RefineryIQ",
         "commonName": "refineryiq-gateway"})
    os.chmod(key, 0o600)
    return key, cert


def main() -> int:
    """Print the argon2 hash of a password read from the terminal (for opcua_server.users)."""
    password = getpass.getpass("OPC-UA password: ") if sys.stdin.isatty() else sys.stdin.readline()
    password = password.rstrip("\n")
    if len(password) < 10:
        print("password must have at least 10 characters", file=sys.stderr)
        return 2
    print(PasswordHasher().hash(password))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
