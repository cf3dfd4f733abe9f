"""DCMD from a Sparkplug host: handed to the gateway's write path (here a fake that records the
calls) only when ``sparkplug.allow_commands`` is on; real Mosquitto, our own host client."""

from __future__ import annotations

from tests.support.sparkplug_fixtures import until
from tests.support.sparkplug_host import SparkplugHost
from tests.support.sparkplug_node import EDGE_NODE, NodeHarness

TI = "CDU-101/FURNACE-100/TI-101"


class RecordingCommands:
    """The write path as the node sees it: records each call, answers ``confirmed``."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    async def write(self, tag_id: str, value: float, *, user: str, origin: str, reason: str) -> str:
        self.calls.append({"tag_id": tag_id, "value": value, "user": user, "origin": origin,
                           "reason": reason})
        return "confirmed"






def alias_of(host: SparkplugHost, name: str) -> int:
    birth = next(m for m in host.messages if m.kind == "DBIRTH" and m.device == "plc-a")
    return birth.metric(name).alias


async def test_dcmd_goes_to_the_write_path_from_the_sparkplug_front_door(tmp_path, group, host):
    commands = RecordingCommands()
    harness = await NodeHarness(tmp_path, group, commands=commands, allow_commands=True).start()
    try:
        await host.wait_kind("DBIRTH", count=2)
        host.command(EDGE_NODE, "plc-a", alias_of(host, TI), 352.5)
        await until(lambda: commands.calls, "the write")
        call = commands.calls[0]
        assert (call["tag_id"], call["value"]) == ("TI-101", 352.5)
        assert call["origin"] == "sparkplug"
        assert call["user"] == "sparkplug-host"
        assert f"spBv1.0/{group}/DCMD/{EDGE_NODE}/plc-a" in call["reason"]
        await until(lambda: harness.node.health()["commands"]["outcomes"], "the outcome")
        assert harness.node.health()["commands"]["outcomes"] == {"confirmed": 1}
    finally:
        await harness.stop()


async def test_dcmd_is_refused_while_commands_are_off(tmp_path, group, host):
    commands = RecordingCommands()
    harness = await NodeHarness(tmp_path, group, commands=commands).start()  # allow_commands off
    try:
        await host.wait_kind("DBIRTH", count=2)
        host.command(EDGE_NODE, "plc-a", alias_of(host, TI), 352.5)
        await until(lambda: harness.node.health()["commands"]["refused"], "the refusal")
        assert commands.calls == []
    finally:
        await harness.stop()


async def test_dcmd_for_a_tag_of_another_device_is_ignored(tmp_path, group, host):
    commands = RecordingCommands()
    harness = await NodeHarness(tmp_path, group, commands=commands, allow_commands=True).start()
    try:
        await host.wait_kind("DBIRTH", count=2)
        host.command(EDGE_NODE, "plc-b", alias_of(host, TI), 352.5)  # TI-101 is on plc-a
        await until(lambda: harness.node.health()["commands"]["unknown"], "the rejection")
        assert commands.calls == []
    finally:
        await harness.stop()
