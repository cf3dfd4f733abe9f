"""An MQTT subscriber for integration tests against the real Mosquitto on 127.0.0.1:1883.

Tests give every subscriber its own topic filter (usually under a per-test site), so topics
and retained messages never collide between tests.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import paho.mqtt.client as paho

BROKER = ("127.0.0.1", 1883)


class Subscriber:
    """A plain paho subscriber whose messages arrive on an asyncio queue."""

    def __init__(self, topic: str):
        self.topic = topic
        self.messages: asyncio.Queue[paho.MQTTMessage] = asyncio.Queue()
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                   client_id=f"test-sub-{uuid.uuid4().hex[:8]}")

    async def start(self) -> Subscriber:
        """Connect and wait until the broker has confirmed the subscription."""
        loop = asyncio.get_running_loop()
        subscribed = loop.create_future()
        self._client.on_connect = lambda c, *_: c.subscribe(self.topic, qos=1)
        self._client.on_subscribe = lambda *_: loop.call_soon_threadsafe(
            lambda: subscribed.done() or subscribed.set_result(None))
        self._client.on_message = lambda c, u, m: loop.call_soon_threadsafe(self.messages.put_nowait, m)
        self._client.connect_async(*BROKER)
        self._client.loop_start()
        await asyncio.wait_for(subscribed, 5)
        return self

    async def next(self, timeout: float = 5.0) -> tuple[str, dict]:
        """The next message: its topic and its JSON payload."""
        m = await asyncio.wait_for(self.messages.get(), timeout)
        return m.topic, json.loads(m.payload)

    async def collect(self, count: int, timeout: float = 10.0) -> list[tuple[str, dict]]:
        """The next ``count`` messages, in arrival order."""
        return [await self.next(timeout) for _ in range(count)]

    async def stop(self) -> None:
        """Disconnect; paho's network thread is joined off the event loop."""
        self._client.disconnect()
        await asyncio.get_running_loop().run_in_executor(None, self._client.loop_stop)
