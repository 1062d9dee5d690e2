"""``CacheMiddleware``: a pure ASGI middleware (one responder object per request).

No ``BaseHTTPMiddleware``: that buffers streams and breaks disconnect handling. The shape
follows ``starlette.middleware.gzip``: the middleware decides whether a request is
handled at all, and a fresh :class:`._asgi_responder.Responder` carries that one
request's state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from .._manifest import default_normalize
from ..cache import LLMCache
from ..result import CacheResult
from ._asgi_responder import Responder
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

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_RESPONSE_BYTES", "CacheMiddleware"]


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.options.matches(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        await Responder(self.app, self.options, receive)(scope, send)
