"""The ``mqtt_values`` sink: live tag values to ``refineryiq/{site}/{gateway_id}/values/{tag}``.

It stands on its own beside the alarm service: values are published whenever MQTT is
configured with ``[mqtt.values] enabled = true``, whatever else runs. Deadband and minimum
interval per tag are applied by :meth:`MqttPublisher.publish_values`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from drivers.batch import Batch
from gateway.northbound.mqtt.publisher import MqttPublisher
from plant.catalog import Catalog


class MqttValues:
    name = "mqtt_values"

    def __init__(self, publisher: MqttPublisher, catalog: Catalog,
                 clock: Callable[[], float] = time.time):
        self.publisher = publisher
        self.catalog = catalog
        self.clock = clock

    async def on_batches(self, batches: list[Batch]) -> None:
        now = self.clock()
        for batch in batches:
            await self.publisher.publish_values(batch, self.catalog, now)

    async def reload(self, settings: Any, catalog: Catalog) -> None:
        self.catalog = catalog
