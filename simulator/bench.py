"""Measure the simulator's front-ends: ``python -m simulator.bench [--tags 10000]``.

1. Modbus: one plain pymodbus client reads 125 holding registers in a loop (requests/s),
   against the simulator as a child process (``python -m simulator``, model running), against
   the simulator's Modbus front-end in this process, and, for reference, against a pymodbus
   server with pymodbus's own SimDevice datastore in this process (the in-process pair is
   the fair comparison of the datastores: same loop, no cross-process scheduling).
2. OPC-UA: in process, the cost of publishing every value of the model (plant + synthetic
   tags) through ``Server.write_attribute_value`` versus the front-end's direct update path,
   and the cost of one simulator tick (model step + Modbus encode + OPC-UA update).

Prints one JSON object. Numbers depend on the machine; compare them within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from pathlib import Path

from asyncua import ua
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import SimData, SimDevice
from pymodbus.simulator.simutils import DataType as SimType

from plant.catalog import Catalog
from plant.load import load_plant
from simulator.modbus_server import ModbusFrontEnd
from simulator.model import PlantModel
from simulator.opcua_server import OpcUaFrontEnd

ROOT = Path(__file__).resolve().parent.parent
READS = 3000


async def _read_rate(port: int, address: int) -> float:
    client = AsyncModbusTcpClient("127.0.0.1", port=port)
    await client.connect()
    try:
        for _ in range(50):
            await client.read_holding_registers(address, count=125, device_id=1)
        start = time.perf_counter()
        for _ in range(READS):
            r = await client.read_holding_registers(address, count=125, device_id=1)
            assert not r.isError()
        return READS / (time.perf_counter() - start)
    finally:
        client.close()


async def modbus_simulator_rate(tags: int) -> float:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator", "--tags", str(tags), "--opcua-port", "0", "--modbus-port", "0",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        ready = json.loads(await proc.stdout.readline())  # type: ignore[union-attr]
        return await _read_rate(ready["modbus_port"], 20000)
    finally:
        proc.terminate()
        await proc.wait()


async def modbus_in_process_rate(tags: int) -> float:
    catalog = Catalog.build(load_plant(ROOT / "config" / "plant.toml"), synthetic_tags=tags)
    front = ModbusFrontEnd(PlantModel(catalog, seed=1), port=0)
    port = await front.start()
    try:
        return await _read_rate(port, 20000)
    finally:
        await front.stop()


async def modbus_reference_rate() -> float:
    device = SimDevice(id=1, simdata=([SimData(0, count=2000, datatype=SimType.BITS)],
                                      [SimData(0, count=2000, datatype=SimType.BITS)],
                                      [SimData(0, count=2000, datatype=SimType.REGISTERS)],
                                      [SimData(0, count=2000, datatype=SimType.REGISTERS)]))
    server = ModbusTcpServer(device, address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    try:
        return await _read_rate(server.transport.sockets[0].getsockname()[1], 0)  # type: ignore[union-attr]
    finally:
        await server.shutdown()


async def opcua_costs(tags: int) -> dict:
    catalog = Catalog.build(load_plant(ROOT / "config" / "plant.toml"), synthetic_tags=tags)
    model = PlantModel(catalog, seed=1)
    front = OpcUaFrontEnd(model, port=0)
    modbus = ModbusFrontEnd(model, port=0)
    start = time.perf_counter()
    await front.start()
    startup_s = time.perf_counter() - start
    try:
        node_ids = [ua.NodeId.from_string(t.opcua.node_id) for t in catalog.tags]
        now = dt.datetime.now(dt.UTC)
        start = time.perf_counter()
        for i, node in enumerate(node_ids):
            await front.server.write_attribute_value(  # type: ignore[union-attr]
                node, ua.DataValue(ua.Variant(float(model.values[i]), ua.VariantType.Double),
                                   SourceTimestamp=now, ServerTimestamp=now))
        write_attribute_ms = (time.perf_counter() - start) * 1e3
        # Direct path, all nodes: run SYNTHETIC_SPREAD updates (each covers a share of synthetic).
        from simulator.opcua_server import SYNTHETIC_SPREAD
        start = time.perf_counter()
        for _ in range(SYNTHETIC_SPREAD):
            await front.notify(front.update())
        direct_all_ms = (time.perf_counter() - start) * 1e3
        ticks = 50
        start = time.perf_counter()
        for _ in range(ticks):
            model.step(0.1)
            modbus.refresh()
            await front.notify(front.update())
        tick_ms = (time.perf_counter() - start) * 1e3 / ticks
    finally:
        await front.stop()
    return {"opcua_nodes": len(catalog), "opcua_startup_s": round(startup_s, 2),
            "opcua_write_attribute_value_all_ms": round(write_attribute_ms, 1),
            "opcua_direct_update_all_ms": round(direct_all_ms, 1),
            "simulator_tick_ms": round(tick_ms, 2)}


async def run(tags: int) -> dict:
    result = {"synthetic_tags": tags,
              "modbus_reads_per_s_simulator_process": round(await modbus_simulator_rate(tags)),
              "modbus_reads_per_s_in_process": round(await modbus_in_process_rate(tags)),
              "modbus_reads_per_s_in_process_pymodbus_simdevice": round(await modbus_reference_rate())}
    result.update(await opcua_costs(tags))
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="simulator.bench")
    parser.add_argument("--tags", type=int, default=10000)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args.tags))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
