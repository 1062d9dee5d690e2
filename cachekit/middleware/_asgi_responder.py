"""One ASGI request handled by :class:`~cachekit.middleware.CacheMiddleware`.

Read and key the body (kept for the app), look it up, then serve the hit, follow an
identical request in flight, or call the app and record its response.
"""

from __future__ import annotations

import logging
import time

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._reasons import Reason
from .._report import report_bypass
from .._ticket import Hit, Miss, Ticket
from ..result import NO_CONTROL
from ._apis import api_for
from ._control import TTL_HEADER, Refusal, drop_cache_field, not_cached
from ._keyed import async_tenant
from ._options import Config
from ._record import CachedResponse, Recorder
from ._request import is_json_type
from ._state import RESPONSES, refusal_headers, result_headers

__all__ = ["Responder"]

log = logging.getLogger("cachekit.middleware")


def _with_headers(message: Message, extra: list[tuple[bytes, bytes]]) -> Message:
    return {**message, "headers": [*message.get("headers", ()), *extra]}


class Responder:
    """One handled request: read and key the body, look up, serve or record."""

    __slots__ = ("app", "buffered", "control", "options", "receive")

    def __init__(self, app: ASGIApp, options: Config, receive: Receive) -> None:
        self.app = app
        self.options = options
        self.receive = receive
        self.buffered: list[Message] = []
        self.control = NO_CONTROL

    async def replay(self) -> Message:
        """The app's ``receive``: the messages we already read, then the live channel."""
        if self.buffered:
            return self.buffered.pop(0)
        return await self.receive()

    async def __call__(self, scope: Scope, send: Send) -> None:
        started = time.perf_counter()
        opts = self.options
        headers = Headers(scope=scope)
        control = opts.control(headers.get("cache-control"), headers.get(TTL_HEADER))
        if isinstance(control, Refusal):
            return await self.refuse(send, control, started)
        self.control = control
        content_type = headers.get("content-type")
        # Cheap refusals first, before a byte of the body is read.
        if content_type is not None and not is_json_type(content_type):
            return await self.bypass(scope, send, Reason.CONTENT_TYPE, started)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > opts.max_body_bytes):
            return await self.bypass(scope, send, Reason.BODY_TOO_LARGE, started)
        if control.skip_lookup and control.skip_store:
            scope = await self.without_cache_field(scope)
            return await self.bypass(scope, send, Reason.CACHE_CONTROL, started)
        request = Request(scope)
        tenant, reason = await self.tenant(request)
        if reason is not None:
            scope = await self.without_cache_field(scope)
            return await self.bypass(scope, send, reason, started)
        raw, reason = await self.read_body()
        if reason is not None:
            return await self.bypass(scope, send, reason, started)
        query = scope.get("query_string", b"").decode("latin-1")
        keyed = opts.keyed(raw, request, tenant, scope["path"], query, control)
        if isinstance(keyed, Refusal):
            return await self.refuse(send, keyed, started)
        if keyed.body is not None:
            scope = self.replace_body(scope, keyed.body)
        control = self.control = keyed.control
        if isinstance(keyed.key, str):
            return await self.bypass(scope, send, keyed.key, started)
        if control.skip_lookup and control.skip_store:
            return await self.bypass(scope, send, Reason.CACHE_CONTROL, started)

        ticket = Ticket(keyed.key, RESPONSES, control, started)
        if control.only_if_cached and control.skip_lookup:
            return await self.bypass(scope, send, Reason.CACHE_CONTROL, started, ticket)
        got = await opts.pipeline.begin(ticket)
        if isinstance(got, Hit):
            await self.serve(send, ticket, got.value)
        elif control.only_if_cached:
            # Never the app: the answer is the cache's or none (RFC 9111 5.2.1.7).
            if got.used_cache:
                opts.pipeline.abort(got, Reason.ONLY_IF_CACHED)
                refusal = not_cached()
            else:  # the failure is what the result reports
                opts.pipeline.abort(got)
                refusal = not_cached("the cache could not be read")
            await self.send_refusal(send, refusal, ticket, "MISS")
        elif not got.used_cache:
            # Without a lookup there is no generation to store under: the app answers.
            try:
                await self.app(scope, self.replay, self.labelled(send, ticket, "BYPASS"))
            finally:
                opts.pipeline.abort(got)  # published even when the app raises
        else:
            await self.miss(scope, send, got)

    # -- steps ----------------------------------------------------------------------------

    async def tenant(self, request: Request) -> tuple[str | None, str | None]:
        return await async_tenant(self.options, request)

    async def read_body(self) -> tuple[bytes, str | None]:
        """Read the whole body (kept for the app) or stop at the size cap."""
        chunks: list[bytes] = []
        size = 0
        limit = self.options.max_body_bytes
        while True:
            message = await self.receive()
            self.buffered.append(message)
            if message["type"] != "http.request":
                return b"", Reason.CLIENT_DISCONNECTED
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                # The app still gets every byte: what we read is replayed, the rest
                # streams straight from the client.
                return b"", Reason.BODY_TOO_LARGE
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None

    async def without_cache_field(self, scope: Scope) -> Scope:
        """Before a bypass decided ahead of the body: the app still must not get the
        body's cache field (see ``drop_cache_field``). A body over the cap, or a client
        gone, is forwarded as it is (what was read is replayed)."""
        if self.options.cache_field is None:
            return scope
        raw, reason = await self.read_body()
        if reason is not None:
            return scope
        body = drop_cache_field(raw, self.options.cache_field)
        return scope if body is None else self.replace_body(scope, body)

    def replace_body(self, scope: Scope, body: bytes) -> Scope:
        """The app gets ``body`` (the client's without the cache field), framed anew."""
        self.buffered = [{"type": "http.request", "body": body, "more_body": False}]
        headers = [
            (name, value)
            for name, value in scope.get("headers", ())
            if name.lower() not in (b"content-length", b"transfer-encoding")
        ]
        headers.append((b"content-length", str(len(body)).encode()))
        return {**scope, "headers": headers}

    def labelled(
        self, send: Send, ticket: Ticket | None, label: str, reason: str | None = None
    ) -> Send:
        async def send_labelled(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = result_headers(ticket, label, int(message["status"]), reason)
                message = _with_headers(message, extra)
            await send(message)

        return send_labelled

    async def bypass(
        self, scope: Scope, send: Send, reason: str, started: float, ticket: Ticket | None = None
    ) -> None:
        log.debug("cachekit: bypass %s %s: %s", scope["method"], scope["path"], reason)
        opts = self.options
        report_bypass(opts.pipeline.options, opts.cache, reason, started, ticket)
        if self.control.only_if_cached:
            # The cache cannot answer it, and the app must not: 504, nothing forwarded.
            why = f"the request cannot be answered from the cache ({reason})"
            return await self.send_refusal(send, not_cached(why), ticket, "BYPASS")
        await self.app(scope, self.replay, self.labelled(send, ticket, "BYPASS", reason))

    async def refuse(self, send: Send, refusal: Refusal, started: float) -> None:
        """A malformed cache control: the client's error, answered without the app."""
        opts = self.options
        report_bypass(opts.pipeline.options, opts.cache, Reason.BAD_CACHE_CONTROL, started)
        await self.send_refusal(send, refusal, None, "BYPASS")

    async def send_refusal(
        self, send: Send, refusal: Refusal, ticket: Ticket | None, label: str
    ) -> None:
        body = refusal.body()
        headers = refusal.headers(len(body)) + refusal_headers(ticket, label)
        await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def serve(self, send: Send, ticket: Ticket, cached: CachedResponse) -> None:
        body = cached.body_bytes()
        headers = cached.headers(len(body)) + result_headers(ticket, "HIT", cached.status)
        await send({"type": "http.response.start", "status": cached.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def miss(self, scope: Scope, send: Send, miss: Miss) -> None:
        pipeline, ticket = self.options.pipeline, miss.ticket
        recorder = Recorder(self.options.max_response_bytes, api_for(scope["path"]))
        if ticket.control.skip_store:
            recorder.reason = Reason.NO_STORE
        done = False

        async def send_recording(message: Message) -> None:
            nonlocal done
            kind = message["type"]
            if kind == "http.response.start":
                # ASGI allows any iterable of headers: read it once, forward that copy.
                headers = list(message.get("headers", ()))
                if not ticket.control.skip_store:
                    recorder.start(
                        int(message["status"]),
                        [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers],
                    )
                extra = result_headers(ticket, "MISS", int(message["status"]))
                await send({**message, "headers": headers + extra})
                return
            if kind != "http.response.body":
                # Trailers, pathsend, ...: nothing we can replay faithfully.
                recorder.reason = recorder.reason or f"unsupported message {kind}"
                await send(message)
                return
            recorder.add(message.get("body", b""))
            if message.get("more_body", False) or not recorder.recording or done:
                await send(message)  # forwarded as it comes: no added latency per chunk
                return
            recorder.complete = True
            response = recorder.result()
            if response is not None:
                # Stored before the last message goes out (misses only, bounded by the
                # store budget): a client that has the whole answer and asks again gets
                # a hit. Waiting requests are served first, from memory.
                done = True
                await pipeline.complete(miss, response, publish=False)
            await send(message)

        try:
            await self.app(scope, self.replay, send_recording)
        except BaseException:
            if done:  # stored; only the last send failed (the client went away)
                pipeline.report(miss)
            else:
                pipeline.abort(miss, "app raised")
            raise
        if done:
            pipeline.report(miss)  # here: last_result() is this request's context's
        else:
            pipeline.abort(miss, recorder.reason or "incomplete response")
