"""Who is calling the API, and may they: signed expiring tokens, roles, login throttling.

Login answers the seed's shape (``token``, ``user``, ``role``, ``id``) plus ``expires_in``;
unlike the seed there is no default account and no master token. Tokens are HS256 JWTs
(``sub``, ``role``, ``iat``, ``exp``, ``jti``) signed with a key from the state directory or
the configuration. Every authenticated request re-reads the user, so disabling a user, changing
a role or logging out takes effect at once.

Handlers declare what they need with ``@require_role(Role.OPERATOR)``; the middleware also
refuses any unauthenticated write under /api (a forgotten decorator fails closed) and, when
configured, unauthenticated reads.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import jwt
from aiohttp import web
from argon2 import PasswordHasher
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.northbound.http.deps import ctx_of
from gateway.northbound.http.errors import error
from gateway.runtime.logs import get_logger
from gateway.services.users import (
    MAX_PASSWORD_LENGTH,
    USERS_FILE,
    LastAdmin,
    Role,
    User,
    UserError,
    UserExists,
    UserNotFound,
    UserStore,
)
from gateway.settings import AuthSettings, GatewaySettings, is_loopback

if TYPE_CHECKING:
    from gateway.daemon import Gateway

__all__ = ["Role", "User", "AuthService", "TokenSigner", "TokenClaims", "TokenError", "TokenBuckets",
           "LoginThrottle", "USER_KEY", "TOKEN_KEY", "current_user", "require_role", "public",
           "auth_middleware", "setup"]

log = get_logger("gateway.northbound.http.auth")

SERVICE_NAME = "users"
ALGORITHM = "HS256"
ISSUER = "refineryiq-edge"
KEY_FILE = Path("secrets") / "jwt.key"
# Login throttling: each client address may try 20 times in a burst, then once every 3 s;
# each username 5 times, then once every 12 s. At most this many buckets are remembered.
IP_BURST, IP_REFILL_S = 20, 3.0
USER_BURST, USER_REFILL_S = 5, 12.0
MAX_BUCKETS = 4096
# Reads that never need a token, even when reads are protected.
PUBLIC_READ_PREFIXES = ("/api/auth/login", "/api/openapi.json", "/api/docs")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

USER_KEY: web.RequestKey[User | None] = web.RequestKey("user", User)
TOKEN_KEY: web.RequestKey[TokenClaims | None] = web.RequestKey("token", object)
AUTH_ERROR_KEY: web.RequestKey[str] = web.RequestKey("auth_error", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)


# --------------------------------------------------------------------------- tokens


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
        if len(key) < 32:
            raise ValueError("the token signing key must be at least 32 bytes")
        self._key = key
        self.lifetime_s = lifetime_s
        self._clock = clock

    def issue(self, user: User) -> tuple[str, TokenClaims]:
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
        if len(key) < 32:
            raise ValueError(f"{path}: the token signing key is shorter than 32 bytes") from None
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


# --------------------------------------------------------------------------- login throttling


class TokenBuckets:
    """One token bucket per key (``burst`` attempts, one more every ``refill_s``), for at most
    ``max_keys`` keys: the least recently used are forgotten, so a flood of distinct client
    addresses or usernames costs bounded memory."""

    def __init__(self, burst: int, refill_s: float, max_keys: int = MAX_BUCKETS,
                 clock: Callable[[], float] = time.monotonic):
        self.burst = burst
        self.refill_s = refill_s
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key: (level, at)

    def __len__(self) -> int:
        return len(self._buckets)

    def _level(self, key: str, now: float) -> float:
        level, at = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), level + (now - at) / self.refill_s)

    def wait_s(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        level = self._level(key, self._clock())
        return 0.0 if level >= 1.0 else (1.0 - level) * self.refill_s

    def take(self, key: str) -> None:
        """Spend one attempt of ``key``."""
        now = self._clock()
        self._buckets[key] = (self._level(key, now) - 1.0, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)


class LoginThrottle:
    """Login attempts limited per client address and per username (guessing one account from
    many addresses, or many accounts from one address, are both slowed down)."""

    def __init__(self, per_client: TokenBuckets | None = None, per_user: TokenBuckets | None = None):
        # `is None`, not `or`: an empty TokenBuckets is falsy (it has a length).
        self.per_client = per_client if per_client is not None else TokenBuckets(IP_BURST, IP_REFILL_S)
        self.per_user = per_user if per_user is not None else TokenBuckets(USER_BURST, USER_REFILL_S)

    def attempt(self, client: str, username: str) -> float:
        """0 and the attempt is counted, or the seconds to wait (and nothing is counted)."""
        user_key = username.casefold()
        wait = max(self.per_client.wait_s(client), self.per_user.wait_s(user_key))
        if wait == 0:
            self.per_client.take(client)
            self.per_user.take(user_key)
        return wait

    def __len__(self) -> int:
        return len(self.per_client) + len(self.per_user)


# --------------------------------------------------------------------------- the service


def reads_need_token(settings: GatewaySettings) -> bool:
    """As configured, or by default only when the API listens beyond loopback."""
    if settings.auth.require_token_for_reads is not None:
        return settings.auth.require_token_for_reads
    return not is_loopback(settings.http.host)


class AuthService:
    """The "users" service: the user store, the token signer and the login throttle, reached
    by routes through ``ctx.extras["users"]``."""

    name = SERVICE_NAME

    def __init__(self, store: UserStore | None = None, signer: TokenSigner | None = None,
                 throttle: LoginThrottle | None = None, protect_reads: bool = False):
        self.store = store
        self.signer = signer
        self.throttle = throttle if throttle is not None else LoginThrottle()
        self.protect_reads = protect_reads

    @classmethod
    async def open(cls, settings: GatewaySettings, hasher: PasswordHasher | None = None,
                   throttle: LoginThrottle | None = None) -> AuthService:
        """Open ``<state_dir>/users.sqlite`` and the signing key for these settings."""
        service = cls(throttle=throttle)
        await service._open(settings, hasher)
        return service

    async def _open(self, settings: GatewaySettings, hasher: PasswordHasher | None = None) -> None:
        key = await asyncio.to_thread(load_signing_key, settings.auth, settings.state_dir)
        self.signer = TokenSigner(key, settings.auth.token_lifetime_s)
        self.store = UserStore(settings.state_dir / USERS_FILE, hasher=hasher)
        await self.store.open()
        self.protect_reads = reads_need_token(settings)
        if not await self.store.list():
            log.warning("no users yet: API writes are refused until an admin is created with "
                        "`refineryiq user add NAME --role admin`")

    async def start(self, gateway: Gateway) -> None:
        await self._open(gateway.settings)

    async def stop(self) -> None:
        if self.store is not None:
            await self.store.close()


def auth_service(request: web.Request) -> AuthService | None:
    return ctx_of(request).extras.get(SERVICE_NAME)


# --------------------------------------------------------------------------- middleware, guards


def current_user(request: web.Request) -> User | None:
    """The authenticated user of this request, or None (e.g. to record who acknowledged)."""
    return request.get(USER_KEY)


def unauthorized(request: web.Request) -> web.Response:
    response = error(401, request.get(AUTH_ERROR_KEY) or "authentication required: log in and "
                     "send 'Authorization: Bearer <token>'")
    response.headers["WWW-Authenticate"] = 'Bearer realm="refineryiq"'
    return response


def require_role(role: Role) -> Callable[[H], H]:
    """Decorate a handler: 401 without a valid token, 403 when the user's role is below ``role``."""
    def decorate(handler: H) -> H:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            user = current_user(request)
            if user is None:
                return unauthorized(request)
            if user.role < role:
                return error(403, f"this needs the {role.label} role or higher (you are {user.role.label})")
            return await handler(request)
        guarded.required_role = role  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]
    return decorate


def public(handler: H) -> H:
    """Mark a handler as open to anyone (login), even for writes and protected reads."""
    handler.public = True  # type: ignore[attr-defined]
    return handler


async def _authenticate(request: web.Request, service: AuthService) -> None:
    header = request.headers.get("Authorization")
    if not header:
        return
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        request[AUTH_ERROR_KEY] = "the Authorization header must be 'Bearer <token>'"
        return
    try:
        claims = service.signer.verify(token.strip())
    except TokenError as exc:
        request[AUTH_ERROR_KEY] = str(exc)
        return
    user = await service.store.active_user(claims.user_id, claims.jti)
    if user is None:
        request[AUTH_ERROR_KEY] = "token revoked or user disabled; log in again"
        return
    request[USER_KEY] = user
    request[TOKEN_KEY] = claims


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Set the request's user from its bearer token; refuse unauthenticated writes under /api
    and, when reads are protected, unauthenticated reads under /api."""
    request[USER_KEY] = None
    request[TOKEN_KEY] = None
    service = auth_service(request)
    if service is not None and service.store is not None:
        await _authenticate(request, service)
    if request[USER_KEY] is None and request.path.startswith("/api/"):
        route_handler = request.match_info.handler
        if not getattr(route_handler, "public", False):
            if request.method not in SAFE_METHODS:
                return unauthorized(request)
            protect = service is not None and service.protect_reads
            if protect and request.method != "OPTIONS" and not request.path.startswith(PUBLIC_READ_PREFIXES):
                return unauthorized(request)
    return await handler(request)


# --------------------------------------------------------------------------- request bodies


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(BaseModel):
    # Extra fields are ignored: the seed's frontend may send more than these two.
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class RoleField(Body):
    @field_validator("role", mode="before", check_fields=False)
    @classmethod
    def _role(cls, v):
        return Role.parse(v) if isinstance(v, str) else v


class NewUser(RoleField):
    username: str
    password: str
    role: Role
    display_name: str | None = Field(default=None, min_length=1, max_length=128)


class UserChange(RoleField):
    role: Role | None = None
    disabled: bool | None = None
    display_name: str | None = Field(default=None, min_length=1, max_length=128)


M = TypeVar("M", bound=BaseModel)


class BadRequest(Exception):
    pass


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The JSON body as ``model``; BadRequest naming the first offending field."""
    data = await request.json()  # invalid JSON: 400 from error_middleware
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise BadRequest(f"{field}: {err['msg'].removeprefix('Value error, ')}") from None


def _user_error(exc: UserError) -> web.Response:
    status = 404 if isinstance(exc, UserNotFound) else 409 if isinstance(exc, UserExists | LastAdmin) else 400
    return error(status, str(exc))


def _handles_user_errors(handler: H) -> H:
    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except BadRequest as exc:
            return error(400, str(exc))
        except UserError as exc:
            return _user_error(exc)
    return wrapped  # type: ignore[return-value]


def _user_id(request: web.Request) -> int:
    try:
        return int(request.match_info["user_id"])
    except ValueError:
        raise UserNotFound(f"no user with id {request.match_info['user_id']}") from None


# --------------------------------------------------------------------------- routes


def _service(request: web.Request) -> AuthService:
    service = auth_service(request)
    if service is None or service.store is None:
        raise web.HTTPServiceUnavailable(reason="user accounts are not available")
    return service


@public
@_handles_user_errors
async def post_login(request: web.Request) -> web.Response:
    """POST /api/auth/login {username, password} -> {token, user, role, id, expires_in}."""
    service = _service(request)
    body = await parse_body(request, LoginRequest)
    client = request.remote or "unknown"
    wait = service.throttle.attempt(client, body.username)
    if wait > 0:
        log.debug("login rate-limited", client=client, username=body.username)
        response = error(429, f"too many login attempts; try again in {math.ceil(wait)} s")
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    user = await service.store.verify(body.username, body.password)
    if user is None:
        log.warning("login failed", client=client, username=body.username)
        return error(401, "invalid username or password")
    token, claims = service.signer.issue(user)
    log.info("login", client=client, username=user.name, role=user.role.label)
    return web.json_response({"token": token, "token_type": "bearer", "user": user.display_name,
                              "username": user.name, "role": user.role.label, "id": user.id,
                              "expires_in": claims.expires_at - claims.issued_at})


@require_role(Role.VIEWER)
async def post_logout(request: web.Request) -> web.Response:
    """POST /api/auth/logout: the token used for this request is refused from now on."""
    claims = request[TOKEN_KEY]
    await _service(request).store.revoke(claims.jti, claims.expires_at)
    log.info("logout", username=current_user(request).name)
    return web.Response(status=204)


@require_role(Role.VIEWER)
async def get_me(request: web.Request) -> web.Response:
    """GET /api/auth/me: the caller's user and when the token expires."""
    claims = request[TOKEN_KEY]
    return web.json_response({**current_user(request).public(), "expires_at": claims.expires_at})


@require_role(Role.ADMIN)
async def get_users(request: web.Request) -> web.Response:
    return web.json_response([u.public() for u in await _service(request).store.list()])


@require_role(Role.ADMIN)
@_handles_user_errors
async def post_user(request: web.Request) -> web.Response:
    body = await parse_body(request, NewUser)
    user = await _service(request).store.add(body.username, body.password, body.role, body.display_name)
    log.info("user added", username=user.name, role=user.role.label, by=current_user(request).name)
    return web.json_response(user.public(), status=201)


@require_role(Role.ADMIN)
@_handles_user_errors
async def put_user(request: web.Request) -> web.Response:
    user_id = _user_id(request)
    body = await parse_body(request, UserChange)
    user = await _service(request).store.update(user_id, role=body.role, disabled=body.disabled,
                                                display_name=body.display_name)
    log.info("user changed", username=user.name, role=user.role.label, disabled=user.disabled,
             by=current_user(request).name)
    return web.json_response(user.public())


@require_role(Role.ADMIN)
@_handles_user_errors
async def delete_user(request: web.Request) -> web.Response:
    user_id = _user_id(request)
    await _service(request).store.delete(user_id)
    log.info("user deleted", user_id=user_id, by=current_user(request).name)
    return web.Response(status=204)


async def _warn_unguarded_writes(app: web.Application) -> None:
    """Every write under /api should declare its role; the middleware still requires a token."""
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if (route.method not in SAFE_METHODS and route.method != "*" and path.startswith("/api/")
                and not hasattr(route.handler, "required_role") and not getattr(route.handler, "public", False)):
            log.warning("write route without @require_role (any logged-in user may call it)",
                        method=route.method, path=path)


def setup(app: web.Application) -> None:
    app.router.add_post("/api/auth/login", post_login)
    app.router.add_post("/api/auth/logout", post_logout)
    app.router.add_get("/api/auth/me", get_me)
    app.router.add_get("/api/users", get_users)
    app.router.add_post("/api/users", post_user)
    app.router.add_put("/api/users/{user_id}", put_user)
    app.router.add_delete("/api/users/{user_id}", delete_user)
    app.on_startup.append(_warn_unguarded_writes)
