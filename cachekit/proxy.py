"""An OpenAI-compatible caching proxy: point any OpenAI client's ``base_url`` at it.

    cachekit proxy --upstream https://api.openai.com/v1 --port 8080
    client = OpenAI(base_url="http://localhost:8080/v1")

Every request is forwarded to the upstream with the caller's own credentials
(``Authorization``, ``OpenAI-Organization``, ``OpenAI-Project``, ``api-key``, ...); the
proxy holds no API key. ``POST /v1/chat/completions`` and ``/v1/completions`` (streamed
or not) go through :class:`~cachekit.middleware.CacheMiddleware`; everything else
(models, embeddings, files, ...) is passed through uncached. By default the tenant is a
SHA-256 digest of the caller's API key, so two keys never share an answer and a request
without a key is never cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ._defaults import resolve_redis_url
from .cache import CACHE_ERRORS, LLMCache
from .errors import CacheBackendError, CacheConfigError
from .middleware import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_PATHS,
    CacheMiddleware,
    api_key_tenant,
)
from .middleware._options import DEFAULT, Default, TenantFn
from .result import CacheResult

__all__ = ["UpstreamStreamError", "create_proxy_app", "run_proxy"]

log = logging.getLogger("cachekit.proxy")

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
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
# an upstream CDN's X-Cache/Age would be mistaken for ours.
_RESPONSE_DROP = frozenset(
    {
        "date",
        "server",
        "age",
        "x-cache",
        "x-cache-match",
        "x-cache-similarity",
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


class _Upstream:
    """The forwarding half: one httpx.AsyncClient per event loop, opened lazily."""

    def __init__(self, upstream: str, timeout: float) -> None:
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


class _EndBrokenStreams:
    """Outermost layer: a stream the upstream broke ends here, quietly.

    The exception has already passed through :class:`CacheMiddleware` (so nothing was
    stored) and was logged once in :func:`_relay`. Returning without the final body
    message makes the server close the client's connection, so the client sees the cut
    too, without a traceback per broken stream in the server log.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except* UpstreamStreamError:
            pass


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


async def _warm_up(cache: LLMCache) -> None:
    """Connect and load the embedding model before the first request, when possible.

    A cold model would blow the first requests' lookup budget (they would skip the
    cache). Failures are only logged: the proxy must start even when Redis is down.
    """
    try:
        # connect() also waits for the model (it loads in the background from the moment
        # the cache exists); a model that cannot load leaves the exact layer working.
        await cache.connect()
    except CACHE_ERRORS as exc:
        log.warning("cachekit proxy: cache not ready at start-up (requests fail open): %s", exc)
    except CacheBackendError as exc:
        log.warning("cachekit proxy: cache not ready at start-up (requests fail open): %s", exc)


def create_proxy_app(
    cache: LLMCache,
    upstream: str,
    *,
    namespace: str = "proxy",
    threshold: float | Default | None = DEFAULT,
    ttl: int | None = None,
    tenant: TenantFn | None = None,
    allow_global: bool = False,
    timeout: float = 600.0,
    paths: Sequence[str] = DEFAULT_PATHS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    on_result: Callable[[CacheResult], None] | None = None,
    close_cache: bool = False,
) -> Starlette:
    """The proxy as a Starlette app (serve it with any ASGI server).

    Args:
        cache: the :class:`~cachekit.LLMCache` (with an embedder for semantic hits).
        upstream: the API base URL, as an OpenAI SDK's ``base_url``
            (``https://api.openai.com/v1``); a URL without ``/v1`` gets the path as is.
        namespace: cache namespace of the proxy's entries.
        threshold: semantic threshold (cosine); omitted: the embedder's default;
            None: exact matches only.
        ttl: seconds an entry lives (None: the cache's ``default_ttl``).
        tenant: ``callable(Request) -> str | None``; default
            :func:`~cachekit.middleware.api_key_tenant` (digest of the caller's API key;
            no key: not cached).
        allow_global: share answers between callers whose tenant is None.
        timeout: seconds to wait for the upstream (read timeout per chunk for streams).
        paths: the cached endpoints.
        max_body_bytes: larger requests are forwarded uncached.
        on_result: called with each cached endpoint's :class:`~cachekit.CacheResult`.
        close_cache: close ``cache`` when the app shuts down (lifespan).
    """
    if not isinstance(cache, LLMCache):
        raise CacheConfigError(f"cache must be an LLMCache, got {type(cache).__name__}")
    forwarder = _Upstream(upstream, timeout)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await _warm_up(cache)
        try:
            yield
        finally:
            await forwarder.aclose()
            if close_cache:
                await cache.aclose()

    middleware = Middleware(
        CacheMiddleware,
        cache=cache,
        namespace=namespace,
        threshold=threshold,
        ttl=ttl,
        paths=paths,
        tenant=tenant if tenant is not None else api_key_tenant,
        allow_global=allow_global,
        max_body_bytes=max_body_bytes,
        on_result=on_result,
    )
    app = Starlette(
        routes=[Route("/{path:path}", forwarder.forward, methods=_METHODS)],
        middleware=[Middleware(_EndBrokenStreams), middleware],
        lifespan=lifespan,
    )
    # Build the middleware stack now: bad options fail here, not on the first request.
    app.middleware_stack = app.build_middleware_stack()
    app.state.upstream = str(forwarder.base)
    return app


def run_proxy(
    upstream: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    redis_url: str | None = None,
    namespace: str = "proxy",
    threshold: float | Default | None = DEFAULT,
    ttl: int | None = None,
    semantic: bool = False,
    embedder: Any = None,
    timeout: float = 600.0,
    allow_global: bool = False,
    log_level: str = "info",
) -> None:
    """Serve the caching proxy with uvicorn until interrupted.

    Args:
        upstream: the API base URL, e.g. ``https://api.openai.com/v1``.
        host, port: where to listen.
        redis_url: the Redis to cache in (default ``CACHEKIT_REDIS_URL``, then
            ``REDIS_URL``, then ``redis://localhost:6379/0``).
        namespace, threshold, ttl, timeout, allow_global: as for :func:`create_proxy_app`.
        semantic: enable the semantic layer with the bundled local embedder
            (``cachekit[local]``); ``embedder=`` takes any other Embedder instead.
        log_level: uvicorn's and cachekit's log level.
    """
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise CacheConfigError("the proxy needs uvicorn: pip install 'cachekit[proxy]'") from exc
    url = resolve_redis_url(redis_url)
    if embedder is None and semantic:
        from .embedders import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder()
    cache = LLMCache.from_url(url, embedder=embedder)
    app = create_proxy_app(
        cache,
        upstream,
        namespace=namespace,
        threshold=threshold,
        ttl=ttl,
        timeout=timeout,
        allow_global=allow_global,
        close_cache=True,
    )
    if not logging.getLogger().handlers:
        # run_proxy is a program entry point (the CLI): give cachekit's logs a home.
        logging.basicConfig(format="%(levelname)s:     %(name)s: %(message)s")
    logging.getLogger("cachekit").setLevel(log_level.upper())
    log.info("cachekit proxy: http://%s:%d/v1 -> %s (cache %r)", host, port, upstream, cache)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=False)
    finally:
        cache.close()
