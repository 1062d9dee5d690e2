"""LLMCache: the async core every entry point shares.

One ``redis.asyncio`` BlockingConnectionPool, bound to one *home* event loop:

* the first running loop that uses the cache (your async app), or
* when a sync caller comes first, a long-lived background loop thread the cache owns.

Async callers on the home loop talk to Redis directly. Sync callers (sync decorated
functions, WSGI) submit to the home loop and wait, from any thread. Async callers on a
different loop hop to the home loop. If the home loop closes (``asyncio.run`` ended), the
next caller rebinds: a new pool on its loop; connections never cross loops.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import redis.asyncio as aredis
from redis import exceptions as redis_errors
from redis.typing import EncodableT

from . import _locks, _manage
from ._breaker import CircuitBreaker
from ._clients import close_client, redact
from ._entry import Entry, LookupOutcome, text
from ._flight import Flights
from ._layout import Space, encode_tenant
from ._loop import LoopThread
from ._manage import check_namespace
from ._manifest import KeyManifest
from ._policy import CACHE_ERRORS, OUTAGES, Budgets, RateLimitedLog, describe_failure
from ._scripts import COUNTER_ONLY_LUA, LOOKUP_LUA, LOOKUP_SHA, STORE_LUA, STORE_SHA
from ._semantic import SemanticLayer
from .errors import (
    CacheBackendError,
    CacheConfigError,
    CacheTimeoutError,
    EmbedderError,
)

if TYPE_CHECKING:
    from ._index import VectorIndex
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

log = logging.getLogger("cachekit")
T = TypeVar("T")
#: The cluster-gate slot of the running task: None outside the gate, else [holding it?]
#: (``idle`` lets go of it while a poller sleeps; ``_gated`` releases only what it holds).
_IN_GATE: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
    "cachekit_in_gate", default=None
)
#: After a failed epoch read, lookups stop waiting for that shard for this long.
_EPOCH_DOWN_SECONDS = 2.0
#: While it is marked down, one background read of the epoch per this interval.
_EPOCH_PROBE_SECONDS = 0.5


class WouldBlockError(RuntimeError):
    """A sync cache call was made on the thread running the cache's home event loop."""


class LLMCache:
    """The shared core: one Redis pool, the exact layer, the semantic layer.

    Construct with :meth:`from_url` or :meth:`from_client`; construction does no I/O.
    """

    def __init__(
        self,
        client_factory: Callable[[], Any],
        *,
        description: str,
        cluster: bool = False,
        embedder: Embedder | Callable[..., Any] | None = None,
        index: str = "auto",
        quantization: str = "int8",
        default_ttl: int | None = None,
        budgets: Budgets | None = None,
        candidates: int = 4,
        near_miss_sample: float = 0.0,
        near_miss_margin: float = 0.1,
        background_stores: bool = True,
        max_pending_stores: int = 1000,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 5.0,
        single_flight: bool = True,
        cluster_connections: int = 32,
    ) -> None:
        if default_ttl is not None and (not isinstance(default_ttl, int) or default_ttl <= 0):
            raise CacheConfigError(
                f"default_ttl must be a positive int (seconds), got {default_ttl!r}"
            )
        if not 0.0 <= near_miss_sample <= 1.0:
            raise CacheConfigError(f"near_miss_sample must be in [0, 1], got {near_miss_sample!r}")
        if not 0.0 < near_miss_margin <= 2.0:
            raise CacheConfigError(f"near_miss_margin must be in (0, 2], got {near_miss_margin!r}")
        if not isinstance(cluster_connections, int) or cluster_connections < 1:
            raise CacheConfigError(
                f"cluster_connections must be an int >= 1, got {cluster_connections!r}"
            )
        if not isinstance(candidates, int) or candidates < 1:
            raise CacheConfigError(f"candidates must be an int >= 1, got {candidates!r}")
        self._client_factory = client_factory
        self.cluster = cluster
        self._description = description
        self.default_ttl = default_ttl
        self.budgets = budgets or Budgets()
        self.index_kind = index
        self.quantization = quantization
        self.candidates = candidates
        self.near_miss_sample = near_miss_sample
        self.near_miss_margin = near_miss_margin
        #: Called with every CacheResult of every decorated call and middleware request
        #: (metrics). An observer must be fast and must not raise.
        self.observers: list[Callable[[Any], None]] = []
        # Bypasses, errors and in-process single-flight hits make no Redis round trip of
        # their own; this observer adds them to the shared stats in the background.
        from .stats import OutcomeCounter

        self.observers.append(OutcomeCounter(self))
        self.warn = RateLimitedLog()
        self._embedder: Embedder | None = None
        self._sem: SemanticLayer | None = None
        #: Lookups that used the exact layer alone because the embedder was not ready.
        self.semantic_skipped = 0
        #: Stores that got no vector because the embedder was not ready.
        self.vectors_skipped = 0
        #: Stores refused because the generation moved while the call was in flight.
        self.stale_stores = 0
        if embedder is not None:
            from .embedders import as_embedder

            self._embedder = as_embedder(embedder)
            self._sem = SemanticLayer(
                self._embedder,
                redis=lambda: self.redis,
                budgets=self.budgets,
                warn=self.warn,
                index_kind=index,
                quantization=quantization,
                candidates=candidates,
                near_miss_sample=near_miss_sample,
                near_miss_margin=near_miss_margin,
            )
        self._lock = threading.Lock()
        self._home: asyncio.AbstractEventLoop | None = None
        self._gate: asyncio.Semaphore | None = None
        self._cluster_ready: asyncio.Future[None] | None = None
        #: Connections per cluster node (sizes the gate above the pool; see ``_bind``).
        self.cluster_connections = cluster_connections
        self._redis: aredis.Redis | None = None
        self._pool: aredis.ConnectionPool | None = None
        self._epochs: dict[str, int] = {}
        self._epoch_down_until: dict[str, float] = {}
        self._epoch_probe_at: dict[str, float] = {}
        self._background = LoopThread()
        self._closed = False
        self.local_errors = 0
        try:
            self.breaker = CircuitBreaker(breaker_threshold, breaker_cooldown)
        except ValueError as exc:
            raise CacheConfigError(str(exc)) from exc
        self._breaker_args = (breaker_threshold, breaker_cooldown)
        self._slot_breakers: dict[int, CircuitBreaker] = {}
        self.flights = Flights()
        self.single_flight = single_flight
        if not isinstance(max_pending_stores, int) or max_pending_stores < 1:
            raise CacheConfigError(f"max_pending_stores must be >= 1, got {max_pending_stores!r}")
        self.background_stores = background_stores
        self.max_pending_stores = max_pending_stores
        self._pending: set[asyncio.Task[Any]] = set()
        self._pending_count = 0
        self.dropped_stores = 0

    # -- construction -----------------------------------------------------------------

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        max_connections: int = 32,
        budgets: Budgets | None = None,
        **options: Any,
    ) -> LLMCache:
        """A cache on the Redis at ``url``.

        ``redis://``, ``rediss://`` (TLS), ``unix://``; user and password in the URL for
        ACLs (``redis://user:secret@host:6379/0``; never logged). ``redis+cluster://`` or
        ``rediss+cluster://`` for Redis Cluster (any node as the seed). ``max_connections``
        bounds the pool; callers wait up to ``budgets.pool_wait`` for a free connection,
        then fail open.
        """
        if not isinstance(url, str) or "://" not in url:
            raise CacheConfigError(f"expected a redis:// URL, got {redact(str(url))!r}")
        if not isinstance(max_connections, int) or max_connections < 1:
            raise CacheConfigError(f"max_connections must be an int >= 1, got {max_connections!r}")
        b = budgets or Budgets()
        scheme = url.split("://", 1)[0].lower()
        if scheme not in ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster"):
            raise CacheConfigError(
                f"unsupported URL scheme {scheme!r}: use redis://, rediss://, unix://, "
                "redis+cluster:// or rediss+cluster://"
            )
        if scheme.endswith("+cluster"):
            plain = url.replace("+cluster", "", 1)

            def cluster_factory() -> Any:
                from redis.asyncio.cluster import RedisCluster

                return RedisCluster.from_url(
                    plain,
                    max_connections=max_connections,
                    socket_connect_timeout=b.connect,
                    socket_timeout=None,
                )

            return cls(
                cluster_factory,
                description=redact(url),
                budgets=b,
                cluster=True,
                cluster_connections=max_connections,
                **options,
            )

        def factory() -> aredis.Redis:
            # socket_timeout=None on purpose: redis-py wraps every read of a socket with
            # a timeout in wait_for (~80 µs a command here); the stage budgets bound waits.
            pool = aredis.BlockingConnectionPool.from_url(
                url,
                max_connections=max_connections,
                timeout=b.pool_wait,
                socket_timeout=None,
                socket_connect_timeout=b.connect,
                health_check_interval=30,
            )
            return aredis.Redis(connection_pool=pool)

        return cls(factory, description=redact(url), budgets=b, **options)

    @classmethod
    def from_client(cls, client: Any, **options: Any) -> LLMCache:
        """A cache on an existing ``redis.asyncio.Redis`` or ``RedisCluster``.

        The client is used until its event loop closes; after that the cache opens a
        fresh client with the same connection settings on the new loop.
        """
        from redis.asyncio.cluster import RedisCluster

        if isinstance(client, RedisCluster):
            used_cluster = [False]

            def cluster_factory() -> Any:
                if not used_cluster[0]:
                    used_cluster[0] = True
                    return client
                node = client.get_default_node()
                return RedisCluster(host=node.host, port=node.port, **client.connection_kwargs)

            kwargs = getattr(getattr(client, "nodes_manager", None), "connection_kwargs", {})
            per_node = kwargs.get("max_connections", 100) if isinstance(kwargs, dict) else 100
            return cls(
                cluster_factory,
                description=repr(client),
                cluster=True,
                cluster_connections=int(per_node),
                **options,
            )
        if not isinstance(client, aredis.Redis):
            raise CacheConfigError(
                "from_client() takes a redis.asyncio.Redis or RedisCluster, not "
                f"{type(client).__name__}"
            )
        original = client.connection_pool
        used = [False]

        def factory() -> aredis.Redis:
            if not used[0]:
                used[0] = True
                return client
            pool = type(original)(
                connection_class=original.connection_class,
                max_connections=original.max_connections,
                **original.connection_kwargs,
            )
            return aredis.Redis(connection_pool=pool)

        return cls(factory, description=repr(original), **options)

    def __repr__(self) -> str:
        kind = self._sem.resolved_kind if self._sem is not None else None
        return f"<LLMCache {self._description} index={kind or self.index_kind}>"

    @property
    def embedder(self) -> Embedder | None:
        return self._embedder

    def lookup_budget(self, semantic: bool) -> float:
        """Seconds a lookup may take: embed and search only when it runs them.

        Entry points decide ``semantic`` once per call (:meth:`uses_semantic`), so that a
        model becoming ready mid-lookup cannot make it embed inside a budget without it.
        """
        b = self.budgets
        return b.lookup + (b.embed + b.search if semantic else 0.0)

    def store_budget(self, manifest: KeyManifest, outcome: LookupOutcome | None) -> float:
        """Seconds a store may take: plus an embedding only when the store must embed."""
        b = self.budgets
        must_embed = (
            outcome is not None
            and outcome.vector is None
            and self._embedder is not None
            and manifest.has_prompt_text
            and self.semantic_ready
        )
        return b.store + (b.embed if must_embed else 0.0)

    def uses_semantic(self, manifest: KeyManifest, threshold: float | None) -> bool:
        return (
            threshold is not None
            and self._embedder is not None
            and manifest.has_prompt_text
            and self.semantic_ready
        )

    @property
    def semantic_ready(self) -> bool:
        """True once the embedder can answer within a lookup budget (model loaded).

        Until then lookups use the exact layer alone and misses are stored without a
        vector; a call never waits for the model and never fails because of it.
        """
        return self._sem is None or self._sem.ready

    async def warmup(self, timeout: float | None = None) -> None:
        """Wait until the embedder's model is loaded (it loads in the background anyway).

        For services that want their first request to use the semantic layer. Raises
        :class:`EmbedderError` when loading failed, :class:`CacheTimeoutError` after
        ``timeout`` seconds. A cache without an embedder is ready at once.
        """
        fut = self._sem.warm.start() if self._sem is not None else None
        if fut is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)), timeout)
        except TimeoutError as exc:
            raise CacheTimeoutError("loading the embedding model", timeout or 0.0) from exc

    def warmup_sync(self, timeout: float | None = None) -> None:
        """Sync twin of :meth:`warmup` (call it from sync start-up code, not a loop)."""
        fut = self._sem.warm.start() if self._sem is not None else None
        if fut is None:
            return
        try:
            fut.result(timeout)
        except concurrent.futures.TimeoutError as exc:
            raise CacheTimeoutError("loading the embedding model", timeout or 0.0) from exc

    # -- event-loop binding -----------------------------------------------------------

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make ``loop`` the home loop with a fresh pool (call with ``_lock`` held)."""
        if self._closed:
            raise CacheConfigError("this LLMCache is closed")
        if self._home is not None:
            log.debug("cachekit: home event loop closed; opening a new pool on the new loop")
        self._redis = self._client_factory()
        self._pool = None if self.cluster else self._redis.connection_pool
        # redis-py's async cluster client has no blocking pool: a node whose connections
        # are all busy raises MaxConnectionsError at once. Operations wait here instead
        # (within the caller's budget); each uses at most two connections of a node.
        self._gate = (
            asyncio.Semaphore(max(1, self.cluster_connections // 2)) if self.cluster else None
        )
        self._cluster_ready = None
        if self._sem is not None:
            self._sem.reset()
        self._home = loop

    def _home_alive(self) -> bool:
        home = self._home
        return home is not None and not home.is_closed() and home.is_running()

    def _home_for_async(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._home_alive() and self._home is not loop:
                self._bind(loop)
            assert self._home is not None
            return self._home

    async def run(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """Run ``fn(*args)`` on the home loop from an async caller."""
        home = self._home_for_async()
        if self._gate is not None:
            args = (fn, *args)
            fn = self._gated
        if home is asyncio.get_running_loop():
            return await fn(*args)
        cfut = asyncio.run_coroutine_threadsafe(fn(*args), home)
        return await asyncio.wrap_future(cfut)

    async def _gated(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """Run ``fn`` holding a slot of the cluster gate (re-entrant within one task)."""
        gate = self._gate
        if gate is None or _IN_GATE.get() is not None:
            return await fn(*args)
        if self._cluster_ready is None or (
            self._cluster_ready.done()
            and (self._cluster_ready.cancelled() or self._cluster_ready.exception() is not None)
        ):
            self._cluster_ready = asyncio.ensure_future(self._prepare_cluster())
        if not self._cluster_ready.done():
            await asyncio.shield(self._cluster_ready)
        await gate.acquire()
        holding = [True]
        token = _IN_GATE.set(holding)
        try:
            return await fn(*args)
        finally:
            _IN_GATE.reset(token)
            if holding[0]:
                gate.release()

    def run_sync(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, timeout: float) -> T:
        """Run ``fn(*args)`` on the home loop from sync code and wait up to ``timeout``.

        Raises :class:`WouldBlockError` on the home loop's own thread: blocking there
        would deadlock, so the caller skips the cache instead.
        """
        cfut = self.submit(fn, *args)
        try:
            return cfut.result(timeout)
        except concurrent.futures.TimeoutError:
            cfut.cancel()
            raise

    def submit(
        self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any
    ) -> concurrent.futures.Future[T]:
        """Start ``fn(*args)`` on the home loop from sync code; the caller waits.

        Raises :class:`WouldBlockError` on the home loop's own thread.
        """
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        with self._lock:
            if not self._home_alive():
                self._bind(self._background.loop)
            home = self._home
            assert home is not None
        if running is home:
            raise WouldBlockError("a sync cached call ran on the thread of the cache's event loop")
        if self._gate is not None:
            args = (fn, *args)
            fn = self._gated
        return asyncio.run_coroutine_threadsafe(fn(*args), home)

    async def idle(self, seconds: float) -> None:
        """Sleep without holding a slot of the cluster gate (a poller between polls)."""
        gate, holding = self._gate, _IN_GATE.get()
        if gate is None or holding is None or not holding[0]:
            await asyncio.sleep(seconds)
            return
        holding[0] = False
        gate.release()
        try:
            await asyncio.sleep(seconds)
        finally:
            # A cancel while waiting here leaves holding[0] False: nothing to release.
            await gate.acquire()
            holding[0] = True

    async def _prepare_cluster(self) -> None:
        """Discover the cluster and load the scripts once, not once per first caller.

        Without this, every caller of a fresh cluster client discovers the topology and
        meets NOSCRIPT on each node at the same moment; under load that herd alone ran
        past lookup budgets.
        """
        client: Any = self.redis
        await client.initialize()
        await asyncio.gather(client.script_load(LOOKUP_LUA), client.script_load(STORE_LUA))

    @property
    def redis(self) -> aredis.Redis:
        """The client of the home loop (only valid inside a coroutine run on it)."""
        if self._redis is None:
            raise CacheConfigError("the cache is not bound to an event loop yet")
        return self._redis

    # -- lifecycle --------------------------------------------------------------------

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
        if self._embedder is not None:
            assert self._sem is not None
            await self._sem.get_index()
            # An embedder that fails to load is not a reason to refuse to start: the
            # exact layer works without it (the failure is logged by the warm-up).
            with contextlib.suppress(EmbedderError):
                await self.warmup()

    async def aclose(self) -> None:
        """Drain queued stores, close the pool and the background loop thread. Idempotent."""
        await self.drain()
        with self._lock:
            home, client = self._home, self._redis
            self._closed = True
            self._home = self._redis = self._pool = None
        if client is not None and home is not None and not home.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            try:
                if home is running:
                    await close_client(client)
                elif home.is_running():
                    await asyncio.wrap_future(
                        asyncio.run_coroutine_threadsafe(close_client(client), home)
                    )
            except CACHE_ERRORS as exc:
                log.debug("error while closing the pool: %s", exc)
        self._background.stop()

    def close(self) -> None:
        """Sync twin of :meth:`aclose` for sync programs."""
        self.drain_sync()
        with self._lock:
            home, client = self._home, self._redis
            self._closed = True
            self._home = self._redis = self._pool = None
        if client is not None and home is not None and home.is_running():
            try:
                asyncio.run_coroutine_threadsafe(close_client(client), home).result(2.0)
            except (RuntimeError, *CACHE_ERRORS) as exc:  # type: ignore[misc]
                log.debug("error while closing the pool: %s", exc)
        self._background.stop()

    def failed(self, stage: str, exc: BaseException, budget: float | None, *, goes_to: str) -> str:
        """Count and log (rate-limited) a failed stage; the text for ``CacheResult.reason``."""
        reason = f"{stage} failed: {describe_failure(stage, exc, budget)}"
        self.local_errors += 1
        self.warn(
            f"{goes_to}:{stage}",
            "cachekit: cache %s failed; the call goes to %s: %s",
            stage,
            goes_to,
            reason,
        )
        return reason

    def breaker_for(self, manifest: KeyManifest) -> CircuitBreaker:
        """The circuit breaker guarding this call's keys.

        One per cache on a single node. On a cluster one per hash slot of the
        tenant+namespace, so a dead shard does not switch the cache off for tenants
        whose keys live on healthy shards.
        """
        if not self.cluster:
            return self.breaker
        from redis.crc import key_slot

        slot = key_slot(self.space(manifest).tag.encode())
        breaker = self._slot_breakers.get(slot)
        if breaker is None:
            breaker = self._slot_breakers.setdefault(slot, CircuitBreaker(*self._breaker_args))
        return breaker

    # -- background work ----------------------------------------------------------------

    def background(
        self,
        fn: Callable[..., Coroutine[Any, Any, Any]],
        *args: Any,
        done: Callable[[BaseException | None], None] | None = None,
    ) -> bool:
        """Run ``fn(*args)`` on the home loop without waiting (stores after a miss).

        Callable from any thread. The queue is bounded: when ``max_pending_stores`` are
        already waiting the work is dropped and counted (``dropped_stores``), never
        queued without limit. :meth:`drain` / :meth:`aclose` wait for what is queued.
        Returns False when dropped (``done`` is then not called).
        """
        with self._lock:
            if self._pending_count >= self.max_pending_stores:
                self.dropped_stores += 1
                return False
            if not self._home_alive():
                self._bind(self._background.loop)
            home = self._home
            assert home is not None
            self._pending_count += 1

        def finished(task: asyncio.Task[Any]) -> None:
            self._pending.discard(task)
            with self._lock:
                self._pending_count -= 1
            exc = None if task.cancelled() else task.exception()
            if task.cancelled():
                exc = asyncio.CancelledError()
            if done is not None:
                done(exc)

        def start() -> None:
            task = asyncio.ensure_future(self._gated(fn, *args))
            self._pending.add(task)
            task.add_done_callback(finished)

        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is home:
            start()
        else:
            home.call_soon_threadsafe(start)
        return True

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until the background stores queued so far have landed."""
        deadline = time.monotonic() + timeout
        while self._pending_count and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    def drain_sync(self, timeout: float = 10.0) -> None:
        """Sync twin of :meth:`drain`."""
        deadline = time.monotonic() + timeout
        while self._pending_count and time.monotonic() < deadline:
            time.sleep(0.005)

    async def try_lock(self, manifest: KeyManifest, generation: int) -> Any:
        """The cross-process single-flight lock of this key, or None if another holds it."""
        return await _locks.try_lock(self, manifest, generation)

    async def unlock(self, lock: Any) -> None:
        await _locks.unlock(lock)

    # -- vector index -----------------------------------------------------------------

    # -- the lookup -------------------------------------------------------------------

    def space(self, manifest: KeyManifest) -> Space:
        return Space(manifest.namespace, encode_tenant(manifest.tenant))

    async def lookup(
        self,
        manifest: KeyManifest,
        *,
        threshold: float | None,
        max_age: float | None = None,
    ) -> LookupOutcome:
        """Exact layer, then (when configured and the call has prompt text) semantic."""
        space = self.space(manifest)
        reply = await (self._lookup_cluster if self.cluster else self._lookup_script)(
            manifest, space, max_age
        )
        if reply[0] == b"!" or reply[0] == "!":
            return self._foreign_counter(manifest, space, text(reply[1]))
        outcome = LookupOutcome(generation=int(reply[0]), epoch=int(reply[1]))
        if len(reply) >= 4:
            status = text(reply[3])
            if status == "hit":
                outcome.entry = Entry(
                    entry_id=text(reply[2]),
                    payload=bytes(reply[4]),
                    created=float(reply[5]),
                    prompt=text(reply[6]) if reply[6] else None,
                )
                outcome.layer = "exact"
                return outcome
            if status == "foreign":
                self.warn(
                    "foreign-entry",
                    "cachekit: a key of %s holds data cachekit did not write (wrong type); "
                    "treated as a miss",
                    space.tag,
                )
            outcome.reason = status
        if threshold is None or self._embedder is None or not manifest.has_prompt_text:
            return outcome
        if not self.semantic_ready:
            # The model is still loading (or failed to): the exact layer answers alone
            # rather than making the call wait for it or fail.
            outcome.reason = outcome.reason or "semantic layer not ready"
            self.semantic_skipped += 1
            return outcome
        assert self._sem is not None
        await self._sem.search(manifest, space, outcome, threshold, max_age)
        return outcome

    def _foreign_counter(self, manifest: KeyManifest, space: Space, which: str) -> LookupOutcome:
        key = f"ck:{{{manifest.namespace}}}:epoch" if which == "epoch" else space.gen_key
        self.warn(
            f"foreign-{which}",
            "cachekit: %s holds a value cachekit did not write; calls for it are not cached "
            "until `cachekit invalidate` resets it",
            key,
        )
        return LookupOutcome(generation=-1, epoch=-1, reason=f"foreign {which} counter")

    async def _eval_lookup(self, keys: list[str], args: list[str]) -> Any:
        return await self._eval(LOOKUP_SHA, LOOKUP_LUA, keys, args)

    async def _lookup_script(
        self, manifest: KeyManifest, space: Space, max_age: float | None
    ) -> Any:
        """One EVALSHA: the script reads the namespace epoch itself (one node)."""
        keys = [space.gen_key, space.stats_key, f"ck:{{{manifest.namespace}}}:epoch"]
        age = "" if max_age is None else repr(float(max_age))
        return await self._eval_lookup(keys, [f"ck:{space.tag}:", manifest.exact_digest, age, ""])

    async def _lookup_cluster(
        self, manifest: KeyManifest, space: Space, max_age: float | None
    ) -> Any:
        """Cluster: the epoch key is in another slot, so it is read concurrently.

        The script checks entries against the epoch this worker last saw; the concurrent
        GET tells whether that is still current. After an invalidation the first lookup
        of each worker sees the change and runs once more with the new epoch, so an entry
        of the old epoch is never served.
        """
        namespace = manifest.namespace
        epoch_key = f"ck:{{{namespace}}}:epoch"
        keys = [space.gen_key, space.stats_key]
        age = "" if max_age is None else repr(float(max_age))
        for _attempt in range(3):
            known = self._epochs.get(namespace, 0)
            args = [f"ck:{space.tag}:", manifest.exact_digest, age, str(known)]
            if namespace in self._epochs and time.monotonic() < self._epoch_down_until.get(
                namespace, 0.0
            ):
                # The epoch shard failed moments ago. Every command sent to a dead node
                # makes redis-py's cluster client re-discover the topology, which stalls
                # every shard: serve this tenant with the epoch last seen and let one
                # background probe per interval find out when the shard is back.
                self._probe_epoch(namespace, epoch_key)
                return await self._eval_lookup(keys, args)
            epoch_read = asyncio.ensure_future(self._counter(epoch_key))
            epoch_read.add_done_callback(functools.partial(self._epoch_read_done, namespace))
            reply = await self._eval_lookup(keys, args)
            try:
                epoch = await epoch_read
            except CACHE_ERRORS:
                # The epoch lives on another shard. If that shard is down, keep serving
                # this tenant's shard with the epoch we last saw: an all-tenant
                # invalidate needs that shard too, so it cannot have happened meanwhile
                # (except in the moment before it failed, which is the accepted risk).
                if namespace in self._epochs:
                    return reply
                raise
            if epoch < 0:
                return [b"!", b"epoch"]
            if epoch == known:
                return reply
            self._epochs[namespace] = epoch
        raise CacheBackendError("the namespace epoch kept changing during the lookup")

    def _probe_epoch(self, namespace: str, epoch_key: str) -> None:
        now = time.monotonic()
        if now < self._epoch_probe_at.get(namespace, 0.0):
            return
        self._epoch_probe_at[namespace] = now + _EPOCH_PROBE_SECONDS
        probe = asyncio.ensure_future(self._counter(epoch_key))
        probe.add_done_callback(functools.partial(self._epoch_read_done, namespace))

    def _epoch_read_done(self, namespace: str, task: asyncio.Future[int]) -> None:
        """Remember whether the namespace's epoch shard answers (see _lookup_cluster)."""
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            self._epoch_down_until.pop(namespace, None)
            if task.result() >= 0:
                self._epochs[namespace] = task.result()
        elif isinstance(exc, OUTAGES):
            self._epoch_down_until[namespace] = time.monotonic() + _EPOCH_DOWN_SECONDS

    async def _counter(self, key: str) -> int:
        """A generation/epoch counter, created from the clock when missing (see the Lua).

        -1 when the key holds something cachekit did not write.
        """
        value = await self.redis.eval(COUNTER_ONLY_LUA, 1, key)
        return -1 if value is None else int(value)

    async def prepare(self, manifest: KeyManifest) -> LookupOutcome:
        """Generation and epoch for a store without a lookup (``skip_lookup``)."""
        space = self.space(manifest)
        epoch, generation = await asyncio.gather(
            self._counter(f"ck:{{{manifest.namespace}}}:epoch"), self._counter(space.gen_key)
        )
        return LookupOutcome(generation=generation, epoch=epoch)

    async def embed(self, text: str) -> np.ndarray:
        """Embed one prompt through the coalescing batcher, within the embed budget."""
        if self._sem is None:
            raise CacheConfigError("this cache has no embedder")
        return await self._sem.embed(text)

    # -- the store --------------------------------------------------------------------

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
        """Entry + exact key in one script on one hash slot, then the vector.

        Returns False when nothing was stored because the generation (or the namespace
        epoch) moved since the lookup: the answer belongs to entries that were
        invalidated while it was being computed. ``model`` overrides the request's model
        for the savings accounting (an HTTP response may name it when the body did not).
        """
        if not outcome.storable:
            return False
        space = self.space(manifest)
        ttl = ttl if ttl is not None else self.default_ttl
        vector = outcome.vector
        index: VectorIndex | None = None
        if self._embedder is not None and manifest.has_prompt_text:
            if vector is None and not self.semantic_ready:
                # Stored for the exact layer now; this prompt gets no vector (counted).
                self.vectors_skipped += 1
            else:
                assert self._sem is not None
                index = await self._sem.usable_index()
                if index is not None and vector is None:
                    assert manifest.prompt is not None
                    vector = await self._sem.embed(manifest.prompt)
        entry_id = manifest.exact_digest
        fields: dict[str, EncodableT] = {
            "v": payload,
            "c": repr(time.time()),
            "h": 0,
            "ne": outcome.epoch,
            "g": outcome.generation,
            "s": manifest.scope_digest,
            "p": manifest.prompt or "",
        }
        model = model or manifest.model
        if model:
            fields["m"] = model
        if usage is not None:
            fields["ti"], fields["to"] = usage
            if usage_estimated:
                fields["te"] = 1
        keys = [
            space.gen_key,
            space.entry_key(entry_id),
            space.exact_key(outcome.generation, manifest.exact_digest),
            space.stats_key,
        ]
        if not self.cluster:
            # One node: the epoch is checked in the same script. On a cluster it lives in
            # another slot; the lookup's epoch check keeps old-epoch entries unserved.
            keys.append(f"ck:{{{manifest.namespace}}}:epoch")
        args: list[EncodableT] = [
            outcome.generation,
            outcome.epoch,
            "" if ttl is None else ttl,
            entry_id,
            repr(time.time()),
        ]
        for name, value in fields.items():
            args += [name, value]
        written = await self._eval(STORE_SHA, STORE_LUA, keys, args)
        if not written:
            self.stale_stores += 1
            log.debug("cachekit: not storing an answer of an invalidated generation")
            return False
        if index is not None and vector is not None:
            async with self.redis.pipeline(transaction=True) as pipe:
                scope = space.scope(outcome.generation, manifest.scope_digest)
                index.add(pipe, scope, entry_id, vector, ttl)
                await pipe.execute()
        return True

    async def _eval(self, sha: str, script: str, keys: list[str], args: Sequence[Any]) -> Any:
        try:
            return await self.redis.evalsha(sha, len(keys), *keys, *args)
        except redis_errors.NoScriptError:
            # First use on this server, or it restarted: load once, then EVALSHA again.
            await self.redis.script_load(script)
            return await self.redis.evalsha(sha, len(keys), *keys, *args)

    async def count(self, manifest: KeyManifest, field: str) -> None:
        """Count an outcome that had no other write to ride on (bypass)."""
        await self.redis.hincrby(self.space(manifest).stats_key, field, 1)

    async def delete_entry(self, manifest: KeyManifest, entry_id: str) -> None:
        """Drop a corrupt entry so it is not served again."""
        await self.redis.delete(self.space(manifest).entry_key(entry_id))

    # -- management -------------------------------------------------------------------

    async def invalidate(self, namespace: str, tenant: str | None = None) -> int:
        """Make every worker miss the namespace's current entries at once (no SCAN).

        With ``tenant`` only that tenant's entries; with ``tenant=None`` every tenant's
        (the namespace epoch). Old entries are not deleted: they age out by TTL/LRU.
        Returns the new generation (or epoch).
        """
        check_namespace(namespace)
        return await self.run(_manage.invalidate, self, namespace, tenant)

    async def clear(self, namespace: str, tenant: str | None = None) -> int:
        """Delete a namespace's keys (one tenant's, or every tenant's) with SCAN + UNLINK.

        Returns the number of keys deleted. Works on every primary of a cluster.
        """
        check_namespace(namespace)
        return await self.run(_manage.clear, self, namespace, tenant)

    async def stats(
        self, namespace: str | None = None, tenant: str | None = None, **options: Any
    ) -> StatsReport:
        """Counters and savings of every worker (see :func:`cachekit.stats.stats`)."""
        from .stats import stats

        return await stats(self, namespace, tenant, **options)

    async def index_meta(self) -> dict[str, str]:
        """The global vector-index metadata (backend, dims, model), if any."""
        raw = await self.run(_manage.index_meta, self)
        return {text(k): text(v) for k, v in raw.items()}
