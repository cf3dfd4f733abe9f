"""The accepted Batches in embedded-store order, from memory while the node keeps up and from
the store while it catches up (after the host or broker was away, or a restart).

Every accepted Batch has a store id (its position in the append order). The node's
``cursor`` is the id of the last Batch it has dealt with; it deals with the next ones strictly
in id order, so a value is neither skipped nor sent twice: from the in-memory queue when the
queue holds the next id, else from the store (``EmbeddedStore.pending``).

Ids are not handed to sinks, so the stream numbers Batches itself: the pipeline calls its
sinks once per committed list, in commit order, one list at a time, and ids of one commit are
consecutive. At the first call the stream asks the store for its newest id (nothing is being
appended while a sink runs), and counts from there.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Protocol

from drivers.batch import Batch
from gateway.store.embedded_rows import StoredBatch

# Batches held in memory for publishing; beyond this the store serves them.
QUEUE_BATCHES = 512


class ReplayStore(Protocol):
    """What the stream reads from the embedded store (:class:`EmbeddedStore`)."""

    async def last_batch_id(self) -> int: ...

    async def pending(self, after_id: int, max_values: int) -> list[StoredBatch]: ...


class BatchStream:
    """Ids for accepted Batches, the in-memory queue, and the next Batches after ``cursor``."""

    def __init__(self, store: ReplayStore, cursor: int | None = None):
        self.store = store
        self.cursor = cursor  # last id dealt with; None until known
        self.next_id: int | None = None  # id the next accepted Batch gets
        self.skipped = 0  # ids the store no longer had when their turn came (retention)
        self._queue: deque[tuple[int, Batch]] = deque()
        self.first_seen: int | None = None

    @property
    def last_id(self) -> int | None:
        return None if self.next_id is None else self.next_id - 1

    @property
    def behind(self) -> int:
        """Batches accepted and not yet dealt with."""
        if self.cursor is None or self.next_id is None:
            return 0
        return max(self.next_id - 1 - self.cursor, 0)

    async def accept(self, batches: Sequence[Batch], keep: bool) -> None:
        """Number a committed list of Batches; keep them in memory when ``keep`` (the node is
        publishing live) and there is room, else the store serves them when their turn comes."""
        if self.next_id is None:
            last = await self.store.last_batch_id()
            self.next_id = last - len(batches) + 1
            self.first_seen = self.next_id
            if self.cursor is None or self.cursor > last:  # none kept, or a new store
                self.cursor = self.next_id - 1
        for batch in batches:
            if keep and len(self._queue) < QUEUE_BATCHES:
                self._queue.append((self.next_id, batch))
            self.next_id += 1

    def drop_queue(self) -> None:
        """Forget what is held in memory (the store still has it)."""
        self._queue.clear()

    async def take(self, max_values: int) -> list[tuple[int, Batch]]:
        """The next Batches after ``cursor``, consecutive, about ``max_values`` values (at least
        one Batch when any is due); [] when none is. Advances nothing: call ``done``."""
        if self.cursor is None or self.next_id is None or self.cursor >= self.next_id - 1:
            return []
        nxt = self.cursor + 1
        while self._queue and self._queue[0][0] < nxt:
            self._queue.popleft()
        if self._queue and self._queue[0][0] == nxt:
            out, values = [], 0
            for id_, batch in self._queue:
                if id_ != nxt + len(out) or (out and values + len(batch) > max_values):
                    break
                out.append((id_, batch))
                values += len(batch)
            return out
        upto = self._queue[0][0] - 1 if self._queue else self.next_id - 1
        stored = await self.store.pending(self.cursor, max_values)
        out = [(s.id, s.batch) for s in stored if s.id <= upto]
        if not out:
            # The store no longer holds them (retention ran while they were held).
            self.skipped += upto - self.cursor
            self.cursor = upto
            return await self.take(max_values)
        self.skipped += (out[-1][0] - self.cursor) - len(out)
        return out

    def done(self, upto_id: int) -> None:
        """Every Batch up to ``upto_id`` has been dealt with."""
        if self.cursor is None or upto_id > self.cursor:
            self.cursor = upto_id
        while self._queue and self._queue[0][0] <= self.cursor:
            self._queue.popleft()
