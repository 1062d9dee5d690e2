"""``CacheMiddleware``: a pure ASGI middleware (one responder object per request).

No ``BaseHTTPMiddleware``: that buffers streams and breaks disconnect handling. The shape
follows ``starlette.middleware.gzip``: the middleware decides whether a request is
handled at all, and a fresh ``_Responder`` carries that one request's state.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._flight import IN_FLIGHT, LeaderFailedError, observe
from .._manifest import default_normalize
from .._xflight import OTHER_PROCESS, Claim, claim
from ..cache import CACHE_ERRORS, LLMCache
from ..result import CacheResult
from ._extract import (
    DEFAULT,
    DEFAULT_METHODS,
    DEFAULT_PATHS,
    Default,
    Extractor,
    Options,
    RequestState,
    TenantFn,
    is_json_type,
    parse_cache_control,
    result_headers,
)
from ._record import CachedResponse, Recorder

__all__ = ["CacheMiddleware"]

log = logging.getLogger("cachekit.middleware")

#: Request bodies larger than this are passed through untouched (BYPASS).
DEFAULT_MAX_BODY_BYTES = 1 << 20
#: Responses larger than this are forwarded but not stored.
DEFAULT_MAX_RESPONSE_BYTES = 8 << 20


class CacheMiddleware:
    """Serve repeated (and, with an embedder, paraphrased) LLM requests from Redis.

    For a POST to one of ``paths`` with a JSON object body: build the key from the body,
    look it up, answer a hit without calling the app; on a miss call the app (the body
    replayed intact), forward its response unchanged, and store it when it is a complete
    200 JSON or ``text/event-stream`` answer. Every handled response carries
    ``X-Cache: HIT|MISS|BYPASS`` (plus ``X-Cache-Match``, ``X-Cache-Similarity``, ``Age``).

    Args:
        app: the ASGI app to wrap.
        cache: the :class:`~cachekit.LLMCache` (default: :func:`cachekit.get_default_cache`).
        namespace: groups entries for stats, ``invalidate`` and ``clear``.
        threshold: cosine similarity for semantic hits; omitted: the embedder's calibrated
            default; ``None``: exact matches only.
        ttl: seconds an entry lives (None: the cache's ``default_ttl``).
        paths: exact paths, or prefixes ending in ``*`` or ``/``.
        methods: HTTP methods handled (default POST).
        tenant: ``callable(Request) -> str | None`` (may be async). Entries are never
            shared between tenants. When it returns None the request bypasses the cache,
            unless ``allow_global``. Use :func:`cachekit.middleware.api_key_tenant` to key
            on the caller's API key.
        allow_global: let requests without a tenant share the global tenant. Required
            (explicitly) when no ``tenant`` is given.
        extractor: ``callable(body: dict, request) -> dict`` of key arguments (None:
            bypass); default :func:`~cachekit.middleware.default_extractor`.
        max_body_bytes: larger request bodies are passed through untouched.
        max_response_bytes: larger responses are forwarded but not stored.
        ignore: body fields left out of the key.
        normalize: prompt normalisation for the exact key (None: byte-exact).
        on_result: called with each handled request's :class:`~cachekit.CacheResult`.

    Request ``Cache-Control``: ``no-cache`` skips the lookup (and refreshes the entry),
    ``no-store`` skips the store, ``max-age=N`` serves only entries younger than N s.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        cache: LLMCache | None = None,
        namespace: str = "http",
        threshold: float | Default | None = DEFAULT,
        ttl: int | None = None,
        paths: Sequence[str] = DEFAULT_PATHS,
        methods: Sequence[str] = DEFAULT_METHODS,
        tenant: TenantFn | None = None,
        allow_global: bool = False,
        extractor: Extractor | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        ignore: Iterable[str] = (),
        normalize: Callable[[str], str] | None = default_normalize,
        on_result: Callable[[CacheResult], None] | None = None,
    ) -> None:
        self.app = app
        self.options = Options(
            cache=cache,
            namespace=namespace,
            threshold=threshold,
            ttl=ttl,
            paths=paths,
            methods=methods,
            tenant=tenant,
            allow_global=allow_global,
            extractor=extractor,
            max_body_bytes=max_body_bytes,
            max_response_bytes=max_response_bytes,
            ignore=ignore,
            normalize=normalize,
            on_result=on_result,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.options.matches(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        await _Responder(self.app, self.options, receive)(scope, send)


def _with_headers(message: Message, extra: list[tuple[bytes, bytes]]) -> Message:
    return {**message, "headers": [*message.get("headers", ()), *extra]}


class _Responder:
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
