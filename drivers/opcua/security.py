"""Client security for OPC-UA: our application certificate and the servers we trust.

Layout under ``state_dir/pki/``::

    own/cert.der            the gateway's application instance certificate (self-signed)
    own/private/key.pem     its RSA key (mode 0600)
    trusted/<device_id>.der the server certificate trusted for that device

Both own files are generated on first use when absent (RSA 2048, valid 10 years, application URI
:data:`APPLICATION_URI`). An operator hands the certificate to the server's administrator.

The server certificate is trusted on first use (TOFU): the first successful endpoint lookup for
a device pins the certificate the server presents to ``trusted/<device_id>.der``; afterwards a
server presenting any other certificate is refused with :class:`ServerCertificateMismatch`. To
pin explicitly (or to accept a server's new certificate), place its DER file at that path.

The trusted certificate must also be inside its validity period at every connect: an expired
(or not yet valid) one is refused with :class:`ServerCertificateTimeInvalid` unless the device
sets ``accept_expired_certificate``; one that expires within :data:`EXPIRY_WARNING_DAYS` is
logged as a warning at each connect so it can be renewed in time.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from asyncua import Client, ua
from asyncua.crypto import cert_gen, security_policies
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID

from plant.devices import OpcUaDevice

APPLICATION_URI = "urn:refineryiq:edge:gateway"
PKI_DIR = "pki"
CERT_VALID_DAYS = 3650
EXPIRY_WARNING_DAYS = 30

_log = structlog.get_logger(__name__)

SECURITY_POLICIES: dict[str, type[security_policies.SecurityPolicy]] = {
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
}
SECURITY_MODES: dict[str, ua.MessageSecurityMode] = {
    "Sign": ua.MessageSecurityMode.Sign,
    "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt,
}

# One process generates the gateway's certificate once, even when several drivers start at once.
_certificate_lock = threading.Lock()


class ServerCertificateMismatch(Exception):
    """The server presented a certificate other than the one trusted for this device."""


class ServerCertificateTimeInvalid(Exception):
    """The trusted server certificate is outside its validity period."""


def check_validity(der: bytes, device: OpcUaDevice, now: datetime) -> None:
    """Refuse a server certificate outside its validity period (unless the device accepts
    expired ones); warn when it expires within EXPIRY_WARNING_DAYS."""
    cert = x509.load_der_x509_certificate(der)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if start <= now <= end:
        if end - now < timedelta(days=EXPIRY_WARNING_DAYS):
            _log.warning("device %s: the server certificate expires on %s; renew it on the server",
                         device.id, end.isoformat())
        return
    problem = (f"device {device.id}: the server certificate is valid from {start.isoformat()} "
               f"to {end.isoformat()}, not now ({now.isoformat(timespec='seconds')})")
    if not device.accept_expired_certificate:
        raise ServerCertificateTimeInvalid(
            problem + "; renew it on the server, or set accept_expired_certificate = true for "
            "this device to read it anyway")
    _log.warning("%s; reading it anyway (accept_expired_certificate)", problem)


def client_certificate_paths(state_dir: Path) -> tuple[Path, Path]:
    """(certificate, private key) paths of the gateway's own application certificate."""
    own = state_dir / PKI_DIR / "own"
    return own / "cert.der", own / "private" / "key.pem"


def trusted_server_certificate_path(state_dir: Path, device_id: str) -> Path:
    """Where the trusted certificate of one device's server is kept."""
    return state_dir / PKI_DIR / "trusted" / f"{device_id}.der"


def _create_client_certificate(cert_path: Path, key_path: Path, host_name: str) -> None:
    """Blocking (RSA key generation): generate whichever of key and certificate is missing."""
    with _certificate_lock:
        _create_missing(cert_path, key_path, host_name)


def _create_missing(cert_path: Path, key_path: Path, host_name: str) -> None:
    key_path.parent.mkdir(parents=True, exist_ok=True)
    if key_path.is_file():
        key = load_pem_private_key(key_path.read_bytes(), password=None)
    else:
        key = cert_gen.generate_private_key()
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(cert_gen.dump_private_key_as_pem(key))
        cert_path.unlink(missing_ok=True)  # a new key needs a new certificate
    if cert_path.is_file():
        return
    cert = cert_gen.generate_self_signed_app_certificate(
        key, APPLICATION_URI, {"organizationName": "RefineryIQ Edge"},
        [x509.UniformResourceIdentifier(APPLICATION_URI), x509.DNSName(host_name)],
        extended=[ExtendedKeyUsageOID.CLIENT_AUTH], days=CERT_VALID_DAYS)
    cert_path.write_bytes(cert.public_bytes(Encoding.DER))


async def ensure_client_certificate(state_dir: Path) -> tuple[Path, Path]:
    """The gateway's certificate and key, generated off the event loop on first use."""
    cert_path, key_path = client_certificate_paths(state_dir)
    if not (cert_path.is_file() and key_path.is_file()):
        await asyncio.to_thread(_create_client_certificate, cert_path, key_path, socket.gethostname())
    return cert_path, key_path


def leaf_certificate(der: bytes) -> bytes:
    """The first certificate of a DER chain.

    Servers may send their whole chain in EndpointDescription.ServerCertificate (Part 4, 7.10
    allows it); the chain is DER certificates back to back, so cut at the first SEQUENCE's
    length (long form, two length bytes, as every RSA-2048 certificate has).
    """
    if len(der) > 4 and der[0] == 0x30 and der[1] == 0x82:
        return der[: int.from_bytes(der[2:4], "big") + 4]
    return der


async def pin_server_certificate(client: Client, device: OpcUaDevice, state_dir: Path) -> Path:
    """Look up the server's certificate for the configured policy and mode, trusting it on first use.

    Returns the path of the trusted certificate. Raises ServerCertificateMismatch when the server
    presents a certificate other than the pinned one, ServerCertificateTimeInvalid when the
    certificate is outside its validity period (see :func:`check_validity`), ua.UaError when it
    offers no endpoint with the configured policy and mode.
    """
    policy = SECURITY_POLICIES[device.security_policy]
    mode = SECURITY_MODES[device.security_mode]
    endpoints = await client.connect_and_get_server_endpoints()
    endpoint = Client.find_endpoint(endpoints, mode, policy.URI)
    presented = leaf_certificate(bytes(endpoint.ServerCertificate))
    trusted = trusted_server_certificate_path(state_dir, device.id)
    if trusted.is_file():
        pinned = trusted.read_bytes()
        if pinned != presented:
            raise ServerCertificateMismatch(
                f"device {device.id}: server certificate differs from the trusted one at {trusted}; "
                "replace that file to accept the new certificate")
    check_validity(presented, device, datetime.now(UTC))
    if not trusted.is_file():
        trusted.parent.mkdir(parents=True, exist_ok=True)
        trusted.write_bytes(presented)
    return trusted


async def configure_security(client: Client, device: OpcUaDevice, state_dir: Path) -> None:
    """Apply the device's security policy, mode and user identity to a not yet connected client."""
    client.application_uri = APPLICATION_URI
    if device.username is not None:
        client.set_user(device.username)
    if device.password is not None:
        client.set_password(device.password.get_secret_value())
    if device.security_policy == "None":
        return
    cert_path, key_path = await ensure_client_certificate(state_dir)
    server_cert = await pin_server_certificate(client, device, state_dir)
    await client.set_security(
        SECURITY_POLICIES[device.security_policy], str(cert_path), str(key_path),
        server_certificate=str(server_cert), mode=SECURITY_MODES[device.security_mode])
