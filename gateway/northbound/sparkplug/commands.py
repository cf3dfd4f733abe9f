"""DCMD: a Sparkplug host writing a tag, through the gateway's one write path.

Off unless ``sparkplug.allow_commands`` is on and the daemon handed the node a ``commands``
object (the write path: validation, journal, read-back). A DCMD metric names a tag of the
device by alias (or by name); its value becomes a float, as every write is. Nothing is written
here: each write is handed to the write path on a task of its own, so paho's thread and the
publisher never wait on a device, and its outcome word is counted. Sparkplug has no reply to a
DCMD: the host sees the effect in the tag's next DDATA.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

import structlog

from gateway.northbound.sparkplug.model import DeviceModel, TagMetric
from gateway.northbound.sparkplug.payloads import CommandMetric

log = structlog.get_logger(__name__)

REASON = "Sparkplug DCMD"
ORIGIN = "sparkplug"  # the front door, as the write journal names them (http, opcua, ...)


class Commands(Protocol):
    """The gateway's write path as the node uses it; returns the outcome word
    (confirmed / rejected / failed / unconfirmed)."""

    async def write(self, tag_id: str, value: float, *, user: str, origin: str,
                    reason: str) -> str: ...


@dataclass
class CommandCounters:
    """DCMD metrics received, by what became of them."""

    refused: int = 0  # commands are off
    unknown: int = 0  # no such tag on that device, or a value that is not a number
    outcomes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class DeviceCommands:
    """Resolves DCMD metrics to tags and hands each write to ``commands``."""

    def __init__(self, commands: Commands | None, *, user: str, origin: str = ORIGIN):
        self.commands = commands
        self.user = user
        self.origin = origin
        self.counters = CommandCounters()
        self._by_alias: dict[str, dict[int, TagMetric]] = {}
        self._by_name: dict[str, dict[str, TagMetric]] = {}
        self._tasks: set[asyncio.Task] = set()

    def bind(self, devices: Mapping[str, DeviceModel]) -> None:
        self._by_alias = {d: {m.alias: m for m in model.metrics} for d, model in devices.items()}
        self._by_name = {d: {m.name: m for m in model.metrics} for d, model in devices.items()}

    def handle(self, device_id: str, topic: str, metrics: Sequence[CommandMetric]) -> None:
        """Start one write per metric of a DCMD (on the event loop, returns at once)."""
        if self.commands is None:
            self.counters.refused += len(metrics)
            log.warning("sparkplug DCMD refused: commands are off (sparkplug.allow_commands)",
                        topic=topic, metrics=len(metrics))
            return
        for metric in metrics:
            tag = self._resolve(device_id, metric)
            value = _number(metric.value)
            if tag is None or value is None:
                self.counters.unknown += 1
                log.warning("sparkplug DCMD metric ignored", topic=topic, name=metric.name,
                            alias=metric.alias, value=metric.value)
                continue
            task = asyncio.get_running_loop().create_task(
                self._write(tag, value, topic), name=f"sparkplug-dcmd:{tag.tag_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _resolve(self, device_id: str, metric: CommandMetric) -> TagMetric | None:
        if metric.alias is not None:
            return self._by_alias.get(device_id, {}).get(metric.alias)
        if metric.name is not None:
            return self._by_name.get(device_id, {}).get(metric.name)
        return None

    async def _write(self, tag: TagMetric, value: float, topic: str) -> None:
        try:
            outcome = await self.commands.write(tag.tag_id, value, user=self.user,
                                                origin=self.origin, reason=f"{REASON} {topic}")
        except Exception as exc:  # the write path journals its own failures
            log.exception("sparkplug DCMD write failed", tag_id=tag.tag_id)
            outcome = f"error: {type(exc).__name__}"
        self.counters.outcomes[outcome] = self.counters.outcomes.get(outcome, 0) + 1
        log.info("sparkplug DCMD", tag_id=tag.tag_id, value=value, outcome=outcome)

    async def stop(self) -> None:
        """Let writes in flight finish (the write path journals each one): never cut one."""
        if self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait(set(self._tasks), timeout=10.0)


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return None


class WritePathCommands:
    """:class:`Commands` over the gateway's write path (``gateway.services.writes``): each
    DCMD write is a ``WriteRequest`` with the role ``sparkplug.command_role`` grants and the
    broker the command came through as the client, answered with the journal's outcome."""

    def __init__(self, writes: object, role: str, client: str):
        # Imported here: the write path is optional to the node (commands off by default).
        from gateway.services.accounts.users import Role

        self.writes = writes
        self.role = Role.parse(role)
        self.client = client

    async def write(self, tag_id: str, value: float, *, user: str, origin: str, reason: str) -> str:
        from gateway.services.writes.records import WriteRequest

        record = await self.writes.write(WriteRequest(
            tag_id=tag_id, value=value, user=user, role=self.role, origin=origin,
            client=self.client, reason=reason))
        return record.outcome.value
