"""The state directory: proved writable before anything is accepted into it."""

from __future__ import annotations

import errno
import os


class StateDirError(RuntimeError):
    """The state directory cannot hold the gateway's files."""


def check_state_dir(state_dir) -> None:
    """Create the state directory if needed and prove it is writable, naming it otherwise:
    every durable promise of the gateway (accepted scans, outbox, journal) lives there."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        probe = state_dir / ".write-test"
        with open(probe, "wb") as f:
            f.write(b"ok")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as exc:
        why = {errno.EROFS: "it is on a read-only file system",
               errno.EACCES: "permission denied", errno.ENOSPC: "no space left on the device",
               }.get(exc.errno, exc.strerror or str(exc))
        raise StateDirError(f"state directory {state_dir} is not writable: {why} "
                            "(set state_dir or REFINERYIQ_STATE_DIR)") from None
