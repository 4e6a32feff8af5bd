"""Counting events per client in process memory: an exact sliding window.

Used where a flood must be refused before it costs anything (Open311's public writes, building an
uncached report). Each server process counts apart; where every process must see one total,
``qala.components.requests311.ratelimit.SharedRateLimit`` counts in the store.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """Allow at most ``limit`` events per ``window`` seconds for each client key.

    Parameters
    ----------
    limit
        Events allowed in any window; zero or less disables limiting.
    window
        Length of the sliding window in seconds.
    clock
        Monotonic seconds (tests pass a fake clock).
    max_clients
        Keys remembered at most; the stalest are forgotten first (bounds memory under floods of
        spoofed keys).
    """

    def __init__(
        self,
        limit: int,
        *,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_clients = max_clients
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float:
        """Record one event for ``key``; returns 0 when allowed, else seconds until it would be."""
        if self.limit <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            events = self._events.get(key)
            if events is None:
                if len(self._events) >= self.max_clients:
                    self._forget_stale(now)
                events = self._events[key] = deque()
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return max(0.001, events[0] + self.window - now)
            events.append(now)
            return 0.0

    @staticmethod
    def retry_after_seconds(wait: float) -> int:
        """A ``Retry-After`` header's whole seconds for a wait."""
        return max(1, math.ceil(wait))

    def _forget_stale(self, now: float) -> None:
        stale = [k for k, v in self._events.items() if not v or v[-1] <= now - self.window]
        for key in stale:
            del self._events[key]
        if len(self._events) >= self.max_clients:  # all active: drop the oldest half
            for key in sorted(self._events, key=lambda k: self._events[k][-1])[
                : self.max_clients // 2
            ]:
                del self._events[key]
