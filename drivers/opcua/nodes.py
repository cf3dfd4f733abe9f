"""A scan group's nodes resolved once: node ids, catalog indices, instrument ranges.

Poll reads and subscription deliveries both turn DataValues into a Batch here, so a value
means the same thing whichever way it arrived.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from asyncua import ua

from drivers.base import GroupPlan
from drivers.batch import Batch
from drivers.opcua.codec import chunk_slices, decode_data_values, parse_node_id, read_parameters
from drivers.quality import Quality, check_values, from_opcua_status


def _limit(value: float | None, default: float) -> float:
    return default if value is None else value


@dataclass
class NodeGroup:
    """The columns of one scan group, in the plan's tag order (position i is tag i)."""

    group_id: str
    device_id: str
    tag_index: np.ndarray
    node_ids: list[ua.NodeId]
    instrument_min: np.ndarray
    instrument_max: np.ndarray
    _read_chunks: dict[int, list[ua.ReadParameters]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_plan(cls, device_id: str, plan: GroupPlan) -> NodeGroup:
        """Resolve a plan's tags; a tag without an OPC-UA address reads as the null node (bad)."""
        node_ids = [parse_node_id(tag.opcua.node_id) if tag.opcua is not None else parse_node_id("")
                    for tag in plan.tags]
        return cls(
            group_id=plan.group.id,
            device_id=device_id,
            tag_index=np.array(plan.tag_index, dtype=np.int32),  # a copy: Batches make it read-only
            node_ids=node_ids,
            instrument_min=np.array([_limit(t.instrument_min, -np.inf) for t in plan.tags], dtype=np.float64),
            instrument_max=np.array([_limit(t.instrument_max, np.inf) for t in plan.tags], dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.node_ids)

    def read_requests(self, max_nodes_per_read: int | None) -> list[ua.ReadParameters]:
        """Read requests covering the group in order, each within the server's node limit.

        Built once per limit and reused every scan: a scan only serializes them.
        """
        key = max_nodes_per_read or 0
        requests = self._read_chunks.get(key)
        if requests is None:
            requests = [read_parameters(self.node_ids[s]) for s in chunk_slices(len(self), key)]
            self._read_chunks[key] = requests
        return requests

    def to_batch(self, data_values: list[ua.DataValue], scan_start: float, receive_ts: float,
                 positions: np.ndarray | None = None) -> Batch:
        """One Batch from DataValues: for the whole group in order, or for ``positions`` of it.

        StatusCodes map to quality and reason; a Bad value is carried as NaN; usable values
        outside the instrument range or not finite are downgraded by ``check_values``.
        """
        values, source_ts, status = decode_data_values(data_values, receive_ts)
        quality, reason = from_opcua_status(status)
        values[quality == Quality.BAD] = np.nan
        if positions is None:
            tag_index, lo, hi = self.tag_index, self.instrument_min, self.instrument_max
        else:
            tag_index = self.tag_index[positions]
            lo, hi = self.instrument_min[positions], self.instrument_max[positions]
        check_values(values, quality, reason, lo, hi)
        return Batch(group=self.group_id, device=self.device_id, scan_start=scan_start,
                     receive_ts=receive_ts, tag_index=tag_index, source_ts=source_ts, values=values,
                     quality=quality, reason=reason)
