"""``@cached_llm``: cache any LLM-calling function, sync or async, plain or method.

Built on wrapt so ``self``/``cls`` are handled by the descriptor protocol and never enter
the key; the sync or async wrapper is chosen once, at decoration time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import threading
import time
import typing
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import wrapt

from . import _codec
from ._defaults import get_default_cache
from ._flight import IN_FLIGHT, LeaderFailedError, observe
from ._layout import NAMESPACE_RE
from ._manifest import DEFAULT_IGNORE, KeyManifest, cached_manifest, default_normalize
from ._streams import AsyncRecorder, AsyncReplay, SyncRecorder, SyncReplay
from ._xflight import OTHER_PROCESS, Claim, claim
from .cache import CACHE_ERRORS, LLMCache, LookupOutcome, WouldBlockError
from .errors import CacheConfigError, CodecError
from .result import (
    CacheControl,
    CacheResult,
    Status,
    current_control,
    current_tenant,
    publish,
)

__all__ = ["BoundCall", "cached_llm"]

log = logging.getLogger("cachekit")
F = TypeVar("F", bound=Callable[..., Any])

_UNSET: Any = object()
#: Errors that make a sync caller skip the cache (or a step of it).
_SKIP_ERRORS: tuple[type[BaseException], ...] = (WouldBlockError, *CACHE_ERRORS)
_warned_types: set[str] = set()
_warned_lock = threading.Lock()
#: Default cap on one stored entry (payload + prompt text), as the middleware's body cap.
DEFAULT_MAX_ENTRY_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class BoundCall:
    """What a ``tenant=`` callback receives: the call's arguments, bound with defaults."""

    function: Callable[..., Any]
    arguments: Mapping[str, Any]
    instance: Any = None


class _Binder:
    """Binds calls of one signature, as ``inspect.Signature.bind`` + ``apply_defaults``.

    Plain signatures (no ``*args``/``**kwargs``/positional-only) take a fast path: a
    dict built from precomputed names and defaults (a few µs instead of ~30 µs on the
    hit path). Anything unusual, including every call that would be a TypeError, goes
    through ``inspect`` so errors and edge cases are exactly Python's.
    """

    __slots__ = ("defaults", "fast", "names", "sig")

    def __init__(self, sig: inspect.Signature) -> None:
        self.sig = sig
        params = list(sig.parameters.values())
        kinds = {p.kind for p in params}
        self.fast = kinds <= {
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.KEYWORD_ONLY,
        }
        self.names = tuple(
            p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
        self.defaults = {p.name: p.default for p in params if p.default is not p.empty}

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.fast and len(args) <= len(self.names):
            out = dict(self.defaults)
            out.update(zip(self.names, args, strict=False))
            params = self.sig.parameters
            for name, value in kwargs.items():
                if name not in params or name in self.names[: len(args)]:
                    return self._slow(args, kwargs)  # Python's TypeError, word for word
                out[name] = value
            if len(out) == len(params):
                return out
        return self._slow(args, kwargs)

    def _slow(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = self.sig.bind(*args, **kwargs)
        bound.apply_defaults()
        out: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            kind = self.sig.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                out.update(value)
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                if value:
                    out[name] = list(value)
            else:
                out[name] = value
        return out


@functools.lru_cache(maxsize=4096)
def _binder(func: Callable[..., Any], drop_first: bool) -> _Binder:
    sig = inspect.signature(func)
    if drop_first:
        params = list(sig.parameters.values())[1:]
        sig = sig.replace(parameters=params)
    return _Binder(sig)


def _bind(
    wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Bind a call to its signature with defaults: positional and keyword agree."""
    if inspect.ismethod(wrapped):
        return _binder(wrapped.__func__, True).bind(args, kwargs)
    return _binder(wrapped, False).bind(args, kwargs)


def _usage_of(value: Any) -> tuple[int, int] | None:
    """Input/output tokens the response reports (OpenAI or Anthropic shapes)."""
    usage = value.get("usage") if isinstance(value, Mapping) else getattr(value, "usage", None)
    if usage is None:
        return None

    def get(name: str) -> Any:
        return usage.get(name) if isinstance(usage, Mapping) else getattr(usage, name, None)

    tin = get("prompt_tokens")
    tout = get("completion_tokens")
    if tin is None:
        tin, tout = get("input_tokens"), get("output_tokens")
    if isinstance(tin, int) and isinstance(tout, int):
        return tin, tout
    return None


def _stream_usage(items: list[Any]) -> tuple[int, int] | None:
    """Usage from the last chunk that carries one (OpenAI ``include_usage``)."""
    for item in reversed(items):
        usage = _usage_of(item)
        if usage is not None:
            return usage
    return None


def _warn_uncacheable(exc: CodecError, value: Any) -> None:
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    with _warned_lock:
        if name in _warned_types:
            return
        _warned_types.add(name)
    log.warning("cachekit: not caching a %s result: %s", name, exc)


def _register_return_type(func: Callable[..., Any]) -> None:
    """Let other workers decode this function's results before they produce one."""
    try:
        hint = typing.get_type_hints(func).get("return")
    except Exception:  # noqa: BLE001 - unresolvable annotations only cost the pre-registration
        return
    for candidate in (hint, *typing.get_args(hint)):
        if isinstance(candidate, type):
            try:
                _codec.register_type(candidate)
            except CodecError:
                continue


class _CallState:
    """One call's trip through the cache (mutable, lives for one call)."""

    __slots__ = (
        "ctl",
        "failed",
        "flight",
        "flight_key",
        "lock",
        "manifest",
        "outcome",
        "reason",
        "semantic",
        "started",
        "stored",
        "stream",
        "value",
    )

    def __init__(self, manifest: KeyManifest, ctl: CacheControl | None) -> None:
        self.stream = False
        self.flight: concurrent.futures.Future[Any] | None = None
        self.flight_key = ""
        self.lock: Any = None
        self.reason: str | None = None
        self.started = time.perf_counter()
        self.manifest = manifest
        self.ctl = ctl
        self.outcome: LookupOutcome | None = None
        self.failed: str | None = None
        self.value: Any = _UNSET
        self.stored = False
        self.semantic: bool | None = None


class _CachedCall:
    """Everything the sync and async wrappers share: options, keys, lookup and store.

    ``before`` and ``after`` are coroutines run on the cache's home loop, awaited
    directly by async callers and submitted from sync callers, so the logic exists once.
    """

    def __init__(
        self,
        *,
        namespace: str,
        cache: LLMCache | None,
        ttl: int | None,
        threshold: float | None,
        threshold_given: bool,
        tenant: Callable[[BoundCall], str | None] | None,
        ignore: Iterable[str],
        prompt: str | None,
        normalize: Callable[[str], str] | None,
        on_result: Callable[[CacheResult], None] | None,
        allow_global: bool,
        function_id: str,
        max_entry_bytes: int | None = DEFAULT_MAX_ENTRY_BYTES,
        cache_none: bool = True,
    ) -> None:
        self.namespace = namespace
        self._cache = cache
        self.ttl = ttl
        self.threshold = threshold
        self.threshold_given = threshold_given
        self.tenant = tenant
        self.ignore = DEFAULT_IGNORE.union(ignore)  # merged once, not per call
        self.prompt = prompt
        self.normalize = normalize
        self.on_result = on_result
        self.allow_global = allow_global
        self.function_id = function_id
        self.generator = False
        self.max_entry_bytes = max_entry_bytes
        self.cache_none = cache_none
        #: Results of this function returned but not stored because they were too large.
        self.oversize = 0

    @property
    def cache(self) -> LLMCache:
        return self._cache if self._cache is not None else get_default_cache()

    def effective_threshold(self, cache: LLMCache) -> float | None:
        if self.threshold_given:
            return self.threshold
        embedder = cache.embedder
        return embedder.default_threshold if embedder is not None else None

    # -- before the call --------------------------------------------------------------

    def start(
        self,
        wrapped: Callable[..., Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[_CallState | None, str | None]:
        """Build the call's state, or say why it bypasses the cache.

        Raises CacheKeyError (before the function runs) for arguments with no key.
        """
        started = time.perf_counter()
        arguments = _bind(wrapped, args, kwargs)
        tenant = None
        if self.tenant is not None:
            tenant = self.tenant(BoundCall(wrapped, arguments, instance))
            if tenant is not None and not isinstance(tenant, str):
                raise CacheConfigError(
                    f"the tenant= callback must return str or None, got {type(tenant).__name__}"
                )
        if tenant is None:
            tenant = current_tenant()
        if tenant is not None and not tenant.strip():
            # An empty id would be one tenant shared by every caller that has none.
            tenant = None
        manifest = cached_manifest(
            self.namespace,
            tenant,
            arguments,
            function_id=self.function_id,
            prompt_param=self.prompt,
            ignore=self.ignore,
            normalize=self.normalize,
        )
        ctl = current_control()
        state = _CallState(manifest, ctl)
        state.started = started
        if tenant is None and self.tenant is not None and not self.allow_global:
            return state, "no tenant"
        state.stream = self.generator or arguments.get("stream") is True
        if ctl is not None and ctl.skip_lookup and ctl.skip_store:
            return state, "cache_control"
        return state, None

    def lookup_budget(self, cache: LLMCache, state: _CallState) -> float:
        # Decided once per call: a model that becomes ready mid-lookup must not make the
        # lookup embed inside a budget that did not include embedding.
        if state.semantic is None:
            state.semantic = cache.uses_semantic(state.manifest, self.effective_threshold(cache))
        return cache.budgets.lookup + (
            cache.budgets.embed + cache.budgets.search if state.semantic else 0.0
        )

    async def before(self, cache: LLMCache, state: _CallState) -> None:
        """Look up; on a decodable hit set ``state.value``. Runs on the home loop."""
        ctl = state.ctl
        if ctl is not None and ctl.skip_lookup:
            state.outcome = await cache.prepare(state.manifest)
            return
        outcome = await cache.lookup(
            state.manifest,
            threshold=self.effective_threshold(cache) if state.semantic is not False else None,
            max_age=ctl.max_age if ctl else None,
        )
        state.outcome = outcome
        if outcome.entry is None:
            return
        try:
            state.value = self.decode(state, outcome.entry.payload)
        except CodecError as exc:
            cache.warn("decode", "cachekit: dropping a corrupt cache entry: %s", exc)
            entry_id = outcome.entry.entry_id
            outcome.entry = None
            outcome.layer = None
            await cache.delete_entry(state.manifest, entry_id)

    # -- after the call ---------------------------------------------------------------

    def payload(self, state: _CallState, value: Any) -> str | None:
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

    def store_budget(self, cache: LLMCache, state: _CallState) -> float:
        return cache.store_budget(state.manifest, state.outcome)

    async def after(self, cache: LLMCache, state: _CallState, payload: str, value: Any) -> None:
        assert state.outcome is not None
        usage = _stream_usage(value) if state.stream else _usage_of(value)
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
        self, cache: LLMCache, state: _CallState, payload: str | None, value: Any
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

    def land(self, cache: LLMCache, state: _CallState, value: Any) -> None:
        """The function's value is known: hand it to followers and store it.

        With background stores this returns at once; the flight stays registered (so
        local callers get the value from memory) until the store has landed.
        """
        if state.flight is not None:
            cache.flights.resolve(state.flight, value)
        payload = self.payload(state, value)
        if payload is None:
            # Nothing will land in Redis: later callers must not be served this value.
            self._forget_flight(cache, state)
            if state.lock is not None:
                cache.background(self.store_and_unlock, cache, state, None, None)
            return

        def done(exc: BaseException | None) -> None:
            if exc is not None and payload is not None:
                if isinstance(exc, CACHE_ERRORS):
                    cache.breaker_for(state.manifest).failure()
                self.failure(cache, state, "store", exc)
            self._forget_flight(cache, state)

        if cache.background_stores:
            if cache.background(self.store_and_unlock, cache, state, payload, value, done=done):
                state.stored = payload is not None
            else:
                cache.warn("dropped", "cachekit: store queue full; a result was not cached")
                self._forget_flight(cache, state)
            return
        try:
            if _on_home_thread(cache):
                raise WouldBlockError("store from the home loop's thread")
            cache.run_sync(
                self.store_and_unlock, cache, state, payload, value,
                timeout=self.store_budget(cache, state) + cache.budgets.command,
            )  # fmt: skip
            state.stored = payload is not None
            done(None)
        except _SKIP_ERRORS as exc:
            done(exc)

    async def land_async(self, cache: LLMCache, state: _CallState, value: Any) -> None:
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
            self._forget_flight(cache, state)

    def abort(self, cache: LLMCache, state: _CallState) -> None:
        """The function raised or its stream was abandoned: release waiters, store nothing."""
        if state.flight is not None:
            cache.flights.fail(state.flight_key, state.flight)
            state.flight = None
        if state.lock is not None:
            cache.background(self.store_and_unlock, cache, state, None, None)

    def _forget_flight(self, cache: LLMCache, state: _CallState) -> None:
        if state.flight is not None:
            cache.flights.land(state.flight_key, state.flight)
            state.flight = None

    def decode(self, state: _CallState, payload: bytes) -> Any:
        return _codec.decode_stream(payload) if state.stream else _codec.decode(payload)

    # -- reporting --------------------------------------------------------------------

    def finish(
        self,
        state: _CallState,
        status: Status,
        *,
        reason: str | None = None,
        overhead: float | None = None,
    ) -> None:
        outcome = state.outcome
        entry = outcome.entry if outcome is not None else None
        elapsed = overhead if overhead is not None else time.perf_counter() - state.started
        layer: Any = outcome.layer if entry is not None and outcome is not None else None
        matched = entry.prompt if entry is not None else None
        if status == "exact" and entry is None:  # served by an identical call in flight
            layer, matched = "exact", state.manifest.prompt
        result = CacheResult(
            status=status,
            namespace=self.namespace,
            key=state.manifest.exact_digest,
            layer=layer,
            similarity=outcome.similarity if outcome is not None else None,
            matched_prompt=matched,
            latency_ms=elapsed * 1000.0,
            age_s=(time.time() - entry.created) if entry is not None else None,
            stored=state.stored,
            reason=reason or state.failed or state.reason,
            tenant=state.manifest.tenant,
        )
        publish(result, self.cache.observers, self.on_result)

    def failure(
        self,
        cache: LLMCache,
        state: _CallState,
        stage: str,
        exc: BaseException,
        budget: float | None = None,
    ) -> None:
        state.failed = cache.failed(stage, exc, budget, goes_to="the function")


def _on_home_thread(cache: LLMCache) -> bool:
    try:
        return asyncio.get_running_loop() is cache._home
    except RuntimeError:
        return False


async def _async_lookup(call: _CachedCall, cache: LLMCache, state: _CallState) -> None:
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


def _sync_lookup(call: _CachedCall, cache: LLMCache, state: _CallState) -> bool:
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


def _served(call: _CachedCall, state: _CallState) -> bool:
    """Report a hit (from Redis, or from an identical call in flight) if there was one."""
    if state.value is _UNSET:
        return False
    layer = state.outcome.layer if state.outcome is not None else None
    if state.reason == IN_FLIGHT:
        # Served from memory: count it like a Redis hit so shared stats stay true.
        call.cache.background(call.cache.count, state.manifest, "exact")
    call.finish(state, layer or "exact")  # type: ignore[arg-type]
    return True


def _joins_flight(cache: LLMCache, state: _CallState) -> bool:
    ctl = state.ctl
    return (
        cache.single_flight
        and state.failed is None
        and state.outcome is not None
        and not (ctl is not None and ctl.skip_store)
    )


def _flight_key(cache: LLMCache, state: _CallState) -> str:
    return f"{cache.space(state.manifest).tag}:{state.manifest.exact_digest}"


def _local_flight(cache: LLMCache, state: _CallState) -> concurrent.futures.Future[Any] | None:
    """An identical call of this process whose value is pending or not yet stored."""
    if not cache.single_flight:
        return None
    ctl = state.ctl
    if ctl is not None and (ctl.skip_lookup or ctl.max_age == 0):
        return None
    return cache.flights.peek(_flight_key(cache, state))


async def _follow_async(
    cache: LLMCache, state: _CallState, fut: concurrent.futures.Future[Any]
) -> bool:
    try:
        async with asyncio.timeout(cache.budgets.flight_wait):
            state.value = await observe(fut)
    except (LeaderFailedError, TimeoutError):
        return False
    state.reason = IN_FLIGHT
    return True


def _follow_sync(cache: LLMCache, state: _CallState, fut: concurrent.futures.Future[Any]) -> bool:
    try:
        state.value = fut.result(cache.budgets.flight_wait)
    except (LeaderFailedError, concurrent.futures.TimeoutError):
        return False
    state.reason = IN_FLIGHT
    return True


def _join(cache: LLMCache, state: _CallState) -> concurrent.futures.Future[Any] | bool:
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


async def _claim(call: _CachedCall, cache: LLMCache, state: _CallState) -> Claim[tuple[Any]]:
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


def _claimed(call: _CachedCall, cache: LLMCache, state: _CallState, got: Claim[tuple[Any]]) -> bool:
    """Apply a claim: hold its lock, or serve another process's stored answer (to this
    call and this process's followers). True when served."""
    state.lock = got.lock
    if got.found is None:
        return False
    (state.value,) = got.found
    assert state.flight is not None
    cache.flights.resolve(state.flight, state.value)
    call._forget_flight(cache, state)
    state.reason = OTHER_PROCESS
    return True


async def _wait_for_flight_async(call: _CachedCall, cache: LLMCache, state: _CallState) -> bool:
    """After a miss: wait for an identical call already running. True when served.

    In this process, followers wait on the leader's future. Across processes, the leader
    claims the key's Redis lock (:mod:`cachekit._xflight`, as the HTTP middlewares do).
    """
    joined = _join(cache, state)
    if not isinstance(joined, bool):
        return await _follow_async(cache, state, joined)
    if not joined:
        return False
    try:
        got = await cache.run(_claim, call, cache, state)
    except CACHE_ERRORS as exc:
        call.failure(cache, state, "single-flight", exc)
        return False
    return _claimed(call, cache, state, got)


def _wait_for_flight_sync(call: _CachedCall, cache: LLMCache, state: _CallState) -> bool:
    """:func:`_wait_for_flight_async` from sync code: the claim crosses to the home loop
    once, not once per step."""
    joined = _join(cache, state)
    if not isinstance(joined, bool):
        return _follow_sync(cache, state, joined)
    if not joined:
        return False
    b = cache.budgets
    try:
        # claim() bounds every step and the whole wait itself; this is the backstop.
        got = cache.run_sync(
            _claim, call, cache, state, timeout=b.flight_wait + b.lookup + b.command + 1.0
        )
    except _SKIP_ERRORS as exc:
        call.failure(cache, state, "single-flight", exc)
        return False
    return _claimed(call, cache, state, got)


def _make_async_wrapper(call: _CachedCall) -> Any:
    @wrapt.decorator
    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        state, bypass = call.start(wrapped, instance, args, kwargs)
        assert state is not None
        if bypass is not None:
            value = await wrapped(*args, **kwargs)
            call.finish(state, "bypass", reason=bypass)
            return value
        cache = call.cache
        local = _local_flight(cache, state)
        if local is None or not await _follow_async(cache, state, local):
            await _async_lookup(call, cache, state)
        if _served(call, state) or (
            await _wait_for_flight_async(call, cache, state) and _served(call, state)
        ):
            return AsyncReplay(state.value) if state.stream else state.value
        spent = time.perf_counter() - state.started
        try:
            value = await wrapped(*args, **kwargs)
        except BaseException:
            call.abort(cache, state)
            raise
        if state.stream:
            # stream=True SDK call: store when the caller has read the stream to its end.
            call.finish(state, "error" if state.failed else "miss", overhead=spent)
            return AsyncRecorder(
                value,
                lambda items: call.land_async(cache, state, items),
                lambda: call.abort(cache, state),
            )
        resumed = time.perf_counter()
        await call.land_async(cache, state, value)
        overhead = spent + time.perf_counter() - resumed
        call.finish(state, "error" if state.failed else "miss", overhead=overhead)
        return value

    return wrapper


def _make_sync_wrapper(call: _CachedCall) -> Any:
    @wrapt.decorator
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        state, bypass = call.start(wrapped, instance, args, kwargs)
        assert state is not None
        cache = call.cache
        # On the home loop's own thread a sync call must not block the loop waiting for
        # a flight (the leader may need that loop); it bypasses below instead.
        local = (
            None if bypass is not None or _on_home_thread(cache) else _local_flight(cache, state)
        )
        served = local is not None and _follow_sync(cache, state, local)
        if bypass is None and not served and not _sync_lookup(call, cache, state):
            bypass = "would block the event loop"
        if bypass is not None:
            value = wrapped(*args, **kwargs)
            call.finish(state, "bypass", reason=bypass)
            return value
        if _served(call, state) or (
            _wait_for_flight_sync(call, cache, state) and _served(call, state)
        ):
            return SyncReplay(state.value) if state.stream else state.value
        spent = time.perf_counter() - state.started
        try:
            value = wrapped(*args, **kwargs)
        except BaseException:
            call.abort(cache, state)
            raise
        if state.stream:
            call.finish(state, "error" if state.failed else "miss", overhead=spent)
            return SyncRecorder(
                value,
                lambda items: call.land(cache, state, items),
                lambda: call.abort(cache, state),
            )
        resumed = time.perf_counter()
        call.land(cache, state, value)
        overhead = spent + time.perf_counter() - resumed
        call.finish(state, "error" if state.failed else "miss", overhead=overhead)
        return value

    return wrapper


def _make_async_gen_wrapper(call: _CachedCall) -> Any:
    @wrapt.decorator
    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> AsyncIterator[Any]:
        state, bypass = call.start(wrapped, instance, args, kwargs)
        assert state is not None
        if bypass is not None:
            call.finish(state, "bypass", reason=bypass)
            async for item in wrapped(*args, **kwargs):
                yield item
            return
        cache = call.cache
        local = _local_flight(cache, state)
        if local is None or not await _follow_async(cache, state, local):
            await _async_lookup(call, cache, state)
        if _served(call, state) or (
            await _wait_for_flight_async(call, cache, state) and _served(call, state)
        ):
            for item in state.value:
                yield item
            return
        call.finish(state, "error" if state.failed else "miss")
        items: list[Any] = []
        complete = False
        agen = wrapped(*args, **kwargs)
        try:
            async for item in agen:
                items.append(item)
                yield item
            complete = True
        finally:
            if not complete:
                call.abort(cache, state)
            await agen.aclose()
        # Reached only when the producer finished and the consumer read to the end.
        await call.land_async(cache, state, items)

    return wrapper


def _make_sync_gen_wrapper(call: _CachedCall) -> Any:
    @wrapt.decorator
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Iterator[Any]:
        state, bypass = call.start(wrapped, instance, args, kwargs)
        assert state is not None
        cache = call.cache
        # On the home loop's own thread a sync call must not block the loop waiting for
        # a flight (the leader may need that loop); it bypasses below instead.
        local = (
            None if bypass is not None or _on_home_thread(cache) else _local_flight(cache, state)
        )
        served = local is not None and _follow_sync(cache, state, local)
        if bypass is None and not served and not _sync_lookup(call, cache, state):
            bypass = "would block the event loop"
        if bypass is not None:
            call.finish(state, "bypass", reason=bypass)
            yield from wrapped(*args, **kwargs)
            return
        if _served(call, state) or (
            _wait_for_flight_sync(call, cache, state) and _served(call, state)
        ):
            yield from state.value
            return
        call.finish(state, "error" if state.failed else "miss")
        items: list[Any] = []
        complete = False
        gen = wrapped(*args, **kwargs)
        try:
            for item in gen:
                items.append(item)
                yield item
            complete = True
        finally:
            if not complete:
                call.abort(cache, state)
            gen.close()
        call.land(cache, state, items)

    return wrapper


def _validate(
    namespace: Any,
    ttl: Any,
    threshold: Any,
    tenant: Any,
    ignore: Any,
    prompt: Any,
    on_result: Any,
    max_entry_bytes: Any = None,
    cache_none: Any = True,
) -> None:
    if not isinstance(namespace, str) or not NAMESPACE_RE.match(namespace):
        raise CacheConfigError(
            f"namespace must be 1-64 characters of A-Z a-z 0-9 _ . - (it is part of Redis key "
            f"names), got {namespace!r}"
        )
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0):
        raise CacheConfigError(f"ttl must be a positive int (seconds) or None, got {ttl!r}")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise CacheConfigError(f"threshold must be a number in [-1, 1], got {threshold!r}")
        if not -1.0 <= float(threshold) <= 1.0:
            raise CacheConfigError(
                f"threshold is a cosine similarity and must be in [-1, 1], got {threshold!r}"
            )
    if tenant is not None and not callable(tenant):
        raise CacheConfigError(
            f"tenant must be a callable(BoundCall) -> str | None, got {tenant!r}"
        )
    if on_result is not None and not callable(on_result):
        raise CacheConfigError(f"on_result must be callable, got {on_result!r}")
    if isinstance(ignore, str) or not all(isinstance(x, str) for x in ignore):
        raise CacheConfigError(f"ignore must be a collection of parameter names, got {ignore!r}")
    if prompt is not None and not isinstance(prompt, str):
        raise CacheConfigError(f"prompt must be a parameter name, got {prompt!r}")
    if max_entry_bytes is not None and (
        isinstance(max_entry_bytes, bool)
        or not isinstance(max_entry_bytes, int)
        or max_entry_bytes <= 0
    ):
        raise CacheConfigError(
            "max_entry_bytes must be a positive int (bytes of payload + prompt per entry) "
            f"or None for no cap, got {max_entry_bytes!r}"
        )
    if not isinstance(cache_none, bool):
        raise CacheConfigError(f"cache_none must be True or False, got {cache_none!r}")


def cached_llm(
    namespace: str = "default",
    *,
    cache: LLMCache | None = None,
    ttl: int | None = None,
    threshold: float | None = _UNSET,
    tenant: Callable[[BoundCall], str | None] | None = None,
    ignore: Iterable[str] = (),
    prompt: str | None = None,
    normalize: Callable[[str], str] | None = default_normalize,
    on_result: Callable[[CacheResult], None] | None = None,
    allow_global: bool = False,
    max_entry_bytes: int | None = DEFAULT_MAX_ENTRY_BYTES,
    cache_none: bool = True,
) -> Callable[[F], F]:
    """Cache the results of an LLM-calling function in Redis.

    Args:
        namespace: groups entries for stats, ``invalidate`` and ``clear``.
        cache: the :class:`LLMCache`; defaults to :func:`cachekit.get_default_cache`.
        ttl: seconds an entry lives (None: the cache's ``default_ttl``, else forever).
        threshold: cosine similarity in [-1, 1] a paraphrase needs to be served from the
            semantic layer. Omitted: the embedder's calibrated default. ``None``: exact
            matches only.
        tenant: ``callable(BoundCall) -> str | None``; entries of one tenant are never
            served to another. When it returns None the tenant set with
            :func:`cachekit.use_tenant` applies; if there is none either, the call bypasses
            the cache unless ``allow_global=True``.
        ignore: parameter names that do not take part in the key.
        prompt: the parameter holding the prompt (default: the first of
            ``prompt, question, query, input, text`` that is a string, else the last
            user message of ``messages``).
        normalize: applied to the prompt for the exact key (default: collapse whitespace,
            lower-case); None keeps prompts byte-exact.
        on_result: called with every :class:`CacheResult` (metrics hooks).
        allow_global: with a ``tenant=`` callback, let calls that have no tenant share
            one global space instead of bypassing the cache.
        max_entry_bytes: the largest entry stored, counting the encoded result *and* the
            prompt text the entry keeps (UTF-8 bytes); default 1 MiB, as the
            middleware's body cap. A larger result is returned to the caller, not
            stored: ``last_result().stored`` is False, its ``reason`` names the cap, and a
            rate-limited warning says so. ``None``: no cap.
        cache_none: whether a ``None`` result is stored and served like any other value
            (default True: ``None`` is a value, as with :func:`functools.cache`). False
            when your function returns None for "no answer": then a None result is
            returned, not stored (``reason`` says so), and the next call runs the function
            again. Identical calls already waiting on this one still share its result.
    """
    _validate(
        namespace,
        ttl,
        None if threshold is _UNSET else threshold,
        tenant,
        ignore,
        prompt,
        on_result,
        max_entry_bytes,
        cache_none,
    )

    def decorate(func: F) -> F:
        target = getattr(func, "__func__", func)
        if not callable(target):
            raise CacheConfigError(f"cached_llm can only decorate callables, got {func!r}")
        name = getattr(target, "__qualname__", repr(target))
        _check_prompt_param(target, prompt, ignore)
        _register_return_type(target)
        call = _CachedCall(
            namespace=namespace,
            cache=cache,
            ttl=ttl,
            threshold=None if threshold is _UNSET else threshold,
            threshold_given=threshold is not _UNSET,
            tenant=tenant,
            ignore=ignore,
            prompt=prompt,
            normalize=normalize,
            on_result=on_result,
            allow_global=allow_global or tenant is None,
            function_id=f"{getattr(target, '__module__', '?')}.{name}",
            max_entry_bytes=max_entry_bytes,
            cache_none=cache_none,
        )
        # SDK methods are often wrapped by sync decorators around an async def (openai's
        # required_args): look through __wrapped__ to see what the call really returns.
        unwrapped = inspect.unwrap(target)
        if inspect.isasyncgenfunction(unwrapped):
            call.generator = True
            wrapper = _make_async_gen_wrapper(call)
        elif inspect.isgeneratorfunction(unwrapped):
            call.generator = True
            wrapper = _make_sync_gen_wrapper(call)
        elif inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(unwrapped):
            wrapper = _make_async_wrapper(call)
        else:
            wrapper = _make_sync_wrapper(call)
        wrapped = wrapper(func)
        return typing.cast(F, wrapped)

    return decorate


def _check_prompt_param(
    func: Callable[..., Any], prompt: str | None, ignore: Iterable[str]
) -> None:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return
    names = set(sig.parameters)
    has_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    if prompt is not None and prompt not in names and not has_var_kw:
        raise CacheConfigError(
            f"prompt={prompt!r} is not a parameter of {getattr(func, '__qualname__', func)!r} "
            f"(parameters: {', '.join(sorted(names)) or 'none'})"
        )
    if prompt is not None and prompt in set(ignore):
        raise CacheConfigError(f"prompt={prompt!r} cannot also be in ignore=")
