"""`run --simulate`: start the bundled simulator as a child process and point devices at it.

The gateway never imports the simulator; it runs it as a separate process on loopback, so the
gateway always speaks real OPC-UA and Modbus TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys

from gateway.runtime.logs import get_logger
from gateway.settings import GatewaySettings

log = get_logger("gateway.runtime.simulator_child")

READY_TIMEOUT_S = 60.0


class SimulatorProcess:
    """The simulator child: started with the configured seed, speed and ports."""

    def __init__(self, settings: GatewaySettings):
        self.settings = settings
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: dict = {}

    async def start(self) -> dict:
        sim = self.settings.simulator
        args = [sys.executable, "-m", "simulator", "--seed", str(sim.seed), "--speed", str(sim.speed),
                "--tags", str(sim.synthetic_tags), "--opcua-port", str(sim.opcua_port),
                "--modbus-port", str(sim.modbus_port), "--control-port", "0",
                "--plant", str(self.settings.plant_file), "--host", "127.0.0.1"]
        self.proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
        try:
            self.ready = await asyncio.wait_for(self._wait_ready(), READY_TIMEOUT_S)
        except (TimeoutError, RuntimeError):
            await self.stop()
            raise RuntimeError("the simulator did not start; see its messages above") from None
        asyncio.get_running_loop().create_task(self._drain_stdout())
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
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
