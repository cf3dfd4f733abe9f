"""The ``mqtt`` service: the one broker connection of the gateway, its lifecycle and health.

The publisher (:mod:`gateway.northbound.mqtt.publisher`) carries alarm transitions for the
alarm service (QoS 1 through the durable outbox) and live values for the ``mqtt_values`` sink
(:mod:`gateway.northbound.mqtt.values`). It is started before the alarm service (whose
sequence numbers continue after the outbox's highest) and stopped after it, flushing within a
deadline.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from gateway.northbound.mqtt.publisher import MqttPublisher

SERVICE_NAME = "mqtt"
STOP_DEADLINE_S = 3.0


class MqttService:
    name = SERVICE_NAME

    def __init__(self, publisher: MqttPublisher, stop_deadline_s: float = STOP_DEADLINE_S):
        self.publisher = publisher
        self.stop_deadline_s = stop_deadline_s

    async def start(self) -> None:
        await self.publisher.start()

    async def stop(self) -> None:
        await self.publisher.stop(deadline_s=self.stop_deadline_s)

    def health(self) -> dict[str, Any]:
        return self.publisher.status()

    def problem(self) -> str | None:
        """Health check: the broker is away while alarm messages wait (degraded, not lost)."""
        p = self.publisher
        if p.connected or p.outbox_depth == 0:
            return None
        return (f"broker {p.settings.host}:{p.settings.port} unreachable; "
                f"{p.outbox_depth} alarm messages waiting in the outbox")

    def metrics(self) -> Iterator[Any]:
        depth = GaugeMetricFamily("refineryiq_mqtt_outbox_depth",
                                  "Alarm messages not yet acknowledged by the broker")
        depth.add_metric([], self.publisher.outbox_depth)
        yield depth
        connected = GaugeMetricFamily("refineryiq_mqtt_connected",
                                      "1 when connected to the MQTT broker")
        connected.add_metric([], 1.0 if self.publisher.connected else 0.0)
        yield connected
        published = CounterMetricFamily("refineryiq_mqtt_values_published",
                                        "Live values handed to the MQTT client")
        published.add_metric([], self.publisher.values_published)
        yield published
        dropped = CounterMetricFamily(
            "refineryiq_mqtt_values_dropped",
            "Live values never sent: replaced by a newer value of their tag while the broker "
            "fell behind, or waiting when the connection was lost")
        dropped.add_metric([], self.publisher.values_dropped)
        yield dropped
        queued = GaugeMetricFamily("refineryiq_mqtt_values_queued",
                                   "Live values in the MQTT client's queue, not yet sent")
        queued.add_metric([], self.publisher.values_queued)
        yield queued
