"""A circuit breaker: after repeated cache failures, skip the cache for a cool-down.

While Redis is down every call would otherwise pay its full time budget before failing
open. After ``threshold`` consecutive failures the breaker opens and calls skip the
cache at once; after ``cooldown`` seconds one probe call is let through (half-open): its
success closes the breaker, its failure opens it again.
"""

from __future__ import annotations

import threading
import time

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    def __init__(self, threshold: int = 5, cooldown: float = 5.0) -> None:
        if threshold < 1:
            raise ValueError("breaker threshold must be >= 1")
        if cooldown <= 0:
            raise ValueError("breaker cooldown must be > 0 seconds")
        self.threshold = threshold
        self.cooldown = cooldown
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._lock = threading.Lock()
        self.opened = 0  # how many times it opened (for stats and tests)

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
