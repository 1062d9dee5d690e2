"""A decorated function's options, one call's state, and how a call is reported."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterable
from typing import Any

from . import _codec
from ._binding import BoundCall
from ._defaults import get_default_cache
from ._manifest import DEFAULT_IGNORE, KeyManifest
from .cache import CACHE_ERRORS, LLMCache, LookupOutcome, WouldBlockError
from .result import CacheControl, CacheResult, Status, publish

UNSET: Any = object()
#: Errors that make a sync caller skip the cache (or a step of it).
SKIP_ERRORS: tuple[type[BaseException], ...] = (WouldBlockError, *CACHE_ERRORS)
#: Default cap on one stored entry (payload + prompt text), as the middleware's body cap.
DEFAULT_MAX_ENTRY_BYTES = 1 << 20


class CallState:
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
        self.value: Any = UNSET
        self.stored = False
        self.semantic: bool | None = None


class CallBase:
    """A decorated function's options, and reporting; the shared base of ``CachedCall``."""

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

    def decode(self, state: CallState, payload: bytes) -> Any:
        return _codec.decode_stream(payload) if state.stream else _codec.decode(payload)

    # -- reporting --------------------------------------------------------------------

    def finish(
        self,
        state: CallState,
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
        state: CallState,
        stage: str,
        exc: BaseException,
        budget: float | None = None,
    ) -> None:
        state.failed = cache.failed(stage, exc, budget, goes_to="the function")


def on_home_thread(cache: LLMCache) -> bool:
    return cache.on_home_thread()
