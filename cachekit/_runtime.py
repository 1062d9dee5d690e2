"""The home event loop of a cache: its Redis client, the work run on it, the crossing.

One ``redis.asyncio`` client (one pool), bound to one *home* event loop:

* the first running loop that uses the cache (your async app), or
* when a sync caller comes first, a long-lived background loop thread the cache owns.

Async callers on the home loop talk to Redis directly. Sync callers (sync decorated
functions, WSGI) submit to the home loop and wait, from any thread. Async callers on a
different loop hop to the home loop. If the home loop closes (``asyncio.run`` ended), the
next caller rebinds: a new client on its loop; connections never cross loops.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ._cache_config import CacheConfig
from ._clients import close_client, prepare_cluster
from ._loop import LoopThread
from ._policy import CACHE_ERRORS, Counts
from .errors import CacheConfigError

__all__ = ["Done", "Job", "Runtime", "WouldBlockError"]

log = logging.getLogger("cachekit")
T = TypeVar("T")
#: Work for the home loop: ``fn(*args)`` makes the coroutine to run there.
Job = Callable[..., Coroutine[Any, Any, T]]
#: Called when background work ended, with its exception (None on success).
Done = Callable[[BaseException | None], None]
#: The cluster-gate slot of the running task: None outside the gate, else [holding it?]
#: (``idle`` lets go of it while a poller sleeps; ``gated`` releases only what it holds).
_IN_GATE: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
    "cachekit_in_gate", default=None
)


class WouldBlockError(RuntimeError):
    """A sync cache call was made on the thread running the cache's home event loop."""


class Runtime:
    """Binds a client factory to a home loop; runs and queues coroutines there."""

    def __init__(self, factory: Callable[[], Any], config: CacheConfig, counts: Counts) -> None:
        self._factory = factory
        self._cluster = config.cluster
        self._cluster_connections = config.cluster_connections
        #: Called on every (re)bind, before the first use of the new client.
        self.on_bind: Callable[[], None] = lambda: None
        self.max_pending = config.max_pending_stores
        self._lock = threading.Lock()
        self._home: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._gate: asyncio.Semaphore | None = None
        self._cluster_ready: asyncio.Future[None] | None = None
        self._thread = LoopThread()
        self._closed = False
        self._pending: set[asyncio.Task[Any]] = set()
        self._counts = counts
        #: Background work queued and not finished yet.
        self.pending = 0

    def client(self) -> Any:
        """The client of the home loop (only valid inside a coroutine run on it)."""
        if self._client is None:
            raise CacheConfigError("the cache is not bound to an event loop yet")
        return self._client

    def on_home_thread(self) -> bool:
        """True on the thread running the home loop (a sync wait there would deadlock)."""
        try:
            return asyncio.get_running_loop() is self._home
        except RuntimeError:
            return False

    # -- binding ----------------------------------------------------------------------

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make ``loop`` the home loop with a fresh client (call with ``_lock`` held)."""
        if self._closed:
            raise CacheConfigError("this LLMCache is closed")
        if self._home is not None:
            log.debug("cachekit: home event loop closed; opening a new pool on the new loop")
        self._client = self._factory()
        # redis-py's async cluster client has no blocking pool: a node whose connections
        # are all busy raises MaxConnectionsError at once. Operations wait here instead
        # (within the caller's budget); each uses at most two connections of a node.
        self._gate = (
            asyncio.Semaphore(max(1, self._cluster_connections // 2)) if self._cluster else None
        )
        self._cluster_ready = None
        self.on_bind()
        self._home = loop

    def _alive(self) -> bool:
        home = self._home
        return home is not None and not home.is_closed() and home.is_running()

    def _home_for_sync(self) -> asyncio.AbstractEventLoop:
        """The home loop, binding the background loop thread if there is none (locked)."""
        if not self._alive():
            if self._closed:  # before ``_thread.loop``, which would start a new thread
                raise CacheConfigError("this LLMCache is closed")
            self._bind(self._thread.loop)
        assert self._home is not None
        return self._home

    # -- running ----------------------------------------------------------------------

    async def run(self, fn: Job[T], *args: Any) -> T:
        """Run ``fn(*args)`` on the home loop from an async caller."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._alive() and self._home is not loop:
                self._bind(loop)
            home = self._home
        if self._gate is not None:
            args = (fn, *args)
            fn = self.gated
        if home is loop:
            return await fn(*args)
        assert home is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(fn(*args), home))

    def run_sync(self, fn: Job[T], *args: Any, timeout: float) -> T:
        """Run ``fn(*args)`` on the home loop from sync code and wait up to ``timeout``.

        Raises :class:`WouldBlockError` on the home loop's own thread: blocking there
        would deadlock, so the caller skips the cache instead.
        """
        return self.wait(self.submit(fn, *args), timeout)

    @staticmethod
    def wait(cfut: concurrent.futures.Future[T], timeout: float) -> T:
        """The result of submitted work; on timeout the work is cancelled."""
        try:
            return cfut.result(timeout)
        except concurrent.futures.TimeoutError:
            cfut.cancel()
            raise

    def submit(self, fn: Job[T], *args: Any) -> concurrent.futures.Future[T]:
        """Start ``fn(*args)`` on the home loop from sync code; the caller waits.

        Raises :class:`WouldBlockError` on the home loop's own thread.
        """
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        with self._lock:
            home = self._home_for_sync()
        if running is home:
            raise WouldBlockError("a sync cached call ran on the thread of the cache's event loop")
        if self._gate is not None:
            args = (fn, *args)
            fn = self.gated
        return asyncio.run_coroutine_threadsafe(fn(*args), home)

    async def gated(self, fn: Job[T], *args: Any) -> T:
        """Run ``fn`` holding a slot of the cluster gate (re-entrant within one task)."""
        gate = self._gate
        if gate is None or _IN_GATE.get() is not None:
            return await fn(*args)
        ready = self._cluster_ready
        if ready is None or (ready.done() and (ready.cancelled() or ready.exception() is not None)):
            ready = self._cluster_ready = asyncio.ensure_future(prepare_cluster(self.client()))
        if not ready.done():
            await asyncio.shield(ready)
        await gate.acquire()
        holding = [True]
        token = _IN_GATE.set(holding)
        try:
            return await fn(*args)
        finally:
            _IN_GATE.reset(token)
            if holding[0]:
                gate.release()

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

    # -- background work ----------------------------------------------------------------

    def background(
        self, fn: Job[Any], *args: Any, done: Done | None = None, essential: bool = False
    ) -> bool:
        """Run ``fn(*args)`` on the home loop without waiting (stores after a miss).

        Callable from any thread. The queue is bounded: when ``max_pending`` are already
        waiting the work is dropped and counted (``dropped_stores``), never queued without
        limit; ``drain`` waits for what is queued. Returns False when dropped (``done``
        is then not called). ``essential`` work (freeing a lock: one short command) is
        never dropped.
        """
        with self._lock:
            if self.pending >= self.max_pending and not essential:
                self._counts.dropped_stores += 1
                return False
            home = self._home_for_sync()
            self.pending += 1

        def finished(task: asyncio.Task[Any]) -> None:
            self._pending.discard(task)
            with self._lock:
                self.pending -= 1
            exc = None if task.cancelled() else task.exception()
            if task.cancelled():
                exc = asyncio.CancelledError()
            if done is not None:
                done(exc)

        def start() -> None:
            task = asyncio.ensure_future(self.gated(fn, *args))
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
        """Wait until the background work queued so far has finished (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    def drain_sync(self, timeout: float = 10.0) -> None:
        """Sync twin of :meth:`drain`."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.005)

    # -- closing ----------------------------------------------------------------------

    def _detach(self) -> tuple[asyncio.AbstractEventLoop | None, Any]:
        with self._lock:
            home, client = self._home, self._client
            self._closed = True
            self._home = self._client = None
        return home, client

    async def aclose(self) -> None:
        """Close the client (on its loop) and the background loop thread. Idempotent."""
        home, client = self._detach()
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
        self._thread.stop()

    def close(self) -> None:
        """Sync twin of :meth:`aclose`."""
        home, client = self._detach()
        if client is not None and home is not None and home.is_running():
            try:
                asyncio.run_coroutine_threadsafe(close_client(client), home).result(2.0)
            except (RuntimeError, *CACHE_ERRORS) as exc:  # type: ignore[misc]
                log.debug("error while closing the pool: %s", exc)
        self._thread.stop()
