"""One tag at a time on an OPC-UA session: the Write service in the node's DataType, and the
read of the value back.

The node's DataType attribute is read once per session and cached (a write must carry a
Variant of that type, see :mod:`drivers.opcua.encoder`); ``nsu=`` node ids are resolved against
the server's NamespaceArray, also once per session. Errors come out as the
:class:`drivers.base.WriteError` subclasses, with the server's StatusCode name in WriteRefused.
"""

from __future__ import annotations

import asyncio
import math

import numpy as np
from asyncua import Client, ua

from drivers.base import WriteNotConnected, WriteNotEncodable, WriteRefused, WriteTimeout
from drivers.opcua.codec import NULL_NODE_ID, decode_data_values, parse_node_id, read_parameters
from drivers.opcua.encoder import data_type_name, encode_variant, variant_type_for
from drivers.quality import Quality, check_values, from_opcua_status
from plant.schema import Tag


def status_name(code: int) -> str:
    """A StatusCode's symbolic name ("BadNotWritable"), or its hex value when unknown."""
    try:
        return ua.status_codes.get_name_and_doc(code)[0]
    except Exception:  # asyncua raises for codes it does not know
        return f"0x{code:08X}"


class TagAccess:
    """Per-session caches (DataTypes, NamespaceArray) for single-tag writes and reads."""

    def __init__(self, device_id: str):
        self.device_id = device_id
        self._variant_types: dict[str, ua.VariantType] = {}
        self._namespaces: list[str] | None = None

    def reset(self) -> None:
        """Forget what was learned from the server (call on every new session)."""
        self._variant_types.clear()
        self._namespaces = None

    async def node_id(self, client: Client, tag: Tag) -> ua.NodeId:
        """The tag's node id on this server (``nsu=`` resolved); the null node if unparseable."""
        if tag.opcua is None:
            raise WriteNotEncodable(f"tag {tag.id} has no opcua address")
        node_id = parse_node_id(tag.opcua.node_id)
        if isinstance(node_id, ua.ExpandedNodeId) and node_id.NamespaceUri:
            if self._namespaces is None:
                self._namespaces = await client.get_namespace_array()
            if node_id.NamespaceUri not in self._namespaces:
                return NULL_NODE_ID
            return ua.NodeId(node_id.Identifier, self._namespaces.index(node_id.NamespaceUri),
                             node_id.NodeIdType)
        return node_id

    async def write(self, client: Client, tag: Tag, value: float, timeout_s: float) -> None:
        """Write ``value`` to the tag's node (see :meth:`drivers.opcua.OpcUaDriver.write`)."""
        if not math.isfinite(value):
            raise WriteNotEncodable(f"value {value} is not a finite number")
        try:
            async with asyncio.timeout(timeout_s):
                node_id = await self.node_id(client, tag)
                variant_type = await self._variant_type(client, tag, node_id)
        except TimeoutError:
            raise WriteNotConnected(f"{self.device_id}: no answer within {timeout_s} s to the DataType read "
                                    f"of {tag.id}; nothing was written") from None
        variant = encode_variant(value, variant_type)
        params = ua.WriteParameters()
        # Value only: many servers refuse client timestamps in a write (BadWriteNotSupported).
        params.NodesToWrite = [ua.WriteValue(NodeId=node_id, AttributeId=ua.AttributeIds.Value,
                                             Value=ua.DataValue(Value=variant))]
        try:
            async with asyncio.timeout(timeout_s):
                (result,) = await client.uaclient.write(params)
        except TimeoutError:
            raise WriteTimeout(f"{self.device_id}: no answer within {timeout_s} s to the write of {value:g} "
                               f"to {tag.id}; it may have reached the server") from None
        except ua.UaStatusCodeError as exc:
            if exc.code in (ua.StatusCodes.BadTimeout, ua.StatusCodes.BadRequestTimeout):
                raise WriteTimeout(f"{self.device_id}: the write of {value:g} to {tag.id} timed out "
                                   f"({status_name(exc.code)}); it may have reached the server") from None
            raise WriteRefused(f"{self.device_id} refused the write of {value:g} to {tag.id}: "
                               f"{status_name(exc.code)}", status=status_name(exc.code)) from None
        if not result.is_good():
            raise WriteRefused(f"{self.device_id} refused the write of {value:g} to {tag.id}: {result.name}",
                               status=result.name)

    async def _variant_type(self, client: Client, tag: Tag, node_id: ua.NodeId) -> ua.VariantType:
        key = node_id.to_string()
        cached = self._variant_types.get(key)
        if cached is not None:
            return cached
        (data_value,) = await client.uaclient.read_attributes([node_id], ua.AttributeIds.DataType)
        status = data_value.StatusCode
        if status is not None and not status.is_good():
            raise WriteRefused(f"{self.device_id}: the DataType of {tag.id} ({key}) cannot be read: {status.name}",
                               status=status.name)
        data_type = data_value.Value.Value if data_value.Value is not None else None
        if not isinstance(data_type, ua.NodeId):
            raise WriteNotEncodable(f"{self.device_id}: {tag.id} ({key}) has no DataType")
        variant_type = variant_type_for(data_type)
        if variant_type is None:
            raise WriteNotEncodable(f"{tag.id} ({key}) has DataType {data_type_name(data_type)}, "
                                    "not a number type")
        self._variant_types[key] = variant_type
        return variant_type

    async def read(self, client: Client, tag: Tag, timeout_s: float) -> tuple[float, int]:
        """Read the tag's value now: (value, quality code); raises what the service call raises."""
        async with asyncio.timeout(timeout_s):
            node_id = await self.node_id(client, tag)
            data_values = await client.uaclient.read(read_parameters([node_id]))
        if len(data_values) != 1:
            return float("nan"), int(Quality.BAD)
        values, _, status = decode_data_values(data_values, receive_ts=0.0)
        quality, reason = from_opcua_status(status)
        values[quality == Quality.BAD] = np.nan
        lo = np.array([-np.inf if tag.instrument_min is None else tag.instrument_min])
        hi = np.array([np.inf if tag.instrument_max is None else tag.instrument_max])
        check_values(values, quality, reason, lo, hi)
        if quality[0] == Quality.BAD:
            return float("nan"), int(Quality.BAD)
        return float(values[0]), int(quality[0])
