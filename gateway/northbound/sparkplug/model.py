"""What the edge node announces: its node metrics and, per device, the tags as metrics with
their aliases, names, datatypes and static properties. Built from the catalog, no I/O.

Aliases are unique across the whole edge node, as Sparkplug 3.0 requires of aliases given in
NBIRTH and DBIRTH (section 6.4.6): node metrics take 0..99, tags 100 upwards in the order
(device, tag) they are listed, so the same configuration always gives the same aliases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from gateway.northbound.sparkplug import sparkplug_b_pb2 as pb
from gateway.northbound.sparkplug.topics import check_id
from plant.catalog import Catalog
from plant.schema import Tag, TagType

FIRST_TAG_ALIAS = 100
REBIRTH = "Node Control/Rebirth"


class MetricKind(IntEnum):
    """How a tag's float64 value is sent."""

    DOUBLE = 0
    BOOLEAN = 1  # a status tag or a Modbus bit: 0 is false, anything else true


class Property:
    """Property keys of a tag's metric. ``Quality`` is the key Sparkplug hosts (Ignition's
    MQTT Engine among them) read a metric's quality from; the others are the tag's catalog
    fields under the names those hosts map to engineering properties."""

    QUALITY = "Quality"
    REASON = "qualityReason"
    ENG_UNIT = "engUnit"
    DESCRIPTION = "description"
    NORMAL_LOW = "normalLow"
    NORMAL_HIGH = "normalHigh"
    ENG_LOW = "engLow"
    ENG_HIGH = "engHigh"
    WRITABLE = "writable"


@dataclass(frozen=True, slots=True)
class NodeMetric:
    """A metric of the edge node itself, announced in NBIRTH."""

    name: str
    alias: int
    datatype: int


class NodeMetrics:
    """The node metrics, in NBIRTH order (``bdSeq`` is added by the payload itself)."""

    REBIRTH = NodeMetric(REBIRTH, 1, pb.Boolean)
    HEALTH = NodeMetric("Gateway/Health", 2, pb.String)
    VALUES_PER_S = NodeMetric("Gateway/Values per second", 3, pb.Double)
    STORE_BACKLOG = NodeMetric("Gateway/Store backlog values", 4, pb.UInt64)
    ALL = (REBIRTH, HEALTH, VALUES_PER_S, STORE_BACKLOG)


@dataclass(frozen=True, slots=True)
class TagMetric:
    """One tag as a metric of its device."""

    tag_index: int
    tag_id: str
    name: str
    alias: int
    kind: MetricKind
    datatype: int
    properties: pb.Payload.PropertySet  # the static ones; quality is added per message


@dataclass(frozen=True)
class DeviceModel:
    """One southbound device as a Sparkplug device: its tags as metrics, and columns to map a
    Batch's catalog indices to aliases in one numpy step."""

    device_id: str
    metrics: tuple[TagMetric, ...]
    tag_index: np.ndarray  # catalog indices, parallel to ``metrics``

    def alias_columns(self, catalog_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(alias, kind) per catalog index; alias -1 for tags not on this device."""
        alias = np.full(catalog_size, -1, dtype=np.int64)
        kind = np.zeros(catalog_size, dtype=np.int8)
        alias[self.tag_index] = [m.alias for m in self.metrics]
        kind[self.tag_index] = [int(m.kind) for m in self.metrics]
        return alias, kind


def metric_name(tag: Tag) -> str:
    """``{unit}/{equipment}/{tag}``, the path the northbound OPC-UA server also uses; hosts
    show the '/' levels as folders. Levels a tag has no value for are left out."""
    return "/".join(p for p in (tag.unit_id, tag.equipment_id, tag.id) if p)


def tag_kind(tag: Tag) -> MetricKind:
    if tag.tag_type == TagType.STATUS or (tag.modbus is not None and tag.modbus.table.is_bits):
        return MetricKind.BOOLEAN
    return MetricKind.DOUBLE


def static_properties(tag: Tag) -> pb.Payload.PropertySet:
    """The catalog's description of a tag: engineering unit, description, normal range,
    instrument range when known, and whether it can be written."""
    props = pb.Payload.PropertySet()

    def add(key: str, **value) -> None:
        props.keys.append(key)
        props.values.add(**value)

    add(Property.ENG_UNIT, type=pb.String, string_value=tag.engineering_units)
    add(Property.DESCRIPTION, type=pb.String, string_value=tag.description or tag.name)
    add(Property.NORMAL_LOW, type=pb.Double, double_value=tag.normal_min)
    add(Property.NORMAL_HIGH, type=pb.Double, double_value=tag.normal_max)
    if tag.instrument_min is not None:
        add(Property.ENG_LOW, type=pb.Double, double_value=tag.instrument_min)
    if tag.instrument_max is not None:
        add(Property.ENG_HIGH, type=pb.Double, double_value=tag.instrument_max)
    add(Property.WRITABLE, type=pb.Boolean, boolean_value=tag.writable)
    return props


def build_devices(catalog: Catalog, device_tags: Mapping[str, Sequence[int]]) -> dict[str, DeviceModel]:
    """A DeviceModel per device with at least one tag, aliases numbered across all of them."""
    devices: dict[str, DeviceModel] = {}
    alias = FIRST_TAG_ALIAS
    for device_id, indices in device_tags.items():
        check_id("device id", device_id)
        unique = list(dict.fromkeys(int(i) for i in indices))
        if not unique:
            continue
        metrics = []
        for i in unique:
            tag = catalog.tags[i]
            kind = tag_kind(tag)
            metrics.append(TagMetric(
                tag_index=i, tag_id=tag.id, name=metric_name(tag), alias=alias, kind=kind,
                datatype=pb.Boolean if kind == MetricKind.BOOLEAN else pb.Double,
                properties=static_properties(tag)))
            alias += 1
        devices[device_id] = DeviceModel(device_id, tuple(metrics),
                                         np.array(unique, dtype=np.int64))
    return devices


def device_tags_from_plans(plans: Mapping[str, object]) -> dict[str, list[int]]:
    """Catalog indices per device from the pipeline's scan-group plans (``GroupPlan`` has
    ``group.device`` and ``tag_index``), in the order the groups list them."""
    out: dict[str, list[int]] = {}
    for plan in plans.values():
        out.setdefault(plan.group.device, []).extend(int(i) for i in plan.tag_index)
    return {d: list(dict.fromkeys(idx)) for d, idx in out.items()}
