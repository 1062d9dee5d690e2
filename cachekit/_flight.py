"""In-process single-flight: concurrent identical misses run the function once.

The first caller of a key (the leader) runs the function; callers that arrive while it
runs (followers) wait for its value instead of calling the LLM again. The value stays
available here until the leader's store has reached Redis, so a caller arriving between
"function returned" and "store landed" is not a miss either. Futures are
``concurrent.futures.Future`` so sync callers (any thread) and async callers (any loop)
can wait on the same flight.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

__all__ = ["Flights", "LeaderFailedError"]


class LeaderFailedError(Exception):
    """The leader of a flight raised or gave up; followers call the function themselves."""


class Flights:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, concurrent.futures.Future[Any]] = {}

    def join(self, key: str) -> tuple[bool, concurrent.futures.Future[Any]]:
        """(True, future) for the leader, (False, the leader's future) for followers."""
        with self._lock:
            fut = self._flights.get(key)
            if fut is not None:
                return False, fut
            fut = concurrent.futures.Future()
            self._flights[key] = fut
            return True, fut

    def peek(self, key: str) -> concurrent.futures.Future[Any] | None:
        """The flight of ``key`` if one is running or its store is still pending."""
        return self._flights.get(key)

    def lead(self, key: str) -> concurrent.futures.Future[Any]:
        """Start a flight that replaces any other (a forced refresh: ``skip_lookup``)."""
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            self._flights[key] = fut
        return fut

    def resolve(self, fut: concurrent.futures.Future[Any], value: Any) -> None:
        """Give followers the value (the flight stays registered until ``land``)."""
        if not fut.done():
            fut.set_result(value)

    def fail(self, key: str, fut: concurrent.futures.Future[Any]) -> None:
        """The leader failed: release followers and forget the flight."""
        if not fut.done():
            fut.set_exception(LeaderFailedError(key))
        self.land(key, fut)

    def land(self, key: str, fut: concurrent.futures.Future[Any]) -> None:
        """The value is in Redis now (or will never be): forget the flight."""
        with self._lock:
            if self._flights.get(key) is fut:
                del self._flights[key]

    def forget(self, prefix: str) -> None:
        """Forget every flight whose key starts with ``prefix`` (after an invalidation)."""
        with self._lock:
            for key in [k for k in self._flights if k.startswith(prefix)]:
                del self._flights[key]

    def __len__(self) -> int:
        return len(self._flights)
