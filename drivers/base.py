"""The one small interface every southbound driver implements, and the errors of a write."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from drivers.batch import Batch
from plant.devices import ScanGroup
from plant.schema import Tag

BatchCallback = Callable[[Batch], Awaitable[None]]


@dataclass(frozen=True)
class GroupPlan:
    """A scan group resolved against the catalog: its settings, tags and their indices."""

    group: ScanGroup
    tag_index: np.ndarray  # int32 indices into the compiled catalog, parallel to ``tags``
    tags: tuple[Tag, ...]


class WriteError(Exception):
    """A write did not (certainly) take effect; ``reason`` says why, in words for the journal."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class WriteRefused(WriteError):
    """The device answered and said no: ``status`` is the Modbus exception ("IllegalDataAddress")
    or the OPC-UA StatusCode name ("BadNotWritable"). Nothing was changed."""

    def __init__(self, reason: str, status: str):
        super().__init__(reason)
        self.status = status


class WriteTimeout(WriteError):
    """No (usable) answer in time, or the connection dropped after the request was sent: the
    write may have reached the device. Never retry it blindly; read the value back."""


class WriteNotConnected(WriteError):
    """Nothing was sent: the device is not connected (or could not be asked at all)."""


class WriteNotEncodable(WriteError):
    """Refused before sending: the value is not finite, does not fit the register or node type
    after scale and offset, is not 0/1 for a coil, or the address cannot be written."""


class Driver(Protocol):
    """A connection to one device. It knows its protocol and address map, nothing else.

    Built as ``DriverClass(device_settings, plans: dict[group_id, GroupPlan], state_dir)``.
    ``read`` never raises for device trouble: timeouts, protocol errors and disconnects come
    back as a Batch with bad quality and a reason. ``subscribe`` (OPC-UA) pushes Batches for
    a ``mode = "subscribe"`` group into the same path as polling, and keeps doing so across
    reconnects.

    ``write`` sends one value (engineering units) to one tag's address, once: it returns when
    the device has accepted it and raises a :class:`WriteError` subclass otherwise; it never
    retries. ``read_tag`` reads one tag now (for the read-back after a write), returning the
    value in engineering units and its quality code (:class:`drivers.quality.Quality`: 192 good,
    128 doubtful, 64 bad with the value NaN); like ``read`` it never raises for device trouble.
    Both share the scan loops' connections and wait their turn on them.
    """

    device_id: str

    @property
    def connected(self) -> bool: ...

    async def connect(self) -> None: ...

    async def read(self, group: str, scan_start: float) -> Batch: ...

    async def subscribe(self, group: str, callback: BatchCallback) -> None: ...

    async def write(self, tag: Tag, value: float, timeout_s: float) -> None: ...

    async def read_tag(self, tag: Tag, timeout_s: float) -> tuple[float, int]: ...

    async def close(self) -> None: ...
