"""One blocking SMTP exchange (SSL, STARTTLS or plain, optional login)."""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from typing import Any

from gateway.settings import EmailSettings, SmtpSecurity


def send_blocking(settings: EmailSettings, message: EmailMessage) -> dict[str, Any]:
    """Deliver one message over SMTP (blocking: run it on a worker thread). Returns the
    recipients the server refused; raises ``smtplib.SMTPException`` or ``OSError``."""
    context = None
    if settings.security != SmtpSecurity.NONE:
        context = ssl.create_default_context(
            cafile=str(settings.ca_file) if settings.ca_file else None)
    # The host name, not getfqdn(): a reverse DNS lookup can stall for seconds on a plant LAN.
    helo = socket.gethostname()
    if settings.security == SmtpSecurity.SSL:
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(settings.host or "", settings.port, helo,
                                              timeout=settings.timeout_s, context=context)
    else:
        smtp = smtplib.SMTP(settings.host or "", settings.port, helo, timeout=settings.timeout_s)
    with smtp:
        if settings.security == SmtpSecurity.STARTTLS:
            smtp.starttls(context=context)
        if settings.username is not None:
            password = settings.password.get_secret_value() if settings.password else ""
            smtp.login(settings.username, password)
        return smtp.send_message(message)
