"""Run the simulated refinery: the model plus its OPC-UA, Modbus and control front-ends.

``python -m simulator --seed 7 --tags 0 --speed 1 --opcua-port 4840 --modbus-port 5020``
(also ``refineryiq simulate``). Every 100 ms of wall time the model advances ``speed`` x 100 ms
of simulated time, always by that fixed step so a seed gives the same series however busy the
machine is (if a step overruns, simulated time falls behind wall time rather than jumping).
Port 0 picks a free port; once listening, one JSON line goes to stdout::

    {"event": "ready", "opcua_port": 40123, "modbus_port": 40124, "control_port": null}

``--faults FILE`` is a TOML schedule of faults at simulated times (see
:mod:`simulator.faults`); ``--scenario NAME`` starts a named scenario with the simulation
(see :mod:`simulator.scenarios`); ``--control-port`` starts the control API (see
:mod:`simulator.control`) on the same host. ``--records-out FILE`` appends a maintenance
record file row for each equipment failure as it happens (see :mod:`simulator.records`), stamped
on the wall clock the values carry, ready for ``refineryiq maintenance import FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from plant.catalog import Catalog
from plant.errors import ConfigError
from plant.load import load_plant
from simulator.control import apply, build_app
from simulator.faults import FaultRequest, load_schedule
from simulator.modbus_server import DEFAULT_PORT as MODBUS_DEFAULT_PORT
from simulator.modbus_server import ModbusFrontEnd
from simulator.model import PlantModel
from simulator.opcua_server import DEFAULT_PORT as OPCUA_DEFAULT_PORT
from simulator.opcua_server import OpcUaFrontEnd, SecurityOptions
from simulator.records import RecordWriter
from simulator.scenarios import SCENARIOS, ScenarioRunner
from simulator.writes import WriteDesk

TICK_S = 0.1
DEFAULT_PLANT = Path("config/plant.toml")


async def serve(seed: int, speed: float, synthetic_tags: int, opcua_port: int, modbus_port: int,
                plant_path: Path | str, host: str = "127.0.0.1", control_port: int | None = None,
                faults: Path | str | list[FaultRequest] | None = None,
                security: SecurityOptions | None = None,
                on_ready: Callable[[dict], None] | None = None, scenario: str | None = None,
                records_out: Path | None = None) -> None:
    """Build the catalog and model, start the front-ends, and step the model until cancelled.

    ``on_ready`` receives the ready event (with the bound ports); by default it is printed
    to stdout as one JSON line. ``scenario`` names a scenario started at simulated time 0
    (UnknownScenario, or ValueError when the plant lacks what it acts on). ``records_out``:
    a record file that gets a row per equipment failure (see :mod:`simulator.records`).
    """
    if speed <= 0:
        raise ValueError("speed must be positive")
    catalog = Catalog.build(load_plant(Path(plant_path)), synthetic_tags=synthetic_tags)
    model = PlantModel(catalog, seed=seed)
    schedule = load_schedule(Path(faults)) if isinstance(faults, str | Path) else list(faults or [])
    scenarios = ScenarioRunner()
    if scenario is not None:
        scenarios.start(scenario, model)
    writes = WriteDesk(model)
    opcua = OpcUaFrontEnd(model, host, opcua_port, security, writes=writes)
    modbus = ModbusFrontEnd(model, host, modbus_port, writes=writes)
    runner: web.AppRunner | None = None
    records = RecordWriter(records_out, model) if records_out is not None else None
    try:
        ready = {"event": "ready", "opcua_port": await opcua.start(), "modbus_port": await modbus.start(),
                 "control_port": None}
        if control_port is not None:
            async def republish() -> None:
                modbus.refresh()
                await opcua.notify(opcua.update())

            app = build_app(model, {"speed": speed, "synthetic_tags": synthetic_tags}, republish,
                            writes=writes, scenarios=scenarios)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, host, control_port)
            await site.start()
            ready["control_port"] = runner.addresses[0][1]
        (on_ready or _print_ready)(ready)
        await _loop(model, opcua, modbus, speed, schedule, scenarios, records)
    finally:
        if records is not None:
            records.close()
        if runner is not None:
            await runner.cleanup()
        await modbus.stop()
        await opcua.stop()


def _print_ready(event: dict) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def _loop(model: PlantModel, opcua: OpcUaFrontEnd, modbus: ModbusFrontEnd, speed: float,
                schedule: list[FaultRequest], scenarios: ScenarioRunner,
                records: RecordWriter | None = None) -> None:
    loop = asyncio.get_running_loop()
    step = TICK_S * speed
    next_tick = loop.time()
    pending = list(schedule)
    while True:
        while pending and (pending[0].at_s or 0.0) <= model.time_s:
            with contextlib.suppress(LookupError, ValueError):
                apply(model, pending.pop(0))
        scenarios.advance(model)
        model.step(step)
        if records is not None:
            # Simulated seconds onto the wall clock the front-ends stamp values with.
            wall, now_s = time.time(), model.time_s
            records.poll(lambda s, wall=wall, now_s=now_s: wall + (s - now_s) / speed)
        modbus.refresh()
        await opcua.notify(opcua.update())
        next_tick += TICK_S
        delay = next_tick - loop.time()
        if delay < 0:  # overran: do not try to catch up, keep the fixed simulated step
            next_tick = loop.time()
            delay = 0.0
        await asyncio.sleep(delay)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="simulate", description="Run the simulated refinery "
                                     "(OPC-UA and Modbus TCP servers) on loopback.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tags", type=int, default=0, help="synthetic tags SYN-00001.. to add")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second")
    parser.add_argument("--opcua-port", type=int, default=OPCUA_DEFAULT_PORT)
    parser.add_argument("--modbus-port", type=int, default=MODBUS_DEFAULT_PORT)
    parser.add_argument("--plant", type=Path, default=DEFAULT_PLANT)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--control-port", type=int, default=None)
    parser.add_argument("--faults", type=Path, default=None, help="TOML fault schedule")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default=None,
                        help="start a scenario with the simulation: "
                             + "; ".join(f"{s.name}: {s.description}" for s in SCENARIOS.values())
                             .replace("%", "%%"))
    parser.add_argument("--records-out", type=Path, default=None, metavar="FILE",
                        help="append a maintenance record (CSV) row per equipment failure, for "
                             "`refineryiq maintenance import FILE`")
    parser.add_argument("--security", choices=["None", "Basic256Sha256"], default="None",
                        help="OPC-UA security policy")
    parser.add_argument("--cert-dir", type=Path, default=None,
                        help="where the OPC-UA self-signed certificate is kept (Basic256Sha256)")
    parser.add_argument("--username", default=None, help="OPC-UA user required (with --password)")
    parser.add_argument("--password", default=None)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """CLI entry point; exit codes: 0 normal (also after SIGINT/SIGTERM), 2 config error, 1 other."""
    args = parse_args(argv)
    security = SecurityOptions(policy=args.security, cert_dir=args.cert_dir,
                               username=args.username, password=args.password)
    try:
        schedule = load_schedule(args.faults) if args.faults else None
    except ValueError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2

    async def run() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)  # type: ignore[union-attr]
        with contextlib.suppress(asyncio.CancelledError):
            await serve(args.seed, args.speed, args.tags, args.opcua_port, args.modbus_port, args.plant,
                        host=args.host, control_port=args.control_port, faults=schedule,
                        security=security, scenario=args.scenario, records_out=args.records_out)

    try:
        asyncio.run(run())
    except (ConfigError, LookupError, ValueError) as exc:
        # A broken plant file, or a scenario the plant cannot run (it lacks a tag it acts on).
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 1
    return 0
