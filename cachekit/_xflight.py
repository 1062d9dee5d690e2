"""Cross-process single-flight: wait for an identical call another process is running.

:mod:`cachekit._flight` coalesces identical misses inside one process. Across processes
(several workers, several hosts) the leader of a key takes a redis-py Lock
(:meth:`LLMCache.try_lock`); the others poll the exact layer for the answer it stores,
and take the lock (and the call) themselves if it is released or its lease expires with
no answer. The leader looks once more after taking the lock: another process may have
stored the answer and released the lock between this one's miss and its lock.

:func:`claim` is that algorithm, once, for every entry point: the HTTP middlewares
(ASGI, WSGI) use it and the decorator can. What is being waited for is the caller's
business: ``poll`` looks up (exact layer only) and returns the decoded answer or None.
The caller that gets ``Claim.lock`` runs the call, stores the answer and only then
releases the lock with :func:`release` (so pollers find the entry before they could take
the lock and call again).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ._manifest import KeyManifest
from .cache import CACHE_ERRORS, LLMCache

__all__ = ["OTHER_PROCESS", "Claim", "claim", "release", "unlock"]

T = TypeVar("T")

log = logging.getLogger("cachekit")

#: ``CacheResult.reason`` of a call served by another process's stored answer.
OTHER_PROCESS = "single-flight: served the result of another process's call"

_FIRST_DELAY = 0.01
_MAX_DELAY = 0.2


@dataclass(slots=True)
class Claim(Generic[T]):
    """What :func:`claim` decided: run the call (holding ``lock``) or use ``found``.

    Both None: the wait ran out (``flight_wait``) with the lock still held elsewhere;
    the caller runs the call without the lock (fail-open, like any cache trouble).
    """

    lock: Any = None
    found: T | None = None


async def claim(
    cache: LLMCache,
    manifest: KeyManifest,
    generation: int,
    poll: Callable[[], Awaitable[T | None]],
) -> Claim[T]:
    """Take the key's cross-process lock, or wait for the holder's stored answer.

    Runs on the cache's home loop (``cache.run`` / ``cache.run_sync``). Each lock attempt
    is bounded by ``budgets.command``, each poll by ``budgets.lookup``, the whole wait by
    ``budgets.flight_wait``. Redis errors propagate (the caller fails open); a lock taken
    before one is released in the background, never left held for a whole lease.
    """
    budgets = cache.budgets
    deadline = time.monotonic() + budgets.flight_wait
    delay = _FIRST_DELAY
    while True:
        async with asyncio.timeout(budgets.command):
            lock = await cache.try_lock(manifest, generation)
        if lock is not None:
            try:
                async with asyncio.timeout(budgets.lookup):
                    found = await poll()
            except BaseException:
                release(cache, lock)
                raise
            if found is not None:
                release(cache, lock)
                return Claim(found=found)
            return Claim(lock=lock)
        if time.monotonic() >= deadline:
            return Claim()
        await cache.idle(delay)
        delay = min(delay * 2, _MAX_DELAY)
        async with asyncio.timeout(budgets.lookup):
            found = await poll()
        if found is not None:
            return Claim(found=found)


def release(cache: LLMCache, lock: Any) -> None:
    """Free a lock from :func:`claim` in the background (from any thread, off the
    response path). Call it after the answer's store has landed, or failed."""
    if lock is not None:
        # Never dropped with the stores: a lock left held stalls every other process.
        cache.background(unlock, cache, lock, essential=True)


async def unlock(cache: LLMCache, lock: Any) -> None:
    """Free a lock from :func:`claim` now, within the command budget (on the home loop)."""
    try:
        async with asyncio.timeout(cache.budgets.command):
            await cache.unlock(lock)
    except CACHE_ERRORS as exc:
        # Redis is unreachable: the lease frees the lock; waiters meanwhile give up
        # after flight_wait and call for themselves.
        log.debug("cachekit: could not release a single-flight lock: %s", exc)
