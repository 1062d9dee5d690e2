"""``WSGICacheMiddleware``: the same cache in front of a WSGI app (Flask, Django, ...).

WSGI has no event loop: the lookup and the store are submitted to the cache's home loop
with :meth:`LLMCache.run_sync` (the cache's one background loop thread and one pool when
no async code owns it), and each WSGI worker thread waits for its own request only.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from .._manifest import default_normalize
from .._pipeline import Pipeline
from .._report import report_bypass
from .._ticket import Hit, Miss, Ticket
from ..cache import LLMCache
from ..result import CacheResult
from ._options import (
    DEFAULT,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_METHODS,
    DEFAULT_PATHS,
    Config,
    Default,
    Extractor,
    TenantFn,
)
from ._record import CachedResponse, Recorder
from ._request import is_json_type, parse_cache_control
from ._state import RESPONSES, result_headers
from ._wsgi_io import (
    RecordingIterable,
    call_tenant,
    labelled,
    read_body,
    recording_start,
    str_headers,
)

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
        self.options = Config(
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
        if control.skip_lookup and control.skip_store:
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

        pipeline = opts.pipeline
        got = pipeline.begin_sync(Ticket(manifest, RESPONSES, control, started))
        if isinstance(got, Hit):
            return self._serve(start_response, got.ticket, got.value)
        if not got.used_cache:
            pipeline.abort(got)
            return self.app(environ, labelled(start_response, got.ticket, "BYPASS"))
        return self._miss(environ, start_response, got)

    def _serve(
        self, start_response: StartResponse, ticket: Ticket, cached: CachedResponse
    ) -> Iterable[bytes]:
        data = cached.body_bytes()
        headers = str_headers(cached.headers(len(data)) + result_headers(ticket, "HIT"))
        start_response(f"{cached.status} {_REASONS.get(cached.status, 'Cached')}", headers)
        return [data]

    def _bypass(
        self, environ: WSGIEnvironment, start_response: StartResponse, reason: str, started: float
    ) -> Iterable[bytes]:
        log.debug("cachekit: bypass %s: %s", environ.get("PATH_INFO"), reason)
        report_bypass(self.options.pipeline.options, self.options.cache, reason, started)
        return self.app(environ, labelled(start_response, None, "BYPASS"))

    def _miss(
        self, environ: WSGIEnvironment, start_response: StartResponse, miss: Miss
    ) -> Iterable[bytes]:
        pipeline, ticket = self.options.pipeline, miss.ticket
        recorder = Recorder(self.options.max_response_bytes)
        if ticket.control.skip_store:
            recorder.reason = "no-store requested"
        try:
            app_iter = self.app(environ, recording_start(start_response, recorder, ticket))
        except BaseException:
            pipeline.abort(miss, "app raised")
            raise
        return RecordingIterable(functools.partial(_settle, pipeline, miss), app_iter, recorder)


def _settle(pipeline: Pipeline, miss: Miss, recorder: Recorder) -> None:
    """Called once the server read the whole body (or closed it early)."""
    response = recorder.result() if recorder.recording else None
    if response is not None:
        pipeline.complete_sync(miss, response)  # waiting requests are served first
    else:
        pipeline.abort(miss, recorder.reason or "incomplete response")
