"""The HTTP API's authentication on a real server: login, roles, tokens, throttling, CORS."""

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from gateway.northbound.http.app import create_app
from gateway.northbound.http.auth import current_user, require_role
from gateway.northbound.http.deps import ApiDeps
from gateway.services.accounts.service import AccountsService
from gateway.services.accounts.throttle import USER_BURST, LoginThrottle, TokenBuckets
from gateway.services.accounts.tokens import TokenSigner, load_signing_key
from gateway.services.accounts.users import Role
from gateway.settings import AuthSettings, GatewaySettings
from plant.catalog import Catalog
from plant.load import load_plant

PLANT = load_plant(Path(__file__).parents[2] / "config" / "plant.toml")
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse battery"
DASHBOARD = "http://localhost:3000"


# Stand-ins for the write routes other domains declare the same way.
@require_role(Role.OPERATOR)
async def acknowledge(request: web.Request) -> web.Response:
    return web.json_response({"acknowledged_by": current_user(request).name})


@require_role(Role.SUPERVISOR)
async def put_inventory(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def undecorated_write(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def kpis(request: web.Request) -> web.Response:
    return web.json_response({"oee": 85.0})


async def start(tmp_path: Path, cors_origins=(), reads_need_token: bool | None = None,
                throttle: LoginThrottle | None = None) -> tuple[TestClient, AccountsService]:
    settings = GatewaySettings(state_dir=tmp_path, http={"cors_origins": list(cors_origins)},
                               auth={"require_token_for_reads": reads_need_token})
    accounts = await AccountsService.open(settings, hasher=FAST, throttle=throttle)
    deps = ApiDeps(settings=settings, catalog=Catalog.build(PLANT), pipeline=None, store=None,
                   started_at=0.0, accounts=accounts)
    app = create_app(deps)
    app.router.add_post("/api/test/alerts/{id}/acknowledge", acknowledge)
    app.router.add_put("/api/test/inventory/{sku}", put_inventory)
    app.router.add_post("/api/undecorated", undecorated_write)
    app.router.add_get("/api/test/kpis", kpis)
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    return client, accounts


@pytest.fixture
async def api(tmp_path):
    client, accounts = await start(tmp_path)
    for name, role in (("vera", Role.VIEWER), ("oscar", Role.OPERATOR), ("sofia", Role.SUPERVISOR),
                       ("ana", Role.ADMIN)):
        await accounts.store.add(name, PASSWORD, role, display_name=name.title())
    yield client, accounts
    await client.close()
    await accounts.stop()


async def login(client: TestClient, username: str, password: str = PASSWORD) -> dict:
    resp = await client.post("/api/auth/login", json={"username": username, "password": password})
    assert resp.status == 200, await resp.text()
    return await resp.json()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# ------------------------------------------------------------------------- login


async def test_login_answers_the_seed_shape_with_an_expiring_token(api):
    client, _ = api
    body = await login(client, "oscar")
    assert body["user"] == "Oscar" and body["role"] == "operator" and isinstance(body["id"], int)
    assert body["expires_in"] == 8 * 3600
    assert body["token"].count(".") == 2


async def test_seed_default_credentials_are_refused_on_a_fresh_store(tmp_path):
    client, accounts = await start(tmp_path)
    try:
        resp = await client.post("/api/auth/login", json={"username": "admin", "password": "admin123"})
        assert resp.status == 401
        assert "detail" in await resp.json()
    finally:
        await client.close()
        await accounts.stop()


async def test_seed_master_token_is_refused(api):
    client, _ = api
    resp = await client.post("/api/test/alerts/1/acknowledge", headers=bearer("master-token"))
    assert resp.status == 401


async def test_wrong_password_is_401_with_detail(api):
    client, _ = api
    resp = await client.post("/api/auth/login", json={"username": "oscar", "password": "wrong password"})
    assert resp.status == 401
    assert (await resp.json())["detail"] == "invalid username or password"


async def test_unknown_user_gets_the_same_answer_as_a_wrong_password(api):
    client, _ = api
    resp = await client.post("/api/auth/login", json={"username": "nobody", "password": "wrong password"})
    assert resp.status == 401
    assert (await resp.json())["detail"] == "invalid username or password"


async def test_login_without_password_is_400_naming_the_field(api):
    client, _ = api
    resp = await client.post("/api/auth/login", json={"username": "oscar"})
    assert resp.status == 400
    assert (await resp.json())["detail"].startswith("password:")


async def test_login_with_a_body_that_is_not_json_is_400(api):
    client, _ = api
    resp = await client.post("/api/auth/login", data=b"username=oscar")
    assert resp.status == 400


# ------------------------------------------------------------------------- roles


async def test_write_without_a_token_is_401(api):
    client, _ = api
    resp = await client.post("/api/test/alerts/1/acknowledge")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert "detail" in await resp.json()


async def test_write_without_a_declared_role_still_needs_a_token(api):
    client, _ = api
    assert (await client.post("/api/undecorated")).status == 401


async def test_write_with_too_low_a_role_is_403(api):
    client, _ = api
    token = (await login(client, "vera"))["token"]
    resp = await client.post("/api/test/alerts/1/acknowledge", headers=bearer(token))
    assert resp.status == 403
    assert "operator" in (await resp.json())["detail"]


async def test_operator_acknowledges_and_is_recorded_as_the_user(api):
    client, _ = api
    token = (await login(client, "oscar"))["token"]
    resp = await client.post("/api/test/alerts/1/acknowledge", headers=bearer(token))
    assert resp.status == 200
    assert (await resp.json())["acknowledged_by"] == "oscar"


async def test_inventory_write_needs_a_supervisor(api):
    client, _ = api
    operator = (await login(client, "oscar"))["token"]
    supervisor = (await login(client, "sofia"))["token"]
    assert (await client.put("/api/test/inventory/X", headers=bearer(operator))).status == 403
    assert (await client.put("/api/test/inventory/X", headers=bearer(supervisor))).status == 200


async def test_higher_role_includes_the_lower_ones(api):
    client, _ = api
    token = (await login(client, "ana"))["token"]
    assert (await client.post("/api/test/alerts/1/acknowledge", headers=bearer(token))).status == 200


async def test_expired_token_is_401(api, tmp_path):
    client, accounts = api
    user = await accounts.store.find("oscar")
    key = load_signing_key(AuthSettings(), tmp_path)  # the key the gateway generated
    past = TokenSigner(key, 3600, clock=lambda: 1_000_000_000.0)
    token, _ = past.issue(user)
    resp = await client.post("/api/test/alerts/1/acknowledge", headers=bearer(token))
    assert resp.status == 401
    assert "expired" in (await resp.json())["detail"]


async def test_tampered_token_is_401(api):
    client, _ = api
    token = (await login(client, "oscar"))["token"]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert (await client.post("/api/test/alerts/1/acknowledge", headers=bearer(tampered))).status == 401


async def test_token_of_a_disabled_user_is_401(api):
    client, accounts = api
    token = (await login(client, "oscar"))["token"]
    await accounts.store.disable((await accounts.store.find("oscar")).id)
    assert (await client.post("/api/test/alerts/1/acknowledge", headers=bearer(token))).status == 401


async def test_demotion_takes_effect_on_tokens_already_issued(api):
    client, accounts = api
    token = (await login(client, "sofia"))["token"]
    await accounts.store.set_role((await accounts.store.find("sofia")).id, Role.VIEWER)
    assert (await client.put("/api/test/inventory/X", headers=bearer(token))).status == 403


# ------------------------------------------------------------------------- logout, me


async def test_logout_revokes_the_token(api):
    client, _ = api
    token = (await login(client, "oscar"))["token"]
    assert (await client.post("/api/auth/logout", headers=bearer(token))).status == 204
    resp = await client.post("/api/test/alerts/1/acknowledge", headers=bearer(token))
    assert resp.status == 401
    assert "revoked" in (await resp.json())["detail"]


async def test_logout_leaves_other_sessions_of_the_user_valid(api):
    client, _ = api
    first = (await login(client, "oscar"))["token"]
    second = (await login(client, "oscar"))["token"]
    await client.post("/api/auth/logout", headers=bearer(first))
    assert (await client.post("/api/test/alerts/1/acknowledge", headers=bearer(second))).status == 200


async def test_me_names_the_caller(api):
    client, _ = api
    token = (await login(client, "oscar"))["token"]
    body = await (await client.get("/api/auth/me", headers=bearer(token))).json()
    assert (body["username"], body["role"]) == ("oscar", "operator")
    assert "password_hash" not in body


# ------------------------------------------------------------------------- reads


async def test_reads_are_open_on_loopback_by_default(api):
    client, _ = api
    assert (await client.get("/api/test/kpis")).status == 200


async def test_reads_need_a_viewer_token_when_configured(tmp_path):
    client, accounts = await start(tmp_path, reads_need_token=True)
    try:
        await accounts.store.add("vera", PASSWORD, Role.VIEWER)
        assert (await client.get("/api/test/kpis")).status == 401
        token = (await login(client, "vera"))["token"]
        assert (await client.get("/api/test/kpis", headers=bearer(token))).status == 200
        assert (await client.get("/health")).status in (200, 503, 500)  # not 401: outside /api
    finally:
        await client.close()
        await accounts.stop()


# ------------------------------------------------------------------------- users (admin)


async def test_user_administration_needs_an_admin(api):
    client, _ = api
    supervisor = (await login(client, "sofia"))["token"]
    assert (await client.get("/api/users", headers=bearer(supervisor))).status == 403
    assert (await client.get("/api/users")).status == 401


async def test_admin_creates_a_user_who_can_log_in(api):
    client, _ = api
    admin = (await login(client, "ana"))["token"]
    resp = await client.post("/api/users", headers=bearer(admin), json={
        "username": "luis", "password": "luis long password", "role": "operator"})
    assert resp.status == 201
    assert (await login(client, "luis", "luis long password"))["role"] == "operator"


async def test_creating_a_user_with_a_short_password_is_400(api):
    client, _ = api
    admin = (await login(client, "ana"))["token"]
    resp = await client.post("/api/users", headers=bearer(admin), json={
        "username": "luis", "password": "short", "role": "operator"})
    assert resp.status == 400


async def test_creating_a_user_with_an_unknown_role_is_400_naming_the_field(api):
    client, _ = api
    admin = (await login(client, "ana"))["token"]
    resp = await client.post("/api/users", headers=bearer(admin), json={
        "username": "luis", "password": "luis long password", "role": "root"})
    assert resp.status == 400
    assert (await resp.json())["detail"].startswith("role:")


async def test_creating_an_existing_user_is_409(api):
    client, _ = api
    admin = (await login(client, "ana"))["token"]
    resp = await client.post("/api/users", headers=bearer(admin), json={
        "username": "Oscar", "password": "luis long password", "role": "viewer"})
    assert resp.status == 409


async def test_admin_changes_role_and_disables(api):
    client, accounts = api
    admin = (await login(client, "ana"))["token"]
    oscar = await accounts.store.find("oscar")
    resp = await client.put(f"/api/users/{oscar.id}", headers=bearer(admin),
                            json={"role": "supervisor", "disabled": True})
    body = await resp.json()
    assert resp.status == 200 and body["role"] == "supervisor" and body["disabled"] is True


async def test_admin_cannot_remove_the_last_admin(api):
    client, accounts = api
    admin = (await login(client, "ana"))["token"]
    ana = await accounts.store.find("ana")
    assert (await client.delete(f"/api/users/{ana.id}", headers=bearer(admin))).status == 409


async def test_admin_deletes_a_user(api):
    client, accounts = api
    admin = (await login(client, "ana"))["token"]
    vera = await accounts.store.find("vera")
    assert (await client.delete(f"/api/users/{vera.id}", headers=bearer(admin))).status == 204
    assert (await client.delete(f"/api/users/{vera.id}", headers=bearer(admin))).status == 404


# ------------------------------------------------------------------------- throttling


class CountingStore:
    """Counts password checks (each one is an argon2 hash) made by the wrapped store."""

    def __init__(self, store):
        self._store = store
        self.checks = 0

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def verify(self, username, password):
        self.checks += 1
        return await self._store.verify(username, password)


async def test_a_thousand_bad_logins_are_rate_limited_in_bounded_state(tmp_path):
    throttle = LoginThrottle(TokenBuckets(20, 3.0, max_keys=64), TokenBuckets(USER_BURST, 12.0, max_keys=64))
    client, accounts = await start(tmp_path, throttle=throttle)
    counting = accounts.store = CountingStore(accounts.store)
    statuses = []
    try:
        for i in range(1000):
            resp = await client.post("/api/auth/login",
                                     json={"username": f"guess{i % 50}", "password": "wrong password"})
            statuses.append(resp.status)
            if resp.status == 429:
                assert int(resp.headers["Retry-After"]) >= 1
    finally:
        await client.close()
        await accounts.stop()
    assert statuses.count(401) <= 20
    assert statuses.count(429) >= 980
    assert counting.checks == statuses.count(401)  # refused attempts cost no hashing
    assert len(throttle.per_client) <= 64 and len(throttle.per_user) <= 64


async def test_one_account_is_rate_limited_after_its_burst(api):
    client, _ = api
    statuses = []
    for _ in range(USER_BURST + 1):
        resp = await client.post("/api/auth/login", json={"username": "oscar", "password": "wrong password"})
        statuses.append(resp.status)
    assert statuses == [401] * USER_BURST + [429]


# ------------------------------------------------------------------------- CORS


async def test_preflight_from_a_listed_dashboard_origin_is_answered(tmp_path):
    client, accounts = await start(tmp_path, cors_origins=[DASHBOARD])
    try:
        for method in ("POST", "PUT", "DELETE"):
            resp = await client.options("/api/test/alerts/1/acknowledge", headers={
                "Origin": DASHBOARD, "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization, content-type"})
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == DASHBOARD
            assert method in resp.headers["Access-Control-Allow-Methods"]
            assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
            assert "Content-Type" in resp.headers["Access-Control-Allow-Headers"]
            assert "Origin" in resp.headers["Vary"]
    finally:
        await client.close()
        await accounts.stop()


async def test_preflight_from_an_unlisted_origin_is_refused(tmp_path):
    client, accounts = await start(tmp_path, cors_origins=[DASHBOARD])
    try:
        resp = await client.options("/api/auth/login", headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
        assert resp.status == 403
        assert "Access-Control-Allow-Origin" not in resp.headers
    finally:
        await client.close()
        await accounts.stop()


async def test_no_origin_is_allowed_by_default(tmp_path):
    client, accounts = await start(tmp_path)
    try:
        resp = await client.options("/api/auth/login", headers={
            "Origin": DASHBOARD, "Access-Control-Request-Method": "POST"})
        assert resp.status == 403
        resp = await client.get("/api/test/kpis", headers={"Origin": DASHBOARD})
        assert "Access-Control-Allow-Origin" not in resp.headers
    finally:
        await client.close()
        await accounts.stop()


async def test_listed_origin_can_read_answers_and_errors_but_never_wildcard(tmp_path):
    client, accounts = await start(tmp_path, cors_origins=[DASHBOARD])
    try:
        ok = await client.get("/api/test/kpis", headers={"Origin": DASHBOARD})
        denied = await client.post("/api/test/alerts/1/acknowledge", headers={"Origin": DASHBOARD})
        for resp in (ok, denied):
            assert resp.headers["Access-Control-Allow-Origin"] == DASHBOARD
            assert "Access-Control-Allow-Credentials" not in resp.headers
        assert denied.status == 401
        other = await client.get("/api/test/kpis", headers={"Origin": "http://localhost:4000"})
        assert "Access-Control-Allow-Origin" not in other.headers
    finally:
        await client.close()
        await accounts.stop()


async def test_dashboard_logs_in_across_origins(tmp_path):
    client, accounts = await start(tmp_path, cors_origins=[DASHBOARD])
    try:
        await accounts.store.add("oscar", PASSWORD, Role.OPERATOR)
        resp = await client.post("/api/auth/login", headers={"Origin": DASHBOARD},
                                 json={"username": "oscar", "password": PASSWORD})
        assert resp.status == 200
        assert resp.headers["Access-Control-Allow-Origin"] == DASHBOARD
    finally:
        await client.close()
        await accounts.stop()
