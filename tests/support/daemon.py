"""Run the gateway daemon as a subprocess for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def post_json(url: str, body: dict, headers: dict | None = None) -> tuple[int, object]:
    """POST ``body`` as JSON; the status and the JSON answer, also for an HTTP error status."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DaemonProcess:
    """`refineryiq run ...` in a subprocess with its own state dir and HTTP port."""

    def __init__(self, state_dir: Path, *args: str, env: dict[str, str] | None = None):
        self.state_dir = state_dir
        self.http_port = free_port()
        self.args = args or ("run", "--simulate")
        self.env = {
            **os.environ,
            "REFINERYIQ_STATE_DIR": str(state_dir),
            "REFINERYIQ_HTTP__PORT": str(self.http_port),
            "REFINERYIQ_SIMULATOR__OPCUA_PORT": "0",
            "REFINERYIQ_SIMULATOR__MODBUS_PORT": "0",
            "REFINERYIQ_OPCUA_SERVER__PORT": "0",
            # Background training at first start would load the machine for minutes.
            "REFINERYIQ_MAINTENANCE__TRAIN_ON_FIRST_START": "false",
            "REFINERYIQ_LOGGING__FORMAT": "json",
            **(env or {}),
        }
        self.log_path = state_dir / "daemon.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> DaemonProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "refineryiq.cli", *self.args], cwd=ROOT,
                                     env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def get(self, path: str, timeout: float = 5) -> tuple[int, object]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def wait_for(self, predicate, timeout: float = 60.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.log()}")
            try:
                last = predicate()
                if last:
                    return last
            except (OSError, ValueError):
                pass
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}; last={last!r}\n{self.log()[-4000:]}")

    def wait_healthy(self, timeout: float = 60.0) -> dict:
        def healthy():
            status, body = self.get("/health")
            return body if body.get("status") == "healthy" else None
        return self.wait_for(healthy, timeout, "healthy /health")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._cleanup()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._cleanup()

    def _cleanup(self) -> None:
        if self.proc is not None:
            # the daemon's group; its simulator child (own session) dies with it (PDEATHSIG)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not self._log.closed:
            self._log.close()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def state_with_users(state_dir: Path, password: str, users: dict[str, object]) -> Path:
    """Create ``state_dir`` holding API users ({name: Role}) before a daemon starts on it."""
    import asyncio

    from gateway.services.accounts.users import USERS_FILE, UserStore

    state_dir.mkdir(parents=True, exist_ok=True)

    async def add() -> None:
        async with UserStore(state_dir / USERS_FILE) as store:
            for name, role in users.items():
                await store.add(name, password, role)

    asyncio.run(add())
    return state_dir
