"""The cross-process single-flight lock: redis-py's Lock, with a lease, per key.

``try_lock`` and ``unlock`` are also ``LLMCache`` methods (assigned there).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING, Any

from redis import exceptions as redis_errors

from ._manifest import KeyManifest
from ._policy import CACHE_ERRORS

if TYPE_CHECKING:
    from .cache import LLMCache

__all__ = ["UNOWNED_LOCK", "try_lock", "unlock"]


class _UnownedLock:
    """Stands for "lead without a lock": the lock key holds something that is not ours."""

    name = "<unowned>"

    async def release(self) -> None:
        return None


UNOWNED_LOCK: Any = _UnownedLock()


async def try_lock(cache: LLMCache, manifest: KeyManifest, generation: int) -> Any:
    """The cross-process single-flight lock of this key, or None if another holds it.

    redis-py's Lock: SET NX PX with a random token, released by a Lua compare-and-
    delete, so an expired holder can never release a lock someone else now holds.
    """
    space = cache.space(manifest)
    lock = cache.redis.lock(
        space.lock_key(generation, manifest.exact_digest),
        timeout=cache.budgets.flight_lease,
        blocking=False,
        thread_local=False,
    )
    token = uuid.uuid4().hex
    try:
        if await lock.acquire(token=token):
            return lock
        # Every lock cachekit takes carries a lease. A key there without one was
        # written by something else and would stall every miss of this prompt for the
        # whole flight wait: lead without a lock (and leave the key alone).
        if await cache.redis.pttl(lock.name) == -1:
            cache.warn(
                "foreign-lock",
                "cachekit: %s has no expiry, so cachekit did not write it; ignoring it",
                lock.name,
            )
            return UNOWNED_LOCK
        return None
    except BaseException:
        # The SET may have landed while its reply was lost (timeout, cancel, broken
        # connection): release by token in the background so the key is not left
        # locked for a whole lease with nobody running the call.
        cache.background(_release_token, lock, token.encode())
        raise


async def _release_token(lock: Any, token: bytes) -> None:
    with contextlib.suppress(redis_errors.LockError, *CACHE_ERRORS):
        await lock.do_release(token)


async def unlock(cache: LLMCache, lock: Any) -> None:
    """Release a lock taken by :func:`try_lock` (a lease that ran out is fine)."""
    if lock is UNOWNED_LOCK:
        return
    # LockError: the lease ran out first; nothing is left to release.
    with contextlib.suppress(redis_errors.LockError):
        await lock.release()
