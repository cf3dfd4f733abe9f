"""The OPC-UA client driver: batched polling reads and subscriptions on one server.

One asyncua Client per device. ``read`` sends the group's pre-built Read requests (chunked to the
server's MaxNodesPerRead) and turns the DataValues into one Batch; ``subscribe`` keeps a
subscription per group that pushes Batches. Device trouble never raises: it comes back as bad
quality with a reason, and a background task reconnects with capped exponential backoff
(tenacity), re-creating every subscription on the new session.

asyncua's own auto-reconnect is left off: it would keep a half-dead session object alive across
server restarts, while a fresh Client per connection gives each session a clean state and lets
this driver decide when values stop being live.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

import numpy as np
from asyncua import Client, ua
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from drivers.base import BatchCallback, GroupPlan, WriteNotConnected, WriteRefused, WriteTimeout
from drivers.batch import Batch
from drivers.opcua.nodes import NodeGroup
from drivers.opcua.security import configure_security
from drivers.opcua.stats import DriverStats
from drivers.opcua.subscription import GroupSubscription
from drivers.opcua.tag_access import TagAccess, status_name
from drivers.quality import Quality, Reason
from plant.devices import OpcUaDevice
from plant.schema import Tag

_log = logging.getLogger(__name__)

APPLICATION_NAME = "RefineryIQ Edge"
# A session the server keeps for us after a network cut; short, so abandoned sessions are freed.
SESSION_TIMEOUT_MS = 60_000

# Service results meaning the session or channel is gone: reconnect.
_SESSION_LOST = frozenset({
    ua.StatusCodes.BadSessionIdInvalid, ua.StatusCodes.BadSessionClosed,
    ua.StatusCodes.BadSessionNotActivated, ua.StatusCodes.BadSecureChannelIdInvalid,
    ua.StatusCodes.BadSecureChannelClosed, ua.StatusCodes.BadConnectionClosed,
    ua.StatusCodes.BadServerHalted, ua.StatusCodes.BadShutdown,
    ua.StatusCodes.BadCommunicationError, ua.StatusCodes.BadNotConnected,
    ua.StatusCodes.BadServerNotConnected,
})
_SESSION_LOST_NAMES = frozenset(status_name(code) for code in _SESSION_LOST)
_TIMED_OUT = frozenset({ua.StatusCodes.BadTimeout, ua.StatusCodes.BadRequestTimeout})

_OPERATION_LIMITS = (
    ua.NodeId(ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead),
    ua.NodeId(ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall),
)


def _positive_int(data_value: ua.DataValue) -> int | None:
    """An OperationLimits value: None when unreadable or 0 (the server sets no limit)."""
    if data_value.StatusCode is not None and not data_value.StatusCode.is_good():
        return None
    value = data_value.Value.Value if data_value.Value is not None else None
    return int(value) if isinstance(value, int) and value > 0 else None


def classify_failure(exc: BaseException) -> tuple[Reason, bool]:
    """(reason, session lost?) for an exception raised by a read or subscription service call."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return Reason.TIMEOUT, False
    if isinstance(exc, ua.UaStatusCodeError):
        if exc.code in _TIMED_OUT:
            return Reason.TIMEOUT, False
        if exc.code in _SESSION_LOST:
            return Reason.DISCONNECTED, True
        return Reason.PROTOCOL_ERROR, False
    if isinstance(exc, (ConnectionError, OSError)):
        return Reason.DISCONNECTED, True
    return Reason.PROTOCOL_ERROR, False


class OpcUaDriver:
    """A connection to one OPC-UA server for the scan groups planned on it (see drivers.base.Driver).

    ``backoff_initial_s``/``backoff_max_s`` shape the reconnect backoff. ``watchdog_interval_s``
    (default: the device's ``timeout_s``) is how often the connection is probed with a read of
    ServerStatus.State; asyncua gives each probe at most that long to answer, so it must not be
    shorter than a busy server's answer to a large read or the link would be dropped as dead.
    """

    def __init__(self, device: OpcUaDevice, plans: dict[str, GroupPlan], state_dir: Path, *,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0,
                 watchdog_interval_s: float | None = None):
        self.device_id = device.id
        self.device = device
        self.state_dir = Path(state_dir)
        self.stats = DriverStats()
        self.max_nodes_per_read: int | None = device.max_nodes_per_read
        self.max_items_per_call: int | None = None
        self._plans = plans
        self._groups = {group_id: NodeGroup.from_plan(device.id, plan) for group_id, plan in plans.items()}
        self._subscriptions: dict[str, GroupSubscription] = {}
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._watchdog_interval_s = watchdog_interval_s or device.timeout_s
        self._client: Client | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._tag_access = TagAccess(device.id)
        self._closed = False

    # ------------------------------------------------------------------ connection

    @property
    def connected(self) -> bool:
        """True while a session is up."""
        return self._client is not None

    async def connect(self) -> None:
        """Connect now if the server answers; otherwise keep trying in the background.

        Never raises for device trouble: the failure is in ``stats`` and reads return
        DISCONNECTED until a connection is made.
        """
        self._closed = False
        if self._client is not None or (self._reconnect_task is not None and not self._reconnect_task.done()):
            return
        try:
            await self._connect_once()
        except Exception as exc:
            self._record_failure(Reason.DISCONNECTED, f"connect to {self.device.endpoint} failed: {exc!r}")
            self._start_reconnect()

    async def _connect_once(self) -> None:
        client = Client(self.device.endpoint, timeout=self.device.timeout_s,
                        watchdog_intervall=self._watchdog_interval_s)
        client.name = client.description = APPLICATION_NAME
        client.session_timeout = SESSION_TIMEOUT_MS
        try:
            await configure_security(client, self.device, self.state_dir)
            await client.connect(auto_reconnect=False)
        except BaseException:
            await self._discard(client)
            raise
        client.connection_lost_callback = self._lost_callback(client)
        try:
            await self._read_operation_limits(client)
            await self._resolve_namespaces(client)
            for subscription in self._subscriptions.values():
                await subscription.create(client.uaclient, self.max_items_per_call)
        except BaseException:
            await self._discard(client)
            raise
        self._tag_access.reset()
        self._client = client
        self.stats.connected = True
        self.stats.connects += 1
        _log.info("device %s: connected to %s", self.device_id, self.device.endpoint)

    async def _resolve_namespaces(self, client: Client) -> None:
        """Map ``nsu=`` node ids to this server's namespace indices (read at every connect)."""
        if not any(nodes.namespace_uris for nodes in self._groups.values()):
            return
        namespace_array = await client.get_namespace_array()
        for group_id, nodes in self._groups.items():
            unknown = nodes.resolve_namespaces(namespace_array)
            if unknown:
                _log.warning("device %s group %s: the server has no namespace %s; those tags read bad",
                             self.device_id, group_id, ", ".join(unknown))

    async def _read_operation_limits(self, client: Client) -> None:
        """Take MaxNodesPerRead / MaxMonitoredItemsPerCall from the server unless configured."""
        limits = await client.uaclient.read_attributes(list(_OPERATION_LIMITS), ua.AttributeIds.Value)
        if self.device.max_nodes_per_read is None:
            self.max_nodes_per_read = _positive_int(limits[0])
        self.max_items_per_call = _positive_int(limits[1])

    def _lost_callback(self, client: Client):
        async def lost(exc: Exception) -> None:
            self._connection_lost(client, f"connection lost: {exc!r}")
        return lost

    def _connection_lost(self, client: Client, message: str) -> None:
        """The session of ``client`` is gone: values stop being live, reconnect in the background."""
        if client is not self._client:
            return  # an old client's late news
        self._client = None
        self.stats.connected = False
        self._record_failure(Reason.DISCONNECTED, message)
        _log.warning("device %s: %s", self.device_id, message)
        # Runs in a task: the loss is often reported from inside the client's own supervisor task,
        # which disconnect() cancels.
        self._spawn(self._discard(client))
        for subscription in self._subscriptions.values():
            self._spawn(subscription.mark_lost())
        self._start_reconnect()

    def _start_reconnect(self) -> None:
        if self._closed or (self._reconnect_task is not None and not self._reconnect_task.done()):
            return
        self._reconnect_task = asyncio.create_task(self._reconnect(), name=f"opcua-reconnect-{self.device_id}")

    async def _reconnect(self) -> None:
        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=self._backoff_initial_s, max=self._backoff_max_s),
            retry=retry_if_exception_type(Exception), before_sleep=self._before_retry, reraise=True)
        async for attempt in retrying:
            with attempt:
                if self._closed:
                    return
                await self._connect_once()

    def _before_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        self._record_failure(Reason.DISCONNECTED, f"reconnect to {self.device.endpoint} failed: {exc!r}")
        _log.info("device %s: reconnect attempt %d failed (%r); next in %.1f s", self.device_id,
                  state.attempt_number, exc, state.upcoming_sleep)

    async def _discard(self, client: Client) -> None:
        """Close a client whatever its state; it is no longer ours."""
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(client.disconnect(), timeout=self.device.timeout_s)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _record_failure(self, reason: Reason, message: str) -> None:
        self.stats.record_error(reason, message, time.time())

    async def close(self) -> None:
        """Stop reconnecting and close the session (subscriptions are deleted with it)."""
        self._closed = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reconnect_task
        client, self._client = self._client, None
        self.stats.connected = False
        if client is not None:
            await self._discard(client)
        for task in list(self._background):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ------------------------------------------------------------------ polling

    async def read(self, group: str, scan_start: float) -> Batch:
        """Read every node of a poll group in batched Read calls; one Batch, never an exception."""
        nodes = self._groups[group]
        self.stats.reads += 1
        client = self._client
        if client is None:
            return self._failed(nodes, scan_start, Reason.DISCONNECTED, "not connected", record=False)
        requests = nodes.read_requests(self.max_nodes_per_read)
        try:
            if len(requests) == 1:
                data_values = await client.uaclient.read(requests[0])
            else:
                data_values = await self._read_chunks(client, requests)
        except Exception as exc:
            reason, lost = classify_failure(exc)
            batch = self._failed(nodes, scan_start, reason, f"group {group}: read failed: {exc!r}")
            if lost:
                self._connection_lost(client, f"group {group}: read failed: {exc!r}")
            return batch
        receive_ts = time.time()
        if len(data_values) != len(nodes):
            return self._failed(nodes, scan_start, Reason.PROTOCOL_ERROR,
                                f"group {group}: server returned {len(data_values)} values for {len(nodes)} nodes")
        batch = nodes.to_batch(data_values, scan_start, receive_ts)
        self._count_values(batch)
        self.stats.last_good_scan = receive_ts
        return batch

    @staticmethod
    async def _read_chunks(client: Client, requests: list[ua.ReadParameters]) -> list[ua.DataValue]:
        """Send the chunks together (asyncua pipelines them on the channel); results in order."""
        parts = await asyncio.gather(*(client.uaclient.read(r) for r in requests), return_exceptions=True)
        for part in parts:
            if isinstance(part, BaseException):
                raise part
        return [dv for part in parts for dv in part]

    def _failed(self, nodes: NodeGroup, scan_start: float, reason: Reason, message: str, *,
                record: bool = True) -> Batch:
        now = time.time()
        if record:
            self._record_failure(reason, message)
        else:
            self.stats.errors[reason] += 1
        return Batch.failed(nodes.group_id, self.device_id, scan_start, now, nodes.tag_index, reason)

    def _count_values(self, batch: Batch) -> None:
        bad = batch.reason[batch.quality != Quality.GOOD]
        if len(bad):
            for reason, count in enumerate(np.bincount(bad)):
                if count:
                    self.stats.bad_values[Reason(reason)] += int(count)

    # ------------------------------------------------------------------ single tags

    async def write(self, tag: Tag, value: float, timeout_s: float) -> None:
        """Write ``value`` to the tag's node with the Write service, once, in the node's DataType.

        Raises WriteNotEncodable (value does not fit the DataType, node of another type),
        WriteNotConnected (no session, or the DataType could not be read: nothing was written),
        WriteRefused with the server's StatusCode name (BadNotWritable, BadOutOfRange,
        BadUserAccessDenied, ...), WriteTimeout (no answer within ``timeout_s``, or the session
        was lost after sending; asyncua's own request timeout, the device's ``timeout_s``, also
        bounds the wait).
        """
        client = self._client
        if client is None:
            raise WriteNotConnected(f"{self.device_id}: not connected; tag {tag.id} was not written")
        try:
            await self._tag_access.write(client, tag, value, timeout_s)
        except (ConnectionError, OSError) as exc:
            self._connection_lost(client, f"write to {tag.id} failed: {exc!r}")
            raise WriteTimeout(f"{self.device_id}: connection lost during the write of {value:g} to {tag.id} "
                               f"({exc!r}); it may have reached the server") from None
        except WriteRefused as exc:
            if exc.status in _SESSION_LOST_NAMES:
                self._connection_lost(client, f"write to {tag.id} refused: {exc.status}")
            raise

    async def read_tag(self, tag: Tag, timeout_s: float) -> tuple[float, int]:
        """Read one tag now: (value, quality code); NaN and BAD when it cannot be read."""
        client = self._client
        if client is None:
            return float("nan"), int(Quality.BAD)
        try:
            return await self._tag_access.read(client, tag, timeout_s)
        except Exception as exc:
            # Not counted with the scans' errors: the write path journals the read-back.
            _, lost = classify_failure(exc)
            if lost:
                self._connection_lost(client, f"read of {tag.id} failed: {exc!r}")
            return float("nan"), int(Quality.BAD)

    # ------------------------------------------------------------------ subscriptions

    async def subscribe(self, group: str, callback: BatchCallback) -> None:
        """Keep a subscription for a group: Batches of changed values go to ``callback``.

        Created now when connected, else on the next connection, and again after every reconnect.
        """
        if group in self._subscriptions:
            raise ValueError(f"device {self.device_id}: group {group} is already subscribed")
        subscription = GroupSubscription(self._groups[group], self._plans[group].group, callback,
                                         on_batch=self._count_notification)
        self._subscriptions[group] = subscription
        client = self._client
        if client is None:
            return
        try:
            await subscription.create(client.uaclient, self.max_items_per_call)
        except Exception as exc:
            reason, lost = classify_failure(exc)
            message = f"group {group}: subscribe failed: {exc!r}"
            if lost:
                self._connection_lost(client, message)
            else:
                # The session is fine but the server refused the subscription: retry on reconnect.
                self._record_failure(reason, message)
                await subscription.deliver_failed(reason)

    def _count_notification(self, batch: Batch) -> None:
        self.stats.notifications += 1
        self._count_values(batch)
