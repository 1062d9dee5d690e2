"""One ASGI request handled by :class:`~cachekit.middleware.CacheMiddleware`.

Read and key the body (kept for the app), look it up, then serve the hit, follow an
identical request in flight, or call the app and record its response.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import time
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._flight import IN_FLIGHT, LeaderFailedError, observe
from .._xflight import OTHER_PROCESS, Claim, claim
from ..cache import CACHE_ERRORS, LLMCache
from ._record import CachedResponse, Recorder
from ._request import is_json_type, parse_cache_control
from ._state import RequestState, result_headers
from ._steps import Options

__all__ = ["Responder"]

log = logging.getLogger("cachekit.middleware")


def _with_headers(message: Message, extra: list[tuple[bytes, bytes]]) -> Message:
    return {**message, "headers": [*message.get("headers", ()), *extra]}


class Responder:
    """One handled request: read and key the body, look up, serve or record."""

    __slots__ = ("app", "buffered", "options", "receive")

    def __init__(self, app: ASGIApp, options: Options, receive: Receive) -> None:
        self.app = app
        self.options = options
        self.receive = receive
        self.buffered: list[Message] = []

    async def replay(self) -> Message:
        """The app's ``receive``: the messages we already read, then the live channel."""
        if self.buffered:
            return self.buffered.pop(0)
        return await self.receive()

    async def __call__(self, scope: Scope, send: Send) -> None:
        started = time.perf_counter()
        opts = self.options
        headers = Headers(scope=scope)
        content_type = headers.get("content-type")
        # Cheap refusals first, before a byte of the body is read.
        if content_type is not None and not is_json_type(content_type):
            return await self.bypass(scope, send, "content-type", started)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > opts.max_body_bytes):
            return await self.bypass(scope, send, "body too large", started)
        control = parse_cache_control(headers.get("cache-control"))
        if control.no_cache and control.no_store:
            return await self.bypass(scope, send, "cache-control", started)
        request = Request(scope)
        tenant, reason = await self.tenant(request)
        if reason is not None:
            return await self.bypass(scope, send, reason, started)
        raw, reason = await self.read_body()
        if reason is not None:
            return await self.bypass(scope, send, reason, started)
        query = scope.get("query_string", b"").decode("latin-1")
        manifest = opts.key(raw, request, tenant, scope["path"], query)
        if isinstance(manifest, str):
            return await self.bypass(scope, send, manifest, started)

        state = RequestState(manifest, control, started)
        cache = opts.cache
        key = opts.flight_key(cache, manifest)
        if opts.may_follow(cache, control):
            # An identical request of this process is at the app, or its store is still
            # on the way: its answer is served from memory, no lookup (nor a semantic
            # search that could find the leader's fresh entry and call it "semantic").
            local = cache.flights.peek(key)
            if local is not None and await self.follow(send, state, local):
                return
        breaker = cache.breaker_for(manifest)
        try:
            if not breaker.allow():
                state.failed = "circuit open: the cache is skipped after repeated failures"
            else:
                # asyncio.timeout, not wait_for: no extra task per request on the hot path.
                async with asyncio.timeout(opts.lookup_budget(cache, state)):
                    await cache.run(opts.before, cache, state)
                breaker.success()
        except CACHE_ERRORS as exc:
            breaker.failure()
            opts.failure(cache, state, "lookup", exc, opts.lookup_budget(cache, state))
        except Exception as exc:
            log.exception("cachekit: unexpected error in the cache lookup; bypassing")
            state.failed = f"lookup failed: {type(exc).__name__}: {exc}"
        if state.failed is not None or state.outcome is None:
            # Without a lookup there is no generation to store under: the app answers.
            await self.app(scope, self.replay, self.labelled(send, state, "BYPASS"))
            opts.finish(state, "error", overhead=time.perf_counter() - started)
            return
        cached = state.cached
        if cached is not None:
            await self.serve(send, state, cached)
            opts.finish(state, state.outcome.layer)  # type: ignore[arg-type]
            return
        if not opts.may_lead(cache, state):
            await self.miss(scope, send, state)
            return
        # Single-flight: identical requests arriving while one is at the app wait for its
        # response (streams: for the whole stream) instead of calling the LLM again; in
        # this process on the leader's future, across processes on its Redis lock.
        leader, flight = cache.flights.join(key)
        if not leader:
            if not await self.follow(send, state, flight):
                await self.miss(scope, send, state)  # the leader failed: ask the app
            return
        state.flight, state.flight_key = flight, key
        try:
            claimed = await self.claim(cache, state)
            if claimed.found is not None:
                # Another process's answer landed meanwhile: it serves this request and
                # this process's followers (the lookup that found it counted the hit).
                cache.flights.resolve(flight, claimed.found)
                await self.serve(send, state, claimed.found)
                opts.finish(state, "exact", reason=OTHER_PROCESS)
                return
            state.lock = claimed.lock
            await self.miss(scope, send, state, flight)
        finally:
            state.settle_flight(cache)

    # -- steps ----------------------------------------------------------------------------

    async def follow(
        self, send: Send, state: RequestState, flight: concurrent.futures.Future[Any]
    ) -> bool:
        """Wait for an identical request's response and serve it; False if it failed."""
        cache = self.options.cache
        try:
            async with asyncio.timeout(cache.budgets.flight_wait):
                shared = await observe(flight)
        except (LeaderFailedError, TimeoutError):
            return False
        # Served from memory: counted like a Redis hit, so shared stats stay true.
        cache.background(cache.count, state.manifest, "exact")
        await self.serve(send, state, shared)
        self.options.finish(state, "exact", reason=IN_FLIGHT)
        return True

    async def claim(self, cache: LLMCache, state: RequestState) -> Claim[CachedResponse]:
        """The cross-process lock of this key, or another process's stored answer."""
        opts = self.options
        assert state.outcome is not None
        poll = functools.partial(opts.poll, cache, state)
        try:
            return await cache.run(claim, cache, state.manifest, state.outcome.generation, poll)
        except CACHE_ERRORS as exc:
            opts.flight_failure(cache, exc)
            return Claim()

    async def tenant(self, request: Request) -> tuple[str | None, str | None]:
        fn = self.options.tenant
        if fn is None:
            return None, None  # allow_global was checked at construction
        try:
            value = fn(request)
            if inspect.isawaitable(value):
                value = await value
        except Exception:
            log.exception("cachekit: the tenant callback raised; bypassing the cache")
            return None, "tenant failed"
        return self.options.check_tenant(value)

    async def read_body(self) -> tuple[bytes, str | None]:
        """Read the whole body (kept for the app) or stop at the size cap."""
        chunks: list[bytes] = []
        size = 0
        limit = self.options.max_body_bytes
        while True:
            message = await self.receive()
            self.buffered.append(message)
            if message["type"] != "http.request":
                return b"", "client disconnected"
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                # The app still gets every byte: what we read is replayed, the rest
                # streams straight from the client.
                return b"", "body too large"
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None

    def labelled(self, send: Send, state: RequestState | None, label: str) -> Send:
        async def send_labelled(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = _with_headers(message, result_headers(state, label))
            await send(message)

        return send_labelled

    async def bypass(self, scope: Scope, send: Send, reason: str, started: float) -> None:
        log.debug("cachekit: bypass %s %s: %s", scope["method"], scope["path"], reason)
        self.options.finish(None, "bypass", reason=reason, overhead=time.perf_counter() - started)
        await self.app(scope, self.replay, self.labelled(send, None, "BYPASS"))

    async def serve(self, send: Send, state: RequestState, cached: CachedResponse) -> None:
        body = cached.body_bytes()
        headers = cached.headers(len(body)) + result_headers(state, "HIT")
        await send({"type": "http.response.start", "status": cached.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def miss(
        self,
        scope: Scope,
        send: Send,
        state: RequestState,
        flight: concurrent.futures.Future[Any] | None = None,
    ) -> None:
        opts = self.options
        cache = opts.cache
        recorder = Recorder(opts.max_response_bytes)
        if state.control.no_store:
            recorder.reason = "no-store requested"
        spent = time.perf_counter() - state.started
        store_time = 0.0

        async def send_recording(message: Message) -> None:
            nonlocal store_time
            kind = message["type"]
            if kind == "http.response.start":
                # ASGI allows any iterable of headers: read it once, forward that copy.
                headers = list(message.get("headers", ()))
                if not state.control.no_store:
                    recorder.start(
                        int(message["status"]),
                        [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers],
                    )
                extra = result_headers(state, "MISS")
                await send({**message, "headers": headers + extra})
                return
            if kind != "http.response.body":
                # Trailers, pathsend, ...: nothing we can replay faithfully.
                recorder.reason = recorder.reason or f"unsupported message {kind}"
                await send(message)
                return
            recorder.add(message.get("body", b""))
            if message.get("more_body", False) or not recorder.recording:
                await send(message)  # forwarded as it comes: no added latency per chunk
                return
            recorder.complete = True
            response = recorder.result()
            if response is not None:
                if flight is not None:
                    # Waiting requests replay it now, from memory: they never pay for
                    # the store, nor for a store that fails or times out.
                    cache.flights.resolve(flight, response)
                # Store before the last message goes out (one round trip, misses only,
                # bounded by the store budget): a client that has the whole answer and
                # asks again gets a hit, never a race with our own write.
                begin = time.perf_counter()
                await self.store(cache, state, response)
                store_time += time.perf_counter() - begin
                recorder.reason = "stored"  # a second final message must not store twice
            await send(message)

        try:
            await self.app(scope, self.replay, send_recording)
        except BaseException:
            opts.finish(state, "miss", reason="app raised", overhead=spent + store_time)
            raise
        reason = None if state.stored else recorder.reason
        opts.finish(
            state, "error" if state.failed else "miss", reason=reason, overhead=spent + store_time
        )

    async def store(self, cache: LLMCache, state: RequestState, response: CachedResponse) -> None:
        opts = self.options
        try:
            async with asyncio.timeout(opts.store_budget(cache, state)):
                await cache.run(opts.after, cache, state, response)
        except CACHE_ERRORS as exc:
            opts.failure(cache, state, "store", exc, opts.store_budget(cache, state))
        except Exception as exc:
            log.exception("cachekit: unexpected error storing a response")
            state.failed = f"store failed: {type(exc).__name__}: {exc}"
