"""One handled request's trip through the cache, and the ``X-Cache`` headers it earns."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

from .._manifest import KeyManifest
from .._xflight import release
from ..cache import LLMCache, LookupOutcome
from ._record import CachedResponse
from ._request import RequestControl

__all__ = ["RequestState", "result_headers"]


class RequestState:
    """One handled request's trip through the cache (mutable, lives for one request)."""

    __slots__ = (
        "cached",
        "control",
        "failed",
        "flight",
        "flight_key",
        "lock",
        "manifest",
        "outcome",
        "semantic",
        "started",
        "stored",
    )

    def __init__(self, manifest: KeyManifest, control: RequestControl, started: float) -> None:
        self.manifest = manifest
        self.control = control
        self.started = started
        self.outcome: LookupOutcome | None = None
        self.cached: CachedResponse | None = None
        self.failed: str | None = None
        self.stored = False
        self.semantic: bool | None = None
        #: The in-process flight this request leads (WSGI keeps it here until the
        #: response is settled), and the cross-process lock it holds meanwhile.
        self.flight: concurrent.futures.Future[Any] | None = None
        self.flight_key = ""
        self.lock: Any = None

    def settle_flight(self, cache: LLMCache) -> None:
        """The leader is done: forget its flight (failing it if it never got a
        response) and free its cross-process lock, after the store (if any) landed."""
        flight, self.flight = self.flight, None
        if flight is not None:
            if flight.done():
                cache.flights.land(self.flight_key, flight)
            else:
                cache.flights.fail(self.flight_key, flight)
        lock, self.lock = self.lock, None
        release(cache, lock)


def result_headers(state: RequestState | None, label: str) -> list[tuple[bytes, bytes]]:
    """``X-Cache`` and friends for one handled request."""
    headers = [(b"x-cache", label.encode())]
    if state is None:
        return headers
    outcome = state.outcome
    if label == "HIT" and (outcome is None or outcome.entry is None):
        # Served by an identical request in flight: an exact match, fresh from the app.
        headers.append((b"x-cache-match", b"exact"))
        return headers
    if outcome is None:
        return headers
    entry = outcome.entry
    if entry is not None and outcome.layer:
        headers.append((b"x-cache-match", outcome.layer.encode()))
        headers.append((b"age", str(int(max(0.0, time.time() - entry.created))).encode()))
    # On a miss this is the nearest neighbour's similarity: what a threshold would need.
    if outcome.similarity is not None:
        headers.append((b"x-cache-similarity", f"{outcome.similarity:.4f}".encode()))
    return headers
