"""The `[sparkplug]` section: the gateway as a Sparkplug B edge node (Eclipse Sparkplug 3.0).

Off by default. It publishes to the broker of `[mqtt]` (host, port, TLS and credentials come
from there), beside the gateway's own `refineryiq/...` topics, on
``spBv1.0/{group_id}/{NBIRTH|NDATA|NDEATH|DBIRTH|DDATA|DDEATH}/{edge_node_id}[/{device}]``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from plant.schema import Strict

# Sparkplug 3.0 (section 4.1.1): group, edge node and device ids are UTF-8 strings without
# the MQTT separators and wildcards '/', '+' and '#'.
SPARKPLUG_ID = r"^[^/+#]+$"


class SparkplugSettings(Strict):
    """The Sparkplug B edge node (see gateway/northbound/sparkplug/README.md)."""

    enabled: bool = False
    # Sparkplug group id; default: the gateway's ``site``.
    group_id: str | None = Field(default=None, pattern=SPARKPLUG_ID)
    # Edge node id; default: the gateway's ``gateway_id``.
    edge_node_id: str | None = Field(default=None, pattern=SPARKPLUG_ID)
    # The Primary Host Application's host id: when set, the node waits for
    # ``spBv1.0/STATE/{primary_host_id}`` to say online before its births, and holds its data
    # (replayed as historical metrics afterwards) while the host is offline.
    primary_host_id: str | None = Field(default=None, pattern=SPARKPLUG_ID)
    # DCMD writes go to the gateway's write path only when this is on, with this role (a
    # DCMD names no user: the role is what the plant grants the Sparkplug host).
    allow_commands: bool = False
    command_role: Literal["operator", "supervisor", "admin"] = "supervisor"
    # Report by exception: a value is published when it moves by more than the tag's own
    # ``deadband`` (engineering units, config/plant.toml), or by this percentage of its normal
    # span when the tag has none, or when its quality changes.
    deadband_pct: float = Field(default=0.5, ge=0, le=100)
    # 0: each accepted scan is published as it comes (one DDATA per device and scan). More:
    # the changes of every scan within the period go out together, one DDATA per device.
    publish_period_s: float = Field(default=0.0, ge=0, le=60)
    # The node metrics (health, values/s, store backlog) are published in NDATA this often
    # when they changed.
    node_metrics_period_s: float = Field(default=10.0, ge=1, le=3600)
