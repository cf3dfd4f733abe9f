"""The alarm e-mail notifier: selection, rate-limited queue, digest mails, retries."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from analytics.alarm_types import AlarmState, AlarmTransition, Severity
from gateway.northbound.email.smtp import send_blocking
from gateway.runtime.logs import get_logger
from gateway.settings import EmailSettings
from plant.catalog import Catalog

log = get_logger("gateway.northbound.email")

SERVICE_NAME = "email"
RETRY_MIN_S = 5.0
RETRY_MAX_S = 300.0
DIGEST_MAX_LINES = 50


class EmailState(StrEnum):
    """What /health says about the notifier."""

    IDLE = "idle"  # nothing sent or tried yet
    OK = "ok"  # the last attempt was delivered
    FAILING = "failing"  # the last attempt failed; mails are retried


def is_notifiable(transition: AlarmTransition, min_severity: Severity,
                  escalations: bool = True) -> bool:
    """True for a transition worth a mail: an activation at ``min_severity`` or above, or (with
    ``escalations``) an active alarm that escalated to it (HI to HIHI, MEDIUM to HIGH).

    Acknowledgements, returns to normal, shelving and the like are never mailed.
    """
    if transition.severity.rank < min_severity.rank:
        return False
    if transition.is_activation:
        return True
    # The engine journals an escalation as an active-to-active transition that keeps its
    # state, or re-annunciates an acknowledged alarm (ACKED to UNACK) when it reaches HH/LL.
    escalated = transition.from_state.is_active and transition.to_state in (
        transition.from_state, AlarmState.UNACK)
    return escalations and escalated


@dataclass(frozen=True, slots=True)
class Mail:
    """One mail to send: the alarms it reports and the message itself."""

    transitions: tuple[AlarmTransition, ...]
    message: EmailMessage
    dropped: int  # alarms dropped before this mail (the mail says so)

    @property
    def is_digest(self) -> bool:
        return len(self.transitions) > 1


class EmailNotifier:
    """Queues notifiable alarm transitions and mails them, rate limited, off the event loop.

    ``on_transitions`` is an ``AlarmService`` listener. ``start()`` runs the worker task,
    ``stop()`` ends it without waiting for the server. ``catalog`` (optional) adds tag names
    and engineering units to mails; ``timezone`` is the plant's, for the times in them.
    """

    def __init__(self, settings: EmailSettings, gateway_id: str, site: str, *,
                 catalog: Catalog | None = None, timezone: str = "UTC",
                 retry_min_s: float = RETRY_MIN_S, retry_max_s: float = RETRY_MAX_S):
        self.settings = settings
        self.gateway_id = gateway_id
        self.site = site
        self.catalog = catalog
        self.timezone = ZoneInfo(timezone)
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.sent = 0  # mails delivered
        self.notified = 0  # alarms reported in delivered mails
        self.summarised = 0  # alarms reported in a summary instead of a mail of their own
        self.failed = 0  # delivery attempts that failed
        self.dropped = 0  # alarms dropped from a full queue
        self.refused = 0  # recipients the server refused in delivered mails
        self.last_error: str | None = None
        self.last_sent_at: float | None = None
        self.state = EmailState.IDLE
        self._waiting: deque[AlarmTransition] = deque()
        self._dropped_unreported = 0
        self._sent_at: deque[float] = deque()  # loop times of recent deliveries
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ the alarm path

    @property
    def waiting(self) -> int:
        """Alarms queued and not yet delivered."""
        return len(self._waiting)

    async def on_transitions(self, transitions: list[AlarmTransition]) -> None:
        """AlarmService listener: queue what deserves a mail. Never waits for anything."""
        s = self.settings
        chosen = [t for t in transitions if is_notifiable(t, s.min_severity, s.escalations)]
        if not chosen:
            return
        self._waiting.extend(chosen)
        self._trim()
        self._wake.set()

    def _trim(self) -> None:
        while len(self._waiting) > self.settings.queue_size:
            self._waiting.popleft()
            self.dropped += 1
            self._dropped_unreported += 1

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the worker (one SMTP thread of its own: never the event loop's default pool)."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp")
        self._task = asyncio.create_task(self.run(), name="email-notifier")
        log.info("email notification on", host=self.settings.host, port=self.settings.port,
                 recipients=len(self.settings.to), min_severity=self.settings.min_severity.value,
                 max_per_window=self.settings.max_per_window, window_s=self.settings.window_s)

    async def stop(self) -> None:
        """End the worker now; a mail in flight is abandoned to its thread (bounded by the
        SMTP timeout). Queued alarms are not mailed: they remain in the alarm journal."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if self._waiting:
            log.warning("email notifier stopped with alarms not mailed", waiting=self.waiting)

    async def run(self) -> None:
        """The worker: wait for alarms, wait for the rate limit, deliver, retry on failure."""
        retry_s = self.retry_min_s
        while True:
            if not self._waiting:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._wait_for_slot()
            try:
                mail = self._next_mail()
            except Exception:  # a formatting bug must not stop later notifications
                log.exception("alarm e-mail could not be built; dropped")
                self.failed += 1
                continue
            if await self._deliver(mail):
                retry_s = self.retry_min_s
                continue
            self._waiting.extendleft(reversed(mail.transitions))
            self._dropped_unreported += mail.dropped
            self._trim()
            await asyncio.sleep(retry_s)
            retry_s = min(retry_s * 2, self.retry_max_s)

    # ------------------------------------------------------------------ rate limit

    def _free_slots(self, now: float) -> int:
        while self._sent_at and now - self._sent_at[0] >= self.settings.window_s:
            self._sent_at.popleft()
        return max(self.settings.max_per_window - len(self._sent_at), 0)

    async def _wait_for_slot(self) -> None:
        loop = asyncio.get_running_loop()
        while self._free_slots(loop.time()) == 0:
            await asyncio.sleep(self._sent_at[0] + self.settings.window_s - loop.time())

    def _next_mail(self) -> Mail:
        """One alarm while the window has room; the window's last mail takes all waiting."""
        free = self._free_slots(asyncio.get_running_loop().time())
        count = len(self._waiting) if free == 1 else 1
        transitions = tuple(self._waiting.popleft() for _ in range(count))
        dropped, self._dropped_unreported = self._dropped_unreported, 0
        return Mail(transitions, self._compose(transitions, dropped), dropped)

    # ------------------------------------------------------------------ delivery

    async def _deliver(self, mail: Mail) -> bool:
        loop = asyncio.get_running_loop()
        try:
            refused = await loop.run_in_executor(self._executor, send_blocking, self.settings,
                                                 mail.message)
        # SMTP and socket errors mostly, but any failure is a failed attempt: the worker
        # must outlive it and retry.
        except Exception as exc:
            self.failed += 1
            self.state = EmailState.FAILING
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("alarm e-mail not delivered; will retry", error=self.last_error,
                        host=self.settings.host, port=self.settings.port,
                        alarms=len(mail.transitions), waiting=self.waiting + len(mail.transitions))
            return False
        self._sent_at.append(loop.time())
        self.sent += 1
        self.notified += len(mail.transitions)
        if mail.is_digest:
            self.summarised += len(mail.transitions)
        self.refused += len(refused)
        self.state = EmailState.OK
        self.last_error = None
        self.last_sent_at = time.time()
        if refused:
            log.warning("some alarm e-mail recipients were refused", refused=sorted(refused))
        log.info("alarm e-mail sent", alarms=len(mail.transitions),
                 first_seq=mail.transitions[0].seq, subject=mail.message["Subject"])
        return True

    # ------------------------------------------------------------------ the message

    def _compose(self, transitions: tuple[AlarmTransition, ...], dropped: int) -> EmailMessage:
        s = self.settings
        message = EmailMessage()
        message["From"] = s.sender
        message["To"] = ", ".join(s.to)
        message["Date"] = formatdate(time.time(), usegmt=True)
        seqs = f"{transitions[0].seq}" if len(transitions) == 1 else (
            f"{transitions[0].seq}-{transitions[-1].seq}")
        # Unique without randomness: alarm seq never repeats for a gateway (see AlarmEngine).
        message["Message-ID"] = f"<alarm-{seqs}.{self.gateway_id}.{self.site}@refineryiq-edge>"
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        lines: list[str] = []
        if len(transitions) == 1:
            message["Subject"] = f"{s.subject_prefix} {self._headline(transitions[0])}".strip()
            lines += self._details(transitions[0])
        else:
            top = max((t.severity for t in transitions), key=lambda v: v.rank)
            message["Subject"] = (f"{s.subject_prefix} {len(transitions)} alarms up to {top.value}"
                                  f" (summary)").strip()
            lines += [f"{len(transitions)} alarms were raised while the notification limit "
                      f"({s.max_per_window} mails per {_duration(s.window_s)}) was reached:", ""]
            lines += [self._summary_line(t) for t in transitions[:DIGEST_MAX_LINES]]
            if len(transitions) > DIGEST_MAX_LINES:
                lines.append(f"... and {len(transitions) - DIGEST_MAX_LINES} more "
                             "(see the gateway's alarm journal)")
        if dropped:
            lines += ["", f"{dropped} earlier alarm notifications were dropped while the mail "
                          "server could not be reached (see the gateway's alarm journal)."]
        lines += ["", f"Gateway {self.gateway_id} at site {self.site}. Acknowledge alarms in "
                      "the gateway's alarm list."]
        message.set_content("\n".join(lines) + "\n")
        return message

    def _headline(self, t: AlarmTransition) -> str:
        what = "escalated" if not t.is_activation else "alarm"
        value = self._reading(t)
        return (f"{t.severity.value} {what} {t.tag_id} {t.kind.value}"
                f"{': ' + value if value else ''}")

    def _details(self, t: AlarmTransition) -> list[str]:
        rows = [("Tag", f"{t.tag_id} {self._tag_name(t.tag_id)}".rstrip()),
                ("Unit", t.unit_id or ""), ("Device", t.device_id or ""),
                ("Condition", t.kind.value), ("Severity", t.severity.value),
                ("Value", self._number(t.tag_id, t.value)),
                ("Limit", self._number(t.tag_id, t.limit)),
                ("Time", self._time(t.time)), ("State", t.to_state.value),
                ("Alarm id", t.alarm_id), ("Message", t.message)]
        if t.doubtful:
            rows.append(("Quality", "doubtful: the value may be unreliable"))
        width = max(len(name) for name, _ in rows) + 2
        return [f"{name + ':':<{width}}{text}" for name, text in rows if text]

    def _summary_line(self, t: AlarmTransition) -> str:
        reading = self._reading(t)
        unit = f" ({t.unit_id})" if t.unit_id else ""
        return (f"{self._time(t.time)}  {t.severity.value:<6} {t.tag_id}{unit} {t.kind.value}"
                f"{'  ' + reading if reading else ''}")

    def _reading(self, t: AlarmTransition) -> str:
        if _missing(t.value):
            return ""
        if _missing(t.limit):
            return self._number(t.tag_id, t.value)
        return f"{self._number(t.tag_id, t.value)} (limit {self._number(t.tag_id, t.limit)})"

    def _tag_name(self, tag_id: str) -> str:
        if self.catalog is None or tag_id not in self.catalog.index:
            return ""
        return self.catalog.tag(tag_id).name

    def _number(self, tag_id: str, value: float | None) -> str:
        if _missing(value):
            return ""
        units = ""
        if self.catalog is not None and tag_id in self.catalog.index:
            units = self.catalog.tag(tag_id).engineering_units
        return f"{value:.6g} {units}".rstrip()

    def _time(self, epoch: float) -> str:
        local = datetime.fromtimestamp(epoch, self.timezone)
        utc = datetime.fromtimestamp(epoch, UTC)
        return f"{local:%Y-%m-%d %H:%M:%S %Z} ({utc:%Y-%m-%d %H:%M:%S} UTC)"

    # ------------------------------------------------------------------ reporting

    def health(self) -> dict[str, Any]:
        """The ``email`` section of /health."""
        return {"state": self.state.value, "server": f"{self.settings.host}:{self.settings.port}",
                "sent": self.sent, "alarms_notified": self.notified,
                "summarised": self.summarised, "failed": self.failed, "dropped": self.dropped,
                "refused": self.refused, "waiting": self.waiting,
                "last_sent_at": self.last_sent_at, "last_error": self.last_error}

    def problem(self) -> str | None:
        """Health check: alarm mails wait because the server fails (degraded, not lost yet)."""
        if self.state != EmailState.FAILING or not self._waiting:
            return None
        return (f"SMTP server {self.settings.host}:{self.settings.port} failing "
                f"({self.last_error}); {self.waiting} alarm notifications waiting")

    def metrics(self) -> Iterator[Any]:
        """Prometheus families for /metrics."""
        for name, text, value in (
                ("refineryiq_email_sent", "Alarm e-mails delivered", self.sent),
                ("refineryiq_email_failures", "Alarm e-mail delivery attempts that failed",
                 self.failed),
                ("refineryiq_email_dropped", "Alarm notifications dropped from a full queue",
                 self.dropped),
                ("refineryiq_email_summarised", "Alarms reported in a rate-limit summary",
                 self.summarised)):
            family = CounterMetricFamily(name, text)
            family.add_metric([], value)
            yield family
        waiting = GaugeMetricFamily("refineryiq_email_waiting", "Alarm notifications queued")
        waiting.add_metric([], self.waiting)
        yield waiting


def _missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} s"
