"""The proxy's forwarding half: relay a request to the upstream API and its answer back.

One ``httpx.AsyncClient`` per event loop, opened lazily; the caller's credentials pass
through; hop-by-hop headers are dropped both ways; an event stream is relayed chunk by
chunk, and a stream the upstream breaks raises :class:`UpstreamStreamError` so nothing
incomplete is stored. Part of :mod:`cachekit.proxy`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from .errors import CacheConfigError

__all__ = ["METHODS", "Upstream", "UpstreamStreamError"]

log = logging.getLogger("cachekit.proxy")

#: The HTTP methods relayed.
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
# Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection, never forwarded. Host and
# Content-Length are recomputed by httpx; Accept-Encoding is left to httpx, which decodes
# the upstream body so the cache sees (and stores) plain JSON.
_REQUEST_DROP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
    }
)
# The body we send is decoded and re-framed by the server: its length and encoding change.
# Date and Server are the responding server's own (uvicorn adds them; no duplicates), and
# an upstream CDN's X-Cache/Age would be mistaken for ours. Its Cache-Status is kept: RFC
# 9211 lists every cache of the chain, ours is appended after it.
_RESPONSE_DROP = frozenset(
    {
        "date",
        "server",
        "age",
        "x-cache",
        "x-cache-match",
        "x-cache-similarity",
        "x-cache-key",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-encoding",
    }
)


class UpstreamStreamError(Exception):
    """The upstream broke a streamed response; raised so the server drops the client too.

    ASGI has no other way to tell a client that a stream was cut short, and a stream
    that ends "normally" would be stored and replayed incomplete.
    """


def _error(status: int, message: str, kind: str) -> JSONResponse:
    # OpenAI's error shape, so SDKs raise their usual APIStatusError subclasses.
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=status)


class Upstream:
    """The forwarding half: one httpx.AsyncClient per event loop, opened lazily."""

    def __init__(self, upstream: str, timeout: float, *, offline: bool = False) -> None:
        try:
            base = httpx.URL(upstream)
        except (httpx.InvalidURL, TypeError) as exc:
            raise CacheConfigError(f"upstream is not a valid URL: {upstream!r}") from exc
        if base.scheme not in ("http", "https") or not base.host:
            raise CacheConfigError(
                f"upstream must be an http(s) URL such as https://api.openai.com/v1, "
                f"got {upstream!r}"
            )
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise CacheConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.base = base
        #: Offline replay: nothing is forwarded (cached endpoints answer from the cache).
        self.offline = offline
        self._base_path = base.path.rstrip("/")
        self.timeout = httpx.Timeout(float(timeout), connect=min(float(timeout), 10.0))
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def target(self, path: str, query: bytes) -> httpx.URL:
        """``/v1/x`` -> ``<upstream>/x`` when the upstream is a base URL ending in /v1
        (what OpenAI SDKs call ``base_url``); otherwise the path is appended as is."""
        if self._base_path.endswith("/v1") and (path == "/v1" or path.startswith("/v1/")):
            path = path[3:]
        return self.base.copy_with(path=self._base_path + path, query=query or None)

    def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client.is_closed or self._loop is not loop:
            # A client's connections belong to the loop that opened them (tests and
            # embedders may run the app on more than one loop over its life).
            self._client = httpx.AsyncClient(
                timeout=self.timeout,
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
                follow_redirects=False,
            )
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()

    async def forward(self, request: Request) -> Response:
        if self.offline:
            return _error(
                504,
                f"only-if-cached: the proxy is in offline replay mode; {request.method} "
                f"{request.url.path} was not forwarded",
                "cache_miss",
            )
        body = await request.body()
        headers = [
            (k, v)
            for k, v in request.headers.raw
            if k.decode("latin-1").lower() not in _REQUEST_DROP
        ]
        url = self.target(request.url.path, request.scope.get("query_string", b""))
        client = self.client()
        upstream_request = client.build_request(request.method, url, headers=headers, content=body)
        try:
            reply = await client.send(upstream_request, stream=True)
        except httpx.TimeoutException as exc:
            log.warning("cachekit proxy: upstream timed out: %s %s: %r", request.method, url, exc)
            return _error(504, f"upstream timed out: {exc!r}", "upstream_timeout")
        except httpx.HTTPError as exc:
            log.warning("cachekit proxy: upstream unreachable: %s %s: %r", request.method, url, exc)
            return _error(502, f"upstream unreachable: {exc!r}", "upstream_error")
        raw_headers = [
            (k, v)
            for k, v in reply.headers.raw
            if k.decode("latin-1").lower() not in _RESPONSE_DROP
        ]
        content_type = reply.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() == "text/event-stream":
            response: Response = _RelayResponse(reply, url)
            response.raw_headers.extend(raw_headers)
            return response
        try:
            content = await reply.aread()
        except httpx.HTTPError as exc:
            log.warning("cachekit proxy: upstream failed mid-response: %s: %r", url, exc)
            return _error(502, f"upstream failed mid-response: {exc!r}", "upstream_error")
        finally:
            await reply.aclose()
        response = Response(content, status_code=reply.status_code)
        response.raw_headers.extend(raw_headers)
        return response


class _RelayResponse(StreamingResponse):
    """A streamed upstream response; the upstream connection is released however it ends
    (complete, upstream broke, or the client hung up mid-stream)."""

    def __init__(self, reply: httpx.Response, url: httpx.URL) -> None:
        super().__init__(_relay(reply, url), status_code=reply.status_code)
        self._reply = reply

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._reply.aclose()


async def _relay(reply: httpx.Response, url: httpx.URL) -> AsyncIterator[bytes]:
    """Forward a stream chunk by chunk (no buffering: the first byte is not delayed)."""
    try:
        async for chunk in reply.aiter_bytes():
            yield chunk
    except httpx.HTTPError as exc:
        log.warning("cachekit proxy: upstream stream broke: %s: %r", url, exc)
        raise UpstreamStreamError(f"upstream stream broke: {exc!r}") from exc
    finally:
        await reply.aclose()
