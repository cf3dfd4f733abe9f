"""One scan group as an OPC-UA subscription: monitored items in, one Batch per publish out.

We talk to asyncua's session directly (CreateSubscription with our own publish callback,
CreateMonitoredItems with client handle = position in the group) rather than through its
high-level Subscription, which dispatches every single value to a handler task. Here a whole
DataChangeNotification becomes one Batch with a few list comprehensions.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import numpy as np
from asyncua import ua
from asyncua.client.ua_client import UaClient

from drivers.base import BatchCallback
from drivers.batch import Batch
from drivers.opcua.codec import chunk_slices
from drivers.opcua.nodes import NodeGroup
from drivers.quality import QUALITY_DTYPE, REASON_DTYPE, Quality, Reason
from plant.devices import ScanGroup

_log = logging.getLogger(__name__)

# Keep-alive about every 5 s when nothing changes; the server drops the subscription after
# LIFETIME_FACTOR keep-alives without a publish request (Part 4, 5.13.1: lifetime >= 3 x keep-alive).
KEEPALIVE_TARGET_MS = 5000.0
LIFETIME_FACTOR = 10
DEADBAND_ABSOLUTE = 1  # DeadbandType (Part 8, 6.2): 0 None, 1 Absolute, 2 Percent


def subscription_parameters(group: ScanGroup) -> ua.CreateSubscriptionParameters:
    """CreateSubscription parameters for a group: publishing interval = the group's interval."""
    keepalive = max(1, math.ceil(KEEPALIVE_TARGET_MS / group.interval_ms))
    params = ua.CreateSubscriptionParameters()
    params.RequestedPublishingInterval = float(group.interval_ms)
    params.RequestedMaxKeepAliveCount = keepalive
    params.RequestedLifetimeCount = keepalive * LIFETIME_FACTOR
    params.MaxNotificationsPerPublish = 0  # no limit: one publish carries the whole change set
    params.PublishingEnabled = True
    params.Priority = 0
    return params


def data_change_filter(deadband: float) -> ua.DataChangeFilter | None:
    """Absolute deadband filter for the group's deadband; None (every change) when 0."""
    if deadband <= 0:
        return None
    return ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValue,
                               DeadbandType=DEADBAND_ABSOLUTE, DeadbandValue=float(deadband))


def monitored_item_requests(nodes: NodeGroup, group: ScanGroup) -> list[ua.MonitoredItemCreateRequest]:
    """One Reporting monitored item per node; the client handle is the node's group position."""
    mfilter = data_change_filter(group.deadband)
    requests = []
    for position, node_id in enumerate(nodes.node_ids):
        params = ua.MonitoringParameters(ClientHandle=position, SamplingInterval=float(group.interval_ms),
                                         Filter=mfilter, QueueSize=group.queue_size, DiscardOldest=True)
        requests.append(ua.MonitoredItemCreateRequest(
            ItemToMonitor=ua.ReadValueId(NodeId=node_id, AttributeId=ua.AttributeIds.Value),
            MonitoringMode=ua.MonitoringMode.Reporting, RequestedParameters=params))
    return requests


class GroupSubscription:
    """A ``mode = "subscribe"`` scan group: creates its subscription on a session, delivers Batches.

    ``create`` is called again on every new session (after a reconnect); the callback keeps
    receiving Batches in the order the server published them.
    """

    def __init__(self, nodes: NodeGroup, group: ScanGroup, callback: BatchCallback,
                 on_batch: Callable[[Batch], None] | None = None):
        self.nodes = nodes
        self.group = group
        self.callback = callback
        self._on_batch = on_batch
        self.subscription_id: int | None = None
        self._live = False

    async def create(self, uaclient: UaClient, max_items_per_call: int | None) -> None:
        """Create the subscription and its monitored items on the client's current session.

        Items the server refuses (unknown node, filter not allowed) are delivered at once as
        bad with DEVICE_BAD, so downstream knows they will not update.
        """
        self._live = False
        result = await uaclient.create_subscription(subscription_parameters(self.group), self._on_publish)
        self.subscription_id = result.SubscriptionId
        requests = monitored_item_requests(self.nodes, self.group)
        refused: list[int] = []
        for part in chunk_slices(len(requests), max_items_per_call):
            params = ua.CreateMonitoredItemsParameters()
            params.SubscriptionId = self.subscription_id
            params.TimestampsToReturn = ua.TimestampsToReturn.Source
            params.ItemsToCreate = requests[part]
            results = await uaclient.create_monitored_items(params)
            refused += [part.start + i for i, r in enumerate(results) if not r.StatusCode.is_good()]
        self._live = True
        if refused:
            _log.warning("device %s group %s: server refused %d monitored items (first: %s)",
                         self.nodes.device_id, self.group.id, len(refused),
                         self.nodes.node_ids[refused[0]].to_string())
            await self.deliver_failed(Reason.DEVICE_BAD, np.array(refused, dtype=np.int64))

    async def _on_publish(self, result: ua.PublishResult) -> None:
        """asyncua's publish loop calls this with every PublishResult of our subscription.

        Awaiting the consumer here keeps Batches in publish order; a slow consumer delays the
        next Publish request, and the server queues (and with queue_size 1 coalesces) meanwhile.
        """
        data = result.NotificationMessage.NotificationData
        if not data:
            return  # keep-alive
        for notification in data:
            if isinstance(notification, ua.DataChangeNotification):
                await self._deliver_changes(notification)
            elif isinstance(notification, ua.StatusChangeNotification):
                # The subscription itself ended (server shutdown, timeout, connection lost); the
                # driver reconnects and re-creates it, values are not live until then.
                if not notification.Status.is_good():
                    await self.mark_lost()

    async def _deliver_changes(self, notification: ua.DataChangeNotification) -> None:
        items = [item for item in notification.MonitoredItems if 0 <= item.ClientHandle < len(self.nodes)]
        if not items:
            return
        receive_ts = time.time()
        positions = np.array([item.ClientHandle for item in items], dtype=np.int64)
        batch = self.nodes.to_batch([item.Value for item in items], receive_ts, receive_ts, positions)
        await self._emit(batch)

    async def mark_lost(self) -> None:
        """The subscription no longer exists: deliver the group as DISCONNECTED, once per loss."""
        if self._live:
            self._live = False
            await self.deliver_failed(Reason.DISCONNECTED)

    async def deliver_failed(self, reason: Reason, positions: np.ndarray | None = None) -> None:
        """Deliver the group's tags (or ``positions`` of them) as bad with one reason."""
        now = time.time()
        tag_index = self.nodes.tag_index if positions is None else self.nodes.tag_index[positions]
        n = len(tag_index)
        batch = Batch.build(self.group.id, self.nodes.device_id, now, now, tag_index, np.full(n, np.nan),
                            np.full(n, Quality.BAD, dtype=QUALITY_DTYPE), np.full(n, reason, dtype=REASON_DTYPE))
        await self._emit(batch)

    async def _emit(self, batch: Batch) -> None:
        if self._on_batch is not None:
            self._on_batch(batch)
        try:
            await self.callback(batch)
        except Exception:
            _log.exception("device %s group %s: subscription callback failed", self.nodes.device_id,
                           self.group.id)

