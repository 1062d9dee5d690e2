"""``CacheTransport``: the cache as an ``httpx.BaseTransport`` for sync clients.

An adapter over :class:`~cachekit._pipeline.Pipeline`: ``begin_sync`` crosses to the
cache's home loop once; a miss goes to the inner transport and its response is recorded
while the caller reads it, then handed to ``complete_sync`` (or ``abort``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, ClassVar, Unpack

import httpx

from .._pipeline import Pipeline
from .._ticket import Hit, Miss, Ticket
from ..middleware._control import Refusal
from ..middleware._keyed import sync_tenant
from ..middleware._options import MiddlewareOptions
from ..middleware._record import Recorder
from ._common import HTTPX, Prepared, Wire, hit_response, label, matches, not_in_cache, recorder_for
from ._options import transport_config

__all__ = ["CacheTransport", "RecordingStream", "SyncCore"]

log = logging.getLogger("cachekit.transport")


class SyncCore:
    """The transport's logic for one HTTP library (``wire``); see :class:`CacheTransport`."""

    wire: ClassVar[Wire]
    recording: ClassVar[type[Any]]

    def __init__(
        self,
        transport: Any = None,
        **options: Unpack[MiddlewareOptions],
    ) -> None:
        self.options = transport_config(options)
        self.transport = transport if transport is not None else self.wire.hx.HTTPTransport()

    def handle_request(self, request: Any) -> Any:
        opts = self.options
        if not matches(opts, request):
            return self.transport.handle_request(request)
        prepared = Prepared(request, self.wire)
        step: Ticket | Refusal | str | None = prepared.check(opts)
        if step is None:
            tenant, reason = self._tenant(request)
            step = reason if reason is not None else prepared.ticket(opts, tenant)
        if isinstance(step, Refusal):
            return prepared.refuse(opts, step)
        if isinstance(step, str):
            made = prepared.bypass(opts, step)
            if made is not None:
                return made
            return label(self.transport.handle_request(prepared.request), None, "BYPASS", step)
        ticket = step
        assert ticket is not None  # check() said go on, then ticket() answered
        begun = opts.pipeline.begin_sync(ticket)
        if isinstance(begun, Hit):
            return hit_response(self.wire, ticket, begun.value)
        if ticket.control.only_if_cached:
            return not_in_cache(self.wire, opts.pipeline, begun)
        try:
            response = self.transport.handle_request(prepared.request)
        except BaseException:
            opts.pipeline.abort(begun, "upstream raised")
            raise
        if not begun.used_cache:
            opts.pipeline.abort(begun)
            return label(response, ticket, "BYPASS")
        recorder, headers = recorder_for(
            self.wire, prepared.request, response, ticket, opts.max_response_bytes
        )
        if not recorder.recording:
            opts.pipeline.abort(begun, recorder.reason)
            return label(response, ticket, "MISS")
        stream = self.recording(response, recorder, opts.pipeline, begun)
        out = self.wire.hx.Response(
            response.status_code, headers=headers, stream=stream, extensions=response.extensions
        )
        return label(out, ticket, "MISS")

    def _tenant(self, request: Any) -> tuple[str | None, str | None]:
        return sync_tenant(self.options, request, "CacheTransport")

    def close(self) -> None:
        self.transport.close()


class RecordingStream:
    """The upstream body, decoded, recorded as the caller reads it; stored at its end.

    Only a body read to its end is complete: a caller that closes early, or an upstream
    that fails mid-stream, stores nothing, and the flight is released either way.
    """

    def __init__(self, response: Any, recorder: Recorder, pipeline: Pipeline, miss: Miss) -> None:
        self._response = response
        self._recorder = recorder
        self._pipeline = pipeline
        self._miss: Miss | None = miss
        self._chunks: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        # One upstream iterator however often this is iterated: the openai SDK stops at
        # ``[DONE]`` and then drains ``response.stream`` with a second loop.
        if self._chunks is None:
            self._chunks = self._response.iter_bytes()
        try:
            for chunk in self._chunks:
                self._recorder.add(chunk)
                yield chunk
        except GeneratorExit:
            raise  # the reader stopped here; close() decides what that means
        except BaseException:
            if self._recorder.stream_finished():
                self._recorder.complete = True  # failed after the final event: whole
            else:
                self._recorder.reason = self._recorder.reason or "upstream stream failed"
            self._settle()
            raise
        self._recorder.complete = True
        self._settle()

    def _settle(self) -> None:
        miss, self._miss = self._miss, None
        if miss is None:
            return
        response = self._recorder.result() if self._recorder.recording else None
        try:
            if response is not None:
                self._pipeline.complete_sync(miss, response)
            else:
                self._pipeline.abort(miss, self._recorder.reason or "incomplete response")
        except Exception:  # the cache never raises into a call (e.g. a closed cache)
            log.warning("cachekit: could not settle a recorded response", exc_info=True)

    def close(self) -> None:
        if self._miss is not None and self._recorder.stream_finished():
            self._recorder.complete = True  # closed after the final event: nothing is lost
        try:
            self._response.close()
        finally:
            self._settle()

    def __del__(self) -> None:
        # A response dropped unread and unclosed would hold its flight (identical calls
        # wait up to flight_wait) and its lock (other processes wait up to the lease).
        if self._miss is not None:
            self._recorder.reason = self._recorder.reason or "response dropped without close()"
            self._settle()


class _HttpxRecording(RecordingStream, httpx.SyncByteStream):
    pass


class CacheTransport(SyncCore, httpx.BaseTransport):
    """Cache LLM API calls made through a sync ``httpx.Client``::

        client = OpenAI(http_client=httpx.Client(transport=CacheTransport(cache=cache)))

    Options are the middleware's (:class:`~cachekit.middleware.CacheMiddleware`);
    ``tenant`` receives the ``httpx.Request`` and defaults to
    :func:`~cachekit.middleware.api_key_tenant` (a digest of the API key). ``transport``
    is the inner transport (default: a new ``httpx.HTTPTransport``), closed with this one.
    """

    wire = HTTPX
    recording = _HttpxRecording
