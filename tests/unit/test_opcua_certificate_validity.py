"""A trusted OPC-UA server certificate must be inside its validity period at every connect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from structlog.testing import capture_logs

from drivers.opcua.security import ServerCertificateTimeInvalid, check_validity
from plant.devices import OpcUaDevice

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DEVICE = OpcUaDevice(id="scada-ht", protocol="opcua")
ACCEPTING = OpcUaDevice(id="scada-ht", protocol="opcua", accept_expired_certificate=True)


def certificate(valid_from: datetime, valid_to: datetime) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plant-opc-server")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(valid_from).not_valid_after(valid_to)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.DER)


def test_a_certificate_inside_its_period_is_accepted_quietly():
    with capture_logs() as logs:
        check_validity(certificate(NOW - timedelta(days=365), NOW + timedelta(days=365)), DEVICE, NOW)
    assert logs == []


def test_an_expired_certificate_is_refused_naming_its_period_and_the_remedy():
    der = certificate(NOW - timedelta(days=400), NOW - timedelta(days=1))
    with pytest.raises(ServerCertificateTimeInvalid) as info:
        check_validity(der, DEVICE, NOW)
    message = str(info.value)
    assert "scada-ht" in message and "2026-11-25" in message
    assert "accept_expired_certificate" in message


def test_a_certificate_not_yet_valid_is_refused():
    with pytest.raises(ServerCertificateTimeInvalid):
        check_validity(certificate(NOW + timedelta(days=1), NOW + timedelta(days=400)), DEVICE, NOW)


def test_a_device_may_accept_an_expired_certificate_with_a_warning():
    with capture_logs() as logs:
        check_validity(certificate(NOW - timedelta(days=400), NOW - timedelta(days=1)), ACCEPTING, NOW)
    assert [e["log_level"] for e in logs] == ["warning"]
    assert "reading it anyway" in logs[0]["event"]


def test_a_certificate_expiring_within_the_warning_period_is_logged():
    with capture_logs() as logs:
        check_validity(certificate(NOW - timedelta(days=300), NOW + timedelta(days=10)), DEVICE, NOW)
    assert [e["log_level"] for e in logs] == ["warning"]
    assert "expires on 2026-12-06" in logs[0]["event"]
