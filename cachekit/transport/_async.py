"""``AsyncCacheTransport``: the cache as an ``httpx.AsyncBaseTransport``.

The async twin of :mod:`._sync`: the same steps from :mod:`._common`, with ``begin`` and
``complete`` awaited on the caller's loop (the pipeline crosses to the cache's home loop
itself when the caller's loop is another one).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Unpack

import httpx

from .._pipeline import Pipeline
from .._ticket import Hit, Miss, Ticket
from ..middleware._control import Refusal
from ..middleware._keyed import async_tenant
from ..middleware._options import MiddlewareOptions
from ..middleware._record import Recorder
from ._common import HTTPX, Prepared, Wire, hit_response, label, matches, not_in_cache, recorder_for
from ._options import transport_config

__all__ = ["AsyncCacheTransport", "AsyncCore", "AsyncRecordingStream"]

log = logging.getLogger("cachekit.transport")


class AsyncCore:
    """The transport's logic for one HTTP library (``wire``); see :class:`AsyncCacheTransport`."""

    wire: ClassVar[Wire]
    recording: ClassVar[type[Any]]

    def __init__(
        self,
        transport: Any = None,
        **options: Unpack[MiddlewareOptions],
    ) -> None:
        self.options = transport_config(options)
        self.transport = transport if transport is not None else self.wire.hx.AsyncHTTPTransport()

    async def handle_async_request(self, request: Any) -> Any:
        opts = self.options
        if not matches(opts, request):
            return await self.transport.handle_async_request(request)
        prepared = Prepared(request, self.wire)
        step: Ticket | Refusal | str | None = prepared.check(opts)
        if step is None:
            tenant, reason = await self._tenant(request)
            step = reason if reason is not None else prepared.ticket(opts, tenant)
        if isinstance(step, Refusal):
            return prepared.refuse(opts, step)
        if isinstance(step, str):
            made = prepared.bypass(opts, step)
            if made is not None:
                return made
            return label(
                await self.transport.handle_async_request(prepared.request), None, "BYPASS", step
            )
        ticket = step
        assert ticket is not None  # check() said go on, then ticket() answered
        begun = await opts.pipeline.begin(ticket)
        if isinstance(begun, Hit):
            return hit_response(self.wire, ticket, begun.value)
        if ticket.control.only_if_cached:
            return not_in_cache(self.wire, opts.pipeline, begun)
        try:
            response = await self.transport.handle_async_request(prepared.request)
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

    async def _tenant(self, request: Any) -> tuple[str | None, str | None]:
        return await async_tenant(self.options, request)

    async def aclose(self) -> None:
        await self.transport.aclose()


class AsyncRecordingStream:
    """The upstream body, decoded, recorded as the caller reads it; stored at its end
    (before the last chunk is handed on, so a caller that asks again gets a hit)."""

    def __init__(self, response: Any, recorder: Recorder, pipeline: Pipeline, miss: Miss) -> None:
        self._response = response
        self._recorder = recorder
        self._pipeline = pipeline
        self._miss: Miss | None = miss
        self._chunks: AsyncIterator[bytes] | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        # One upstream iterator however often this is iterated: the openai SDK stops at
        # ``[DONE]`` and then drains ``response.stream`` with a second ``async for``.
        if self._chunks is None:
            self._chunks = self._response.aiter_bytes()
        try:
            async for chunk in self._chunks:
                self._recorder.add(chunk)
                yield chunk
        except GeneratorExit:
            raise  # the reader stopped here; aclose() decides what that means
        except BaseException:
            # The openai SDK drains the rest of the body after ``[DONE]`` under a 0.1 s
            # cancel scope: cancelled (or failed) after the final event, the answer is whole.
            await self._settle(self._recorder.stream_finished(), "upstream stream failed")
            raise
        await self._settle(True)

    async def _settle(self, complete: bool, reason: str = "incomplete response") -> None:
        """Store the recorded answer when ``complete``, else abort: once, whatever raises."""
        miss, self._miss = self._miss, None
        if miss is None:
            return
        response = None
        if complete:
            self._recorder.complete = True
            response = self._recorder.result()
        else:
            self._recorder.reason = self._recorder.reason or reason
        try:
            if response is not None:
                await self._pipeline.complete(miss, response)
            else:
                self._pipeline.abort(miss, self._recorder.reason or reason)
        except Exception:  # the cache never raises into a call (e.g. a closed cache)
            log.warning("cachekit: could not settle a recorded response", exc_info=True)

    async def aclose(self) -> None:
        # Closed after the final event (the openai SDK stops at ``[DONE]``): complete,
        # even when closing the upstream fails or this task is cancelled meanwhile.
        finished = self._miss is not None and self._recorder.stream_finished()
        try:
            await self._response.aclose()
        finally:
            await self._settle(finished)

    def _abort(self) -> None:
        miss, self._miss = self._miss, None
        if miss is not None:
            try:
                self._pipeline.abort(miss, self._recorder.reason or "incomplete response")
            except Exception:  # a finaliser must not raise (e.g. a closed cache)
                log.debug("cachekit: could not release a dropped response", exc_info=True)

    def __del__(self) -> None:
        if self._miss is not None:
            self._recorder.reason = self._recorder.reason or "response dropped without close()"
            self._abort()


class _HttpxRecording(AsyncRecordingStream, httpx.AsyncByteStream):
    pass


class AsyncCacheTransport(AsyncCore, httpx.AsyncBaseTransport):
    """Cache LLM API calls made through an ``httpx.AsyncClient``::

        http = httpx.AsyncClient(transport=AsyncCacheTransport(cache=cache, namespace="chat"))
        client = AsyncOpenAI(http_client=http)

    Same options as :class:`~cachekit.transport.CacheTransport`; ``tenant`` may be async.
    """

    wire = HTTPX
    recording = _HttpxRecording
