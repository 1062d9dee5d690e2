"""``WSGICacheMiddleware``: the same cache in front of a WSGI app (Flask, Django, ...).

An adapter over :class:`~cachekit._pipeline.Pipeline`: it reads the request
(:func:`._wsgi_io.read_request`), then moves bytes between the app, the client and the
pipeline. WSGI has no event loop: ``begin_sync`` crosses to the cache's home loop once
and each WSGI worker thread waits for its own request only.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Unpack

from .._pipeline import Pipeline
from .._reasons import Reason
from .._report import report_bypass
from .._ticket import Hit, Miss
from ._apis import api_for
from ._control import Refusal, not_cached
from ._options import Config, MiddlewareOptions
from ._record import Recorder
from ._wsgi_io import (
    Bypass,
    RecordingIterable,
    labelled,
    read_request,
    recording_start,
    refuse,
    serve,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["WSGICacheMiddleware"]

log = logging.getLogger("cachekit.middleware")


class WSGICacheMiddleware:
    """:class:`~cachekit.middleware.CacheMiddleware` for WSGI apps; same options.

    Differences: ``tenant`` and ``extractor`` receive the WSGI ``environ`` dict instead
    of a Starlette ``Request`` (``tenant`` must be sync here); the response is stored
    once the server has read the app's iterable to its end (every chunk was handed to
    the server; for a streamed response its final chunk marker waits for the store,
    bounded by the store budget, as with ASGI), whether or not the client closes it.
    """

    def __init__(self, app: WSGIApplication, **options: Unpack[MiddlewareOptions]) -> None:
        self.app = app
        self.options = Config(**options)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        opts, started = self.options, time.perf_counter()
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        if not opts.matches(environ.get("REQUEST_METHOD", "GET"), path):
            return self.app(environ, start_response)
        ticket = read_request(opts, environ, path, started)
        if isinstance(ticket, Refusal):  # a malformed cache control: the client's error
            report_bypass(opts.pipeline.options, opts.cache, Reason.BAD_CACHE_CONTROL, started)
            return refuse(start_response, ticket, None, "BYPASS")
        if isinstance(ticket, Bypass):
            log.debug("cachekit: bypass %s: %s", path, ticket.reason)
            report_bypass(opts.pipeline.options, opts.cache, ticket.reason, started)
            if ticket.only_if_cached:  # the cache cannot answer it and the app must not
                why = f"the request cannot be answered from the cache ({ticket.reason})"
                return refuse(start_response, not_cached(why), None, "BYPASS")
            return self.app(environ, labelled(start_response, None, "BYPASS", ticket.reason))
        got = opts.pipeline.begin_sync(ticket)
        if isinstance(got, Hit):
            return serve(start_response, ticket, got.value)
        if ticket.control.only_if_cached:  # never the app (RFC 9111 5.2.1.7)
            opts.pipeline.abort(got, Reason.ONLY_IF_CACHED if got.used_cache else None)
            refusal = not_cached() if got.used_cache else not_cached("the cache could not be read")
            return refuse(start_response, refusal, ticket, "MISS")
        if not got.used_cache:
            opts.pipeline.abort(got)
            return self.app(environ, labelled(start_response, ticket, "BYPASS"))
        recorder = Recorder(opts.max_response_bytes, api_for(path))
        if ticket.control.skip_store:
            recorder.reason = Reason.NO_STORE
        try:
            app_iter = self.app(environ, recording_start(start_response, recorder, ticket))
        except BaseException:
            opts.pipeline.abort(got, "app raised")
            raise
        return RecordingIterable(functools.partial(_settle, opts.pipeline, got), app_iter, recorder)


def _settle(pipeline: Pipeline, miss: Miss, recorder: Recorder) -> None:
    """Called once the server read the whole body (or closed it early)."""
    response = recorder.result() if recorder.recording else None
    if response is not None:
        pipeline.complete_sync(miss, response)  # waiting requests are served first
    else:
        pipeline.abort(miss, recorder.reason or "incomplete response")
