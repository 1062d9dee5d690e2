"""The fail-open policy: which errors mean "cache unavailable", stage budgets, log lines,
and the counters of what the cache skipped instead of failing."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from redis import exceptions as redis_errors

from .errors import CacheConfigError, EmbedderError, IndexMismatchError

__all__ = ["CACHE_ERRORS", "OUTAGES", "Budgets", "Counts", "RateLimitedLog", "describe_failure"]

log = logging.getLogger("cachekit")

#: Causes that mean "Redis is unreachable" rather than "its data is not ours".
OUTAGES: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.RedisClusterException,
    OSError,
)

#: Errors that mean "the cache is unavailable", never "the user's call failed".
CACHE_ERRORS: tuple[type[BaseException], ...] = (
    redis_errors.RedisError,
    # Not a RedisError: what redis-py's cluster client raises when no node answers at
    # start (or all died), or a slot has no node.
    redis_errors.RedisClusterException,
    OSError,
    asyncio.TimeoutError,
    TimeoutError,
    concurrent.futures.TimeoutError,
    EmbedderError,
    IndexMismatchError,
)


@dataclass(frozen=True, slots=True)
class Budgets:
    """Time budgets (seconds) per stage; on expiry the call goes to the LLM (fail-open)."""

    connect: float = 0.5
    command: float = 0.5
    lookup: float = 0.5
    embed: float = 2.0
    search: float = 0.5
    store: float = 1.0
    pool_wait: float = 0.5
    #: How long a caller waits for an identical call already running (in this process or
    #: another) before calling the function itself.
    flight_wait: float = 30.0
    #: Lease of the cross-process single-flight lock: a holder that dies frees it then.
    flight_lease: float = 60.0

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not isinstance(value, int | float) or value <= 0:
                raise CacheConfigError(f"budget {name!r} must be a positive number, got {value!r}")


class Counts(Protocol):
    """Where the layers count what they skipped (``LLMCache`` holds them, as plain ints)."""

    #: Lookups that used the exact layer alone because the embedder was not ready.
    semantic_skipped: int
    #: Stores that got no vector because the embedder was not ready.
    vectors_skipped: int
    #: Stores refused because the generation moved while the call was in flight.
    stale_stores: int
    #: Background work dropped because ``max_pending_stores`` were already queued.
    dropped_stores: int


def describe_failure(stage: str, exc: BaseException, budget: float | None = None) -> str:
    """``Type: message`` for a log line, never an empty message.

    ``asyncio.timeout`` and ``Future.result(timeout)`` raise a TimeoutError without text;
    the line must still say which stage ran out of which budget.
    """
    text = str(exc)
    # concurrent.futures.TimeoutError is TimeoutError since Python 3.11.
    if not text and isinstance(exc, TimeoutError):
        text = (
            f"the {stage} took longer than its {budget:g} s budget"
            if budget is not None
            else f"the {stage} timed out"
        )
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class RateLimitedLog:
    """Log a failure at most once per interval per kind, counting the rest."""

    def __init__(self, interval: float = 30.0) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
                return
            self._last[kind] = now
            skipped = self.suppressed.pop(kind, 0)
        suffix = f" ({skipped} similar messages suppressed)" if skipped else ""
        log.warning(message + suffix, *args)
