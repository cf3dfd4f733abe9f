"""Who is calling the API, and may they: the bearer-token middleware, the role guard, the
login and user routes.

Login answers the seed's shape (``token``, ``user``, ``role``, ``id``) plus ``expires_in``;
unlike the seed there is no default account and no master token. Tokens, the user store and
the login throttle are the accounts service's (:mod:`gateway.services.accounts`), reached as
``ApiDeps.accounts``; without it (an app built for tests) nobody is authenticated.

Handlers declare what they need with ``@require_role(Role.OPERATOR)``; the middleware also
refuses any unauthenticated write under /api (a forgotten decorator fails closed) and, when
configured, unauthenticated reads.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.northbound.http.deps import deps_of
from gateway.northbound.http.errors import error
from gateway.runtime.logs import get_logger
from gateway.services.accounts.service import AccountsService
from gateway.services.accounts.tokens import TokenClaims, TokenError
from gateway.services.accounts.users import (
    MAX_PASSWORD_LENGTH,
    LastAdmin,
    Role,
    User,
    UserError,
    UserExists,
    UserNotFound,
)

__all__ = ["USER_KEY", "TOKEN_KEY", "current_user", "require_role", "public", "auth_middleware",
           "setup"]

log = get_logger("gateway.northbound.http.auth")

# Reads that never need a token, even when reads are protected.
PUBLIC_READ_PREFIXES = ("/api/auth/login", "/api/openapi.json", "/api/docs")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

USER_KEY: web.RequestKey[User | None] = web.RequestKey("user", User)
TOKEN_KEY: web.RequestKey[TokenClaims | None] = web.RequestKey("token", object)
AUTH_ERROR_KEY: web.RequestKey[str] = web.RequestKey("auth_error", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)


def accounts_of(request: web.Request) -> AccountsService | None:
    """The running accounts service, or None when this app was built without one."""
    return deps_of(request).accounts


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


async def _authenticate(request: web.Request, accounts: AccountsService) -> None:
    header = request.headers.get("Authorization")
    if not header:
        return
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        request[AUTH_ERROR_KEY] = "the Authorization header must be 'Bearer <token>'"
        return
    try:
        claims = accounts.signer.verify(token.strip())
    except TokenError as exc:
        request[AUTH_ERROR_KEY] = str(exc)
        return
    user = await accounts.store.active_user(claims.user_id, claims.jti)
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
    accounts = accounts_of(request)
    if accounts is not None and accounts.ready:
        await _authenticate(request, accounts)
    if request[USER_KEY] is None and request.path.startswith("/api/"):
        route_handler = request.match_info.handler
        if not getattr(route_handler, "public", False):
            if request.method not in SAFE_METHODS:
                return unauthorized(request)
            protect = accounts is not None and accounts.protect_reads
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


def _accounts(request: web.Request) -> AccountsService:
    accounts = accounts_of(request)
    if accounts is None or not accounts.ready:
        raise web.HTTPServiceUnavailable(reason="user accounts are not available")
    return accounts


@public
@_handles_user_errors
async def post_login(request: web.Request) -> web.Response:
    """POST /api/auth/login {username, password} -> {token, user, role, id, expires_in}."""
    accounts = _accounts(request)
    body = await parse_body(request, LoginRequest)
    client = request.remote or "unknown"
    wait = accounts.throttle.attempt(client, body.username)
    if wait > 0:
        log.debug("login rate-limited", client=client, username=body.username)
        response = error(429, f"too many login attempts; try again in {math.ceil(wait)} s")
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    user = await accounts.store.verify(body.username, body.password)
    if user is None:
        log.warning("login failed", client=client, username=body.username)
        return error(401, "invalid username or password")
    token, claims = accounts.signer.issue(user)
    log.info("login", client=client, username=user.name, role=user.role.label)
    return web.json_response({"token": token, "token_type": "bearer", "user": user.display_name,
                              "username": user.name, "role": user.role.label, "id": user.id,
                              "expires_in": claims.expires_at - claims.issued_at})


@require_role(Role.VIEWER)
async def post_logout(request: web.Request) -> web.Response:
    """POST /api/auth/logout: the token used for this request is refused from now on."""
    claims = request[TOKEN_KEY]
    await _accounts(request).store.revoke(claims.jti, claims.expires_at)
    log.info("logout", username=current_user(request).name)
    return web.Response(status=204)


@require_role(Role.VIEWER)
async def get_me(request: web.Request) -> web.Response:
    """GET /api/auth/me: the caller's user and when the token expires."""
    claims = request[TOKEN_KEY]
    return web.json_response({**current_user(request).public(), "expires_at": claims.expires_at})


@require_role(Role.ADMIN)
async def get_users(request: web.Request) -> web.Response:
    return web.json_response([u.public() for u in await _accounts(request).store.list()])


@require_role(Role.ADMIN)
@_handles_user_errors
async def post_user(request: web.Request) -> web.Response:
    body = await parse_body(request, NewUser)
    user = await _accounts(request).store.add(body.username, body.password, body.role, body.display_name)
    log.info("user added", username=user.name, role=user.role.label, by=current_user(request).name)
    return web.json_response(user.public(), status=201)


@require_role(Role.ADMIN)
@_handles_user_errors
async def put_user(request: web.Request) -> web.Response:
    user_id = _user_id(request)
    body = await parse_body(request, UserChange)
    user = await _accounts(request).store.update(user_id, role=body.role, disabled=body.disabled,
                                                 display_name=body.display_name)
    log.info("user changed", username=user.name, role=user.role.label, disabled=user.disabled,
             by=current_user(request).name)
    return web.json_response(user.public())


@require_role(Role.ADMIN)
@_handles_user_errors
async def delete_user(request: web.Request) -> web.Response:
    user_id = _user_id(request)
    await _accounts(request).store.delete(user_id)
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
