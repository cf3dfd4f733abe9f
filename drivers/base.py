"""The one small interface every southbound driver implements."""

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


class Driver(Protocol):
    """A connection to one device. It knows its protocol and address map, nothing else.

    Built as ``DriverClass(device_settings, plans: dict[group_id, GroupPlan], state_dir)``.
    ``read`` never raises for device trouble: timeouts, protocol errors and disconnects come
    back as a Batch with bad quality and a reason. ``subscribe`` (OPC-UA) pushes Batches for
    a ``mode = "subscribe"`` group into the same path as polling, and keeps doing so across
    reconnects.
    """

    device_id: str

    @property
    def connected(self) -> bool: ...

    async def connect(self) -> None: ...

    async def read(self, group: str, scan_start: float) -> Batch: ...

    async def subscribe(self, group: str, callback: BatchCallback) -> None: ...

    async def close(self) -> None: ...
