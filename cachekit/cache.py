"""LLMCache: the async core every entry point shares, a facade over layers with one job each.

``_runtime`` (the home event loop, its client, work run there), ``_clients`` (client
factories), ``_lookup`` over ``_exact`` and ``_semantic`` (and its read-only twin for
``explain``), ``_writer`` (the store), ``_breaker``, ``_manage``, ``_locks``, and
``_cache_config`` (the options, validated once). Nothing here imports the stats, the
decorator or the middleware: ``cachekit.stats`` plugs into ``default_observers`` and
``stats_reader``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

import numpy as np
import redis.asyncio as aredis

from . import _locks, _manage
from ._breaker import Breakers, CircuitBreaker
from ._cache_config import NOT_GIVEN, CacheConfig
from ._clients import client_factory, no_touch, url_factory
from ._entry import Entry, LookupOutcome
from ._exact import ExactLayer
from ._flight import Flights
from ._index._options import DEFAULT_EF_RUNTIME
from ._layout import Space, space_of
from ._lookup import Lookup, Peek
from ._manifest import KeyManifest
from ._policy import CACHE_ERRORS, Budgets, RateLimitedLog, describe_failure
from ._runtime import Job, Runtime, WouldBlockError
from ._semantic import SemanticLayer
from ._writer import StoreMeta, Writer
from .errors import CacheBackendError, CacheConfigError

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from ._adaptive_state import EvidenceStore
    from .embedders import Embedder
    from .stats import StatsReport

__all__ = [
    "CACHE_ERRORS",
    "Budgets",
    "Entry",
    "LLMCache",
    "LookupOutcome",
    "WouldBlockError",
    "describe_failure",
]

T = TypeVar("T")


class LLMCache:
    """The shared core: one Redis pool, the exact layer, the semantic layer.

    Construct with :meth:`from_url` or :meth:`from_client` (no I/O). ``run``, ``submit``,
    ``background``, ``idle``, ``drain``, ``drain_sync`` and ``on_home_thread`` are the
    runtime's own methods (``_runtime.Runtime``), ``count`` and ``delete_entry`` the
    writer's, bound per cache: a call pays nothing for the facade.
    """

    # Operations written over the cache's public API, kept with their job.
    invalidate = _manage.invalidate
    clear = _manage.clear
    index_meta = _manage.index_meta
    try_lock = _locks.try_lock
    unlock = _locks.unlock

    #: Factories of the observers each new cache starts with (``cachekit.stats`` adds its
    #: bypass/error counter), and what :meth:`stats` reads with.
    default_observers: ClassVar[list[Callable[[LLMCache], Callable[[Any], None]]]] = []
    stats_reader: ClassVar[Callable[..., Awaitable[StatsReport]] | None] = None

    def __init__(
        self,
        client_factory: Callable[[], Any],
        *,
        description: str,
        cluster: bool = False,
        embedder: Embedder | Callable[..., Any] | None = None,
        index: str = "auto",
        quantization: str = "int8",
        ef_runtime: int = DEFAULT_EF_RUNTIME,
        default_ttl: int | None = None,
        budgets: Budgets | None = None,
        candidates: int = 4,
        near_miss_sample: float = 0.0,
        near_miss_margin: float = 0.1,
        review_sample: float = 0.0,
        adaptive: Any = None,
        background_stores: bool = True,
        max_pending_stores: int = 1000,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 5.0,
        single_flight: bool = True,
        cluster_connections: int = 32,
        verifier: Any = NOT_GIVEN,
    ) -> None:
        # Every option but the client factory, description and embedder is a CacheConfig field.
        options = {k: v for k, v in locals().items() if k in CacheConfig.__dataclass_fields__}
        self.config = c = CacheConfig(**options | {"budgets": budgets or Budgets()})
        self.cluster, self._description = cluster, description
        self.default_ttl, self.budgets, self.candidates = default_ttl, c.budgets, candidates
        self.index_kind, self.quantization = index, quantization
        self.near_miss_sample, self.near_miss_margin = near_miss_sample, near_miss_margin
        self.background_stores, self.max_pending_stores = background_stores, max_pending_stores
        self.single_flight, self.cluster_connections = single_flight, cluster_connections
        self.warn = RateLimitedLog()
        self.semantic_skipped = self.vectors_skipped = self.stale_stores = 0
        self.dropped_stores = self.local_errors = 0
        self._runtime = rt = Runtime(client_factory, c, self)
        self.run, self.submit = rt.run, rt.submit
        self.background, self.idle, self.on_home_thread = rt.background, rt.idle, rt.on_home_thread
        self.drain, self.drain_sync = rt.drain, rt.drain_sync
        sem = self._sem = SemanticLayer.of(embedder, c, redis=rt.client, warn=self.warn)
        if c.adaptive is not None and sem is None:
            raise CacheConfigError("adaptive= needs a semantic layer: pass an embedder too")
        self.embedder: Embedder | None = sem.embedder if sem is not None else None
        #: The adaptive thresholds' evidence (None unless ``adaptive=`` is given).
        self.evidence: EvidenceStore | None = sem.evidence if sem is not None else None
        rt.on_bind = sem.reset if sem is not None else rt.on_bind  # a new loop: index again
        self._exact = ExactLayer(rt.client, c, self.warn)
        self._lookup = Lookup(rt.client, self._exact, self._sem, c, self)
        self._writer = Writer(rt.client, c, self._sem, self)
        self.count, self.delete_entry = self._writer.count, self._writer.delete_entry
        #: Every breaker of this cache; ``breaker`` is the single node's.
        self.breakers = Breakers(breaker_threshold, breaker_cooldown, cluster=cluster)
        self.breaker: CircuitBreaker = self.breakers.default
        self.flights = Flights()
        #: Called with every CacheResult of every decorated call and middleware request
        #: (metrics). An observer must be fast and must not raise.
        self.observers: list[Callable[[Any], None]] = [m(self) for m in self.default_observers]

    @classmethod
    def from_url(
        cls, url: str, *, max_connections: int = 32, budgets: Budgets | None = None, **options: Any
    ) -> LLMCache:
        """A cache on the Redis at ``url``.

        ``redis://``, ``rediss://`` (TLS), ``unix://``; user and password in the URL for
        ACLs (``redis://user:secret@host:6379/0``; never logged). ``redis+cluster://`` or
        ``rediss+cluster://`` for Redis Cluster (any node as the seed). ``max_connections``
        bounds the pool; callers wait up to ``budgets.pool_wait`` for a free connection,
        then fail open.
        """
        b = budgets or Budgets()
        factory, implied = url_factory(url, max_connections, b)
        return cls(factory, budgets=b, **implied, **options)

    @classmethod
    def from_client(cls, client: Any, **options: Any) -> LLMCache:
        """A cache on an existing ``redis.asyncio.Redis`` or ``RedisCluster``.

        The client is used until its event loop closes; after that the cache opens a
        fresh client with the same connection settings on the new loop.
        """
        factory, implied = client_factory(client)
        return cls(factory, **implied, **options)

    def __repr__(self) -> str:
        kind = self._sem.resolved_kind if self._sem is not None else None
        return f"<LLMCache {self._description} index={kind or self.index_kind}>"

    @property
    def semantic_ready(self) -> bool:
        """True once the embedder's model is loaded (until then: exact layer only)."""
        return self._sem is None or self._sem.ready

    def uses_semantic(self, manifest: KeyManifest, threshold: float | None) -> bool:
        """Would a lookup of ``manifest`` at ``threshold`` embed and search now?"""
        sem = self._sem
        return threshold is not None and sem is not None and sem.embeds(manifest)

    def lookup_budget(self, semantic: bool) -> float:
        """Seconds a lookup may take: embed and search only when it runs them (decided once
        per call with :meth:`uses_semantic`: a model loaded meanwhile does not change it)."""
        b = self.budgets
        return b.lookup + (b.embed + b.search if semantic else 0.0)

    def store_budget(self, manifest: KeyManifest, outcome: LookupOutcome | None) -> float:
        """Seconds a store may take: plus an embedding only when the store must embed."""
        sem, unembedded = self._sem, outcome is not None and outcome.vector is None
        embeds = unembedded and sem is not None and sem.embeds(manifest)
        return self.budgets.store + (self.budgets.embed if embeds else 0.0)

    async def warmup(self, timeout: float | None = None) -> None:
        """Wait until the embedder's model is loaded (see ``SemanticLayer.warmup``)."""
        if self._sem is not None:
            await self._sem.warmup(timeout)

    def warmup_sync(self, timeout: float | None = None) -> None:
        """Sync twin of :meth:`warmup` (call it from sync start-up code, not a loop)."""
        if self._sem is not None:
            self._sem.warmup_sync(timeout)

    async def embed(self, text: str) -> np.ndarray:
        """Embed one prompt through the coalescing batcher, within the embed budget."""
        if self._sem is None:
            raise CacheConfigError("this cache has no embedder")
        return await self._sem.embed(text)

    def run_sync(self, fn: Job[T], *args: Any, timeout: float) -> T:
        """``submit`` ``fn(*args)`` and wait up to ``timeout`` (see ``Runtime.run_sync``)."""
        return self._runtime.wait(self.submit(fn, *args), timeout)

    @property
    def redis(self) -> aredis.Redis:
        """The client of the home loop (only valid inside a coroutine run on it)."""
        return cast("aredis.Redis", self._runtime.client())

    def reader(self) -> AbstractAsyncContextManager[Any]:
        """A client whose reads do not count as uses for eviction (diagnostics; home loop)."""
        return no_touch(self.redis)

    async def __aenter__(self) -> LLMCache:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def connect(self) -> None:
        """Bind to the running loop and check the server (optional: first use does it)."""
        await self.run(self._connect)

    async def _connect(self) -> None:
        try:
            await self.redis.ping()
        except CACHE_ERRORS as exc:
            raise CacheBackendError(f"cannot reach Redis at {self._description}: {exc}") from exc
        if self._sem is not None:
            await self._sem.prepare()

    async def aclose(self) -> None:
        """Drain queued stores, close the pool and the background loop thread. Idempotent."""
        await self.drain()
        await self._runtime.aclose()

    def close(self) -> None:
        """Sync twin of :meth:`aclose` for sync programs."""
        self.drain_sync()
        self._runtime.close()

    def failed(self, stage: str, exc: BaseException, budget: float | None, *, goes_to: str) -> str:
        """Count and log (rate-limited) a failed stage; the text for ``CacheResult.reason``."""
        reason = f"{stage} failed: {describe_failure(stage, exc, budget)}"
        self.local_errors += 1
        message = "cachekit: cache %s failed; the call goes to %s: %s"
        self.warn(f"{goes_to}:{stage}", message, stage, goes_to, reason)
        return reason

    def breaker_for(self, manifest: KeyManifest) -> CircuitBreaker:
        """The circuit breaker guarding this call's keys (one per hash slot on a cluster)."""
        if not self.cluster:
            return self.breaker
        return self.breakers.for_tag(self.space(manifest).tag)

    def space(self, manifest: KeyManifest) -> Space:
        return space_of(manifest.namespace, manifest.tenant)

    async def lookup(
        self, manifest: KeyManifest, *, threshold: float | None, max_age: float | None = None
    ) -> LookupOutcome:
        """Exact layer, then (when configured and the call has prompt text) semantic."""
        return await self._lookup.lookup(manifest, self.space(manifest), threshold, max_age)

    async def peek(
        self,
        manifest: KeyManifest,
        *,
        threshold: float | None,
        embedder: Embedder | None = None,
        k: int | None = None,
        space: Space | None = None,
    ) -> Peek:
        """What :meth:`lookup` would serve now, writing nothing (``Lookup.peek``); ``explain``
        may name another ``embedder`` and ``space`` than the cache's and the manifest's."""
        emb = embedder if embedder is not None else self.embedder
        space = space or self.space(manifest)
        return await self.run(self._lookup.peek, manifest, space, emb, threshold, k)

    async def prepare(self, manifest: KeyManifest) -> LookupOutcome:
        """Generation and epoch for a store without a lookup (``skip_lookup``)."""
        return await self._exact.counters(self.space(manifest))

    async def store(
        self,
        manifest: KeyManifest,
        outcome: LookupOutcome,
        payload: str,
        *,
        ttl: int | None,
        usage: tuple[int, int] | None = None,
        usage_estimated: bool = False,
        model: str | None = None,
    ) -> bool:
        """Store a miss's answer; False when invalidated meanwhile (see ``Writer.store``)."""
        meta = StoreMeta(ttl, usage, usage_estimated, model)
        return await self._writer.store(manifest, outcome, payload, meta)

    async def stats(
        self, namespace: str | None = None, tenant: str | None = None, **options: Any
    ) -> StatsReport:
        """Counters and savings of every worker (see :func:`cachekit.stats.stats`)."""
        if LLMCache.stats_reader is None:
            raise CacheConfigError("cachekit.stats is not loaded")
        return await LLMCache.stats_reader(self, namespace, tenant, **options)
