"""An OpenAI-compatible caching proxy: point any OpenAI client's ``base_url`` at it.

    cachekit proxy --upstream https://api.openai.com/v1 --port 8080
    client = OpenAI(base_url="http://localhost:8080/v1")
    claude = Anthropic(base_url="http://localhost:8080")  # with --upstream https://api.anthropic.com

Every request is forwarded to the upstream with the caller's own credentials
(``Authorization``, ``OpenAI-Organization``, ``OpenAI-Project``, ``api-key``,
``x-api-key``, ...); the proxy holds no API key. ``POST /v1/chat/completions``,
``/v1/completions``, ``/v1/responses`` (OpenAI Responses), ``/v1/messages`` (Anthropic
Messages) and ``/v1/embeddings`` (exact matches only), streamed or not, go through
:class:`~cachekit.middleware.CacheMiddleware` (what each API's requests and responses
mean: :mod:`cachekit.middleware._apis`); everything else (models, files, ...) is passed
through uncached. By default the tenant is a
SHA-256 digest of the caller's API key, so two keys never share an answer and a request
without a key is never cached.

The proxy answers ``GET /healthz`` (Redis reachable: 200, else 503 naming the problem)
and ``GET /metrics`` (Prometheus) itself. ``only_if_cached=True`` is an offline replay:
every request is answered from the cache or with a 504, and nothing reaches the upstream.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ._defaults import resolve_redis_url
from ._proxy_ops import health_route, metrics_route, proxy_registry
from ._proxy_upstream import METHODS, Upstream, UpstreamStreamError
from .cache import CACHE_ERRORS, LLMCache
from .errors import CacheBackendError, CacheConfigError
from .middleware import DEFAULT_MAX_BODY_BYTES, DEFAULT_PATHS, CacheMiddleware, api_key_tenant
from .middleware._options import DEFAULT, Default, TenantFn
from .result import CacheResult

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["UpstreamStreamError", "create_proxy_app", "run_proxy"]

log = logging.getLogger("cachekit.proxy")

#: What a cache that cannot start yet raises (the proxy starts anyway, failing open).
_NOT_READY: tuple[type[BaseException], ...] = (*CACHE_ERRORS, CacheBackendError)


class _EndBrokenStreams:
    """Outermost layer: a stream the upstream broke ends here, quietly.

    The exception has already passed through :class:`CacheMiddleware` (so nothing was
    stored) and was logged once where it broke (``_proxy_upstream``). Returning without
    the final body message makes the server close the client's connection, so the client
    sees the cut too, without a traceback per broken stream in the server log.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except* UpstreamStreamError:
            pass


async def _warm_up(cache: LLMCache) -> None:
    """Connect and load the embedding model before the first request, when possible.

    A cold model would blow the first requests' lookup budget (they would skip the
    cache). Failures are only logged: the proxy must start even when Redis is down.
    """
    try:
        # connect() also waits for the model (it loads in the background from the moment
        # the cache exists); a model that cannot load leaves the exact layer working.
        await cache.connect()
    except _NOT_READY as exc:
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
    only_if_cached: bool = False,
    registry: CollectorRegistry | None = None,
    history: str = "exact",
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
        history: ``"similar"`` lets earlier turns differ in wording (see ``cached_llm``).
        only_if_cached: offline replay: answer every request from the cache alone, a
            miss (or any other path) with a 504; the upstream is never called.
        registry: the ``prometheus_client`` registry ``/metrics`` serves (default: one
            of this app's own, with the process collectors).
    """
    if not isinstance(cache, LLMCache):
        raise CacheConfigError(f"cache must be an LLMCache, got {type(cache).__name__}")
    forwarder = Upstream(upstream, timeout, offline=only_if_cached)
    if registry is None:
        registry = proxy_registry(cache)
    else:
        from .metrics import instrument

        instrument(cache, registry)

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
        only_if_cached=only_if_cached,
        history=history,
    )
    routes = [
        # The proxy's own, before the catch-all: never forwarded, never cached.
        health_route(cache, offline=only_if_cached),
        metrics_route(registry),
        Route("/{path:path}", forwarder.forward, methods=METHODS),
    ]
    app = Starlette(
        routes=routes,
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
    only_if_cached: bool = False,
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
        only_if_cached: the offline replay mode of :func:`create_proxy_app`.
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
        only_if_cached=only_if_cached,
    )
    if not logging.getLogger().handlers:
        # run_proxy is a program entry point (the CLI): give cachekit's logs a home.
        logging.basicConfig(format="%(levelname)s:     %(name)s: %(message)s")
    logging.getLogger("cachekit").setLevel(log_level.upper())
    target = "offline (only-if-cached)" if only_if_cached else upstream
    log.info("cachekit proxy: http://%s:%d/v1 -> %s (cache %r)", host, port, target, cache)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=False)
    finally:
        cache.close()
