"""In-process single-flight: concurrent identical misses run the function once.

The first caller of a key (the leader) runs the function; callers that arrive while it
runs (followers) wait for its value instead of calling the LLM again. The value stays
available here until the leader's store has reached Redis, so a caller arriving between
"function returned" and "store landed" is not a miss either. Futures are
``concurrent.futures.Future`` so sync callers (any thread) and async callers (any loop)
can wait on the same flight.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

__all__ = ["IN_FLIGHT", "Flights", "LeaderFailedError", "observe"]

#: ``CacheResult.reason`` of a call served by an identical call in flight.
IN_FLIGHT = "single-flight: served the result of an identical call in flight"


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


def observe(fut: concurrent.futures.Future[Any]) -> asyncio.Future[Any]:
    """An asyncio view of a flight future that a waiter may cancel without harm.

    ``asyncio.wrap_future`` would cancel the shared future when one follower gives up
    (its time budget), failing every other follower of that flight.
    """
    loop = asyncio.get_running_loop()
    view: asyncio.Future[Any] = loop.create_future()

    def copy(done: concurrent.futures.Future[Any]) -> None:
        if view.done():
            return
        if done.cancelled():
            view.cancel()
        elif done.exception() is not None:
            view.set_exception(done.exception())  # type: ignore[arg-type]
        else:
            view.set_result(done.result())

    def forward(done: concurrent.futures.Future[Any]) -> None:
        if not loop.is_closed():  # the follower's loop may be gone by the time we land
            loop.call_soon_threadsafe(copy, done)

    fut.add_done_callback(forward)
    return view
