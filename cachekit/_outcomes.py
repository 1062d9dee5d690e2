"""Bypasses and errors: counted in-process, flushed to the Redis stats in the background.

Part of :mod:`cachekit.stats` (import from there).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import math
import threading
import time
import weakref
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ._layout import GLOBAL_TENANT, Space, encode_tenant, parse_tag
from ._schema import SINCE, reason_field
from .errors import CacheConfigError

if TYPE_CHECKING:
    from .cache import LLMCache
    from .result import CacheResult

__all__ = ["OutcomeCounter", "track_outcomes"]

log = logging.getLogger("cachekit.stats")


def _is_cluster(cache: LLMCache) -> bool:
    return bool(getattr(cache, "cluster", False))


class OutcomeCounter:
    """An observer that adds bypasses and errors to the Redis stats.

    They cannot ride on a hit's or store's round trip (a bypass makes none, and an error
    usually means Redis is unreachable), so they are counted in-process and written by
    one pipelined round trip on the cache's event loop, off the caller's path. At most one
    flush is in flight: what arrives meanwhile goes in the next one, so under load the
    batches grow instead of the round trips. A failed flush keeps its counts and waits
    ``retry_interval`` seconds before trying again (no hot loop while Redis is down).
    Flushes are the cache's background work, so ``close()`` waits for them; what is left
    is flushed at interpreter exit, and :func:`stats` flushes first.
    Install with :func:`track_outcomes`.
    """

    def __init__(self, cache: LLMCache, retry_interval: float = 5.0) -> None:
        if retry_interval <= 0:
            raise CacheConfigError(f"retry_interval must be positive, got {retry_interval!r}")
        self._cache_ref = weakref.ref(cache)
        self.retry_interval = retry_interval
        self._lock = threading.Lock()
        self._pending: Counter[tuple[str, str, str]] = Counter()
        self._retry_at = -math.inf
        self._inflight = False
        atexit.register(_flush_at_exit, weakref.ref(self))

    @property
    def pending(self) -> dict[tuple[str, str, str], int]:
        with self._lock:
            return dict(self._pending)

    def __call__(self, result: CacheResult) -> None:
        status = result.status
        if status != "bypass" and status != "error":
            # Hits are counted by the lookup (or, served from an identical call in flight,
            # by the decorator), misses by the store MULTI.
            return
        tenant = getattr(result, "tenant", None)
        token = encode_tenant(tenant) if isinstance(tenant, str) else GLOBAL_TENANT
        code = getattr(result, "reason_code", None)
        with self._lock:
            self._pending[(result.namespace, token, status)] += 1
            if code:
                # By reason too (``bypass.no_tenant``), for the console's breakdown.
                self._pending[(result.namespace, token, reason_field(status, code))] += 1
            if self._inflight or time.monotonic() < self._retry_at:
                return
            self._inflight = True
        self._schedule()

    def _schedule(self) -> None:
        """Queue one flush as the cache's background work (``_inflight`` is held)."""
        cache = self._cache_ref()
        queued = False
        if cache is not None:
            try:
                queued = cache.background(self._flush_guarded)
            except Exception as exc:  # noqa: BLE001 - a closed cache: counts wait for exit
                log.debug("cachekit: cannot queue the stats flush: %s", exc)
        if not queued:
            with self._lock:
                self._inflight = False

    async def _flush_guarded(self) -> None:
        try:
            await self._flush_now()
        except Exception as exc:  # noqa: BLE001 - an observer's flush must never surface
            log.debug("cachekit: could not flush bypass/error counts (will retry): %s", exc)
            with self._lock:
                self._retry_at = time.monotonic() + self.retry_interval
                self._inflight = False
            return
        with self._lock:
            more = bool(self._pending)
            if not more:
                self._inflight = False
        if more:
            self._schedule()

    async def flush(self) -> None:
        """Write the pending counts now (from any event loop); raise if Redis fails."""
        cache = self._cache_ref()
        if cache is None:
            return
        await cache.run(self._flush_now)

    async def _flush_now(self) -> None:
        cache = self._cache_ref()
        with self._lock:
            batch, self._pending = self._pending, Counter()
        if cache is None or not batch:
            return
        by_key: dict[str, list[tuple[str, int]]] = {}
        for (namespace, token, status), n in batch.items():
            by_key.setdefault(Space(namespace, token).stats_key, []).append((status, n))
        now = repr(time.time())
        client = cache.redis

        async def write(groups: Mapping[str, list[tuple[str, int]]]) -> None:
            # MULTI: all of it or none of it, so a retry never counts twice. On a cluster
            # each key is its own MULTI (one slot each, see _stats_read._read_stats for why
            # never one cross-slot pipeline); elsewhere one MULTI carries every key.
            async with client.pipeline(transaction=True) as pipe:
                for key, items in groups.items():
                    for status, n in items:
                        pipe.hincrby(key, status, n)
                    pipe.hsetnx(key, SINCE, now)
                await pipe.execute()

        failed: list[str] = []
        error: BaseException | None = None
        try:
            async with asyncio.timeout(cache.budgets.store):
                if _is_cluster(cache):
                    keys = list(by_key)
                    results = await asyncio.gather(
                        *(write({k: by_key[k]}) for k in keys), return_exceptions=True
                    )
                    for key, res in zip(keys, results, strict=True):
                        if isinstance(res, BaseException):
                            failed.append(key)
                            error = error or res
                else:
                    await write(by_key)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, counts kept first
            failed, error = list(by_key), exc
        if failed:
            with self._lock:
                for key in failed:
                    parsed = parse_tag(key)
                    assert parsed is not None  # a stats key built above
                    namespace, token, _ = parsed
                    for status, n in by_key[key]:
                        self._pending[(namespace, token, status)] += n
            assert error is not None
            raise error

    def flush_sync(self, timeout: float = 2.0) -> None:
        """Blocking flush for sync code and exit handlers."""
        cache = self._cache_ref()
        if cache is None or not self.pending:
            return
        cache.run_sync(self._flush_now, timeout=timeout)


def _flush_at_exit(ref: weakref.ReferenceType[OutcomeCounter]) -> None:
    counter = ref()
    if counter is None:
        return
    try:
        counter.flush_sync()
    except Exception as exc:  # noqa: BLE001 - exit handlers must not raise
        log.debug("cachekit: bypass/error counts lost at exit: %s", exc)


def track_outcomes(cache: LLMCache, retry_interval: float = 5.0) -> OutcomeCounter:
    """Count bypasses and errors of ``cache`` in its Redis stats (idempotent)."""
    for observer in cache.observers:
        if isinstance(observer, OutcomeCounter):
            return observer
    counter = OutcomeCounter(cache, retry_interval)
    cache.observers.append(counter)
    return counter
