"""The edge node's session numbers: ``bdSeq`` (kept in the state directory) and ``seq``.

Sparkplug 3.0 (section 6.4.5 and the NBIRTH/NDEATH rules): every MQTT CONNECT of the node
registers an NDEATH will whose ``bdSeq`` is one more than the previous CONNECT's (255 rolls
over to 0), and the NBIRTH of that session carries the same ``bdSeq``. It is kept on disk so
that a restarted gateway never reuses the number of the session whose NDEATH a host may still
be waiting for. ``seq`` counts every message of the node but NDEATH, 0 to 255 and round again,
restarting at 0 with each NBIRTH.

The same small file keeps the replay cursor: the id of the last embedded-store batch whose
values the node has published (or that the exception filter passed over), so data held while
the host or broker was away, or while the gateway was down, is replayed after a restart.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

STATE_FILE = "sparkplug.json"


class SessionFile:
    """``bd_seq`` and ``cursor`` in ``state_dir/sparkplug.json``, written atomically.

    Written from paho's network thread (``bdSeq`` before each CONNECT) and from an executor
    (the cursor), hence the lock; never from the event loop.
    """

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / STATE_FILE
        self._lock = threading.Lock()
        self.bd_seq: int | None = None  # the bdSeq of the latest CONNECT, None before any
        self.cursor: int | None = None
        try:
            saved = json.loads(self.path.read_text())
        except (OSError, ValueError):
            saved = {}
        if isinstance(saved.get("bd_seq"), int):
            self.bd_seq = saved["bd_seq"] % 256
        if isinstance(saved.get("cursor"), int):
            self.cursor = saved["cursor"]

    def next_bd_seq(self) -> int:
        """The bdSeq of a new CONNECT (persisted before it is used)."""
        with self._lock:
            self.bd_seq = 0 if self.bd_seq is None else (self.bd_seq + 1) % 256
            self._write()
            return self.bd_seq

    def save_cursor(self, cursor: int | None) -> None:
        with self._lock:
            self.cursor = cursor
            self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump({"bd_seq": self.bd_seq, "cursor": self.cursor}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class Sequence:
    """``seq`` of the node's messages: 0..255, then 0 again; NBIRTH takes 0."""

    def __init__(self) -> None:
        self._next = 0

    def birth(self) -> int:
        self._next = 1
        return 0

    def next(self) -> int:
        seq = self._next
        self._next = (seq + 1) % 256
        return seq
