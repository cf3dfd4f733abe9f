"""The one write path (``WriteService``) inside a real pipeline against the real simulator.

The simulator runs as the daemon's own child (``SimulatorProcess``, with its control API); the
pipeline, its Modbus and OPC-UA drivers, the embedded store, the write journal and the alarm
service are the daemon's own classes. What the devices received is read back from the
simulator's control API (``GET /writes``), so "nothing was sent" and "sent once" are counted
on the device side.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import time
import urllib.request
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.ingest.pipeline import Pipeline
from gateway.runtime.simulator_child import SimulatorProcess
from gateway.runtime.supervisor import Supervisor
from gateway.services.accounts.users import Role
from gateway.services.alarms.journal import JOURNAL_FILE
from gateway.services.alarms.service import AlarmService
from gateway.services.writes.journal import WRITES_FILE, WriteFilter, WriteJournal
from gateway.services.writes.records import Outcome, Refusal, WriteRequest
from gateway.services.writes.service import WriteService
from gateway.settings import load_config
from gateway.store.embedded import EmbeddedStore
from plant.catalog import Catalog
from plant.writes import write_device_by_tag
from tests.support.daemon import ROOT

pytestmark = [pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]

SETPOINT = "TIC-101.SP"  # Modbus holding int16 x0.1, write range 330..370, max_step 10
FEED = "FIC-102.SP"  # Modbus holding uint32 x0.1, 9000..11000, max_step 500
VALVE = "HIC-401.SP"  # OPC-UA device, 10..90 %, max_step 20, operator
PUMP = "HS-101"  # coil, operator, permissive XV-101 = 1
PUMP_VALVE = "XV-101"  # coil, supervisor
SUPERVISOR = dict(user="sofia", role=Role.SUPERVISOR, origin="test", client="127.0.0.1:1")


def request(tag_id: str, value: float, **who) -> WriteRequest:
    return WriteRequest(tag_id=tag_id, value=value, reason="test", **{**SUPERVISOR, **who})


class Simulator:
    """The simulator child and its control API."""

    def __init__(self, process: SimulatorProcess):
        self.process = process
        self.control = f"http://127.0.0.1:{process.ready['control_port']}"

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.control + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def writes(self, tag_id: str) -> list[dict]:
        return [w for w in self._call("GET", "/writes")["writes"] if w["tag_id"] == tag_id]

    def mode(self, mode: str, **extra) -> None:
        self._call("POST", "/writes", {"mode": mode, **extra})

    def fault(self, tag_id: str, kind: str, duration_s: float) -> None:
        self._call("POST", "/faults", {"tag_id": tag_id, "kind": kind, "duration_s": duration_s})

    def faults(self) -> list[dict]:
        return self._call("GET", "/state")["faults"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def simulator(tmp_path_factory):
    config = load_config(ROOT / "config/gateway.toml", environ={
        "REFINERYIQ_STATE_DIR": str(tmp_path_factory.mktemp("sim-state")),
        "REFINERYIQ_SIMULATOR__OPCUA_PORT": "0", "REFINERYIQ_SIMULATOR__MODBUS_PORT": "0"})
    process = SimulatorProcess(config.settings)
    await process.start()
    sim = Simulator(process)
    sim.config = config
    yield sim
    await process.stop()


class Gateway:
    """The parts of the daemon a write touches, all real."""

    def __init__(self, sim: Simulator, state_dir: Path, **writes: object):
        settings = sim.process.point_devices(sim.config.settings)
        self.settings = settings.model_copy(update={
            "state_dir": state_dir,
            "writes": settings.writes.model_copy(update=writes)})
        self.catalog = Catalog.build(sim.config.plant)
        self.state_dir = state_dir
        self.tasks: list[asyncio.Task] = []

    async def start(self, scanning: bool = True) -> WriteService:
        s = self.settings
        self.store = EmbeddedStore(self.state_dir / "history.sqlite", retention_s=86400,
                                   max_bytes=10**9)
        await self.store.open()
        self.pipeline = Pipeline(s, self.catalog, self.store, self.state_dir)
        self.supervisor = Supervisor()
        self.alarms = AlarmService(s.alarms, self.catalog, self.store,
                                   self.state_dir / JOURNAL_FILE, 86400, self.supervisor,
                                   self.pipeline.device_connections, tick_s=3600)
        await self.alarms.start()
        self.pipeline.add_sink("alarms", self.alarms)
        self.writes = WriteService(
            s.writes, self.catalog, write_device_by_tag(s.devices, s.scan_groups,
                                                        self.catalog.plant),
            lambda: self.pipeline.drivers, lambda: self.pipeline.live,
            self.state_dir / WRITES_FILE, self.supervisor, alarms=self.alarms)
        await self.writes.start()
        await self.pipeline.connect_all()
        if scanning:
            await self.scan()
        return self.writes

    async def scan(self) -> None:
        """Run the scan loops and wait until every writable tag has a live value."""
        loop = asyncio.get_running_loop()
        self.tasks.append(loop.create_task(self.pipeline.accept_loop()))
        for mode, group in self.pipeline.scan_task_names():
            work = (self.pipeline.scan_loop(group) if mode == "poll"
                    else self.pipeline.subscribe_group(group))
            self.tasks.append(loop.create_task(work))
        await self.until(lambda: all(self.value(t.id) is not None
                                     for t in self.writes.writable_tags()), "first scans")

    def value(self, tag_id: str) -> float | None:
        i = self.catalog.index[tag_id]
        value = float(self.pipeline.live.values[i])
        return None if math.isnan(value) or self.pipeline.live.quality[i] < 192 else value

    async def until(self, predicate, what: str, timeout: float = 30.0):
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if result := predicate():
                return result
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    async def stop(self) -> None:
        await self.writes.stop()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.pipeline.close_all()
        await self.alarms.stop()
        await self.store.close()

    def operator_actions(self) -> list[tuple]:
        with sqlite3.connect(self.state_dir / JOURNAL_FILE) as conn:
            return conn.execute("SELECT source, user_name, origin, action, outcome, ref, message "
                                "FROM operator_actions ORDER BY id").fetchall()


@pytest_asyncio.fixture(loop_scope="module")
async def gateway(simulator, tmp_path):
    gw = Gateway(simulator, tmp_path / "state")
    await gw.start()
    yield gw
    simulator.mode("normal")
    await gw.stop()


def near(value: float, offset: float, lo: float, hi: float) -> float:
    """``value`` moved by ``offset``, kept inside lo..hi (away from the edge it would cross)."""
    target = value + offset
    return round(target if lo <= target <= hi else value - offset, 1)


# --------------------------------------------------------------------------- confirmed


async def test_a_setpoint_write_is_journaled_sent_once_and_confirmed(gateway, simulator):
    target = near(gateway.value(SETPOINT), 3.0, 330, 370)
    before = len(simulator.writes(SETPOINT))
    record = await gateway.writes.write(request(SETPOINT, target))
    assert record.outcome is Outcome.CONFIRMED, record.detail
    assert record.read_back_value == pytest.approx(target, abs=0.05)
    assert record.old_value is not None and record.device_id == "plc-cdu-fcc"
    assert (record.user, record.role, record.origin, record.reason) == (
        "sofia", "supervisor", "test", "test")
    sent = simulator.writes(SETPOINT)[before:]
    assert [w["value"] for w in sent] == [pytest.approx(target, abs=0.05)]
    assert await gateway.writes.journal.get(record.id) == record


async def test_a_write_through_the_opcua_device_is_confirmed(gateway, simulator):
    target = near(gateway.value(VALVE), 5.0, 10, 90)
    record = await gateway.writes.write(request(VALVE, target, user="omar", role=Role.OPERATOR))
    assert record.outcome is Outcome.CONFIRMED, record.detail
    assert record.device_id == "scada-ht-alk"
    assert simulator.writes(VALVE)[-1]["device"] == "opcua"


async def test_every_write_is_an_operator_action_in_the_alarm_journal(gateway):
    ok = await gateway.writes.write(request(SETPOINT, near(gateway.value(SETPOINT), 1.0, 330, 370)))
    refused = await gateway.writes.write(request(SETPOINT, 400.0))
    actions = gateway.operator_actions()
    assert [(a[0], a[3], a[4], a[5]) for a in actions[-2:]] == [
        (SETPOINT, "write", "confirmed", f"write:{ok.id}"),
        (SETPOINT, "write", "rejected", f"write:{refused.id}")]
    assert "sofia" in actions[-1][6] and "400" in actions[-1][6]
    assert gateway.alarms.active() == []  # no alarm state was touched


# --------------------------------------------------------------------------- refusals


async def test_each_refusal_is_journaled_with_its_reason_and_nothing_is_sent(gateway, simulator):
    current = gateway.value(SETPOINT)
    far = current + 15.0 if current + 15.0 <= 370 else current - 15.0
    cases = [
        (request("TI-999", 1.0), Refusal.UNKNOWN_TAG),
        (request("TI-101", 350.0), Refusal.NOT_WRITABLE),
        (request(SETPOINT, current, user="anonymous", role=None), Refusal.ROLE),
        (request(SETPOINT, current, user="vera", role=Role.VIEWER), Refusal.ROLE),
        (request(SETPOINT, current, user="omar", role=Role.OPERATOR), Refusal.ROLE),
        (request(SETPOINT, math.nan), Refusal.NOT_FINITE),
        (request(SETPOINT, math.inf), Refusal.NOT_FINITE),
        (request(SETPOINT, 329.9), Refusal.OUT_OF_RANGE),
        (request(SETPOINT, 370.1), Refusal.OUT_OF_RANGE),
        (request(SETPOINT, far), Refusal.STEP),
        (request(PUMP, 2.0), Refusal.OUT_OF_RANGE),
    ]
    sent_before = {t: len(simulator.writes(t)) for t in ("TI-101", SETPOINT, PUMP)}
    for req, refusal in cases:
        record = await gateway.writes.write(req)
        assert (record.outcome, record.refusal) == (Outcome.REJECTED, refusal), req
        assert record.detail and record.finished_at is not None
    assert {t: len(simulator.writes(t)) for t in sent_before} == sent_before
    rejected = await gateway.writes.journal.query(WriteFilter(outcome=Outcome.REJECTED))
    assert len(rejected) == len(cases)


async def test_a_coil_value_between_its_states_is_refused_as_not_encodable(gateway, simulator):
    before = len(simulator.writes(PUMP_VALVE))
    record = await gateway.writes.write(request(PUMP_VALVE, 0.5))
    assert (record.outcome, record.refusal) == (Outcome.REJECTED, Refusal.NOT_ENCODABLE)
    assert len(simulator.writes(PUMP_VALVE)) == before


async def test_a_pump_starts_only_with_its_permissive(gateway, simulator):
    closed = await gateway.writes.write(request(PUMP_VALVE, 0.0))
    assert closed.outcome is Outcome.CONFIRMED, closed.detail
    await gateway.until(lambda: gateway.value(PUMP_VALVE) == 0.0, "the valve reading closed")
    refused = await gateway.writes.write(request(PUMP, 1.0, user="omar", role=Role.OPERATOR))
    assert (refused.outcome, refused.refusal) == (Outcome.REJECTED, Refusal.PERMISSIVE)
    assert "XV-101" in refused.detail
    opened = await gateway.writes.write(request(PUMP_VALVE, 1.0))
    assert opened.outcome is Outcome.CONFIRMED
    await gateway.until(lambda: gateway.value(PUMP_VALVE) == 1.0, "the valve reading open")
    started = await gateway.writes.write(request(PUMP, 1.0, user="omar", role=Role.OPERATOR))
    assert started.outcome is Outcome.CONFIRMED, started.detail


async def test_a_step_is_judged_from_the_last_confirmed_write(gateway):
    start = gateway.value(SETPOINT)
    direction = 1.0 if start <= 350 else -1.0
    first = await gateway.writes.write(request(SETPOINT, round(start + 8 * direction, 1)))
    # 16 from the live value the scans may still show, 8 from the value just confirmed.
    second = await gateway.writes.write(request(SETPOINT, round(start + 16 * direction, 1)))
    assert (first.outcome, second.outcome) == (Outcome.CONFIRMED, Outcome.CONFIRMED), second.detail


async def test_without_a_live_value_the_step_is_judged_from_the_device(simulator, tmp_path):
    gw = Gateway(simulator, tmp_path / "state")
    writes = await gw.start(scanning=False)  # no scan yet (or a subscription that is quiet)
    try:
        current, _ = await gw.pipeline.drivers["plc-cdu-fcc"].read_tag(
            gw.catalog.tag(SETPOINT), 2.0)
        record = await writes.write(request(SETPOINT, near(current, 1.0, 330, 370)))
        assert record.outcome is Outcome.CONFIRMED, record.detail
        assert record.old_value == pytest.approx(current, abs=0.05)
    finally:
        await gw.stop()


async def test_a_stepped_tag_that_reads_bad_is_refused(gateway, simulator):
    simulator.fault(SETPOINT, "bad_quality", 3)  # the register answers with a device failure
    try:
        await gateway.until(lambda: gateway.value(SETPOINT) is None, "the setpoint reading bad")
        record = await gateway.writes.write(request(SETPOINT, 350.0))
        assert (record.outcome, record.refusal) == (Outcome.REJECTED, Refusal.NO_CURRENT_VALUE)
    finally:
        await gateway.until(lambda: not simulator.faults(), "the fault to end", 30)


async def test_a_device_that_is_not_connected_is_refused(simulator, tmp_path):
    gw = Gateway(simulator, tmp_path / "state")
    gw.settings = gw.settings.model_copy(update={"devices": [
        d.model_copy(update={"port": 1}) if d.protocol == "modbus" else d
        for d in gw.settings.devices]})
    writes = await gw.start(scanning=False)
    try:
        record = await writes.write(request(PUMP_VALVE, 1.0))
        assert (record.outcome, record.refusal) == (Outcome.REJECTED, Refusal.NOT_CONNECTED)
    finally:
        await gw.stop()


# --------------------------------------------------------------------------- device trouble


async def test_a_device_refusal_is_failed_with_the_device_status(gateway, simulator):
    target = near(gateway.value(SETPOINT), 2.0, 330, 370)
    simulator.mode("refuse", device="modbus")
    record = await gateway.writes.write(request(SETPOINT, target))
    assert record.outcome is Outcome.FAILED, record.detail
    assert record.device_status == "ServerDeviceFailure"
    assert simulator.writes(SETPOINT)[-1]["outcome"] == "refused"


async def test_a_timed_out_write_is_unconfirmed_and_reached_the_device_once(simulator, tmp_path):
    gw = Gateway(simulator, tmp_path / "state", write_timeout_s=0.5)
    await gw.start()
    try:
        target = near(gw.value(FEED), 100.0, 9000, 11000)
        before = len(simulator.writes(FEED))
        simulator.mode("timeout", device="modbus")
        record = await gw.writes.write(request(FEED, target))
        simulator.mode("normal")
        assert record.outcome is Outcome.UNCONFIRMED, record.detail
        assert "not retried" in record.detail and record.device_status == "Timeout"
        await asyncio.sleep(1.5)  # long enough for a retry to have been sent, were there one
        sent = simulator.writes(FEED)[before:]
        assert [(w["value"], w["outcome"]) for w in sent] == [
            (pytest.approx(target, abs=0.05), "unanswered")]
    finally:
        simulator.mode("normal")
        await gw.stop()


async def test_a_read_back_that_disagrees_is_unconfirmed(simulator, tmp_path):
    gw = Gateway(simulator, tmp_path / "state", read_back_timeout_s=0.5)
    await gw.start()
    try:
        target = near(gw.value(SETPOINT), 2.0, 330, 370)
        simulator.fault(SETPOINT, "stuck", 3)  # the register keeps answering its old value
        record = await gw.writes.write(request(SETPOINT, target))
        assert record.outcome is Outcome.UNCONFIRMED, record.detail
        assert "read-back" in record.detail
        assert record.read_back_value is not None and record.read_back_value != pytest.approx(
            target, abs=0.05)
    finally:
        await gw.until(lambda: not simulator.faults(), "the stuck fault to end", 30)
        await gw.stop()


# --------------------------------------------------------------------------- order, shutdown, crash


async def test_concurrent_writes_to_one_tag_reach_the_device_in_request_order(gateway, simulator):
    start = gateway.value(SETPOINT)
    direction = 1.0 if start <= 350 else -1.0
    targets = [round(start + direction * (k + 1), 1) for k in range(8)]
    before = len(simulator.writes(SETPOINT))
    records = await asyncio.gather(*(gateway.writes.write(request(SETPOINT, t)) for t in targets))
    assert [r.outcome for r in records] == [Outcome.CONFIRMED] * len(targets)
    assert [r.id for r in records] == sorted(r.id for r in records)
    assert [r.read_back_value for r in records] == [pytest.approx(t, abs=0.05) for t in targets]
    sent = simulator.writes(SETPOINT)[before:]
    assert [w["value"] for w in sent] == [pytest.approx(t, abs=0.05) for t in targets]


async def test_too_many_waiting_writes_to_one_tag_are_refused(simulator, tmp_path):
    gw = Gateway(simulator, tmp_path / "state", max_queued_per_tag=2, write_timeout_s=0.3)
    await gw.start()
    try:
        value = gw.value(FEED)
        simulator.mode("timeout", device="modbus")
        records = await asyncio.gather(*(gw.writes.write(request(FEED, value)) for _ in range(4)))
        refusals = sorted(str(r.refusal) for r in records if r.outcome is Outcome.REJECTED)
        assert refusals == [Refusal.BUSY, Refusal.BUSY]
    finally:
        simulator.mode("normal")
        await gw.stop()


async def test_at_shutdown_a_write_in_flight_is_unknown_and_one_waiting_is_not_sent(simulator,
                                                                                   tmp_path):
    gw = Gateway(simulator, tmp_path / "state", write_timeout_s=10.0)
    writes = await gw.start()
    value = gw.value(FEED)
    simulator.mode("timeout", device="modbus")
    try:
        first = asyncio.ensure_future(writes.write(request(FEED, value)))
        second = asyncio.ensure_future(writes.write(request(FEED, value)))
        await gw.until(lambda: writes.health()["in_flight"] == 2, "both writes in flight")
        await asyncio.sleep(0.2)  # the first one is with the device now
        await writes.finish(wait_s=0.2)
        a, b = await asyncio.gather(first, second)
        assert a.outcome is Outcome.UNKNOWN and "shut down" in a.detail
        assert (b.outcome, b.refusal) == (Outcome.REJECTED, Refusal.SHUTTING_DOWN)
        late = await writes.write(request(FEED, value))
        assert (late.outcome, late.refusal) == (Outcome.REJECTED, Refusal.SHUTTING_DOWN)
        pending = await writes.journal.query(WriteFilter(outcome=Outcome.PENDING))
        assert pending == []
        assert [a[4] for a in gw.operator_actions()[-3:]] == ["unknown", "rejected", "rejected"]
    finally:
        simulator.mode("normal")
        await gw.stop()


async def test_a_request_left_pending_by_a_crash_is_unknown_at_the_next_start(simulator,
                                                                             tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    journal = WriteJournal(state / WRITES_FILE, 86400)
    await journal.open()
    left = await journal.request(request(SETPOINT, 351.0), 350.0, 192, time.time())
    await journal.close()  # as if the process died between sending and the outcome
    gw = Gateway(simulator, state)
    writes = await gw.start(scanning=False)
    try:
        record = await writes.journal.get(left.id)
        assert record.outcome is Outcome.UNKNOWN and "stopped" in record.detail
        assert writes.recovered_unknown == 1
        assert gw.operator_actions()[-1][4:6] == ("unknown", f"write:{left.id}")
    finally:
        await gw.stop()
