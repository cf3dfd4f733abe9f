"""OPC-UA client driver: batched polling reads and subscriptions (see README.md here)."""

from drivers.opcua.driver import OpcUaDriver, classify_failure
from drivers.opcua.security import ServerCertificateMismatch, ServerCertificateTimeInvalid
from drivers.opcua.stats import DriverStats

__all__ = [
    "DriverStats",
    "OpcUaDriver",
    "ServerCertificateMismatch",
    "ServerCertificateTimeInvalid",
    "classify_failure",
]
