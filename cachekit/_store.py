"""After a miss: encode the function's value, store it, release flights and locks."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from . import _codec
from ._call_base import SKIP_ERRORS, CallBase, CallState, on_home_thread
from ._usage import stream_usage, usage_of
from .cache import CACHE_ERRORS, LLMCache, WouldBlockError
from .errors import CodecError

log = logging.getLogger("cachekit")
_warned_types: set[str] = set()
_warned_lock = threading.Lock()


def _warn_uncacheable(exc: CodecError, value: Any) -> None:
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    with _warned_lock:
        if name in _warned_types:
            return
        _warned_types.add(name)
    log.warning("cachekit: not caching a %s result: %s", name, exc)


class StoreSteps(CallBase):
    """The store half of ``CachedCall``: from the function's value to a stored entry."""

    # -- after the call ---------------------------------------------------------------

    def payload(self, state: CallState, value: Any) -> str | None:
        """The encoded value to store, or None when nothing should be stored."""
        if state.failed is not None or state.outcome is None or not state.outcome.storable:
            return None
        if state.ctl is not None and state.ctl.skip_store:
            return None
        if value is None and not self.cache_none and not state.stream:
            state.reason = "not stored: the function returned None (cache_none=False)"
            return None
        try:
            payload = _codec.encode_stream(value) if state.stream else _codec.encode(value)
        except CodecError as exc:
            _warn_uncacheable(exc, value[-1] if state.stream and value else value)
            return None
        size = self._entry_size(payload, state.manifest.prompt or "")
        if size is not None:
            self.oversize += 1
            state.reason = (
                f"not stored: entry of {size} bytes (payload + prompt) exceeds "
                f"max_entry_bytes={self.max_entry_bytes}"
            )
            self.cache.warn(
                "oversize",
                "cachekit: %s: %s (%d such results so far)",
                self.function_id,
                state.reason,
                self.oversize,
            )
            return None
        return payload

    def _entry_size(self, payload: str, prompt: str) -> int | None:
        """The entry's size in bytes when it is over the cap, else None.

        The entry keeps the payload and the prompt text (field ``p``), so both count.
        UTF-8 takes 1-4 bytes a character, so values of at most a quarter of the cap in
        characters skip the exact count (a copy of the text): the common case stays cheap.
        """
        cap = self.max_entry_bytes
        if cap is None or (len(payload) + len(prompt)) * 4 <= cap:
            return None
        size = len(payload.encode("utf-8", "surrogatepass"))
        size += len(prompt.encode("utf-8", "surrogatepass"))
        return size if size > cap else None

    def store_budget(self, cache: LLMCache, state: CallState) -> float:
        return cache.store_budget(state.manifest, state.outcome)

    async def after(self, cache: LLMCache, state: CallState, payload: str, value: Any) -> None:
        assert state.outcome is not None
        usage = stream_usage(value) if state.stream else usage_of(value)
        estimated = False
        if usage is None and state.manifest.model:
            # No usage reported (a plain str, a stream without include_usage): estimate it
            # so savings still count, flagged so reports can say so.
            from .stats import estimate_usage

            usage, estimated = (
                estimate_usage(state.manifest.prompt, value, state.manifest.model),
                True,
            )
        state.stored = await cache.store(
            state.manifest,
            state.outcome,
            payload,
            ttl=self.ttl,
            usage=usage,
            usage_estimated=estimated,
        )

    async def store_and_unlock(
        self, cache: LLMCache, state: CallState, payload: str | None, value: Any
    ) -> None:
        """Store (bounded by the store budget), then free the cross-process lock.

        Runs on the home loop, usually in the background. The lock is released only
        after the entry landed, so processes polling for it find it before they could
        take the lock and call the function again.
        """
        try:
            if payload is not None:
                async with asyncio.timeout(self.store_budget(cache, state)):
                    await self.after(cache, state, payload, value)
        finally:
            if state.lock is not None:
                lock, state.lock = state.lock, None
                await cache.unlock(lock)

    def land(self, cache: LLMCache, state: CallState, value: Any) -> None:
        """The function's value is known: hand it to followers and store it.

        With background stores this returns at once; the flight stays registered (so
        local callers get the value from memory) until the store has landed.
        """
        if state.flight is not None:
            cache.flights.resolve(state.flight, value)
        payload = self.payload(state, value)
        if payload is None:
            # Nothing will land in Redis: later callers must not be served this value.
            self.forget_flight(cache, state)
            if state.lock is not None:
                cache.background(self.store_and_unlock, cache, state, None, None)
            return

        def done(exc: BaseException | None) -> None:
            if exc is not None and payload is not None:
                if isinstance(exc, CACHE_ERRORS):
                    cache.breaker_for(state.manifest).failure()
                self.failure(cache, state, "store", exc)
            self.forget_flight(cache, state)

        if cache.background_stores:
            if cache.background(self.store_and_unlock, cache, state, payload, value, done=done):
                state.stored = payload is not None
            else:
                cache.warn("dropped", "cachekit: store queue full; a result was not cached")
                self.forget_flight(cache, state)
            return
        try:
            if on_home_thread(cache):
                raise WouldBlockError("store from the home loop's thread")
            cache.run_sync(
                self.store_and_unlock, cache, state, payload, value,
                timeout=self.store_budget(cache, state) + cache.budgets.command,
            )  # fmt: skip
            state.stored = payload is not None
            done(None)
        except SKIP_ERRORS as exc:
            done(exc)

    async def land_async(self, cache: LLMCache, state: CallState, value: Any) -> None:
        """``land`` for async callers; waits for the store when stores are not background."""
        if cache.background_stores:
            self.land(cache, state, value)
            return
        if state.flight is not None:
            cache.flights.resolve(state.flight, value)
        payload = self.payload(state, value)
        try:
            async with asyncio.timeout(self.store_budget(cache, state) + cache.budgets.command):
                await cache.run(self.store_and_unlock, cache, state, payload, value)
            state.stored = payload is not None
        except CACHE_ERRORS as exc:
            cache.breaker_for(state.manifest).failure()
            self.failure(cache, state, "store", exc)
        finally:
            self.forget_flight(cache, state)

    def abort(self, cache: LLMCache, state: CallState) -> None:
        """The function raised or its stream was abandoned: release waiters, store nothing."""
        if state.flight is not None:
            cache.flights.fail(state.flight_key, state.flight)
            state.flight = None
        if state.lock is not None:
            cache.background(self.store_and_unlock, cache, state, None, None)

    def forget_flight(self, cache: LLMCache, state: CallState) -> None:
        if state.flight is not None:
            cache.flights.land(state.flight_key, state.flight)
            state.flight = None
