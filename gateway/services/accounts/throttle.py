"""Login throttling: token buckets per client address and per username, bounded in memory.

Each client address may try 20 times in a burst, then once every 3 s; each username 5 times,
then once every 12 s. Guessing one account from many addresses and many accounts from one
address are both slowed down, and a flood of distinct keys costs at most ``MAX_BUCKETS``
remembered buckets per kind.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["IP_BURST", "IP_REFILL_S", "USER_BURST", "USER_REFILL_S", "MAX_BUCKETS",
           "TokenBuckets", "LoginThrottle"]

IP_BURST, IP_REFILL_S = 20, 3.0
USER_BURST, USER_REFILL_S = 5, 12.0
MAX_BUCKETS = 4096


class TokenBuckets:
    """One token bucket per key (``burst`` attempts, one more every ``refill_s``), for at most
    ``max_keys`` keys: the least recently used are forgotten, so a flood of distinct client
    addresses or usernames costs bounded memory."""

    def __init__(self, burst: int, refill_s: float, max_keys: int = MAX_BUCKETS,
                 clock: Callable[[], float] = time.monotonic):
        self.burst = burst
        self.refill_s = refill_s
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key: (level, at)

    def __len__(self) -> int:
        return len(self._buckets)

    def _level(self, key: str, now: float) -> float:
        level, at = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), level + (now - at) / self.refill_s)

    def wait_s(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        level = self._level(key, self._clock())
        return 0.0 if level >= 1.0 else (1.0 - level) * self.refill_s

    def take(self, key: str) -> None:
        """Spend one attempt of ``key``."""
        now = self._clock()
        self._buckets[key] = (self._level(key, now) - 1.0, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)


class LoginThrottle:
    """Login attempts limited per client address and per username (guessing one account from
    many addresses, or many accounts from one address, are both slowed down)."""

    def __init__(self, per_client: TokenBuckets | None = None, per_user: TokenBuckets | None = None):
        # `is None`, not `or`: an empty TokenBuckets is falsy (it has a length).
        self.per_client = per_client if per_client is not None else TokenBuckets(IP_BURST, IP_REFILL_S)
        self.per_user = per_user if per_user is not None else TokenBuckets(USER_BURST, USER_REFILL_S)

    def attempt(self, client: str, username: str) -> float:
        """0 and the attempt is counted, or the seconds to wait (and nothing is counted)."""
        user_key = username.casefold()
        wait = max(self.per_client.wait_s(client), self.per_user.wait_s(user_key))
        if wait == 0:
            self.per_client.take(client)
            self.per_user.take(user_key)
        return wait

    def __len__(self) -> int:
        return len(self.per_client) + len(self.per_user)
