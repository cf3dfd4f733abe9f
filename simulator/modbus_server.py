"""The simulator's Modbus TCP front-end: pymodbus's server over a numpy-backed datastore.

pymodbus 3.16's own datastores (SimData/SimDevice) check every register of every request in
Python; ours answers a read with one slice of a uint16 array (``.tolist()``), which keeps the
server fast enough not to be the bottleneck of the gateway's benchmarks. The datastore plugs
in through :class:`pymodbus.datastore.ModbusServerContext` with ``old_simulator`` set, the
path pymodbus keeps for custom contexts through 3.x (pyproject pins pymodbus < 4).

Device (unit) id 1 answers; other ids get exception 0x0B (gateway target failed to respond).
Reads touching a tag with injected bad quality get exception 0x04; while the Modbus device is
silenced, requests get no answer at all. Unmapped addresses read as 0, so coalesced requests
with gaps work.

Writes (FC5/FC15 to coils, FC6/FC16 to holding registers) must cover whole tags; each tag's
value is decoded with its type, byte order, scale and offset and handed to the
:class:`simulator.writes.WriteDesk`, which applies it or decides the answer: exception 0x02
(IllegalDataAddress) for an address that is not a writable tag or a write that splits a tag,
0x03 (IllegalDataValue) outside the instrument range, 0x04 (ServerDeviceFailure) while writes
are refused, no answer while they time out. An applied write re-encodes the written tag's
registers at once, so a read right after the answer returns the written value; everything the
process does in answer shows from the model's next step, when all tags are re-encoded.
"""

from __future__ import annotations

import numpy as np
from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer

from plant.schema import ModbusTable
from simulator.faults import Device
from simulator.modbus_codec import ADDRESS_SPACE, RegisterMap, decode
from simulator.model import PlantModel
from simulator.writes import Verdict, WriteDesk

DEVICE_ID = 1
DEFAULT_PORT = 5020

_TABLE_BY_FUNCTION = {
    1: ModbusTable.COIL,
    2: ModbusTable.DISCRETE,
    3: ModbusTable.HOLDING,
    4: ModbusTable.INPUT,
    5: ModbusTable.COIL,  # pymodbus reads the written value back for the answer with the write's code
    6: ModbusTable.HOLDING,
    15: ModbusTable.COIL,
    16: ModbusTable.HOLDING,
}
_WRITE_FUNCTIONS = frozenset({5, 6, 15, 16})
_WRITE_ANSWER = {
    Verdict.NOT_WRITABLE: ExcCodes.ILLEGAL_ADDRESS,
    Verdict.OUT_OF_RANGE: ExcCodes.ILLEGAL_VALUE,
    Verdict.REFUSED: ExcCodes.DEVICE_FAILURE,
}


class PlantDatastore(ModbusServerContext):
    """A pymodbus server context reading the model's register map; never blocks."""

    def __init__(self, model: PlantModel, register_map: RegisterMap, writes: WriteDesk):
        # ModbusServerContext.__init__ builds SimDevices and warns; this context serves directly.
        self.old_simulator = True
        self.simdevices = []
        self.model = model
        self.map = register_map
        self.writes = writes
        self.bad = np.zeros(len(model.catalog) + 1, dtype=bool)  # last slot: owner -1
        self.any_bad = False

    def device_ids(self) -> list[int]:
        return [DEVICE_ID]

    def refresh(self) -> None:
        """Re-encode the model's values (call after each model step)."""
        self.map.update(self.model.values)
        self.bad[:-1] = self.model.faults.bad_quality_mask()
        self.any_bad = bool(self.bad.any())

    def refresh_tag(self, index: int) -> None:
        """Re-encode one tag after a write applied to it: a write changes that tag's value
        only (no fault, no other tag; the process answers over the next steps, which
        :meth:`refresh` publishes), so the rest of the tables and the bad-quality mask stand."""
        self.map.update_tag(self.model.values, index)

    async def async_getValues(self, device_id: int, func_code: int, address: int,
                              count: int = 1) -> list[int] | list[bool] | ExcCodes:
        if self.model.faults.is_silent(Device.MODBUS, self.model.time_s):
            # Raised so pymodbus drops the request unanswered (ignore_missing_devices=True).
            raise NoSuchIdException("device silenced")
        if device_id != DEVICE_ID:
            return ExcCodes.GATEWAY_NO_RESPONSE
        table = _TABLE_BY_FUNCTION.get(func_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if count < 1 or address + count > ADDRESS_SPACE:
            return ExcCodes.ILLEGAL_ADDRESS
        if self.any_bad and self.bad[self.map.owner[table][address:address + count]].any():
            return ExcCodes.DEVICE_FAILURE
        store = self.map.bits[table] if table.is_bits else self.map.registers[table]
        return store[address:address + count].tolist()

    async def async_setValues(self, device_id: int, func_code: int, address: int,
                              values: list[int] | list[bool]) -> ExcCodes | None:
        if self.model.faults.is_silent(Device.MODBUS, self.model.time_s):
            raise NoSuchIdException("device silenced")
        if device_id != DEVICE_ID:
            return ExcCodes.GATEWAY_NO_RESPONSE
        if func_code not in _WRITE_FUNCTIONS:
            return ExcCodes.ILLEGAL_FUNCTION
        table = _TABLE_BY_FUNCTION[func_code]
        count = len(values)
        if count < 1 or address + count > ADDRESS_SPACE:
            return ExcCodes.ILLEGAL_ADDRESS
        written = self._written_tags(table, address, values)
        if written is None:
            return ExcCodes.ILLEGAL_ADDRESS
        for index, value in written:
            verdict = self.writes.receive(Device.MODBUS, index, value)
            if verdict == Verdict.UNANSWERED:
                raise NoSuchIdException("writes time out")  # pymodbus then drops the request unanswered
            if verdict in _WRITE_ANSWER:
                return _WRITE_ANSWER[verdict]
        return None

    def _written_tags(self, table: ModbusTable, address: int,
                      values: list[int] | list[bool]) -> list[tuple[int, float]] | None:
        """(tag index, engineering value) of each tag a write covers, None unless it covers
        only whole tags."""
        owners = self.map.owner[table][address:address + len(values)]
        if (owners < 0).any():
            return None
        out: list[tuple[int, float]] = []
        tags = self.model.catalog.tags
        for index in dict.fromkeys(owners.tolist()):  # tags in address order
            m = tags[index].modbus
            assert m is not None
            start = m.address - address
            if start < 0 or start + m.count > len(values):
                return None
            if table.is_bits:
                out.append((index, float(bool(values[start])) * m.scale + m.offset))
            else:
                words = [int(w) for w in values[start:start + m.count]]
                out.append((index, decode(words, m.type, m.order, m.scale, m.offset)))
        return out


class ModbusFrontEnd:
    """The running Modbus TCP server for one plant model."""

    def __init__(self, model: PlantModel, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 writes: WriteDesk | None = None):
        self.writes = writes if writes is not None else WriteDesk(model)
        self.datastore = PlantDatastore(model, RegisterMap(model.catalog.tags), self.writes)
        self.writes.on_applied(self.datastore.refresh_tag)
        self.datastore.refresh()
        self.host = host
        self.port = port
        self._server: ModbusTcpServer | None = None

    async def start(self) -> int:
        """Listen and return the bound port (useful with port 0)."""
        self._server = ModbusTcpServer(self.datastore, address=(self.host, self.port),
                                       ignore_missing_devices=True)
        await self._server.serve_forever(background=True)
        self.port = self._server.transport.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.port

    def refresh(self) -> None:
        self.datastore.refresh()

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None
