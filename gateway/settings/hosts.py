"""Listen-host rules shared by the `[http]` and `[opcua_server]` sections."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True for a host name or address that only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
