"""E-mail notification of alarms against a real SMTP server (aiosmtpd) on a free loopback port.

Transitions are built as the alarm engine journals them and handed to the notifier as the alarm
service hands them to its listeners; one test drives the whole path from a scan through the
real alarm service. The rate-limit window is 10 minutes unless a test is about the window.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import uuid
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from analytics.alarm_types import AlarmKind, AlarmState, AlarmTransition, Severity
from gateway.northbound.email.notifier import EmailNotifier, EmailState, is_notifiable
from gateway.northbound.email.service import EmailService
from gateway.settings import EmailSettings
from plant.catalog import Catalog
from plant.load import load_plant
from tests.support.daemon import free_port

REPO = Path(__file__).parents[2]
CATALOG = Catalog.build(load_plant(REPO / "config" / "plant.toml"))
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
SENDER = "gateway@refinery.example"
RECIPIENTS = ["oncall@refinery.example", "shift@refinery.example"]


class Inbox:
    """aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.envelopes.append(envelope)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[EmailMessage]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.messages) < count:
            assert loop.time() < deadline, f"{len(self.messages)} of {count} mails arrived"
            await asyncio.sleep(0.02)
        return self.messages


def smtp_server(inbox: Inbox, port: int | None = None, **kwargs) -> Controller:
    controller = Controller(inbox, hostname="127.0.0.1", port=port or free_port(), **kwargs)
    controller.start()
    return controller


@pytest.fixture
def inbox():
    box = Inbox()
    controller = smtp_server(box)
    box.port = controller.port
    yield box
    controller.stop()


def email_settings(port: int, **overrides) -> EmailSettings:
    values = {"enabled": True, "host": "127.0.0.1", "port": port, "security": "none",
              "from": SENDER, "to": RECIPIENTS, "timeout_s": 2.0, **overrides}
    return EmailSettings.model_validate(values)


async def started(settings: EmailSettings, **kwargs) -> EmailNotifier:
    notifier = EmailNotifier(settings, "edge-01", "paraguana", catalog=CATALOG,
                             timezone="America/Caracas", **kwargs)
    notifier.start()
    return notifier


def transition(seq: int = 1, tag_id: str = "TI-101", severity: Severity = Severity.HIGH,
               kind: AlarmKind = AlarmKind.HIHI, from_state: AlarmState = AlarmState.NORMAL,
               to_state: AlarmState = AlarmState.UNACK, value: float = 412.5,
               limit: float = 400.0, time: float = T0) -> AlarmTransition:
    return AlarmTransition(seq=seq, alarm_id=f"A-{seq}", key=f"{tag_id}/PROCESS", tag_id=tag_id,
                           kind=kind, from_state=from_state, to_state=to_state,
                           severity=severity, value=value, limit=limit, time=time,
                           unit_id="CDU-101", device_id="plc-cdu-fcc",
                           message=f"{tag_id}: {kind.value} {value} above limit {limit}")


def body(message: EmailMessage) -> str:
    return message.get_content()


async def until(condition, timeout: float = 5.0) -> None:
    """Wait until ``condition()`` holds (the server sees a mail before the client hears 250)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def settle(notifier: EmailNotifier) -> None:
    """Until the queue is empty and the worker is idle again."""
    await until(lambda: not notifier.waiting and not notifier._wake.is_set())


# --------------------------------------------------------------------------- what is mailed


async def test_a_high_activation_sends_one_mail_with_tag_value_limit_severity_and_time(inbox):
    notifier = await started(email_settings(inbox.port))
    try:
        await notifier.on_transitions([transition()])
        (mail,) = await inbox.wait_for(1)
        await until(lambda: notifier.sent == 1)
        await settle(notifier)
        assert len(inbox.messages) == 1
        assert mail["Subject"].startswith("[RefineryIQ] HIGH alarm TI-101 HIHI")
        assert mail["From"] == SENDER and sorted(inbox.envelopes[0].rcpt_tos) == sorted(RECIPIENTS)
        text = body(mail)
        assert "TI-101" in text and CATALOG.tag("TI-101").name in text
        assert "412.5 °C" in text and "400 °C" in text
        assert "Severity:" in text and "HIGH" in text
        assert "2023-11-14 22:13:20 UTC" in text and "18:13:20" in text  # plant time, -04
        assert notifier.sent == 1 and notifier.health()["state"] == EmailState.OK
    finally:
        await notifier.stop()


async def test_low_and_medium_activations_send_no_mail(inbox):
    notifier = await started(email_settings(inbox.port))
    try:
        await notifier.on_transitions([transition(1, "PI-103", Severity.LOW, AlarmKind.HI),
                                       transition(2, "FI-102", Severity.MEDIUM, AlarmKind.LO)])
        assert notifier.waiting == 0
        await notifier.on_transitions([transition(3)])
        (mail,) = await inbox.wait_for(1)
        await settle(notifier)
        assert len(inbox.messages) == 1 and "TI-101" in mail["Subject"]
    finally:
        await notifier.stop()


def test_acknowledgements_and_returns_to_normal_are_not_notifiable():
    ack = transition(from_state=AlarmState.UNACK, to_state=AlarmState.ACKED)
    rtn = transition(from_state=AlarmState.UNACK, to_state=AlarmState.RTN_UNACK)
    shelve = transition(from_state=AlarmState.UNACK, to_state=AlarmState.SHELVED)
    assert not any(is_notifiable(t, Severity.HIGH) for t in (ack, rtn, shelve))


def test_an_escalation_to_high_is_notifiable_unless_escalations_are_off():
    escalated = transition(from_state=AlarmState.UNACK, to_state=AlarmState.UNACK)
    reannunciated = transition(from_state=AlarmState.ACKED, to_state=AlarmState.UNACK)
    assert is_notifiable(escalated, Severity.HIGH)
    assert is_notifiable(reannunciated, Severity.HIGH)
    assert not is_notifiable(escalated, Severity.HIGH, escalations=False)


async def test_an_escalation_mail_says_escalated(inbox):
    notifier = await started(email_settings(inbox.port))
    try:
        await notifier.on_transitions([transition(from_state=AlarmState.UNACK)])
        (mail,) = await inbox.wait_for(1)
        assert mail["Subject"].startswith("[RefineryIQ] HIGH escalated TI-101 HIHI")
    finally:
        await notifier.stop()


async def test_min_severity_medium_also_mails_medium_alarms(inbox):
    notifier = await started(email_settings(inbox.port, min_severity="MEDIUM"))
    try:
        await notifier.on_transitions([transition(severity=Severity.MEDIUM)])
        (mail,) = await inbox.wait_for(1)
        assert "MEDIUM alarm TI-101" in mail["Subject"]
    finally:
        await notifier.stop()


# --------------------------------------------------------------------------- rate limit


async def test_a_burst_beyond_the_rate_limit_is_summarised_in_the_last_mail_allowed(inbox):
    notifier = await started(email_settings(inbox.port, max_per_window=2))
    try:
        await notifier.on_transitions([transition(seq, time=T0 + seq) for seq in range(1, 6)])
        first, summary = await inbox.wait_for(2)
        await settle(notifier)
        assert len(inbox.messages) == 2
        assert "A-1" in body(first)
        assert summary["Subject"] == "[RefineryIQ] 4 alarms up to HIGH (summary)"
        assert "2 mails per 10 minutes" in body(summary)
        assert body(summary).count("HIGH   TI-101 (CDU-101) HIHI") == 4
        assert (notifier.sent, notifier.summarised, notifier.notified) == (2, 4, 5)
    finally:
        await notifier.stop()


async def test_alarms_beyond_the_limit_wait_for_the_window_and_go_out_in_one_mail(inbox):
    notifier = await started(email_settings(inbox.port, max_per_window=1, window_s=0.5))
    try:
        await notifier.on_transitions([transition(1)])
        await inbox.wait_for(1)
        await notifier.on_transitions([transition(2, "TI-102")])
        await notifier.on_transitions([transition(3, "PI-103")])
        assert notifier.waiting == 2 and len(inbox.messages) == 1
        _, summary = await inbox.wait_for(2)
        assert "2 alarms" in summary["Subject"]
        assert "TI-102" in body(summary) and "PI-103" in body(summary)
        await until(lambda: notifier.summarised == 2)
    finally:
        await notifier.stop()


# --------------------------------------------------------------------------- server trouble


async def test_an_unreachable_server_is_counted_and_raises_nothing():
    notifier = await started(email_settings(free_port()), retry_min_s=0.05, retry_max_s=0.05)
    try:
        await notifier.on_transitions([transition()])
        while notifier.failed < 2:
            await asyncio.sleep(0.02)
        health = notifier.health()
        assert health["state"] == EmailState.FAILING and health["waiting"] == 1
        assert "ConnectionRefusedError" in health["last_error"]
        assert "failing" in notifier.problem()
    finally:
        await notifier.stop()


async def test_a_full_queue_drops_the_oldest_alarms_and_counts_them():
    settings = email_settings(free_port(), queue_size=3)
    notifier = await started(settings, retry_min_s=60)  # the first attempt fails, then waits
    try:
        await notifier.on_transitions([transition(1)])
        while notifier.failed < 1:
            await asyncio.sleep(0.02)
        await notifier.on_transitions([transition(seq) for seq in range(2, 6)])
        assert (notifier.waiting, notifier.dropped) == (3, 2)
        assert [t.seq for t in notifier._waiting] == [3, 4, 5]
    finally:
        await notifier.stop()


async def test_alarms_queued_during_an_outage_are_mailed_when_the_server_returns():
    port = free_port()
    notifier = await started(email_settings(port, queue_size=2), retry_min_s=0.1,
                             retry_max_s=0.1)
    box = Inbox()
    controller = None
    try:
        await notifier.on_transitions([transition(seq, time=T0 + seq) for seq in range(1, 4)])
        while notifier.failed < 1:
            await asyncio.sleep(0.02)
        controller = smtp_server(box, port)
        await box.wait_for(2)
        await until(lambda: notifier.sent == 2)
        mailed = "\n".join(body(m) for m in box.messages)
        assert "A-2" in mailed and "A-1" not in mailed
        assert "1 earlier alarm notifications were dropped" in mailed
        assert notifier.dropped == 1 and notifier.state == EmailState.OK
    finally:
        await notifier.stop()
        if controller is not None:
            controller.stop()


async def test_a_silent_server_does_not_block_the_alarm_path():
    # Accepts TCP connections (kernel backlog) but never says hello.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    notifier = await started(email_settings(silent.getsockname()[1], timeout_s=1.0))
    try:
        for seq in range(1, 51):
            await notifier.on_transitions([transition(seq)])
        ticks = 0
        while ticks < 5:  # the event loop keeps turning while the mail hangs
            await asyncio.sleep(0.01)
            ticks += 1
        assert notifier.sent == 0 and notifier.waiting >= 49
    finally:
        await notifier.stop()
        silent.close()


# --------------------------------------------------------------------------- server security


async def test_login_uses_the_configured_username_and_password():
    box = Inbox()
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret")

    controller = smtp_server(box, authenticator=authenticator, auth_require_tls=False)
    notifier = await started(email_settings(controller.port, username="edge",
                                            password="s3cret"))
    try:
        await notifier.on_transitions([transition()])
        await box.wait_for(1)
        assert logins == [(b"edge", b"s3cret")]
    finally:
        await notifier.stop()
        controller.stop()


def tls_files(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the server's) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "smtp.crt", directory / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


async def test_starttls_verifies_the_server_against_the_configured_ca(tmp_path):
    cert_file, key_file = tls_files(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    box = Inbox()
    controller = smtp_server(box, tls_context=server_tls, require_starttls=True)
    notifier = await started(email_settings(controller.port, security="starttls",
                                            ca_file=str(cert_file)))
    try:
        await notifier.on_transitions([transition()])
        await box.wait_for(1)
        await until(lambda: notifier.sent == 1)
    finally:
        await notifier.stop()
        controller.stop()


async def test_starttls_refuses_a_server_it_cannot_verify(tmp_path):
    cert_file, key_file = tls_files(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    box = Inbox()
    controller = smtp_server(box, tls_context=server_tls, require_starttls=True)
    notifier = await started(email_settings(controller.port, security="starttls"),
                             retry_min_s=60)
    try:
        await notifier.on_transitions([transition()])
        while notifier.failed < 1:
            await asyncio.sleep(0.02)
        assert "SSLCertVerificationError" in notifier.last_error and box.messages == []
    finally:
        await notifier.stop()
        controller.stop()


# --------------------------------------------------------------------------- settings


def test_email_is_off_by_default():
    assert EmailSettings().enabled is False


def test_enabled_email_without_server_sender_or_recipients_is_a_config_error():
    with pytest.raises(ValidationError, match="needs host, from, to"):
        EmailSettings(enabled=True)


# --------------------------------------------------------------------------- in the daemon


async def test_the_service_mails_a_high_alarm_raised_by_the_alarm_service(tmp_path, inbox):
    from tests.integration.test_alarm_service import Harness

    harness = Harness(tmp_path / "state", site=f"t{uuid.uuid4().hex[:10]}",
                      email=email_settings(inbox.port).model_dump(by_alias=True))
    await harness.start()
    s = harness.settings
    service = EmailService(s.email, harness.catalog, s.gateway_id, s.site, s.analytics.timezone)
    harness.service.add_listener("email", service.on_transitions)  # as the daemon wires it
    await service.start()
    try:
        await harness.scan()
        await harness.scan(TI_101=365.0)  # MEDIUM: no mail
        await harness.scan(TI_101=420.0)  # escalates to HIHI, HIGH: one mail
        (mail,) = await inbox.wait_for(1)
        assert "TI-101 HIHI" in mail["Subject"] and "420 °C" in body(mail)
        await until(lambda: service.notifier.sent == 1)
        section = service.health()
        assert section["sent"] == 1 and section["state"] == EmailState.OK
    finally:
        await service.stop()
        await harness.stop()
