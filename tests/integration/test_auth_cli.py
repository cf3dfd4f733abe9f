"""`refineryiq user ...` as a subprocess on a temporary state directory, then a real login."""

import os
import subprocess
import sys
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from gateway.northbound.http.app import create_app
from gateway.northbound.http.deps import ApiDeps
from gateway.services.accounts.service import AccountsService
from gateway.settings import GatewaySettings
from plant.catalog import Catalog
from plant.load import load_plant

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


def refineryiq_user(state_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "REFINERYIQ_STATE_DIR": str(state_dir)}
    return subprocess.run([sys.executable, "-m", "refineryiq.cli", "user", *args], cwd=ROOT, env=env,
                          input=stdin, capture_output=True, text=True, timeout=60)


async def test_user_added_from_the_command_line_can_log_in(tmp_path):
    done = refineryiq_user(tmp_path, "add", "ana", "--role", "admin", "--display-name", "Ana Pérez",
                           stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    settings = GatewaySettings(state_dir=tmp_path)
    accounts = await AccountsService.open(settings)
    deps = ApiDeps(settings=settings, catalog=Catalog.build(load_plant(ROOT / "config/plant.toml")),
                   pipeline=None, store=None, started_at=0.0, accounts=accounts)
    client = TestClient(TestServer(create_app(deps), host="127.0.0.1", port=0))
    await client.start_server()
    try:
        resp = await client.post("/api/auth/login", json={"username": "ana", "password": PASSWORD})
        body = await resp.json()
        assert resp.status == 200
        assert (body["user"], body["role"]) == ("Ana Pérez", "admin")
        assert (await accounts.store.stored_hash(body["id"])).startswith("$argon2id$")
    finally:
        await client.close()
        await accounts.stop()


def test_password_is_not_accepted_as_an_argument(tmp_path):
    done = refineryiq_user(tmp_path, "add", "ana", "--role", "admin", "--password", PASSWORD)
    assert done.returncode != 0
    assert not (tmp_path / "users.sqlite").exists()


def test_short_password_on_stdin_is_refused_and_no_user_is_created(tmp_path):
    done = refineryiq_user(tmp_path, "add", "ana", "--role", "admin", stdin="short\n")
    assert done.returncode == 1
    assert "at least 10 characters" in done.stderr
    listed = refineryiq_user(tmp_path, "list")
    assert "no users" in listed.stdout


def test_list_shows_users_and_roles_but_no_hashes(tmp_path):
    refineryiq_user(tmp_path, "add", "oscar", "--role", "operator", stdin=PASSWORD + "\n")
    listed = refineryiq_user(tmp_path, "list")
    assert listed.returncode == 0
    assert "oscar" in listed.stdout and "operator" in listed.stdout
    assert "argon2" not in listed.stdout
