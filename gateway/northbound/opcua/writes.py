"""Writes from OPC-UA clients (SCADA) through the gateway's one write path.

Exactly the writable tags (plant.toml ``writable = true``, with ``[writes]`` enabled) have
AccessLevel and UserAccessLevel CurrentRead|CurrentWrite; every other node stays read-only and
asyncua refuses writes to it as before. A Value write to a writable tag does not touch the
address space: the server's session hands it to the daemon's write path
(``WriteService.submit_threadsafe``, onto the daemon's event loop) and waits for the outcome,
which becomes the write's StatusCode. The tag's node shows the new value with the next scan.

Who may write: an authenticated user (security Basic256Sha256, ``[[opcua_server.users]]``) with
the tag's ``write_role`` or higher (the user's ``role``, default viewer). Security ``None``
only has anonymous sessions: they may read, never write. Anonymous users and viewers get
BadUserAccessDenied, and every attempt is journaled with origin ``opcua`` and the client's
address.

=============================================  ============================================
outcome                                        StatusCode
=============================================  ============================================
confirmed                                      Good
unconfirmed (timeout, read-back disagrees)     Uncertain: it may have reached the device
failed                                         the device's OPC-UA StatusCode when it gave
                                               one (BadNotWritable, ...), BadNotConnected,
                                               else BadDeviceFailure
rejected: role                                 BadUserAccessDenied
rejected: not finite, range, step, encoding    BadOutOfRange
rejected: not writable                         BadNotWritable
rejected: no good current value, permissive    BadInvalidState, BadRequestNotAllowed
rejected: no device, not connected             BadNoCommunication, BadNotConnected
rejected: queue full; shutting down, unknown   BadTooManyOperations; BadShutdown
a value that is not a number                   BadTypeMismatch (not a write request: not
                                               journaled)
=============================================  ============================================
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any, Protocol

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User
from asyncua.server.internal_session import InternalSession

from gateway.runtime.logs import get_logger
from gateway.services.accounts.users import Role
from gateway.services.writes.records import Outcome, Refusal, WriteRecord, WriteRequest

log = get_logger("gateway.northbound.opcua.writes")

ORIGIN = "opcua"
ANONYMOUS = "anonymous"
_NO_USER = User()  # asyncua's default for a session not yet activated
_SC = ua.StatusCodes

REFUSAL_STATUS = {
    Refusal.UNKNOWN_TAG: _SC.BadNodeIdUnknown, Refusal.NOT_WRITABLE: _SC.BadNotWritable,
    Refusal.ROLE: _SC.BadUserAccessDenied, Refusal.NOT_FINITE: _SC.BadOutOfRange,
    Refusal.OUT_OF_RANGE: _SC.BadOutOfRange, Refusal.STEP: _SC.BadOutOfRange,
    Refusal.NOT_ENCODABLE: _SC.BadOutOfRange, Refusal.NO_CURRENT_VALUE: _SC.BadInvalidState,
    Refusal.PERMISSIVE: _SC.BadRequestNotAllowed, Refusal.NO_DEVICE: _SC.BadNoCommunication,
    Refusal.NOT_CONNECTED: _SC.BadNotConnected, Refusal.BUSY: _SC.BadTooManyOperations,
    Refusal.SHUTTING_DOWN: _SC.BadShutdown,
}
_NUMERIC = {ua.VariantType.Boolean, ua.VariantType.SByte, ua.VariantType.Byte,
            ua.VariantType.Int16, ua.VariantType.UInt16, ua.VariantType.Int32,
            ua.VariantType.UInt32, ua.VariantType.Int64, ua.VariantType.UInt64,
            ua.VariantType.Float, ua.VariantType.Double}


class WritePath(Protocol):
    """The daemon's write service as the OPC-UA server reaches it from its own thread."""

    def submit_threadsafe(self, request: WriteRequest) -> concurrent.futures.Future[WriteRecord]: ...


def status_of(record: WriteRecord) -> int:
    """The StatusCode that answers a write with this journal row's outcome."""
    if record.outcome is Outcome.CONFIRMED:
        return _SC.Good
    if record.outcome is Outcome.UNCONFIRMED:
        return _SC.Uncertain
    if record.outcome is Outcome.REJECTED:
        return REFUSAL_STATUS.get(record.refusal, _SC.BadRequestNotAllowed)  # type: ignore[arg-type]
    if record.outcome is Outcome.FAILED:
        status = record.device_status or ""
        if status.startswith("Bad") and hasattr(_SC, status):
            return getattr(_SC, status)
        return _SC.BadNotConnected if status == "NotConnected" else _SC.BadDeviceFailure
    return _SC.BadShutdown  # unknown (cut off at shutdown) or still pending


def numeric_value(variant: ua.Variant | None) -> float | None:
    """The number a client wrote, or None when it is not a scalar number."""
    if variant is None or variant.is_array or variant.VariantType not in _NUMERIC:
        return None
    value = variant.Value
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if not isinstance(value, int | float):
        return None
    return float(value)


class TagWrites:
    """Routes client writes of writable tag nodes to the write path; installed on a server
    with :meth:`install` before it starts."""

    def __init__(self, path: WritePath, writable: dict[ua.NodeId, str],
                 roles: dict[str, Role] | None):
        """``writable``: node id -> tag id; ``roles``: username -> role of authenticated users
        (None: security None, every session is anonymous whatever name it claims)."""
        self.path = path
        self.writable = writable
        self.roles = roles
        self.handled = 0

    def install(self, server: Server) -> None:
        """Make every client session of ``server`` a :class:`GatewaySession`."""
        iserver = server.iserver
        gateway = self

        # asyncua builds its sessions in InternalServer.create_session; ours differ only in
        # write(). Replaced on this one server instance, before it accepts connections.
        def create_session(name: str, user: User = _NO_USER, external: bool = False):
            return GatewaySession(gateway, iserver, iserver.aspace, iserver.subscription_service,
                                  name, user=user, external=external)

        iserver.create_session = create_session  # type: ignore[method-assign]

    def claims(self, item: ua.WriteValue) -> str | None:
        """The tag id of a Value write to a writable tag node, else None."""
        if item.AttributeId != ua.AttributeIds.Value:
            return None
        return self.writable.get(item.NodeId)

    def caller(self, user: User | None) -> tuple[str, Role | None]:
        if self.roles is None or user is None or not user.name:
            return ANONYMOUS, None
        return user.name, self.roles.get(user.name)

    async def write(self, tag_id: str, item: ua.WriteValue, user: User | None,
                    peer: Any) -> ua.StatusCode:
        if item.IndexRange:
            return ua.StatusCode(_SC.BadWriteNotSupported)
        value = numeric_value(item.Value.Value if item.Value is not None else None)
        if value is None:
            return ua.StatusCode(_SC.BadTypeMismatch)
        name, role = self.caller(user)
        request = WriteRequest(tag_id=tag_id, value=value, user=name, role=role, origin=ORIGIN,
                               client=_peer(peer))
        self.handled += 1
        try:
            record = await asyncio.wrap_future(self.path.submit_threadsafe(request))
        except Exception:
            log.exception("opcua write hand-off failed", tag_id=tag_id)
            return ua.StatusCode(_SC.BadInternalError)
        return ua.StatusCode(status_of(record))


class GatewaySession(InternalSession):
    """An asyncua session whose writes of writable tags go through the gateway's write path;
    every other write item is asyncua's own (and refused for read-only nodes)."""

    def __init__(self, gateway: TagWrites, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._gateway = gateway

    async def write(self, params: ua.WriteParameters) -> list[ua.StatusCode]:
        results: list[ua.StatusCode | None] = [None] * len(params.NodesToWrite)
        others = ua.WriteParameters()
        positions: list[int] = []
        for i, item in enumerate(params.NodesToWrite):
            tag_id = self._gateway.claims(item)
            if tag_id is None:
                others.NodesToWrite.append(item)
                positions.append(i)
            else:  # one after the other, in the request's order
                results[i] = await self._gateway.write(tag_id, item, self.user, self.name)
        if others.NodesToWrite:
            for i, result in zip(positions, await super().write(others), strict=True):
                results[i] = result
        return results  # type: ignore[return-value]


def _peer(peer: Any) -> str | None:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return None if peer is None else str(peer)


def writable_nodes(tag_ids: list[str], node_id: Callable[[str], ua.NodeId]) -> dict[ua.NodeId, str]:
    return {node_id(t): t for t in tag_ids}
