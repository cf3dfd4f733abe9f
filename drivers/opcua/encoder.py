"""One engineering value to the Variant an OPC-UA Write sends, in the node's own DataType.

Pure, and refusing rather than guessing (:class:`drivers.base.WriteNotEncodable`): a server
answers a Variant of another type with BadTypeMismatch, and silently rounding 12.3 into an
Int32 node would write a value nobody asked for. Numbers: Double as is; Float when inside the
float32 range (rounded to the nearest float32); integer types only for whole numbers inside the
type's range; Boolean only for 0 and 1. A node whose DataType is abstract (BaseDataType, Number)
gets a Double, Integer an Int64, UInteger a UInt64; any other DataType (String, DateTime,
structures, enumerations) is refused.
"""

from __future__ import annotations

import math

import numpy as np
from asyncua import ua

from drivers.base import WriteNotEncodable

_INTEGER_RANGE: dict[ua.VariantType, tuple[int, int]] = {
    ua.VariantType.SByte: (-(1 << 7), (1 << 7) - 1),
    ua.VariantType.Byte: (0, (1 << 8) - 1),
    ua.VariantType.Int16: (-(1 << 15), (1 << 15) - 1),
    ua.VariantType.UInt16: (0, (1 << 16) - 1),
    ua.VariantType.Int32: (-(1 << 31), (1 << 31) - 1),
    ua.VariantType.UInt32: (0, (1 << 32) - 1),
    ua.VariantType.Int64: (-(1 << 63), (1 << 63) - 1),
    ua.VariantType.UInt64: (0, (1 << 64) - 1),
}
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# Built-in DataTypes (namespace 0, ids 1..11) share their numbers with the VariantTypes.
_BUILT_IN = {int(t): t for t in (ua.VariantType.Boolean, ua.VariantType.Float, ua.VariantType.Double,
                                  *_INTEGER_RANGE)}
# Abstract and derived numeric DataTypes (OPC 10000-3 §8, OPC 10000-5 §12).
_DERIVED = {
    ua.ObjectIds.BaseDataType: ua.VariantType.Double,
    ua.ObjectIds.Number: ua.VariantType.Double,
    ua.ObjectIds.Integer: ua.VariantType.Int64,
    ua.ObjectIds.UInteger: ua.VariantType.UInt64,
    ua.ObjectIds.Duration: ua.VariantType.Double,
}


def variant_type_for(data_type: ua.NodeId) -> ua.VariantType | None:
    """The VariantType a write to a node of ``data_type`` sends; None when not a number type."""
    if data_type.NamespaceIndex != 0 or not isinstance(data_type.Identifier, int):
        return None
    return _BUILT_IN.get(data_type.Identifier) or _DERIVED.get(data_type.Identifier)


def data_type_name(data_type: ua.NodeId) -> str:
    """A DataType's name for messages ("Int16", "String"), or its node id string."""
    if data_type.NamespaceIndex == 0 and isinstance(data_type.Identifier, int):
        name = ua.ObjectIdNames.get(data_type.Identifier)
        if name:
            return name
    return data_type.to_string()


def encode_variant(value: float, variant_type: ua.VariantType) -> ua.Variant:
    """The Variant of ``value`` for a node written as ``variant_type``; WriteNotEncodable if none."""
    if not math.isfinite(value):
        raise WriteNotEncodable(f"value {value} is not a finite number")
    if variant_type == ua.VariantType.Double:
        return ua.Variant(float(value), variant_type)
    if variant_type == ua.VariantType.Float:
        if abs(value) > _FLOAT32_MAX:
            raise WriteNotEncodable(f"value {value:g} is beyond the range of the node's DataType Float")
        return ua.Variant(float(np.float32(value)), variant_type)
    if variant_type == ua.VariantType.Boolean:
        if value not in (0.0, 1.0):
            raise WriteNotEncodable(f"the node's DataType is Boolean: write 0 or 1, not {value:g}")
        return ua.Variant(value == 1.0, variant_type)
    limits = _INTEGER_RANGE.get(variant_type)
    if limits is None:
        raise WriteNotEncodable(f"the node's DataType {variant_type.name} is not a number type")
    if not float(value).is_integer():
        raise WriteNotEncodable(f"the node's DataType {variant_type.name} holds whole numbers; "
                                f"{value:g} is not one")
    lo, hi = limits
    if not lo <= value <= hi:
        raise WriteNotEncodable(f"value {value:g} is outside the node's DataType {variant_type.name} ({lo}..{hi})")
    return ua.Variant(int(value), variant_type)
