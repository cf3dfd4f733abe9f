"""The northbound address space: ``Objects/RefineryIQ/<unit>/<equipment>/<tag>`` and friends.

Built once from the catalog with ``add_nodes`` calls of a few thousand nodes each (asyncua's
high-level ``add_variable`` costs an await and a sibling scan per node: minutes at 10,000
tags).

Memory: asyncua keeps every attribute of every node as its own AttributeValue, DataValue,
Variant and StatusCode objects: about 10 KB per tag with its properties (four nodes), 100 MB
at 10,000 tags, even after equal attributes are shared. So the tag nodes are *lazy*: the
build creates the folders and, in each folder, the forward reference of every tag (what a
Browse of the folder returns), and registers :class:`LazyTags` with the node table
(:class:`gateway.northbound.opcua.standard_nodes.CompactNodes`). The first time anything
touches a tag's node or one of its properties (a client's Browse, Read, TranslateBrowsePath,
subscription or write, or an alarm event naming it), the tag and its properties are created
with asyncua's own add-node code from the same AddNodesItems as before, their Value set
from the gateway's live cache, and kept from then on: a client sees the same nodes,
attributes and references, created later. Untouched, a tag costs its folder reference
(about 0.7 KB); touched, what it cost before. The attributes that nothing ever writes are
shared: one AttributeValue per distinct value (:func:`share_constant_attributes`), and
asyncua's standard nodes are held compressed until touched (``standard_nodes.py``).

- every tag: an AnalogItemType variable (Double) with node id ``ns=2;s=<tag_id>``, read-only
  unless the tag is writable (then CurrentRead|CurrentWrite, see ``writes.py``),
  and the properties ``EURange`` (normal range), ``InstrumentRange`` (when configured) and
  ``EngineeringUnits`` (EUInformation, UNECE code where one is known);
- per unit ``<unit>/KPIs/<figure>`` (throughput, OEE and its factors, energy, stability),
  the plant's under ``RefineryIQ/KPIs``; per equipment ``<equipment>/Health/<figure>``;
  ``RefineryIQ/Gateway/<figure>`` (health status, reasons, counters) and
  ``RefineryIQ/Alarms/<figure>`` (the active alarm list).

Tag values are written by :meth:`TagWriter.write`, the hot path: it sets each created node's
attribute value directly and, for a node no client monitors, reuses its DataValue object,
changing only the value, status and timestamps (a new DataValue and
``write_attribute_value`` per node cost several times as much). A node with datachange
callbacks gets a new DataValue and its callbacks are run, as ``write_attribute_value`` does,
because asyncua's monitored items compare against the previous DataValue object.

One cohesive thing, kept in one module (~420 lines): the builder of the whole address space
and the fast value writes into the nodes it built share their node tables.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole

from gateway.ingest.live_cache import LiveCache
from gateway.northbound.opcua.standard_nodes import CompactNodes
from gateway.northbound.opcua.status import GOOD, is_bad, status_code
from gateway.runtime.logs import get_logger
from plant.catalog import SYNTHETIC_PREFIX, Catalog
from plant.schema import Tag

log = get_logger("gateway.northbound.opcua.address_space")

NAMESPACE_URI = "urn:refineryiq:gateway:plant"
NS = 2
ROOT = "RefineryIQ"
SYNTHETIC_FOLDER = "Synthetic"
PLANT_FOLDER = "Plant"  # tags without a unit
# asyncua scans every sibling when it adds a node, so synthetic tags sit in folders of 50.
SYNTHETIC_FOLDER_SIZE = 50
_DOUBLE = ua.VariantType.Double
_READ = ua.AccessLevel.CurrentRead.mask
# Writable tags (plant.toml writable = true): clients may write their Value, and only that;
# the write goes through the gateway's write path (gateway/northbound/opcua/writes.py).
_READ_WRITE = _READ | ua.AccessLevel.CurrentWrite.mask
# The Value of a tag or figure variable is rewritten while serving; its NodeId is unique.
_OWN_ATTRIBUTES = frozenset({ua.AttributeIds.NodeId, ua.AttributeIds.Value})
# A property's Value (range, engineering units) is set once when it is built.
_OWN_PROPERTY_ATTRIBUTES = frozenset({ua.AttributeIds.NodeId})
_ADMIN = User(role=UserRole.Admin)  # the server itself adds lazy nodes

# UNECE Recommendation 20 common codes of the catalog's engineering units (Part 8, 5.6.3).
UNECE_CODES = {"°C": "CEL", "%": "P1", "A": "AMP", "kW": "KWT", "mm/s": "C16", "psig": "PS",
               "bar": "BAR", "kPa": "KPA", "L": "LTR", "kg": "KGM", "rpm": "RPM", "Hz": "HTZ"}
UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"

# Per-unit KPI figures (keys of the analytics KPI rows) and their OPC-UA types.
KPI_FIGURES: dict[str, ua.VariantType] = {
    "throughput_bpd": _DOUBLE, "throughput_pct_of_design": _DOUBLE, "oee_pct": _DOUBLE,
    "availability_pct": _DOUBLE, "performance_pct": _DOUBLE, "oee_quality_pct": _DOUBLE,
    "energy_efficiency": _DOUBLE, "kwh_per_bbl": _DOUBLE, "excess_kwh_per_day": _DOUBLE,
    "quality_score": _DOUBLE, "maintenance_score": _DOUBLE, "stability_index": _DOUBLE,
    "status": ua.VariantType.String, "ts": ua.VariantType.DateTime,
}
HEALTH_FIGURES: dict[str, ua.VariantType] = {
    "score": _DOUBLE, "status": ua.VariantType.String, "failure_probability_pct": _DOUBLE,
    "worst_tag": ua.VariantType.String, "ts": ua.VariantType.DateTime,
}
GATEWAY_FIGURES: dict[str, ua.VariantType] = {
    "status": ua.VariantType.String, "reasons": ua.VariantType.String,
    "devices_connected": ua.VariantType.UInt32, "devices": ua.VariantType.UInt32,
    "accepted_batches": ua.VariantType.UInt64, "accepted_values": ua.VariantType.UInt64,
    "uptime_s": _DOUBLE,
}
ALARM_FIGURES: dict[str, ua.VariantType] = {
    "active_count": ua.VariantType.UInt32, "unacknowledged_count": ua.VariantType.UInt32,
    "active_alarms": ua.VariantType.String,  # array: "key|state|severity|message"
    "active_alarms_json": ua.VariantType.String,
}
_ARRAY_FIGURES = {("Gateway", "reasons"), ("Alarms", "active_alarms")}


def unece_unit_id(code: str) -> int:
    """The EUInformation UnitId of a UNECE common code (Part 8, 5.6.3: ASCII bytes packed)."""
    unit_id = 0
    for char in code.upper():
        unit_id = (unit_id << 8) | ord(char)
    return unit_id


def eu_information(engineering_units: str) -> ua.EUInformation:
    """EUInformation for a catalog engineering unit (UnitId -1 where no code is known)."""
    code = UNECE_CODES.get(engineering_units)
    info = ua.EUInformation()
    info.NamespaceUri = UNECE_NAMESPACE
    info.UnitId = unece_unit_id(code) if code else -1
    info.DisplayName = ua.LocalizedText(engineering_units)
    info.Description = ua.LocalizedText(engineering_units)
    return info


def folder_id(*path: str) -> ua.NodeId:
    return ua.NodeId("/".join((ROOT, *path)), NS)


def tag_node_id(tag_id: str) -> ua.NodeId:
    return ua.NodeId(tag_id, NS)


def figure_id(*path: str) -> ua.NodeId:
    return folder_id(*path)


@dataclass
class AddressSpace:
    """Handles of the built address space (used by the writers)."""

    tag_attrs: list[Any]  # asyncua AttributeValue of each tag's Value; None until created
    tag_nodes: list[ua.NodeId]
    lazy: LazyTags | None = None
    figures: dict[tuple[str, ...], ua.NodeId] = field(default_factory=dict)
    root: ua.NodeId = field(default_factory=lambda: folder_id())


class _Builder:
    """Collects AddNodesItems, parents first, and adds them (:meth:`commit`) slice by slice."""

    def __init__(self) -> None:
        self.objects: list[ua.AddNodesItem] = []
        self.variables: list[ua.AddNodesItem] = []
        self.properties: list[ua.AddNodesItem] = []
        self._known: set[ua.NodeId] = set()

    def folder(self, parent: ua.NodeId, node_id: ua.NodeId, name: str) -> ua.NodeId:
        if node_id not in self._known:
            self._known.add(node_id)
            attrs = ua.ObjectAttributes()
            attrs.DisplayName = ua.LocalizedText(name)
            attrs.EventNotifier = 0
            self.objects.append(_item(parent, node_id, name, ua.NodeClass.Object,
                                      ua.ObjectIds.Organizes, ua.ObjectIds.FolderType, attrs))
        return node_id

    def variable(self, parent: ua.NodeId, node_id: ua.NodeId, name: str, value: ua.Variant,
                 data_type: int, type_definition: int = ua.ObjectIds.BaseDataVariableType,
                 array: bool = False, access: int = _READ) -> None:
        attrs = _variable_attrs(name, value, data_type, array, access)
        self.variables.append(_item(parent, node_id, name, ua.NodeClass.Variable,
                                    ua.ObjectIds.HasComponent, type_definition, attrs))

    def prop(self, parent: ua.NodeId, name: str, value: Any, data_type: int) -> None:
        node_id = ua.NodeId(f"{parent.Identifier}/{name}", NS)
        attrs = _variable_attrs(name, ua.Variant(value), data_type, False)
        self.properties.append(_item(parent, node_id, name, ua.NodeClass.Variable,
                                     ua.ObjectIds.HasProperty, ua.ObjectIds.PropertyType, attrs,
                                     browse_ns=0))

    async def commit(self, server: Server, shared: SharedAttributes) -> None:
        """Add the collected nodes, share their constant attributes, forget the items."""
        session = server.iserver.isession
        aspace = server.iserver.aspace
        for items, own in ((self.objects, _OWN_ATTRIBUTES), (self.variables, _OWN_ATTRIBUTES),
                           (self.properties, _OWN_PROPERTY_ATTRIBUTES)):
            if not items:
                continue
            results = await session.add_nodes(items)
            bad = [(it.RequestedNewNodeId, r.StatusCode) for it, r in zip(items, results, strict=True)
                   if not r.StatusCode.is_good()]
            if bad:
                raise RuntimeError(f"could not create {len(bad)} OPC-UA nodes, first: {bad[0]}")
            share_constant_attributes(aspace, [it.RequestedNewNodeId for it in items], own, shared)
            items.clear()


async def build_address_space(server: Server, catalog: Catalog,
                              writable: frozenset[str] = frozenset(),
                              live: LiveCache | None = None) -> AddressSpace:
    """Create every node the gateway serves under ``Objects/RefineryIQ`` (the tag nodes
    lazily, see the module docstring); the tags named in ``writable`` get AccessLevel
    CurrentRead|CurrentWrite, every other node CurrentRead. A tag node created later takes
    its first Value from ``live`` (None: BadWaitingForInitialData)."""
    b = _Builder()
    shared = SharedAttributes()
    root = b.folder(ua.NodeId(ua.ObjectIds.ObjectsFolder), folder_id(), ROOT)
    plant = catalog.plant
    for unit in plant.units:
        unit_node = b.folder(root, folder_id(unit.id), unit.id)
        _figures(b, unit_node, (unit.id, "KPIs"), KPI_FIGURES)
    for equipment in plant.equipment:
        eq_node = b.folder(folder_id(equipment.unit_id), folder_id(equipment.unit_id, equipment.id),
                           equipment.id)
        _figures(b, eq_node, (equipment.unit_id, equipment.id, "Health"), HEALTH_FIGURES)
    _figures(b, root, ("KPIs",), KPI_FIGURES)
    _figures(b, root, ("Gateway",), GATEWAY_FIGURES)
    _figures(b, root, ("Alarms",), ALARM_FIGURES)
    figures = {tuple(str(it.RequestedNewNodeId.Identifier).split("/")[1:]): it.RequestedNewNodeId
               for it in b.variables}
    n_plant = len(plant.tags)
    parents = [_tag_parent(b, root, tag, i - n_plant, len(catalog) - n_plant)
               for i, tag in enumerate(catalog.tags)]
    await b.commit(server, shared)
    aspace = server.iserver.aspace
    for node_id in figures.values():  # nothing computed yet: Bad, not a Good null
        aspace.get(node_id).attributes[ua.AttributeIds.Value].value = _waiting()
    lazy = LazyTags(server, catalog, parents, writable, shared, live)
    lazy.add_folder_references()
    nodes = aspace._nodes
    if not isinstance(nodes, CompactNodes):  # the standard nodes were built in-process
        nodes = aspace._nodes = CompactNodes({}, cache=nodes)
    nodes.lazy = lazy
    return AddressSpace(tag_attrs=lazy.attrs, tag_nodes=lazy.node_ids, figures=figures,
                        root=root, lazy=lazy)


class LazyTags:
    """The tag nodes (variable and properties) of the catalog, created on first touch.

    Called by the node table (:class:`CompactNodes`) on the server's loop, synchronously,
    from inside whatever asyncua service asked for the node.
    """

    def __init__(self, server: Server, catalog: Catalog, parents: list[ua.NodeId],
                 writable: frozenset[str], shared: SharedAttributes, live: LiveCache | None):
        self.server = server
        self.catalog = catalog
        self.parents = parents
        self.writable = writable
        self.shared = shared
        self.live = live
        self.node_ids = [tag_node_id(t.id) for t in catalog.tags]
        self.attrs: list[Any] = [None] * len(catalog)
        self.created = 0
        self._building: set[ua.NodeId] = set()

    def add_folder_references(self) -> None:
        """The forward HasComponent reference of every tag in its folder (what asyncua's
        add-node code adds to the parent; it finds it there when the tag is created)."""
        aspace = self.server.iserver.aspace
        has_component = _node_id(ua.ObjectIds.HasComponent)
        analog_item = _node_id(ua.ObjectIds.AnalogItemType)
        for tag, node_id, parent in zip(self.catalog.tags, self.node_ids, self.parents, strict=True):
            desc = ua.ReferenceDescription()
            desc.ReferenceTypeId = has_component
            desc.NodeId = node_id
            desc.NodeClass = ua.NodeClass.Variable
            desc.BrowseName = ua.QualifiedName(tag.id, NS)
            desc.DisplayName = ua.LocalizedText(tag.id)
            desc.TypeDefinition = analog_item
            desc.IsForward = True
            aspace[parent].references.append(desc)

    def knows(self, node_id: Any) -> bool:
        """A tag node or one of its properties, not created yet (nor being created)."""
        if (not isinstance(node_id, ua.NodeId) or node_id.NamespaceIndex != NS
                or not isinstance(node_id.Identifier, str) or node_id in self._building):
            return False
        tag_id, _, prop = node_id.Identifier.partition("/")
        i = self.catalog.index.get(tag_id)
        return i is not None and (not prop or prop in _property_names(self.catalog.tags[i]))

    def materialize(self, node_id: ua.NodeId) -> None:
        """Create the tag of ``node_id`` and its properties (asyncua's add-node code)."""
        i = self.catalog.index[node_id.Identifier.partition("/")[0]]
        tag = self.catalog.tags[i]
        b = _Builder()
        b.variable(self.parents[i], self.node_ids[i], tag.id, ua.Variant(None, ua.VariantType.Null),
                   ua.ObjectIds.Double, ua.ObjectIds.AnalogItemType,
                   access=_READ_WRITE if tag.id in self.writable else _READ)
        _properties(b, self.node_ids[i], tag)
        aspace = self.server.iserver.aspace
        service = self.server.iserver.node_mgt_service
        groups = ((b.variables, _OWN_ATTRIBUTES), (b.properties, _OWN_PROPERTY_ATTRIBUTES))
        ids = [it.RequestedNewNodeId for items, _ in groups for it in items]
        self._building.update(ids)
        try:
            for items, own in groups:
                for item in items:
                    result = service._add_node(item, _ADMIN)
                    if not result.StatusCode.is_good():
                        raise RuntimeError(f"could not create OPC-UA node {item.RequestedNewNodeId}: "
                                           f"{result.StatusCode}")
                share_constant_attributes(aspace, [it.RequestedNewNodeId for it in items], own,
                                          self.shared)
        finally:
            self._building.difference_update(ids)
        attr = aspace[self.node_ids[i]].attributes[ua.AttributeIds.Value]
        attr.value = self.current(i)
        self.attrs[i] = attr
        self.created += 1

    def current(self, i: int) -> ua.DataValue:
        """The tag's DataValue from the live cache, as the flush would write it."""
        live = self.live
        if live is None:
            return _waiting()
        code = status_code(live.quality[i], live.reason[i])
        ts = float(live.source_ts[i])
        source = dt.datetime.fromtimestamp(ts, dt.UTC) if ts > 0 else None
        return data_value(float(live.values[i]), code, source, dt.datetime.now(dt.UTC))


def _property_names(tag: Tag) -> tuple[str, ...]:
    if tag.instrument_min is not None and tag.instrument_max is not None:
        return ("EURange", "InstrumentRange", "EngineeringUnits")
    return ("EURange", "EngineeringUnits")


def _properties(b: _Builder, node_id: ua.NodeId, tag: Tag) -> None:
    b.prop(node_id, "EURange", ua.Range(Low=tag.normal_min, High=tag.normal_max), ua.ObjectIds.Range)
    if tag.instrument_min is not None and tag.instrument_max is not None:
        b.prop(node_id, "InstrumentRange",
               ua.Range(Low=tag.instrument_min, High=tag.instrument_max), ua.ObjectIds.Range)
    b.prop(node_id, "EngineeringUnits", eu_information(tag.engineering_units),
           ua.ObjectIds.EUInformation)


def _waiting() -> ua.DataValue:
    return ua.DataValue(ua.Variant(None, ua.VariantType.Null),
                        ua.StatusCode(ua.StatusCodes.BadWaitingForInitialData))


def _tag_parent(b: _Builder, root: ua.NodeId, tag: Tag, syn_pos: int, syn_count: int) -> ua.NodeId:
    if tag.id.startswith(SYNTHETIC_PREFIX):
        syn = b.folder(root, folder_id(SYNTHETIC_FOLDER), SYNTHETIC_FOLDER)
        first = syn_pos // SYNTHETIC_FOLDER_SIZE * SYNTHETIC_FOLDER_SIZE + 1
        last = min(first + SYNTHETIC_FOLDER_SIZE - 1, syn_count)
        name = f"{SYNTHETIC_PREFIX}{first:05d}..{last:05d}"
        return b.folder(syn, folder_id(SYNTHETIC_FOLDER, name), name)
    unit_id = tag.unit_id or PLANT_FOLDER
    parent = b.folder(root, folder_id(unit_id), unit_id)
    if tag.equipment_id:
        parent = b.folder(parent, folder_id(unit_id, tag.equipment_id), tag.equipment_id)
    return parent


def _figures(b: _Builder, parent: ua.NodeId, path: tuple[str, ...],
             figures: dict[str, ua.VariantType]) -> None:
    node = b.folder(parent, folder_id(*path), path[-1])
    for name, vtype in figures.items():
        array = (path[-1], name) in _ARRAY_FIGURES
        b.variable(node, figure_id(*path, name), name, ua.Variant(None, ua.VariantType.Null),
                   _DATA_TYPES[vtype], array=array)


_DATA_TYPES = {
    ua.VariantType.Double: ua.ObjectIds.Double, ua.VariantType.String: ua.ObjectIds.String,
    ua.VariantType.UInt32: ua.ObjectIds.UInt32, ua.VariantType.UInt64: ua.ObjectIds.UInt64,
    ua.VariantType.DateTime: ua.ObjectIds.UtcTime,
}


def _variable_attrs(name: str, value: ua.Variant, data_type: int,
                    array: bool, access: int = _READ) -> ua.VariableAttributes:
    attrs = ua.VariableAttributes()
    attrs.DisplayName = attrs.Description = ua.LocalizedText(name)
    attrs.DataType = _node_id(data_type)
    attrs.Value = value
    attrs.ValueRank = ua.ValueRank.OneDimension if array else ua.ValueRank.Scalar
    if array:
        attrs.ArrayDimensions = [0]
    attrs.AccessLevel = access
    attrs.UserAccessLevel = access
    return attrs


def _item(parent: ua.NodeId, node_id: ua.NodeId, name: str, node_class: ua.NodeClass,
          reference: int, type_definition: int, attrs: Any, browse_ns: int = NS) -> ua.AddNodesItem:
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = node_id
    item.BrowseName = ua.QualifiedName(name, browse_ns)
    item.NodeClass = node_class
    item.ParentNodeId = parent
    item.ReferenceTypeId = _node_id(reference)
    item.TypeDefinition = _node_id(type_definition)
    item.NodeAttributes = attrs
    return item


@functools.cache
def _node_id(identifier: int) -> ua.NodeId:
    """One NodeId object per standard node (reference and data types): every node's
    references and DataType point to it instead of holding a copy."""
    return ua.NodeId(identifier)


class SharedAttributes:
    """One AttributeValue per distinct (attribute, value, status) among the nodes built, and
    one NodeId per reference type or type definition their references name."""

    def __init__(self) -> None:
        self.attributes: dict[tuple[Any, ...], Any] = {}
        self.node_ids: dict[ua.NodeId, ua.NodeId] = {}

    def attribute(self, attribute_id: ua.AttributeIds, attr: Any) -> Any:
        dv = attr.value
        if dv is None or attr.value_callback is not None:
            return attr
        key = (attribute_id, _value_key(dv.Value), dv.StatusCode.value if dv.StatusCode else None)
        return self.attributes.setdefault(key, attr)

    def node_id(self, node_id: Any) -> Any:
        return self.node_ids.setdefault(node_id, node_id) if isinstance(node_id, ua.NodeId) else node_id


def _value_key(variant: ua.Variant | None) -> Any:
    """A hashable key equal for equal Variants (asyncua's structures are unhashable
    dataclasses; their repr lists every field)."""
    if variant is None:
        return None
    value = variant.Value
    if value is None or isinstance(value, int | float | str | bool):
        return (variant.VariantType, type(value), value, variant.is_array)
    return (variant.VariantType, repr(value), variant.is_array)


def share_standard_values(aspace: Any) -> None:
    """Make the standard nodes' equal attribute DataValues (Values aside) one object each.

    Only the DataValue is shared, not the AttributeValue: asyncua itself writes attributes
    of standard nodes (the Server object's EventNotifier when an event generator starts, the
    server status), and a write replaces that node's DataValue, never the shared object.
    """
    shared: dict[tuple[Any, ...], ua.DataValue] = {}
    for node_id in list(aspace.keys()):
        for attribute_id, attr in aspace[node_id].attributes.items():
            dv = attr.value
            if attribute_id in _OWN_ATTRIBUTES or dv is None or attr.value_callback is not None:
                continue
            key = (attribute_id, _value_key(dv.Value), dv.StatusCode.value if dv.StatusCode else None,
                   dv.SourceTimestamp, dv.ServerTimestamp)
            attr.value = shared.setdefault(key, dv)


def share_constant_attributes(aspace: Any, node_ids: Iterable[ua.NodeId],
                              own: frozenset[ua.AttributeIds], shared: SharedAttributes) -> None:
    """Make the given nodes' attributes other than ``own`` the shared objects of equal value.

    Sound because none of them is ever written: clients may write only a Value (asyncua
    refuses every other attribute to non-administrators, and remote administration is
    off), the gateway writes only tag and figure Values (in ``own``), and no node is ever
    deleted. A client's monitored item on a shared attribute registers on the shared object
    and is never triggered, as it would never be on its own copy. A shared property Value
    carries the timestamps of the first node that had it (all are set by the same build).
    """
    for node_id in node_ids:
        node = aspace[node_id]
        attributes = node.attributes
        for attribute_id, attr in attributes.items():
            if attribute_id not in own:
                attributes[attribute_id] = shared.attribute(attribute_id, attr)
        for ref in node.references:
            ref.ReferenceTypeId = shared.node_id(ref.ReferenceTypeId)
            ref.TypeDefinition = shared.node_id(ref.TypeDefinition)


# --------------------------------------------------------------------------- tag values


class TagWriter:
    """Writes tag values into the address space (the hot path, see the module docstring)."""

    def __init__(self, space: AddressSpace):
        self.attrs = space.tag_attrs
        self._own: list[bool] = [False] * len(self.attrs)  # DataValue ours to mutate

    def write(self, index: np.ndarray, values: np.ndarray, codes: np.ndarray,
              source_ts: np.ndarray, now: dt.datetime) -> list[tuple[Any, ua.DataValue]]:
        """Set the given tags; returns (attribute, DataValue) pairs whose datachange callbacks
        the caller must run (:func:`notify`)."""
        pending = []
        attrs, own = self.attrs, self._own
        for i, value, code, ts in zip(index.tolist(), values.tolist(), codes.tolist(),
                                      source_ts.tolist(), strict=True):
            attr = attrs[i]
            if attr is None:  # no node yet: it takes the live value when created
                continue
            source = dt.datetime.fromtimestamp(ts, dt.UTC) if ts > 0 else None
            dv = attr.value
            if (own[i] and not attr.datachange_callbacks and code == GOOD
                    and dv.StatusCode.value == GOOD):
                dv.Value.Value = value
                dv.SourceTimestamp = source
                dv.ServerTimestamp = now
                continue
            dv = data_value(value, code, source, now)
            attr.value = dv
            if attr.datachange_callbacks:
                own[i] = False
                pending.append((attr, dv))
            else:
                own[i] = code == GOOD  # a Bad DataValue has a null Variant: never reuse it
        return pending


async def notify(pending: Iterable[tuple[Any, ua.DataValue]]) -> None:
    """Run the datachange callbacks (client subscriptions) of updated nodes."""
    for attr, dv in pending:
        for handle, callback in list(attr.datachange_callbacks.items()):
            await callback(handle, dv)


def data_value(value: Any, code: int, source: dt.datetime | None, now: dt.datetime,
               vtype: ua.VariantType = _DOUBLE) -> ua.DataValue:
    """A DataValue; null for a Bad code (Part 4, 7.7.1) or a missing (None/NaN) value."""
    if is_bad(code) or value is None or (isinstance(value, float) and value != value):
        variant = ua.Variant(None, ua.VariantType.Null)
        if not is_bad(code):
            code = ua.StatusCodes.BadDataUnavailable
    else:
        variant = ua.Variant(value, vtype)
    return ua.DataValue(variant, ua.StatusCode(code), SourceTimestamp=source, ServerTimestamp=now)
