"""A scan group's nodes resolved once: node ids, catalog indices, instrument ranges.

Poll reads and subscription deliveries both turn DataValues into a Batch here, so a value
means the same thing whichever way it arrived.

A node id may name its namespace by URI (``nsu=urn:plant:opc;s=TI-101``) instead of by index:
indices are the server's to assign and may change when its configuration does, URIs do not.
Such ids are resolved against the server's NamespaceArray on every connect
(:meth:`NodeGroup.resolve_namespaces`); a URI the server does not know reads as the null node
(bad quality, DEVICE_BAD) until it does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from asyncua import ua

from drivers.base import GroupPlan
from drivers.batch import Batch
from drivers.opcua.codec import (
    NULL_NODE_ID,
    chunk_slices,
    decode_data_values,
    parse_node_id,
    read_parameters,
)
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
    # Positions whose configured id names its namespace by URI, with that configured id.
    _by_uri: dict[int, ua.ExpandedNodeId] = field(default_factory=dict, repr=False)

    @classmethod
    def from_plan(cls, device_id: str, plan: GroupPlan) -> NodeGroup:
        """Resolve a plan's tags; a tag without an OPC-UA address reads as the null node (bad)."""
        node_ids = [parse_node_id(tag.opcua.node_id) if tag.opcua is not None else parse_node_id("")
                    for tag in plan.tags]
        by_uri = {i: n for i, n in enumerate(node_ids)
                  if isinstance(n, ua.ExpandedNodeId) and n.NamespaceUri}
        return cls(
            group_id=plan.group.id,
            device_id=device_id,
            tag_index=np.array(plan.tag_index, dtype=np.int32),  # a copy: Batches make it read-only
            node_ids=[NULL_NODE_ID if i in by_uri else n for i, n in enumerate(node_ids)],
            instrument_min=np.array([_limit(t.instrument_min, -np.inf) for t in plan.tags], dtype=np.float64),
            instrument_max=np.array([_limit(t.instrument_max, np.inf) for t in plan.tags], dtype=np.float64),
            _by_uri=by_uri,
        )

    @property
    def namespace_uris(self) -> set[str]:
        """The namespace URIs this group's node ids name (empty when all use indices)."""
        return {n.NamespaceUri for n in self._by_uri.values()}

    def resolve_namespaces(self, namespace_array: list[str]) -> list[str]:
        """Turn ``nsu=`` ids into the server's namespace indices; returns the unknown URIs.

        ``namespace_array`` is the server's Server/NamespaceArray (index = position). An id
        whose URI is not in it becomes the null node, so its tag reads bad while the rest of
        the group is read as usual. The pre-built Read requests are rebuilt.
        """
        index = {uri: i for i, uri in enumerate(namespace_array)}
        unknown: set[str] = set()
        for position, configured in self._by_uri.items():
            ns = index.get(configured.NamespaceUri)
            if ns is None:
                unknown.add(configured.NamespaceUri)
                self.node_ids[position] = NULL_NODE_ID
            else:
                self.node_ids[position] = ua.NodeId(configured.Identifier, ns, configured.NodeIdType)
        self._read_chunks.clear()
        return sorted(unknown)

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
