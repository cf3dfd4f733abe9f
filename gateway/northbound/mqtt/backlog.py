"""Live values waiting for room in the MQTT client's queue: at most one per tag, the newest.

When the broker (or the network, or paho's own thread) falls behind, values cannot be handed
to paho without limit: paho queues QoS 0 messages in an unbounded list, about a kilobyte each.
The publisher keeps at most ``max_queued`` values in paho and parks the rest here, one slot per
tag: a newer value of a waiting tag replaces the older one (the older is *dropped* and
counted), so what waits is bounded by the catalog whatever the broker does. Tags leave in the
order they started waiting, so a tag that has waited longest goes first and none starves.

Alarms never come here: they go through the durable outbox and are never dropped.
"""

from __future__ import annotations

import numpy as np

from drivers.quality import QUALITY_DTYPE, REASON_DTYPE


class ValueBacklog:
    """One waiting value per tag (value, quality, reason, source time), oldest waiter first."""

    def __init__(self, tags: int):
        self.waiting = np.zeros(tags, dtype=bool)
        self.since = np.zeros(tags, dtype=np.float64)
        self.value = np.zeros(tags, dtype=np.float64)
        self.quality = np.zeros(tags, dtype=QUALITY_DTYPE)
        self.reason = np.zeros(tags, dtype=REASON_DTYPE)
        self.source_ts = np.zeros(tags, dtype=np.float64)
        self.dropped = 0
        self._count = 0

    def __len__(self) -> int:
        """Tags with a value waiting."""
        return self._count

    @property
    def tags(self) -> int:
        return len(self.waiting)

    def put(self, tag_index: np.ndarray, value: np.ndarray, quality: np.ndarray,
            reason: np.ndarray, source_ts: np.ndarray, now: float) -> int:
        """Park these values (``tag_index`` unique); returns how many older values they replaced."""
        if len(tag_index) == 0:
            return 0
        already = self.waiting[tag_index]
        replaced = int(np.count_nonzero(already))
        # A replaced tag keeps its place in the queue: it has been waiting since then.
        self.since[tag_index] = np.where(already, self.since[tag_index], now)
        self.waiting[tag_index] = True
        self.value[tag_index] = value
        self.quality[tag_index] = quality
        self.reason[tag_index] = reason
        self.source_ts[tag_index] = source_ts
        self._count += len(tag_index) - replaced
        self.dropped += replaced
        return replaced

    def take(self, limit: int) -> np.ndarray:
        """Up to ``limit`` waiting tags, longest waiting first; they stop waiting.

        Read their values from :attr:`value`, :attr:`quality`, :attr:`reason` and
        :attr:`source_ts` before the next :meth:`put`.
        """
        if limit <= 0 or self._count == 0:
            return np.empty(0, dtype=np.intp)
        waiting = np.flatnonzero(self.waiting)
        waiting = waiting[np.argsort(self.since[waiting], kind="stable")[:limit]]
        self.waiting[waiting] = False
        self._count -= len(waiting)
        return waiting

    def clear(self) -> int:
        """Forget every waiting value (counted as dropped); returns how many."""
        cleared = self._count
        self.waiting[:] = False
        self._count = 0
        self.dropped += cleared
        return cleared
