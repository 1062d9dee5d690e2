"""The cache steps of one handled request, shared by ASGI and WSGI.

:class:`Options` adds to the validated :class:`Config` what a request does with the
cache: its budgets, single-flight policy, the lookup and store coroutines (run on the
cache's home loop) and the :class:`~cachekit.CacheResult` it reports.
"""

from __future__ import annotations

import time

from .._manifest import KeyManifest
from ..cache import LLMCache
from ..errors import CodecError
from ..result import CacheResult, Status, publish
from ._options import Config
from ._record import CachedResponse
from ._request import RequestControl
from ._state import RequestState

__all__ = ["Options"]


class Options(Config):
    """:class:`Config` plus the cache steps both middlewares take for a request."""

    def lookup_budget(self, cache: LLMCache, state: RequestState) -> float:
        if state.semantic is None:
            state.semantic = cache.uses_semantic(state.manifest, self.effective_threshold(cache))
        return cache.lookup_budget(state.semantic)

    def store_budget(self, cache: LLMCache, state: RequestState) -> float:
        return cache.store_budget(state.manifest, state.outcome)

    # -- single-flight --------------------------------------------------------------------

    def flight_key(self, cache: LLMCache, manifest: KeyManifest) -> str:
        return f"{cache.space(manifest).tag}:{manifest.exact_digest}"

    def may_follow(self, cache: LLMCache, control: RequestControl) -> bool:
        """May this request be served by an identical one in flight, before any lookup?"""
        # A forced refresh (no-cache) or max-age=0 wants a new answer, not a shared one.
        return cache.single_flight and not control.no_cache and control.max_age != 0

    def may_lead(self, cache: LLMCache, state: RequestState) -> bool:
        """After a miss: may this request lead (or follow) a flight of identical ones?"""
        control = state.control
        return cache.single_flight and not control.no_cache and not control.no_store

    async def poll(self, cache: LLMCache, state: RequestState) -> CachedResponse | None:
        """One exact-layer look for an answer another process stored (home loop)."""
        outcome = await cache.lookup(state.manifest, threshold=None, max_age=state.control.max_age)
        if outcome.entry is None:
            return None
        try:
            response = CachedResponse.decode(outcome.entry.payload)
        except CodecError:
            return None  # the leader's corrupt entry: this request calls the app
        state.outcome = outcome
        return response

    def flight_failure(self, cache: LLMCache, exc: BaseException) -> None:
        # Not state.failed: the request still goes through the cache (its miss is
        # stored and counted); only the coalescing with other processes was lost.
        cache.local_errors += 1
        cache.warn(
            "http-single-flight",
            "cachekit: cross-process single-flight failed; the request goes to the app: %s: %s",
            type(exc).__name__,
            exc,
        )

    # -- the coroutines run on the cache's home loop ------------------------------------

    async def before(self, cache: LLMCache, state: RequestState) -> None:
        """Look up; on a decodable hit set ``state.cached``."""
        if state.control.no_cache:
            state.outcome = await cache.prepare(state.manifest)
            return
        outcome = await cache.lookup(
            state.manifest,
            threshold=self.effective_threshold(cache) if state.semantic is not False else None,
            max_age=state.control.max_age,
        )
        state.outcome = outcome
        if outcome.entry is None:
            return
        try:
            state.cached = CachedResponse.decode(outcome.entry.payload)
        except CodecError as exc:
            cache.warn("decode", "cachekit: dropping a corrupt cache entry: %s", exc)
            entry_id = outcome.entry.entry_id
            outcome.entry = None
            outcome.layer = None
            await cache.delete_entry(state.manifest, entry_id)

    async def after(
        self,
        cache: LLMCache,
        state: RequestState,
        response: CachedResponse,
    ) -> None:
        assert state.outcome is not None
        state.stored = await cache.store(
            state.manifest,
            state.outcome,
            response.encode(),
            ttl=self.ttl,
            usage=response.usage,
            # A body without "model" (Azure deployments, a default model upstream): the
            # response still says which model answered, so the savings can be priced.
            model=state.manifest.model or response.model,
        )

    # -- reporting ----------------------------------------------------------------------

    def failure(
        self,
        cache: LLMCache,
        state: RequestState,
        stage: str,
        exc: BaseException,
        budget: float | None = None,
    ) -> None:
        state.failed = cache.failed(stage, exc, budget, goes_to="the app")

    def finish(
        self,
        state: RequestState | None,
        status: Status,
        *,
        reason: str | None = None,
        started: float | None = None,
        overhead: float | None = None,
    ) -> None:
        """Publish the request's :class:`CacheResult` (``last_result()``, ``on_result``)."""
        outcome = state.outcome if state is not None else None
        entry = outcome.entry if outcome is not None else None
        begin = state.started if state is not None else started
        if overhead is None:
            overhead = time.perf_counter() - begin if begin is not None else 0.0
        layer = outcome.layer if entry is not None and outcome is not None else None
        matched = entry.prompt if entry is not None else None
        if status == "exact" and entry is None and state is not None:
            # Served by an identical request in flight: the same key, from memory.
            layer, matched = "exact", state.manifest.prompt
        result = CacheResult(
            status=status,
            namespace=self.namespace,
            key=state.manifest.exact_digest if state is not None else None,
            layer=layer,  # type: ignore[arg-type]
            similarity=outcome.similarity if outcome is not None else None,
            matched_prompt=matched,
            latency_ms=overhead * 1000.0,
            age_s=(time.time() - entry.created) if entry is not None else None,
            stored=state.stored if state is not None else False,
            reason=reason or (state.failed if state is not None else None),
            tenant=state.manifest.tenant if state is not None else None,
        )
        # The cache's observers (metrics) see middleware requests like decorated calls.
        publish(result, self.cache.observers, self.on_result)
