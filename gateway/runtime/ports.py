"""Listening ports checked before anything starts, so a port in use is a configuration error
that names its setting instead of a traceback halfway through start-up."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from plant.errors import ConfigError


@dataclass(frozen=True)
class Listener:
    setting: str  # e.g. "http.port"
    host: str
    port: int

    @property
    def env(self) -> str:
        return "REFINERYIQ_" + self.setting.upper().replace(".", "__")


class PortInUse(ConfigError):
    """A configured port is taken by another process (exit code 2, like any config error)."""

    def __init__(self, listener: Listener, config_path: str = "configuration"):
        self.listener = listener
        super().__init__(config_path, [
            f"{listener.setting}: {listener.host}:{listener.port} is already in use by another "
            f"process; stop it or choose another port ({listener.setting} in the file or "
            f"{listener.env}=...)"])


def ensure_free(listeners: list[Listener], config_path: str = "configuration") -> None:
    """Raise :class:`PortInUse` for the first listener whose port another process holds.
    Port 0 (any free port) is never checked. Binding mimics the servers (SO_REUSEADDR), so a
    port left in TIME_WAIT by our own previous run is not reported."""
    for listener in listeners:
        if listener.port == 0:
            continue
        family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((listener.host, listener.port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise PortInUse(listener, config_path) from None
                raise


def is_address_in_use(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE
