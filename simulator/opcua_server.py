"""The simulator's OPC-UA front-end: an asyncua server exposing the plant model.

Address space: ``Objects/<unit>/<equipment>/<tag>`` (tags without equipment directly under
their unit, synthetic tags under ``Objects/Synthetic/SYN-00001..00050/`` and so on, in
sub-folders of 50), every variable a Double with the
catalog's node id (``ns=2;s=...``; our namespace URI is registered first, so it is ns=2).
Values carry a source timestamp (wall clock of the model step that produced them) and a
StatusCode: Good, or ``BadSensorFailure`` (value null) for injected bad quality.

Updating values cheaply: asyncua's ``write_attribute_value`` costs a type check, an await and
a new DataValue per node (about 5 us). We set the address space's attribute value directly
and, for nodes nobody subscribes to, reuse each node's DataValue object, changing only its
value and timestamps. A node with datachange callbacks (a client subscription) gets a new
DataValue each update and its callbacks are awaited, as ``write_attribute_value`` would do,
because asyncua's monitored items compare the new DataValue with the previous one.
Plant tags are updated every model step; synthetic tags round-robin over
``SYNTHETIC_SPREAD`` steps (each synthetic node refreshes once a second at the default
100 ms step), which keeps 10,000 synthetic tags cheap.

Security: None by default; ``SecurityOptions(policy="Basic256Sha256", ...)`` adds
Basic256Sha256 Sign and SignAndEncrypt endpoints with a self-signed certificate (generated
into ``cert_dir`` when missing), and a username/password, when given, is then required.
While the OPC-UA device is silenced, every connection's socket stops being read, so requests
go unanswered until the silence ends.

Writes: the catalog's writable tags have AccessLevel CurrentRead|CurrentWrite, the others
CurrentRead. A Write to a tag node is decided by the :class:`simulator.writes.WriteDesk`
(whoever the user): Good when applied, BadNotWritable for a read-only tag or while writes are
refused, BadOutOfRange outside the instrument range, BadTypeMismatch for a Variant that is not
a Double, and no WriteResponse at all while writes time out (the connection's other requests
are still answered). Writes to other nodes go to asyncua as usual. An applied write publishes
the written node at once (a Read right after the Good answer returns the written value, and
its subscribers are notified); everything the process does in answer shows from the model's
next step.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import socket
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from asyncua import Server, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.address_space import AttributeService
from asyncua.server.user_managers import UserManager
from cryptography.x509.oid import ExtendedKeyUsageOID

from plant.catalog import OPCUA_NAMESPACE_URI, SYNTHETIC_PREFIX
from simulator.faults import STATUS_GOOD, Device
from simulator.model import PlantModel
from simulator.writes import Verdict, WriteDesk

DEFAULT_PORT = 4840
SYNTHETIC_FOLDER = "Synthetic"
SYNTHETIC_SPREAD = 10
# asyncua checks every sibling when it adds a node (quadratic per folder), so synthetic tags
# sit in sub-folders of this many: 10,000 tags build in seconds instead of minutes.
SYNTHETIC_FOLDER_SIZE = 50
APPLICATION_URI = "urn:refineryiq:simulator"
_GOOD = ua.StatusCode(ua.StatusCodes.Good)
_DOUBLE = ua.VariantType.Double
_WRITE_STATUS = {
    Verdict.APPLIED: ua.StatusCodes.Good,
    Verdict.NOT_WRITABLE: ua.StatusCodes.BadNotWritable,
    Verdict.OUT_OF_RANGE: ua.StatusCodes.BadOutOfRange,
    Verdict.REFUSED: ua.StatusCodes.BadNotWritable,
}
# Set while a WriteRequest of the current connection must go unanswered (timeout mode): the
# processor handling the request runs the write and sends the answer in one task.
_NO_ANSWER: contextvars.ContextVar[bool] = contextvars.ContextVar("simulator_no_answer", default=False)
WriteHandler = Callable[[ua.WriteParameters, User], Awaitable[list[ua.StatusCode]]]
_ADMIN = User(role=UserRole.Admin)  # asyncua's own default for internal writes


class _PlantAttributes(AttributeService):
    """asyncua's attribute service with writes to the plant's nodes decided by the simulator."""

    def __init__(self, aspace, handler: Callable[[ua.WriteParameters, User, WriteHandler],
                                                 Awaitable[list[ua.StatusCode]]]):
        super().__init__(aspace)
        self._handler = handler

    async def write(self, params: ua.WriteParameters, user: User = _ADMIN) -> list[ua.StatusCode]:
        return await self._handler(params, user, super().write)


@dataclass(frozen=True)
class SecurityOptions:
    """OPC-UA security of the simulator (None by default)."""

    policy: str = "None"  # or "Basic256Sha256"
    cert_dir: Path | None = None
    username: str | None = None
    password: str | None = None


class _SingleUser(UserManager):
    """Accepts exactly one username/password (the simulator's test credentials)."""

    def __init__(self, username: str, password: str):
        self._username, self._password = username, password

    def get_user(self, iserver, username=None, password=None, certificate=None) -> User | None:
        if username == self._username and password == self._password:
            return User(role=UserRole.User)
        return None


class OpcUaFrontEnd:
    """The running OPC-UA server for one plant model; call :meth:`update` after each step."""

    def __init__(self, model: PlantModel, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 security: SecurityOptions | None = None, writes: WriteDesk | None = None):
        self.model = model
        self.host = host
        self.port = port
        self.security = security or SecurityOptions()
        self.writes = writes if writes is not None else WriteDesk(model)
        self.writes.on_applied(self._republish)
        self.server: Server | None = None
        self._attrs: list = []  # AttributeValue per catalog tag
        self._index_by_node: dict[ua.NodeId, int] = {}
        self._plant_count = len(model.catalog.plant.tags)
        self._round = 0
        self._paused: set = set()
        self._guarded: weakref.WeakSet = weakref.WeakSet()  # processors whose answers we can hold back
        self._notifying: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ start / stop

    async def start(self) -> int:
        """Build the address space, listen, and return the bound port (useful with port 0)."""
        sec = self.security
        user_manager = _SingleUser(sec.username, sec.password) if sec.username and sec.password else None
        server = Server(user_manager=user_manager)
        await server.init()
        server.iserver.attribute_service = _PlantAttributes(server.iserver.aspace, self._write)
        server.set_endpoint(f"opc.tcp://{self.host}:{self.port}/refineryiq/simulator")
        server.set_server_name("RefineryIQ simulated refinery")
        await server.set_application_uri(APPLICATION_URI)
        if sec.policy == "Basic256Sha256":
            await self._secure(server, sec)
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        if user_manager is not None:
            server.set_identity_tokens([ua.UserNameIdentityToken])
        ns = await server.register_namespace(OPCUA_NAMESPACE_URI)
        if ns != 2:
            raise RuntimeError(f"namespace {OPCUA_NAMESPACE_URI} registered as ns={ns}, expected 2")
        await self._build_address_space(server)
        await server.start()
        self.server = server
        self.port = server.bserver.port  # type: ignore[union-attr]
        url = f"opc.tcp://{self.host}:{self.port}/refineryiq/simulator"
        for endpoint in server.iserver.endpoints:  # advertised with port 0 before binding
            endpoint.EndpointUrl = url
        self.update()
        return self.port

    async def _secure(self, server: Server, sec: SecurityOptions) -> None:
        cert_dir = sec.cert_dir or Path("state/simulator-pki")
        cert_dir.mkdir(parents=True, exist_ok=True)
        key, cert = cert_dir / "simulator-key.pem", cert_dir / "simulator-cert.der"
        await setup_self_signed_certificate(
            key, cert, APPLICATION_URI, socket.gethostname(), [ExtendedKeyUsageOID.SERVER_AUTH],
            {"countryName": "VE", "organizationName": "RefineryIQ", "commonName": "refineryiq-simulator"})
        await server.load_certificate(str(cert))
        await server.load_private_key(str(key))
        server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
                                    ua.SecurityPolicyType.Basic256Sha256_Sign])

    async def stop(self) -> None:
        if self.server is not None:
            self._resume_all()
            await self.server.stop()
            self.server = None

    # ------------------------------------------------------------------ address space

    async def _build_address_space(self, server: Server) -> None:
        catalog = self.model.catalog
        objects = server.nodes.objects
        folders: dict[str, object] = {}

        async def folder(key: str, parent, name: str):
            if key not in folders:
                folders[key] = await parent.add_folder(ua.NodeId(f"Folders/{key}", 2), ua.QualifiedName(name, 2))
            return folders[key]

        now = dt.datetime.now(dt.UTC)
        items = []
        for i, tag in enumerate(catalog.tags):
            if tag.opcua is None:
                items.append(None)
                continue
            if tag.id.startswith(SYNTHETIC_PREFIX):
                parent = await folder(SYNTHETIC_FOLDER, objects, SYNTHETIC_FOLDER)
                first = (i - self._plant_count) // SYNTHETIC_FOLDER_SIZE * SYNTHETIC_FOLDER_SIZE + 1
                last = min(first + SYNTHETIC_FOLDER_SIZE - 1, len(catalog) - self._plant_count)
                name = f"{SYNTHETIC_PREFIX}{first:05d}..{last:05d}"
                parent = await folder(f"{SYNTHETIC_FOLDER}/{name}", parent, name)
            else:
                unit_key = tag.unit_id or "Plant"
                parent = await folder(unit_key, objects, unit_key)
                if tag.equipment_id:
                    parent = await folder(f"{unit_key}/{tag.equipment_id}", parent, tag.equipment_id)
            node_id = ua.NodeId.from_string(tag.opcua.node_id)
            self._index_by_node[node_id] = i
            items.append(_variable_item(parent.nodeid, node_id, tag.id, float(self.model.values[i]), now,
                                        writable=tag.writable))
        results = await server.iserver.isession.add_nodes([it for it in items if it is not None])
        bad = [r for r in results if not r.StatusCode.is_good()]
        if bad:
            raise RuntimeError(f"could not create {len(bad)} OPC-UA variables: {bad[0].StatusCode}")
        aspace = server.iserver.aspace
        self._attrs = [None if it is None else aspace.get(it.RequestedNewNodeId).attributes[ua.AttributeIds.Value]
                       for it in items]
        self._shared = [False] * len(items)

    # ------------------------------------------------------------------ updates

    def update(self) -> list:
        """Publish the model's current values; returns pending subscription notifications.

        The caller awaits :meth:`notify` with the returned list (kept separate so the hot
        loop over nodes stays synchronous).
        """
        n_syn = len(self._attrs) - self._plant_count
        indices = list(range(self._plant_count))
        if n_syn > 0:
            indices += range(self._plant_count + self._round, len(self._attrs), SYNTHETIC_SPREAD)
            self._round = (self._round + 1) % SYNTHETIC_SPREAD
        pending = self._publish(indices, self.model.values.tolist())
        self._enforce_silence()
        return pending

    def _publish(self, indices: Iterable[int], values: Sequence[float] | Mapping[int, float]) -> list:
        """Set the nodes of tags ``indices`` to ``values[i]`` with the model's StatusCodes;
        returns (attribute, DataValue) of the nodes with subscribers."""
        now = dt.datetime.now(dt.UTC)
        status = self.model.status
        pending = []
        bad_any = bool(status.any())
        for i in indices:
            attval = self._attrs[i]
            if attval is None:
                continue
            code = int(status[i]) if bad_any else STATUS_GOOD
            dv = attval.value
            if attval.datachange_callbacks or self._shared[i] or code != STATUS_GOOD or \
                    dv.StatusCode is None or dv.StatusCode.value != STATUS_GOOD:
                dv = _data_value(values[i], code, now)
                attval.value = dv
                if attval.datachange_callbacks:
                    self._shared[i] = True
                    pending.append((attval, dv))
                elif code == STATUS_GOOD:
                    self._shared[i] = False
                else:
                    self._shared[i] = True  # a Bad DataValue has a null Variant: never reuse it
            else:
                dv.Value.Value = values[i]
                dv.SourceTimestamp = now
                dv.ServerTimestamp = now
        return pending

    async def notify(self, pending: list) -> None:
        """Run datachange callbacks (subscriptions) for the nodes updated by :meth:`update`."""
        for attval, dv in pending:
            for handle, callback in list(attval.datachange_callbacks.items()):
                await callback(handle, dv)

    # ------------------------------------------------------------------ writes

    async def _write(self, params: ua.WriteParameters, user: User, default: WriteHandler) -> list[ua.StatusCode]:
        """Decide the writes to tag nodes here; hand the rest of the request to asyncua."""
        results: list[ua.StatusCode | None] = []
        others: list[int] = []
        unanswered = False
        for k, item in enumerate(params.NodesToWrite):
            index = self._index_by_node.get(item.NodeId)
            if index is None:
                others.append(k)
                results.append(None)
                continue
            variant = item.Value.Value if item.Value is not None else None
            if item.AttributeId != ua.AttributeIds.Value:
                results.append(ua.StatusCode(ua.StatusCodes.BadNotWritable))
            elif variant is None or variant.VariantType != _DOUBLE or not isinstance(variant.Value, float):
                results.append(ua.StatusCode(ua.StatusCodes.BadTypeMismatch))
            else:
                verdict = self.writes.receive(Device.OPCUA, index, variant.Value)
                unanswered |= verdict == Verdict.UNANSWERED
                results.append(ua.StatusCode(_WRITE_STATUS.get(verdict, ua.StatusCodes.Good)))
        if others:
            rest = ua.WriteParameters()
            rest.NodesToWrite = [params.NodesToWrite[k] for k in others]
            for k, status in zip(others, await default(rest, user), strict=True):
                results[k] = status
        if unanswered:
            self._hold_answer()
        return [r if r is not None else ua.StatusCode(ua.StatusCodes.BadInternalError) for r in results]

    def _hold_answer(self) -> None:
        """Make the processor of the current request drop its WriteResponse."""
        _NO_ANSWER.set(True)
        if self.server is None:
            return
        for protocol in self.server.bserver.clients:  # type: ignore[union-attr]
            processor = getattr(protocol, "processor", None)
            if processor is None or processor in self._guarded:
                continue
            send = processor.send_response

            def send_response(requesthandle, seqhdr, response, *args, _send=send, **kwargs):
                if isinstance(response, ua.WriteResponse) and _NO_ANSWER.get():
                    _NO_ANSWER.set(False)
                    return
                _send(requesthandle, seqhdr, response, *args, **kwargs)

            processor.send_response = send_response
            self._guarded.add(processor)

    def _republish(self, index: int) -> None:
        """After a write applied to tag ``index``: publish its node now rather than at the next
        step. A write changes no other reported value (the process answers over the next
        steps, which :meth:`update` publishes), so the rest of the address space stands."""
        if self.server is None or index >= len(self._attrs):
            return
        pending = self._publish((index,), {index: float(self.model.values[index])})
        if pending:
            task = asyncio.get_running_loop().create_task(self.notify(pending))
            self._notifying.add(task)
            task.add_done_callback(self._notifying.discard)

    def _enforce_silence(self) -> None:
        if self.server is None:
            return
        transports = self.server.iserver.asyncio_transports
        if self.model.faults.is_silent(Device.OPCUA, self.model.time_s):
            for transport in transports:
                if transport not in self._paused and not transport.is_closing():
                    transport.pause_reading()
                    self._paused.add(transport)
        elif self._paused:
            self._resume_all()

    def _resume_all(self) -> None:
        for transport in self._paused:
            if not transport.is_closing():
                transport.resume_reading()
        self._paused.clear()


def _data_value(value: float, code: int, now: dt.datetime) -> ua.DataValue:
    if code == STATUS_GOOD:
        return ua.DataValue(ua.Variant(value, _DOUBLE), _GOOD, SourceTimestamp=now, ServerTimestamp=now)
    # Part 4, 7.7.1: with a Bad StatusCode the value is null.
    return ua.DataValue(ua.Variant(None, ua.VariantType.Null), ua.StatusCode(code),
                        SourceTimestamp=now, ServerTimestamp=now)


def _variable_item(parent: ua.NodeId, node_id: ua.NodeId, name: str, value: float,
                   now: dt.datetime, writable: bool = False) -> ua.AddNodesItem:
    attrs = ua.VariableAttributes()
    attrs.DisplayName = ua.LocalizedText(name)
    attrs.Description = ua.LocalizedText(name)
    attrs.DataType = ua.NodeId(ua.ObjectIds.Double)
    attrs.Value = ua.Variant(value, _DOUBLE)
    attrs.ValueRank = ua.ValueRank.Scalar
    access = ua.AccessLevel.CurrentRead.mask | (ua.AccessLevel.CurrentWrite.mask if writable else 0)
    attrs.AccessLevel = access
    attrs.UserAccessLevel = access
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = node_id
    item.BrowseName = ua.QualifiedName(name, 2)
    item.NodeClass = ua.NodeClass.Variable
    item.ParentNodeId = parent
    item.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HasComponent)
    item.TypeDefinition = ua.NodeId(ua.ObjectIds.BaseDataVariableType)
    item.NodeAttributes = attrs
    return item
