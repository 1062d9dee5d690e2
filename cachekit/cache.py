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
import hashlib
import logging
import random
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np
import redis.asyncio as aredis
from redis import exceptions as redis_errors
from redis.typing import EncodableT, FieldT

from ._breaker import CircuitBreaker
from ._flight import Flights
from ._layout import META_KEY, NAMESPACE_RE, Space, encode_tenant
from ._loop import LoopThread
from ._manifest import KeyManifest
from .errors import CacheBackendError, CacheConfigError, EmbedderError, IndexMismatchError

if TYPE_CHECKING:
    from ._batching import BatchingEmbedder
    from ._index import Candidate, VectorIndex
    from .embedders import Embedder
    from .stats import StatsReport

__all__ = ["Budgets", "Entry", "LLMCache", "LookupOutcome"]

log = logging.getLogger("cachekit")
T = TypeVar("T")
#: Near misses kept per tenant+namespace (a capped stream).
NEAR_MISS_MAXLEN = 2000

#: Errors that mean "the cache is unavailable", never "the user's call failed".
CACHE_ERRORS: tuple[type[BaseException], ...] = (
    redis_errors.RedisError,
    OSError,
    asyncio.TimeoutError,
    TimeoutError,
    concurrent.futures.TimeoutError,
    EmbedderError,
    IndexMismatchError,
)

# One round trip for an exact hit: read the namespace epoch and the tenant generation,
# follow the exact pointer, read the entry, count the hit. A pointer whose entry is gone
# (TTL, LRU, flush) is deleted and reported as a miss; an entry stored under an older
# namespace epoch is not served. Keys built in the script share KEYS[1]'s hash slot; the
# epoch key (KEYS[3]) lives in another slot, so cluster mode reads it separately and
# passes it as ARGV[4] instead.
_COUNTER_LUA = """
local function counter(key)
  local v = redis.call('GET', key)
  if v then return v end
  local t = redis.call('TIME')
  redis.call('SET', key, t[1] .. string.format('%06d', tonumber(t[2])), 'NX')
  return redis.call('GET', key)
end
"""
# A missing generation or epoch (never set, or evicted under allkeys-lru) starts at the
# current time in microseconds, never at 0: entries of a generation that was invalidated
# and then lost its counter can never become reachable again.
_LOOKUP_LUA = (
    _COUNTER_LUA
    + """
local epoch = ARGV[4]
if KEYS[3] then epoch = counter(KEYS[3]) end
local gen = counter(KEYS[1])
local prefix = ARGV[1]
local xkey = prefix .. 'x:' .. gen .. ':' .. ARGV[2]
local eid = redis.call('GET', xkey)
if not eid then return {gen, epoch} end
local ekey = prefix .. 'e:' .. eid
local f = redis.call('HMGET', ekey, 'v', 'c', 'p', 'ne', 'm', 'ti', 'to', 'te')
if not f[1] then
  redis.call('DEL', xkey)
  return {gen, epoch, eid, 'dangling'}
end
local created = tonumber(f[2])
if not created then
  -- written by something else or truncated: drop it rather than serve it
  redis.call('DEL', xkey, ekey)
  return {gen, epoch, eid, 'corrupt'}
end
if f[4] ~= epoch then return {gen, epoch, eid, 'epoch'} end
if ARGV[3] ~= '' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  if now - created > tonumber(ARGV[3]) then return {gen, epoch, eid, 'stale'} end
end
redis.call('HINCRBY', ekey, 'h', 1)
redis.call('HINCRBY', KEYS[2], 'exact', 1)
if f[5] then
  local kind = f[8] and 'e' or 't'
  local tin, tout = tonumber(f[6]), tonumber(f[7])
  if tin and tin == math.floor(tin) then
    redis.call('HINCRBY', KEYS[2], kind .. 'in:' .. f[5], tin)
  end
  if tout and tout == math.floor(tout) then
    redis.call('HINCRBY', KEYS[2], kind .. 'out:' .. f[5], tout)
  end
end
return {gen, epoch, eid, 'hit', f[1], f[2], f[3]}
"""
)
_BUMP_LUA = (
    _COUNTER_LUA
    + """
counter(KEYS[1])
return redis.call('INCR', KEYS[1])
"""
)
_COUNTER_ONLY_LUA = (
    _COUNTER_LUA
    + """
return counter(KEYS[1])
"""
)
_LOOKUP_SHA = hashlib.sha1(_LOOKUP_LUA.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Budgets:
    """Time budgets (seconds) per stage; on expiry the call goes to the LLM (fail-open)."""

    connect: float = 0.5
    command: float = 0.5
    lookup: float = 0.5
    embed: float = 2.0
    search: float = 0.5
    store: float = 1.0
    pool_wait: float = 0.5
    #: How long a caller waits for an identical call already running (in this process or
    #: another) before calling the function itself.
    flight_wait: float = 30.0
    #: Lease of the cross-process single-flight lock: a holder that dies frees it then.
    flight_lease: float = 60.0

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not isinstance(value, int | float) or value <= 0:
                raise CacheConfigError(f"budget {name!r} must be a positive number, got {value!r}")


@dataclass(frozen=True, slots=True)
class Entry:
    """A cached answer as read back from Redis."""

    entry_id: str
    payload: bytes
    created: float
    prompt: str | None


@dataclass(slots=True)
class LookupOutcome:
    """What a lookup found, plus what the store after a miss needs (no second embed)."""

    generation: int
    epoch: int
    entry: Entry | None = None
    layer: str | None = None
    similarity: float | None = None
    vector: np.ndarray | None = None
    reason: str | None = None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_SECRET_PARAMS = frozenset({"password", "username", "user", "pass"})


def _redact(url: str) -> str:
    """A URL safe for logs, reprs and errors: no user name, no password, anywhere.

    Covers ``user:password@`` in the netloc and redis-py's ``?password=``/``?username=``
    query parameters; anything unparsable is replaced whole.
    """
    if "://" not in url:
        return "<redacted URL>" if "@" in url or "password" in url.lower() else url
    try:
        parts = urllib.parse.urlsplit(url)
        params = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if "@" not in parts.netloc and not any(k.lower() in _SECRET_PARAMS for k, _ in params):
            return url
        host = parts.netloc.rsplit("@", 1)[-1]
        netloc = f"***@{host}" if "@" in parts.netloc else host
        query = urllib.parse.urlencode(
            [(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in params]
        )
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return "<unparsable redis URL>"


class _RateLimitedLog:
    """Log a failure at most once per interval per kind, counting the rest."""

    def __init__(self, interval: float = 30.0) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
                return
            self._last[kind] = now
            skipped = self.suppressed.pop(kind, 0)
        suffix = f" ({skipped} similar messages suppressed)" if skipped else ""
        log.warning(message + suffix, *args)


async def _close_client(client: Any) -> None:
    if isinstance(client, aredis.Redis):
        await client.connection_pool.disconnect()
    else:
        await client.aclose()


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
    ) -> None:
        if default_ttl is not None and (not isinstance(default_ttl, int) or default_ttl <= 0):
            raise CacheConfigError(
                f"default_ttl must be a positive int (seconds), got {default_ttl!r}"
            )
        if not 0.0 <= near_miss_sample <= 1.0:
            raise CacheConfigError(f"near_miss_sample must be in [0, 1], got {near_miss_sample!r}")
        if not 0.0 < near_miss_margin <= 2.0:
            raise CacheConfigError(f"near_miss_margin must be in (0, 2], got {near_miss_margin!r}")
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
        self._embedder: Embedder | None = None
        self._batcher: BatchingEmbedder | None = None
        if embedder is not None:
            from ._batching import BatchingEmbedder
            from .embedders import as_embedder

            self._embedder = as_embedder(embedder)
            self._batcher = BatchingEmbedder(self._embedder)
        self._lock = threading.Lock()
        self._home: asyncio.AbstractEventLoop | None = None
        self._redis: aredis.Redis | None = None
        self._pool: aredis.ConnectionPool | None = None
        self._epochs: dict[str, int] = {}
        self._index: VectorIndex | None = None
        self._index_ready: asyncio.Future[VectorIndex] | None = None
        self._resolved_kind: str | None = None
        self._background = LoopThread()
        self._closed = False
        self.warn = _RateLimitedLog()
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
            raise CacheConfigError(f"expected a redis:// URL, got {_redact(str(url))!r}")
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
                cluster_factory, description=_redact(url), budgets=b, cluster=True, **options
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

        return cls(factory, description=_redact(url), budgets=b, **options)

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

            return cls(cluster_factory, description=repr(client), cluster=True, **options)
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
        return f"<LLMCache {self._description} index={self._resolved_kind or self.index_kind}>"

    @property
    def embedder(self) -> Embedder | None:
        return self._embedder

    # -- event-loop binding -----------------------------------------------------------

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make ``loop`` the home loop with a fresh pool (call with ``_lock`` held)."""
        if self._closed:
            raise CacheConfigError("this LLMCache is closed")
        if self._home is not None:
            log.debug("cachekit: home event loop closed; opening a new pool on the new loop")
        self._redis = self._client_factory()
        self._pool = None if self.cluster else self._redis.connection_pool
        self._index = None
        self._index_ready = None
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
        if home is asyncio.get_running_loop():
            return await fn(*args)
        cfut = asyncio.run_coroutine_threadsafe(fn(*args), home)
        return await asyncio.wrap_future(cfut)

    def run_sync(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, timeout: float) -> T:
        """Run ``fn(*args)`` on the home loop from sync code and wait up to ``timeout``.

        Raises :class:`WouldBlockError` on the home loop's own thread: blocking there
        would deadlock, so the caller skips the cache instead.
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
        cfut = asyncio.run_coroutine_threadsafe(fn(*args), home)
        try:
            return cfut.result(timeout)
        except concurrent.futures.TimeoutError:
            cfut.cancel()
            raise

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
            await self._get_index()
            # Load the model now (seconds for a local one), not inside the first call's
            # embedding budget. An embedder that is down is not a reason to refuse to
            # start: calls fail open until it recovers.
            try:
                await self._embedder.embed(["warm-up"])
            except (EmbedderError, OSError) as exc:
                log.warning("cachekit: embedder warm-up failed (calls will fail open): %s", exc)

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
                    await _close_client(client)
                elif home.is_running():
                    await asyncio.wrap_future(
                        asyncio.run_coroutine_threadsafe(_close_client(client), home)
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
                asyncio.run_coroutine_threadsafe(_close_client(client), home).result(2.0)
            except (RuntimeError, *CACHE_ERRORS) as exc:  # type: ignore[misc]
                log.debug("error while closing the pool: %s", exc)
        self._background.stop()

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
            task = asyncio.ensure_future(fn(*args))
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
        """The cross-process single-flight lock of this key, or None if another holds it.

        redis-py's Lock: SET NX PX with a random token, released by a Lua compare-and-
        delete, so an expired holder can never release a lock someone else now holds.
        """
        space = self.space(manifest)
        lock = self.redis.lock(
            space.lock_key(generation, manifest.exact_digest),
            timeout=self.budgets.flight_lease,
            blocking=False,
            thread_local=False,
        )
        token = uuid.uuid4().hex
        try:
            return lock if await lock.acquire(token=token) else None
        except BaseException:
            # The SET may have landed while its reply was lost (timeout, cancel, broken
            # connection): release by token in the background so the key is not left
            # locked for a whole lease with nobody running the call.
            self.background(self._release_token, lock, token.encode())
            raise

    async def _release_token(self, lock: Any, token: bytes) -> None:
        with contextlib.suppress(redis_errors.LockError, *CACHE_ERRORS):
            await lock.do_release(token)

    async def unlock(self, lock: Any) -> None:
        # LockError: the lease ran out first; nothing is left to release.
        with contextlib.suppress(redis_errors.LockError):
            await lock.release()

    # -- vector index -----------------------------------------------------------------

    async def _get_index(self) -> VectorIndex:
        """The vector index, resolved and checked once per bound loop."""
        if self._index is not None:
            return self._index
        if self._index_ready is None:
            self._index_ready = asyncio.get_running_loop().create_future()
            try:
                from ._index import make_index, resolve_index

                assert self._embedder is not None
                kind = await resolve_index(self.index_kind, self.redis)
                index = make_index(kind, self.redis, quantization=self.quantization)
                await index.ensure(self._embedder.dimensions, self._embedder.model_id)
            except BaseException as exc:
                ready, self._index_ready = self._index_ready, None
                ready.set_exception(exc)
                ready.exception()  # mark retrieved: the raise below reports it
                raise
            self._resolved_kind = kind
            self._index = index
            self._index_ready.set_result(index)
            return index
        return await asyncio.shield(self._index_ready)

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
        outcome = LookupOutcome(generation=int(reply[0]), epoch=int(reply[1]))
        if len(reply) >= 4:
            status = _text(reply[3])
            if status == "hit":
                outcome.entry = Entry(
                    entry_id=_text(reply[2]),
                    payload=bytes(reply[4]),
                    created=float(reply[5]),
                    prompt=_text(reply[6]) if reply[6] else None,
                )
                outcome.layer = "exact"
                return outcome
            outcome.reason = status
        if threshold is None or self._embedder is None or not manifest.has_prompt_text:
            return outcome
        await self._semantic(manifest, space, outcome, threshold, max_age)
        return outcome

    async def _eval_lookup(self, keys: list[str], args: list[str]) -> Any:
        try:
            return await self.redis.evalsha(_LOOKUP_SHA, len(keys), *keys, *args)
        except redis_errors.NoScriptError:
            # First use on this server, or it restarted: load once, then EVALSHA again.
            await self.redis.script_load(_LOOKUP_LUA)
            return await self.redis.evalsha(_LOOKUP_SHA, len(keys), *keys, *args)

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
        epoch_key = f"ck:{{{manifest.namespace}}}:epoch"
        keys = [space.gen_key, space.stats_key]
        age = "" if max_age is None else repr(float(max_age))
        for _attempt in range(3):
            known = self._epochs.get(manifest.namespace, 0)
            args = [f"ck:{space.tag}:", manifest.exact_digest, age, str(known)]
            results: tuple[Any, Any] = await asyncio.gather(
                self._counter(epoch_key), self._eval_lookup(keys, args), return_exceptions=True
            )
            raw_epoch, reply = results
            if isinstance(reply, BaseException):
                raise reply
            if isinstance(raw_epoch, BaseException):
                # The epoch lives on another shard. If that shard is down, keep serving
                # this tenant's shard with the epoch we last saw: an all-tenant
                # invalidate needs that shard too, so it cannot have happened meanwhile
                # (except in the moment before it failed, which is the accepted risk).
                if manifest.namespace in self._epochs:
                    return reply
                raise raw_epoch
            epoch = int(raw_epoch)
            if epoch == known:
                return reply
            self._epochs[manifest.namespace] = epoch
        raise CacheBackendError("the namespace epoch kept changing during the lookup")

    async def _counter(self, key: str) -> int:
        """A generation/epoch counter, created from the clock when missing (see the Lua)."""
        return int(await self.redis.eval(_COUNTER_ONLY_LUA, 1, key))

    async def prepare(self, manifest: KeyManifest) -> LookupOutcome:
        """Generation and epoch for a store without a lookup (``skip_lookup``)."""
        space = self.space(manifest)
        epoch, generation = await asyncio.gather(
            self._counter(f"ck:{{{manifest.namespace}}}:epoch"), self._counter(space.gen_key)
        )
        return LookupOutcome(generation=generation, epoch=epoch)

    async def embed(self, text: str) -> np.ndarray:
        """Embed one prompt through the coalescing batcher, within the embed budget."""
        assert self._batcher is not None
        async with asyncio.timeout(self.budgets.embed):
            return await self._batcher.embed_one(text)

    async def _semantic(
        self,
        manifest: KeyManifest,
        space: Space,
        outcome: LookupOutcome,
        threshold: float,
        max_age: float | None,
    ) -> None:
        assert manifest.prompt is not None
        index = await self._get_index()
        vector = await self.embed(manifest.prompt)
        outcome.vector = vector
        scope = space.scope(outcome.generation, manifest.scope_digest)
        async with asyncio.timeout(self.budgets.search):
            found = await index.search(scope, vector, self.candidates)
        above = [c for c in found if c.similarity >= threshold]
        if not above:
            if found:
                outcome.similarity = found[0].similarity
                if (
                    self.near_miss_sample > 0.0
                    and found[0].similarity >= threshold - self.near_miss_margin
                    and random.random() < self.near_miss_sample
                ):
                    await self._record_near_miss(manifest, space, found[0], threshold)
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for cand in above:
                pipe.hmget(
                    space.entry_key(cand.entry_id), ["v", "c", "p", "ne", "m", "ti", "to", "te"]
                )
                pipe.pttl(space.entry_key(cand.entry_id))
            rows = await pipe.execute()
        dangling: list[str] = []
        corrupt: list[str] = []
        now = time.time()
        for i, cand in enumerate(above):
            (payload, created, prompt, ne, *tokens), pttl = rows[2 * i], rows[2 * i + 1]
            if payload is None:
                dangling.append(cand.entry_id)
                continue
            try:
                entry_epoch, created_at = int(ne), float(created)
            except (TypeError, ValueError):
                # Written by something else: never serve it; drop entry and vector.
                corrupt.append(cand.entry_id)
                continue
            if entry_epoch != outcome.epoch:
                continue
            if max_age is not None and now - created_at > max_age:
                continue
            outcome.entry = Entry(cand.entry_id, bytes(payload), created_at, _text(prompt))
            outcome.layer = "semantic"
            outcome.similarity = cand.similarity
            await self._write_alias(manifest, space, outcome, int(pttl), tokens)
            break
        if corrupt:
            await self.redis.delete(*(space.entry_key(e) for e in corrupt))
        if dangling or corrupt:
            await index.remove(scope, dangling + corrupt)

    async def _record_near_miss(
        self, manifest: KeyManifest, space: Space, best: Candidate, threshold: float
    ) -> None:
        """Keep (prompt, nearest prompt, similarity) for ``cachekit tune``/``explain``."""
        nearest = await self.redis.hget(space.entry_key(best.entry_id), "p")
        await self.redis.xadd(
            space.near_miss_key,
            {
                "prompt": manifest.prompt or "",
                "nearest": _text(nearest) if nearest is not None else "",
                "similarity": repr(best.similarity),
                "threshold": repr(threshold),
                "model": manifest.model or "",
            },
            maxlen=NEAR_MISS_MAXLEN,
            approximate=True,
        )

    async def _write_alias(
        self,
        manifest: KeyManifest,
        space: Space,
        outcome: LookupOutcome,
        pttl: int,
        tokens: Sequence[Any] = (None, None, None, None),
    ) -> None:
        """After a semantic hit, make the same prompt an exact hit next time."""
        assert outcome.entry is not None
        entry_key = space.entry_key(outcome.entry.entry_id)
        xkey = space.exact_key(outcome.generation, manifest.exact_digest)
        async with self.redis.pipeline(transaction=True) as pipe:
            if pttl > 0:
                pipe.set(xkey, outcome.entry.entry_id, px=pttl)
            else:
                pipe.set(xkey, outcome.entry.entry_id)
            pipe.hincrby(entry_key, "h", 1)
            pipe.hincrby(space.stats_key, "semantic", 1)
            # Tokens this hit saved, like the exact lookup script (m, ti, to, te of the entry).
            model, tin, tout, estimated = tokens
            if model is not None:
                kind = "e" if estimated else "t"
                if tin is not None:
                    pipe.hincrby(space.stats_key, f"{kind}in:{_text(model)}", int(tin))
                if tout is not None:
                    pipe.hincrby(space.stats_key, f"{kind}out:{_text(model)}", int(tout))
            await pipe.execute()

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
    ) -> None:
        """Entry + exact key + vector in one MULTI on one hash slot.

        ``model`` prices ``usage`` when the request named none (default: the manifest's).
        """
        space = self.space(manifest)
        ttl = ttl if ttl is not None else self.default_ttl
        vector = outcome.vector
        index: VectorIndex | None = None
        if self._embedder is not None and manifest.has_prompt_text:
            index = await self._get_index()
            if vector is None:
                assert manifest.prompt is not None
                vector = await self.embed(manifest.prompt)
        entry_id = manifest.exact_digest
        entry_key = space.entry_key(entry_id)
        fields: dict[FieldT, EncodableT] = {
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
        xkey = space.exact_key(outcome.generation, manifest.exact_digest)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(entry_key)
            pipe.hset(entry_key, mapping=fields)
            if ttl is not None:
                pipe.expire(entry_key, ttl)
                pipe.set(xkey, entry_id, ex=ttl)
            else:
                pipe.set(xkey, entry_id)
            if index is not None and vector is not None:
                scope = space.scope(outcome.generation, manifest.scope_digest)
                index.add(pipe, scope, entry_id, vector, ttl)
            pipe.hincrby(space.stats_key, "miss", 1)
            pipe.hsetnx(space.stats_key, "since", repr(time.time()))
            await pipe.execute()

    async def count(self, manifest: KeyManifest, field: str) -> None:
        """Count an outcome that had no other write to ride on (bypass)."""
        await self.redis.hincrby(self.space(manifest).stats_key, field, 1)

    async def delete_entry(self, manifest: KeyManifest, entry_id: str) -> None:
        """Drop a corrupt entry so it is not served again."""
        await self.redis.delete(self.space(manifest).entry_key(entry_id))

    # -- management -------------------------------------------------------------------

    def _check_namespace(self, namespace: str) -> None:
        if not isinstance(namespace, str) or not NAMESPACE_RE.match(namespace):
            raise CacheConfigError(
                f"namespace must match {NAMESPACE_RE.pattern}, got {namespace!r}"
            )

    async def invalidate(self, namespace: str, tenant: str | None = None) -> int:
        """Make every worker miss the namespace's current entries at once (no SCAN).

        With ``tenant`` only that tenant's entries; with ``tenant=None`` every tenant's
        (the namespace epoch). Old entries are not deleted: they age out by TTL/LRU.
        Returns the new generation (or epoch).
        """
        self._check_namespace(namespace)
        return await self.run(self._invalidate, namespace, tenant)

    async def _invalidate(self, namespace: str, tenant: str | None) -> int:
        # Values computed here but not yet stored belong to the old generation too.
        if tenant is None:
            self.flights.forget(f"{{{namespace}:")
        else:
            self.flights.forget(Space(namespace, encode_tenant(tenant)).tag)
        try:
            key = (
                f"ck:{{{namespace}}}:epoch"
                if tenant is None
                else (Space(namespace, encode_tenant(tenant)).gen_key)
            )
            return int(await self.redis.eval(_BUMP_LUA, 1, key))
        except CACHE_ERRORS as exc:
            raise CacheBackendError(f"invalidate({namespace!r}) failed: {exc}") from exc

    async def clear(self, namespace: str, tenant: str | None = None) -> int:
        """Delete a namespace's keys (one tenant's, or every tenant's) with SCAN + UNLINK.

        Returns the number of keys deleted. Works on every primary of a cluster.
        """
        self._check_namespace(namespace)
        return await self.run(self._clear, namespace, tenant)

    async def _clear(self, namespace: str, tenant: str | None) -> int:
        if tenant is None:
            patterns: Sequence[str] = (f"ck:{{{namespace}:*", f"ckv:{{{namespace}:*")
        else:
            patterns = Space(namespace, encode_tenant(tenant)).patterns
        deleted = 0
        try:
            for pattern in patterns:
                batch: list[Any] = []
                async for key in self.redis.scan_iter(match=pattern, count=1000):
                    batch.append(key)
                    if len(batch) >= 500:
                        deleted += int(await self.redis.unlink(*batch))
                        batch = []
                if batch:
                    deleted += int(await self.redis.unlink(*batch))
        except CACHE_ERRORS as exc:
            raise CacheBackendError(f"clear({namespace!r}) failed: {exc}") from exc
        return deleted

    async def stats(
        self, namespace: str | None = None, tenant: str | None = None, **options: Any
    ) -> StatsReport:
        """Counters and savings of every worker (see :func:`cachekit.stats.stats`)."""
        from .stats import stats

        return await stats(self, namespace, tenant, **options)

    async def index_meta(self) -> dict[str, str]:
        """The global vector-index metadata (backend, dims, model), if any."""
        raw = await self.run(self._index_meta)
        return {_text(k): _text(v) for k, v in raw.items()}

    async def _index_meta(self) -> dict[Any, Any]:
        return cast(dict[Any, Any], await self.redis.hgetall(META_KEY))
