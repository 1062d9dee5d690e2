"""``WSGICacheMiddleware``: the same cache in front of a WSGI app (Flask, Django, ...).

WSGI has no event loop: the lookup and the store are submitted to the cache's home loop
with :meth:`LLMCache.run_sync` (the cache's one background loop thread and one pool when
no async code owns it), and each WSGI worker thread waits for its own request only.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._flight import IN_FLIGHT, LeaderFailedError
from .._manifest import default_normalize
from .._xflight import OTHER_PROCESS, Claim, claim
from ..cache import CACHE_ERRORS, LLMCache, WouldBlockError
from ..result import CacheResult
from ._options import (
    DEFAULT,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_METHODS,
    DEFAULT_PATHS,
    Default,
    Extractor,
    TenantFn,
)
from ._record import CachedResponse, Recorder
from ._request import is_json_type, parse_cache_control
from ._state import RequestState, result_headers
from ._steps import Options
from ._wsgi_io import RecordingIterable, call_tenant, labelled, may_block, read_body, str_headers

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["WSGICacheMiddleware"]

log = logging.getLogger("cachekit.middleware")

_REASONS = {200: "OK"}


class WSGICacheMiddleware:
    """:class:`~cachekit.middleware.CacheMiddleware` for WSGI apps; same options.

    Differences: ``tenant`` and ``extractor`` receive the WSGI ``environ`` dict instead
    of a Starlette ``Request`` (``tenant`` must be sync here); the response is stored
    once the server has read the app's iterable to its end (every chunk was handed to
    the server; for a streamed response its final chunk marker waits for the store,
    bounded by the store budget, as with ASGI), whether or not the client closes it.
    """

    def __init__(
        self,
        app: WSGIApplication,
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

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        if not self.options.matches(environ.get("REQUEST_METHOD", "GET"), path):
            return self.app(environ, start_response)
        return self._handle(environ, start_response, path)

    # -- one handled request ----------------------------------------------------------

    def _handle(
        self, environ: WSGIEnvironment, start_response: StartResponse, path: str
    ) -> Iterable[bytes]:
        started = time.perf_counter()
        opts = self.options
        content_type = environ.get("CONTENT_TYPE") or None
        if content_type is not None and not is_json_type(content_type):
            return self._bypass(environ, start_response, "content-type", started)
        control = parse_cache_control(environ.get("HTTP_CACHE_CONTROL"))
        if control.no_cache and control.no_store:
            return self._bypass(environ, start_response, "cache-control", started)
        tenant, reason = call_tenant(self.options, environ)
        if reason is not None:
            return self._bypass(environ, start_response, reason, started)
        raw, reason = read_body(environ, opts.max_body_bytes)
        if reason is not None:
            return self._bypass(environ, start_response, reason, started)
        manifest = opts.key(raw, environ, tenant, path, environ.get("QUERY_STRING", ""))
        if isinstance(manifest, str):
            return self._bypass(environ, start_response, manifest, started)

        state = RequestState(manifest, control, started)
        cache = opts.cache
        key = opts.flight_key(cache, manifest)
        may_wait = may_block()
        if may_wait and opts.may_follow(cache, control):
            # An identical request of this process is at the app (or its store is on the
            # way): serve its answer from memory, without a lookup.
            local = cache.flights.peek(key)
            if local is not None:
                served = self._follow(start_response, state, local)
                if served is not None:
                    return served
        breaker = cache.breaker_for(manifest)
        try:
            if not breaker.allow():
                state.failed = "circuit open: the cache is skipped after repeated failures"
            else:
                cache.run_sync(opts.before, cache, state, timeout=opts.lookup_budget(cache, state))
                breaker.success()
        except WouldBlockError as exc:
            cache.warn("blocking", "cachekit: %s; skipping the cache for this request", exc)
            return self._bypass(environ, start_response, "would block the event loop", started)
        except CACHE_ERRORS as exc:
            breaker.failure()
            opts.failure(cache, state, "lookup", exc, opts.lookup_budget(cache, state))
        except Exception as exc:
            log.exception("cachekit: unexpected error in the cache lookup; bypassing")
            state.failed = f"lookup failed: {type(exc).__name__}: {exc}"
        if state.failed is not None or state.outcome is None:
            opts.finish(state, "error", overhead=time.perf_counter() - started)
            return self.app(environ, labelled(start_response, state, "BYPASS"))
        cached = state.cached
        if cached is not None:
            opts.finish(state, state.outcome.layer)  # type: ignore[arg-type]
            return self._serve(start_response, state, cached)
        if not may_wait or not opts.may_lead(cache, state):
            return self._miss(environ, start_response, state)
        # Single-flight: identical requests arriving while one is at the app wait for its
        # response instead of calling the LLM again; in this process on the leader's
        # future (any thread may wait on it), across processes on its Redis lock.
        leader, flight = cache.flights.join(key)
        if not leader:
            served = self._follow(start_response, state, flight)
            return served if served is not None else self._miss(environ, start_response, state)
        state.flight, state.flight_key = flight, key
        try:
            claimed = self._claim(cache, state)
        except BaseException:
            state.settle_flight(cache)
            raise
        if claimed.found is not None:
            # Another process's answer landed meanwhile (the lookup counted the hit).
            cache.flights.resolve(flight, claimed.found)
            state.settle_flight(cache)
            opts.finish(state, "exact", reason=OTHER_PROCESS)
            return self._serve(start_response, state, claimed.found)
        state.lock = claimed.lock
        # The flight and the lock are settled with the response (_store), or here when
        # the app raises before returning one.
        return self._miss(environ, start_response, state)

    def _serve(
        self, start_response: StartResponse, state: RequestState, cached: CachedResponse
    ) -> Iterable[bytes]:
        data = cached.body_bytes()
        headers = str_headers(cached.headers(len(data)) + result_headers(state, "HIT"))
        start_response(f"{cached.status} {_REASONS.get(cached.status, 'Cached')}", headers)
        return [data]

    def _follow(
        self,
        start_response: StartResponse,
        state: RequestState,
        flight: concurrent.futures.Future[Any],
    ) -> Iterable[bytes] | None:
        """Wait for an identical request's response and serve it; None if it failed."""
        cache = self.options.cache
        try:
            shared = flight.result(timeout=cache.budgets.flight_wait)
        except (LeaderFailedError, concurrent.futures.TimeoutError):
            return None
        # Served from memory: counted like a Redis hit, so shared stats stay true.
        cache.background(cache.count, state.manifest, "exact")
        self.options.finish(state, "exact", reason=IN_FLIGHT)
        return self._serve(start_response, state, shared)

    def _claim(self, cache: LLMCache, state: RequestState) -> Claim[CachedResponse]:
        """The cross-process lock of this key, or another process's stored answer."""
        opts = self.options
        assert state.outcome is not None
        poll = functools.partial(opts.poll, cache, state)
        b = cache.budgets
        # claim() bounds every step and the whole wait itself; this is the backstop.
        timeout = b.flight_wait + b.command + b.lookup + 1.0
        try:
            return cache.run_sync(
                claim, cache, state.manifest, state.outcome.generation, poll, timeout=timeout
            )
        except CACHE_ERRORS as exc:
            opts.flight_failure(cache, exc)
            return Claim()

    def _bypass(
        self, environ: WSGIEnvironment, start_response: StartResponse, reason: str, started: float
    ) -> Iterable[bytes]:
        log.debug("cachekit: bypass %s: %s", environ.get("PATH_INFO"), reason)
        self.options.finish(None, "bypass", reason=reason, overhead=time.perf_counter() - started)
        return self.app(environ, labelled(start_response, None, "BYPASS"))

    def _miss(
        self, environ: WSGIEnvironment, start_response: StartResponse, state: RequestState
    ) -> Iterable[bytes]:
        recorder = Recorder(self.options.max_response_bytes)
        if state.control.no_store:
            recorder.reason = "no-store requested"
        extra = str_headers(result_headers(state, "MISS"))

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if exc_info is not None:
                recorder.reason = "app error"
            elif not state.control.no_store:
                try:
                    code = int(status.split(" ", 1)[0])
                except ValueError:
                    code = 0
                recorder.start(code, headers)
            write = start_response(status, [*headers, *extra], exc_info)

            def write_unrecorded(data: bytes) -> object:
                # The legacy write() path bypasses the iterable: we cannot see it all.
                recorder.reason = recorder.reason or "write() used"
                return write(data)

            return write_unrecorded

        spent = time.perf_counter() - state.started
        try:
            app_iter = self.app(environ, start)
        except BaseException:
            state.settle_flight(self.options.cache)
            self.options.finish(state, "miss", reason="app raised", overhead=spent)
            raise
        return RecordingIterable(self._store, app_iter, recorder, state, spent)

    def _store(self, state: RequestState, recorder: Recorder, spent: float) -> None:
        """Called once the server read the whole body (or closed it early)."""
        opts = self.options
        begin = time.perf_counter()
        response = recorder.result() if recorder.recording else None
        cache = opts.cache
        if response is not None and state.flight is not None:
            # Waiting requests are served now, from memory: they never pay for the
            # store, nor for a store that fails or times out.
            cache.flights.resolve(state.flight, response)
        try:
            self._store_response(state, response)
        finally:
            # After the store landed (or failed): other processes polling for it find
            # it before they could take the lock and call the app again.
            state.settle_flight(cache)
        overhead = spent + time.perf_counter() - begin
        reason = None if state.stored else recorder.reason
        opts.finish(state, "error" if state.failed else "miss", reason=reason, overhead=overhead)

    def _store_response(self, state: RequestState, response: CachedResponse | None) -> None:
        opts = self.options
        if response is not None:
            cache = opts.cache
            try:
                cache.run_sync(
                    opts.after, cache, state, response, timeout=opts.store_budget(cache, state)
                )
            except CACHE_ERRORS as exc:
                opts.failure(cache, state, "store", exc, opts.store_budget(cache, state))
            except Exception as exc:
                log.exception("cachekit: unexpected error storing a response")
                state.failed = f"store failed: {type(exc).__name__}: {exc}"
