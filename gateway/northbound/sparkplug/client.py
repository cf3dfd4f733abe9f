"""The edge node's MQTT connection: paho-mqtt on its own network thread.

paho runs its loop on a thread of its own (``loop_start``); every callback is handed to the
event loop with ``call_soon_threadsafe``, and anything that may block (building the client,
which reads TLS files; stopping the thread) runs in an executor. The event loop only calls
``publish``, which paho queues without blocking.

Before every CONNECT (the first and each automatic reconnect) ``on_pre_connect`` takes the
next ``bdSeq`` from the session file and registers the NDEATH carrying it as the MQTT will
(QoS 1, not retained, Sparkplug 3.0 section 6.4.14): the broker publishes it if the gateway
dies, and the NBIRTH of that session carries the same number.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
import structlog

from gateway.northbound.sparkplug.payloads import ms, node_death
from gateway.northbound.sparkplug.session import SessionFile
from gateway.settings.mqtt import MqttSettings

log = structlog.get_logger(__name__)

NDEATH_QOS = 1


@dataclass(frozen=True, slots=True)
class Handlers:
    """What the node hears, always on the event loop."""

    ready: Callable[[int], None]  # subscribed in a new session: its bdSeq
    lost: Callable[[], None]
    message: Callable[[str, bytes], None]


class NodeClient:
    """One paho client for the edge node; it reconnects by itself (new bdSeq each time)."""

    def __init__(self, mqtt: MqttSettings, client_id: str, death_topic: str,
                 subscriptions: list[str], session: SessionFile, handlers: Handlers, *,
                 keepalive_s: int = 30, reconnect_max_s: int = 10):
        if mqtt.host is None:
            raise ValueError("mqtt.host is not set: Sparkplug publishes to the broker of [mqtt]")
        self.settings = mqtt
        self.client_id = client_id
        self.death_topic = death_topic
        self.subscriptions = subscriptions
        self.session = session
        self.handlers = handlers
        self._keepalive_s = keepalive_s
        self._reconnect_max_s = reconnect_max_s
        self._client: paho.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connect_bd_seq: int | None = None  # paho thread: the will of the CONNECT in flight
        self._subscribe_mid: int | None = None
        self._waiters: dict[int, asyncio.Future] = {}
        self._done: dict[int, None] = {}  # recently sent mids nobody waited for (yet)
        self.connected = False
        self.bytes_sent = 0
        self.messages_sent = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client = await self._loop.run_in_executor(None, self._make_client)
        self._client.connect_async(self.settings.host, self.settings.port, self._keepalive_s)
        self._client.loop_start()

    def _make_client(self) -> paho.Client:
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             clean_session=True)  # Sparkplug 3.0: Clean Session true (3.1.1)
        s = self.settings
        if s.username is not None:
            client.username_pw_set(s.username, s.password.get_secret_value() if s.password else None)
        if s.tls:
            client.tls_set(ca_certs=_path(s.ca_file), certfile=_path(s.cert_file),
                           keyfile=_path(s.key_file))
        client.reconnect_delay_set(min_delay=1, max_delay=self._reconnect_max_s)
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        return client

    async def stop(self) -> None:
        """Disconnect cleanly (no will) and join paho's thread off the event loop."""
        client, self._client = self._client, None
        if client is None:
            return
        def end() -> None:
            # disconnect() may wait on a lock paho's thread holds while it connects.
            client.disconnect()
            client.loop_stop()

        await asyncio.get_running_loop().run_in_executor(None, end)
        self._set_lost()

    async def reconnect(self) -> None:
        """End this MQTT session cleanly and start a new one (with the next bdSeq)."""
        client = self._client
        if client is None:
            return

        def cycle() -> None:
            client.disconnect()
            client.loop_stop()
            client.connect_async(self.settings.host, self.settings.port, self._keepalive_s)
            client.loop_start()

        self._set_lost()
        await asyncio.get_running_loop().run_in_executor(None, cycle)

    # ------------------------------------------------------------------ publishing

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> int | None:
        """Queue one message; its paho message id, or None when there is no connection."""
        client = self._client
        if client is None or not self.connected:
            return None
        info = client.publish(topic, payload, qos=qos, retain=False)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            return None
        self.bytes_sent += len(payload) + len(topic)
        self.messages_sent += 1
        return info.mid

    async def sent(self, mid: int | None, timeout: float) -> bool:
        """True once message ``mid`` is written (QoS 0) or acknowledged (QoS 1)."""
        if mid is None or self._loop is None:
            return False
        # paho's callback reaches the loop only after this coroutine yields, so the future is
        # registered before it can be resolved.
        if self._done.pop(mid, 0) is None:
            return True
        future = self._waiters.setdefault(mid, self._loop.create_future())
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(future)
        except TimeoutError:
            return False
        finally:
            self._waiters.pop(mid, None)

    # ------------------------------------------------------------------ paho callbacks
    # They run on paho's network thread: only the session file is touched there.

    def _on_pre_connect(self, client: paho.Client, userdata: Any) -> None:
        bd_seq = self.session.next_bd_seq()
        client.will_set(self.death_topic, node_death(bd_seq, ms(time.time())), qos=NDEATH_QOS,
                        retain=False)
        self._connect_bd_seq = bd_seq

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if reason_code.is_failure:
            self._to_loop(lambda: log.warning("sparkplug connection refused",
                                              host=self.settings.host, reason=str(reason_code)))
            return
        # NCMD, DCMD and STATE before NBIRTH, so no command or host state is missed.
        _, mid = client.subscribe([(t, 1) for t in self.subscriptions])
        self._subscribe_mid = mid

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reason_codes: Any,
                      properties: Any) -> None:
        if mid == self._subscribe_mid:
            bd_seq = self._connect_bd_seq
            self._to_loop(self._set_ready, bd_seq)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        self._to_loop(self._set_lost)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._to_loop(self.handlers.message, message.topic, bytes(message.payload))

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason_code: Any,
                    properties: Any) -> None:
        self._to_loop(self._published, mid)

    def _to_loop(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(fn, *args)

    # ------------------------------------------------------------------ on the event loop

    def _set_ready(self, bd_seq: int) -> None:
        self.connected = True
        log.info("sparkplug connected", host=self.settings.host, port=self.settings.port,
                 bd_seq=bd_seq)
        self.handlers.ready(bd_seq)

    def _set_lost(self) -> None:
        was = self.connected
        self.connected = False
        for future in self._waiters.values():
            if not future.done():
                future.set_result(False)
        self._done.clear()
        if was:
            log.info("sparkplug disconnected", host=self.settings.host, port=self.settings.port)
            self.handlers.lost()

    def _published(self, mid: int) -> None:
        future = self._waiters.get(mid)
        if future is None:
            self._done[mid] = None
            if len(self._done) > 4096:
                del self._done[next(iter(self._done))]
        elif not future.done():
            future.set_result(True)


def _path(p: Any) -> str | None:
    return None if p is None else str(p)
