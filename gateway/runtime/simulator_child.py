"""`run --simulate`: start the bundled simulator as a child process and point devices at it.

The gateway never imports the simulator; it runs it as a separate process on loopback, so the
gateway always speaks real OPC-UA and Modbus TCP.

The child lives and dies with the gateway:

- It runs in a session of its own, so a Ctrl-C in the terminal (which signals the whole
  foreground process group) reaches only the gateway, which stops its drivers first and the
  simulator last: a clean shutdown logs no connection errors.
- On Linux it is started with a parent-death signal (``PR_SET_PDEATHSIG``): when the gateway
  dies hard (``kill -9``, the OOM killer, a crash) the kernel sends the child SIGTERM, so it
  never keeps the simulator's ports and blocks the next start.
- Its standard-library logging (asyncua, pymodbus) is written as JSON lines on stderr and
  relayed through the gateway's own structured log with the child's level, marked
  ``source=simulator``. The simulator's protocol libraries speak at error level only: their
  notices about the loopback ``None`` security policy are the documented default.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys

from gateway.runtime.logs import get_logger
from gateway.settings import GatewaySettings

log = get_logger("gateway.runtime.simulator_child")

READY_TIMEOUT_S = 60.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

# Runs in the child before the simulator's own main: JSON log lines on stderr, library chatter
# at error level, then `python -m simulator ARGS`.
BOOTSTRAP = """
import json, logging, runpy, sys
class _Json(logging.Formatter):
    def format(self, record):
        out = {"event": record.getMessage(), "level": record.levelname.lower(), "logger": record.name}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out)
handler = logging.StreamHandler(sys.stderr)
handler.setFormatter(_Json())
logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
for name in ("asyncua", "pymodbus"):
    logging.getLogger(name).setLevel(logging.ERROR)
sys.argv = ["simulator", *sys.argv[1:]]
runpy.run_module("simulator", run_name="__main__", alter_sys=True)
"""


def _die_with_parent(parent_pid: int) -> None:
    """In the forked child, before exec: SIGTERM when the gateway dies (Linux)."""
    os.setsid()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)


class SimulatorProcess:
    """The simulator child: started with the configured seed, speed and ports."""

    def __init__(self, settings: GatewaySettings, scenario: str | None = None):
        self.settings = settings
        self.scenario = scenario
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: dict = {}
        self._relays: list[asyncio.Task] = []

    async def start(self) -> dict:
        sim = self.settings.simulator
        args = [sys.executable, "-c", BOOTSTRAP, "--seed", str(sim.seed), "--speed", str(sim.speed),
                "--tags", str(sim.synthetic_tags), "--opcua-port", str(sim.opcua_port),
                "--modbus-port", str(sim.modbus_port), "--control-port", "0",
                "--plant", str(self.settings.plant_file), "--host", "127.0.0.1"]
        if self.scenario is not None:
            args += ["--scenario", self.scenario]
        parent = os.getpid()
        self.proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL, preexec_fn=lambda: _die_with_parent(parent))
        self._relays.append(asyncio.get_running_loop().create_task(self._relay_stderr()))
        try:
            self.ready = await asyncio.wait_for(self._wait_ready(), READY_TIMEOUT_S)
        except (TimeoutError, RuntimeError):
            await self.stop()
            raise RuntimeError("the simulator did not start; see its messages above") from None
        self._relays.append(asyncio.get_running_loop().create_task(self._drain_stdout()))
        log.info("simulator started", pid=self.proc.pid,
                 **{k: v for k, v in self.ready.items() if k != "event"})
        return self.ready

    async def _wait_ready(self) -> dict:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                raise RuntimeError("simulator exited")
            with contextlib.suppress(ValueError):
                msg = json.loads(line)
                if isinstance(msg, dict) and msg.get("event") == "ready":
                    return msg

    async def _drain_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while await self.proc.stdout.readline():
            pass

    async def _relay_stderr(self) -> None:
        """The child's log lines and messages, through the gateway's own log."""
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            if not text:
                continue
            try:
                record = json.loads(text)
                level, event = record.pop("level"), record.pop("event")
            except (ValueError, KeyError, TypeError, AttributeError):
                level, event, record = "warning", text, {}
            method = getattr(log, level if level in ("debug", "info", "warning") else "error")
            method(event, source="simulator", **record)

    def point_devices(self, settings: GatewaySettings) -> GatewaySettings:
        """The settings with every device addressed to the simulator's loopback ports."""
        devices = []
        for device in settings.devices:
            if device.protocol == "modbus":
                devices.append(device.model_copy(update={
                    "host": "127.0.0.1", "port": self.ready["modbus_port"], "unit_id": 1}))
            else:
                devices.append(device.model_copy(update={
                    "endpoint": f"opc.tcp://127.0.0.1:{self.ready['opcua_port']}",
                    "security_policy": "None", "username": None, "password": None}))
        return settings.model_copy(update={"devices": devices})

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        for task in self._relays:  # the pipes are closed: both end on their own
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 1.0)
        self._relays.clear()
