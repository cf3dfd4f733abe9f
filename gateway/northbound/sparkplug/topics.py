"""Sparkplug B topics (Eclipse Sparkplug 3.0, chapter 4): pure functions, no I/O.

``spBv1.0/{group_id}/{message_type}/{edge_node_id}[/{device_id}]`` for the edge node and its
devices, ``spBv1.0/STATE/{host_id}`` for a host application's state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

NAMESPACE = "spBv1.0"
_ID = re.compile(r"^[^/+#]+$")


class MessageType(StrEnum):
    """The message types of the edge node and its devices (section 4.1.2)."""

    NBIRTH = "NBIRTH"
    NDEATH = "NDEATH"
    NDATA = "NDATA"
    NCMD = "NCMD"
    DBIRTH = "DBIRTH"
    DDEATH = "DDEATH"
    DDATA = "DDATA"
    DCMD = "DCMD"


def check_id(kind: str, value: str) -> str:
    """``value`` if it is a valid Sparkplug id, else ValueError naming ``kind``: ids are
    topic levels, so they must not hold '/', '+' or '#' (section 4.1.1)."""
    if not _ID.match(value):
        raise ValueError(f"{kind} {value!r} is not a valid Sparkplug id: it must be non-empty "
                         "and must not contain '/', '+' or '#'")
    return value


def topic(group_id: str, message_type: MessageType, edge_node_id: str,
          device_id: str | None = None) -> str:
    """The topic of one message of the edge node (``device_id`` for D* messages)."""
    base = f"{NAMESPACE}/{group_id}/{message_type}/{edge_node_id}"
    return base if device_id is None else f"{base}/{device_id}"


def state_topic(host_id: str) -> str:
    """The Sparkplug 3.0 STATE topic of a host application."""
    return f"{NAMESPACE}/STATE/{host_id}"


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed edge-node topic."""

    group_id: str
    message_type: MessageType
    edge_node_id: str
    device_id: str | None = None


def parse(name: str) -> Topic | None:
    """The parts of an edge-node topic, or None for anything else (STATE included)."""
    parts = name.split("/")
    if len(parts) not in (4, 5) or parts[0] != NAMESPACE:
        return None
    try:
        kind = MessageType(parts[2])
    except ValueError:
        return None
    return Topic(parts[1], kind, parts[3], parts[4] if len(parts) == 5 else None)
