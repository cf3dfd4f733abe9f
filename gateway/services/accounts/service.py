"""The ``users`` service: the user store, the token signer and the login throttle of the API.

The daemon constructs it from the settings and starts it before the HTTP server listens; the
HTTP layer (:mod:`gateway.northbound.http.auth`) reaches it as ``ApiDeps.accounts``. Every
authenticated request re-reads its user here, so disabling a user, changing a role or logging
out takes effect at once.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher

from gateway.runtime.logs import get_logger
from gateway.services.accounts.throttle import LoginThrottle
from gateway.services.accounts.tokens import TokenSigner, load_signing_key
from gateway.services.accounts.users import USERS_FILE, UserStore
from gateway.settings import GatewaySettings, is_loopback

__all__ = ["SERVICE_NAME", "AccountsService", "reads_need_token"]

log = get_logger("gateway.services.accounts")

SERVICE_NAME = "users"


def reads_need_token(settings: GatewaySettings) -> bool:
    """As configured, or by default only when the API listens beyond loopback."""
    if settings.auth.require_token_for_reads is not None:
        return settings.auth.require_token_for_reads
    return not is_loopback(settings.http.host)


class AccountsService:
    """Accounts and tokens of the HTTP API (implements ``gateway.services.base.Service``).

    ``store`` and ``signer`` are None until :meth:`start` opened ``<state_dir>/users.sqlite``
    and the signing key; ``hasher`` defaults to argon2-cffi's recommended parameters (tests
    pass cheap ones), ``throttle`` to the limits of :mod:`.throttle`.
    """

    name = SERVICE_NAME

    def __init__(self, settings: GatewaySettings, hasher: PasswordHasher | None = None,
                 throttle: LoginThrottle | None = None):
        self.settings = settings
        self.hasher = hasher
        self.throttle = throttle if throttle is not None else LoginThrottle()
        self.protect_reads = reads_need_token(settings)
        self.store: UserStore | None = None
        self.signer: TokenSigner | None = None

    @classmethod
    async def open(cls, settings: GatewaySettings, hasher: PasswordHasher | None = None,
                   throttle: LoginThrottle | None = None) -> AccountsService:
        """A started service for these settings (for tests and tools without a daemon)."""
        service = cls(settings, hasher=hasher, throttle=throttle)
        await service.start()
        return service

    async def start(self) -> None:
        """Open the signing key (generated on first use) and the user store."""
        settings = self.settings
        key = await asyncio.to_thread(load_signing_key, settings.auth, settings.state_dir)
        self.signer = TokenSigner(key, settings.auth.token_lifetime_s)
        self.store = UserStore(settings.state_dir / USERS_FILE, hasher=self.hasher)
        await self.store.open()
        if not await self.store.list():
            log.warning("no users yet: API writes are refused until an admin is created with "
                        "`refineryiq user add NAME --role admin`")

    async def stop(self) -> None:
        if self.store is not None:
            await self.store.close()

    @property
    def ready(self) -> bool:
        """True once started: tokens can be issued and verified."""
        return self.store is not None and self.signer is not None
