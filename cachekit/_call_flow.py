"""One call's steps around the cache: lookups, hits, and single-flight (local and
cross-process)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

from ._call import CachedCall
from ._call_base import SKIP_ERRORS, UNSET, CallState
from ._flight import IN_FLIGHT, LeaderFailedError, observe
from ._xflight import OTHER_PROCESS, Claim, claim
from .cache import CACHE_ERRORS, LLMCache, WouldBlockError
from .errors import CodecError


async def async_lookup(call: CachedCall, cache: LLMCache, state: CallState) -> None:
    if not cache.breaker_for(state.manifest).allow():
        state.failed = "circuit open: the cache is skipped after repeated failures"
        return
    try:
        # asyncio.timeout, not wait_for: no extra task on the hit path.
        async with asyncio.timeout(call.lookup_budget(cache, state)):
            await cache.run(call.before, cache, state)
    except CACHE_ERRORS as exc:
        cache.breaker_for(state.manifest).failure()
        call.failure(cache, state, "lookup", exc, call.lookup_budget(cache, state))
    else:
        cache.breaker_for(state.manifest).success()


def sync_lookup(call: CachedCall, cache: LLMCache, state: CallState) -> bool:
    """Look up from sync code; False when the cache must be skipped (would block)."""
    if not cache.breaker_for(state.manifest).allow():
        state.failed = "circuit open: the cache is skipped after repeated failures"
        return True
    try:
        cache.run_sync(call.before, cache, state, timeout=call.lookup_budget(cache, state))
    except WouldBlockError as exc:
        cache.warn("blocking", "cachekit: %s; skipping the cache for this call", exc)
        return False
    except CACHE_ERRORS as exc:
        cache.breaker_for(state.manifest).failure()
        call.failure(cache, state, "lookup", exc, call.lookup_budget(cache, state))
    else:
        cache.breaker_for(state.manifest).success()
    return True


def serve_hit(call: CachedCall, state: CallState) -> bool:
    """Report a hit (from Redis, or from an identical call in flight) if there was one."""
    if state.value is UNSET:
        return False
    layer = state.outcome.layer if state.outcome is not None else None
    if state.reason == IN_FLIGHT:
        # Served from memory: count it like a Redis hit so shared stats stay true.
        call.cache.background(call.cache.count, state.manifest, "exact")
    call.finish(state, layer or "exact")  # type: ignore[arg-type]
    return True


def _joins_flight(cache: LLMCache, state: CallState) -> bool:
    ctl = state.ctl
    return (
        cache.single_flight
        and state.failed is None
        and state.outcome is not None
        and not (ctl is not None and ctl.skip_store)
    )


def _flight_key(cache: LLMCache, state: CallState) -> str:
    return f"{cache.space(state.manifest).tag}:{state.manifest.exact_digest}"


def local_flight(cache: LLMCache, state: CallState) -> concurrent.futures.Future[Any] | None:
    """An identical call of this process whose value is pending or not yet stored."""
    if not cache.single_flight:
        return None
    ctl = state.ctl
    if ctl is not None and (ctl.skip_lookup or ctl.max_age == 0):
        return None
    return cache.flights.peek(_flight_key(cache, state))


async def follow_async(
    cache: LLMCache, state: CallState, fut: concurrent.futures.Future[Any]
) -> bool:
    try:
        async with asyncio.timeout(cache.budgets.flight_wait):
            state.value = await observe(fut)
    except (LeaderFailedError, TimeoutError):
        return False
    state.reason = IN_FLIGHT
    return True


def follow_sync(cache: LLMCache, state: CallState, fut: concurrent.futures.Future[Any]) -> bool:
    try:
        state.value = fut.result(cache.budgets.flight_wait)
    except (LeaderFailedError, concurrent.futures.TimeoutError):
        return False
    state.reason = IN_FLIGHT
    return True


def _join(cache: LLMCache, state: CallState) -> concurrent.futures.Future[Any] | bool:
    """After a miss, join the key's in-process flight.

    Returns the leader's future to follow, True when this call leads and must claim the
    cross-process lock (:func:`_claim`), False when it just calls the function (no
    single-flight; or ``skip_lookup``, which leads this process's flight without waiting).
    """
    if not _joins_flight(cache, state):
        return False
    key = _flight_key(cache, state)
    if state.ctl is not None and state.ctl.skip_lookup:
        state.flight, state.flight_key = cache.flights.lead(key), key
        return False
    leader, fut = cache.flights.join(key)
    if not leader:
        return fut
    state.flight, state.flight_key = fut, key
    return True


async def _claim(call: CachedCall, cache: LLMCache, state: CallState) -> Claim[tuple[Any]]:
    """:func:`cachekit._xflight.claim` for this call, whole, on the home loop.

    The poll looks in the exact layer for another process's answer; the value is boxed
    because None is a value a function may return (and have cached).
    """

    async def poll() -> tuple[Any] | None:
        max_age = state.ctl.max_age if state.ctl is not None else None
        outcome = await cache.lookup(state.manifest, threshold=None, max_age=max_age)
        if outcome.entry is None:
            return None
        try:
            value = call.decode(state, outcome.entry.payload)
        except CodecError:
            return None  # the leader's corrupt entry: this call runs the function
        state.outcome = outcome
        return (value,)

    assert state.outcome is not None
    return await claim(cache, state.manifest, state.outcome.generation, poll)


def _claimed(call: CachedCall, cache: LLMCache, state: CallState, got: Claim[tuple[Any]]) -> bool:
    """Apply a claim: hold its lock, or serve another process's stored answer (to this
    call and this process's followers). True when served."""
    state.lock = got.lock
    if got.found is None:
        return False
    (state.value,) = got.found
    assert state.flight is not None
    cache.flights.resolve(state.flight, state.value)
    call.forget_flight(cache, state)
    state.reason = OTHER_PROCESS
    return True


async def wait_for_flight_async(call: CachedCall, cache: LLMCache, state: CallState) -> bool:
    """After a miss: wait for an identical call already running. True when served.

    In this process, followers wait on the leader's future. Across processes, the leader
    claims the key's Redis lock (:mod:`cachekit._xflight`, as the HTTP middlewares do).
    """
    joined = _join(cache, state)
    if not isinstance(joined, bool):
        return await follow_async(cache, state, joined)
    if not joined:
        return False
    try:
        got = await cache.run(_claim, call, cache, state)
    except CACHE_ERRORS as exc:
        call.failure(cache, state, "single-flight", exc)
        return False
    return _claimed(call, cache, state, got)


def wait_for_flight_sync(call: CachedCall, cache: LLMCache, state: CallState) -> bool:
    """:func:`wait_for_flight_async` from sync code: the claim crosses to the home loop
    once, not once per step."""
    joined = _join(cache, state)
    if not isinstance(joined, bool):
        return follow_sync(cache, state, joined)
    if not joined:
        return False
    b = cache.budgets
    try:
        # claim() bounds every step and the whole wait itself; this is the backstop.
        got = cache.run_sync(
            _claim, call, cache, state, timeout=b.flight_wait + b.lookup + b.command + 1.0
        )
    except SKIP_ERRORS as exc:
        call.failure(cache, state, "single-flight", exc)
        return False
    return _claimed(call, cache, state, got)
