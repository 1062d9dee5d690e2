"""A circuit breaker: after repeated cache failures, skip the cache for a cool-down.

While Redis is down every call would otherwise pay its full time budget before failing
open. After ``threshold`` consecutive failures the breaker opens and calls skip the
cache at once; after ``cooldown`` seconds one probe call is let through (half-open): its
success closes the breaker, its failure opens it again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

__all__ = ["Breakers", "CircuitBreaker"]


class CircuitBreaker:
    def __init__(self, threshold: int = 5, cooldown: float = 5.0) -> None:
        self.check(threshold, cooldown)
        self.threshold = threshold
        self.cooldown = cooldown
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._lock = threading.Lock()
        self.opened = 0  # how many times it opened (for stats and tests)

    @staticmethod
    def check(threshold: int, cooldown: float) -> None:
        """Raise ValueError for settings no breaker accepts."""
        if threshold < 1:
            raise ValueError("breaker threshold must be >= 1")
        if cooldown <= 0:
            raise ValueError("breaker cooldown must be > 0 seconds")

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if time.monotonic() - self._opened_at >= self.cooldown:
                return "half-open"
            return "open"

    def allow(self) -> bool:
        """May this call use the cache? In half-open state, only one probe at a time."""
        with self._lock:
            if self._opened_at is None:
                return True
            if time.monotonic() - self._opened_at < self.cooldown or self._probing:
                return False
            self._probing = True
            return True

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._probing or self._failures >= self.threshold:
                if self._opened_at is None or self._probing:
                    self.opened += 1
                self._opened_at = time.monotonic()
                self._probing = False


class Breakers:
    """The breakers of one cache: one on a single node; on a cluster one per hash slot.

    A dead shard then switches the cache off only for the tenants whose keys live on it.
    Iterating yields every breaker made so far (the single-node one first).
    """

    def __init__(self, threshold: int, cooldown: float, *, cluster: bool) -> None:
        self.default = CircuitBreaker(threshold, cooldown)
        self._args = (threshold, cooldown)
        self._cluster = cluster
        self._slots: dict[int, CircuitBreaker] = {}

    def for_tag(self, tag: str) -> CircuitBreaker:
        """The breaker of the keys with hash tag ``tag`` (``Space.tag``)."""
        if not self._cluster:
            return self.default
        from redis.crc import key_slot

        slot = key_slot(tag.encode())
        breaker = self._slots.get(slot)
        if breaker is None:
            breaker = self._slots.setdefault(slot, CircuitBreaker(*self._args))
        return breaker

    def __iter__(self) -> Iterator[CircuitBreaker]:
        return iter([self.default, *self._slots.values()])

    def named(self) -> list[tuple[str, CircuitBreaker]]:
        """The breakers in use with their names: ``node`` on one Redis, ``slot:<n>`` for
        each hash slot of a cluster that was used so far."""
        if not self._cluster:
            return [("node", self.default)]
        return [(f"slot:{slot}", b) for slot, b in sorted(self._slots.items())]
