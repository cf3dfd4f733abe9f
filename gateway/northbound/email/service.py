"""The ``email`` service: the notifier with its /health section, health check and metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from analytics.alarm_types import AlarmTransition
from gateway.northbound.email.notifier import RETRY_MIN_S, SERVICE_NAME, EmailNotifier
from gateway.runtime.logs import get_logger
from gateway.settings import EmailSettings
from plant.catalog import Catalog

log = get_logger("gateway.northbound.email")


class EmailService:
    """The ``email`` service (``gateway.services.base.Service``): the notifier as a listener of the
    alarm service, with its /health section, health check and metrics."""

    name = SERVICE_NAME

    def __init__(self, settings: EmailSettings, catalog: Catalog, gateway_id: str, site: str,
                 timezone: str, *, retry_min_s: float = RETRY_MIN_S):
        self.settings = settings
        self.notifier = EmailNotifier(settings, gateway_id, site, catalog=catalog,
                                      timezone=timezone, retry_min_s=retry_min_s)

    async def start(self) -> None:
        self.notifier.start()

    async def on_transitions(self, transitions: list[AlarmTransition]) -> None:
        """Alarm listener (the daemon adds it to the alarm service)."""
        await self.notifier.on_transitions(transitions)

    def health(self) -> dict[str, Any]:
        return self.notifier.health()

    def problem(self) -> str | None:
        return self.notifier.problem()

    def metrics(self) -> Iterator[Any]:
        return self.notifier.metrics()

    async def reload(self, settings: Any, catalog: Catalog) -> None:
        """SIGHUP: new recipients, limits and server apply to the next mail; switching e-mail
        on or off takes a restart."""
        if not settings.email.enabled:
            log.warning("email.enabled = false takes effect only after a restart")
            return
        self.settings = self.notifier.settings = settings.email
        self.notifier.catalog = catalog

    async def stop(self) -> None:
        await self.notifier.stop()
