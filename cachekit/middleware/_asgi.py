"""``CacheMiddleware``: a pure ASGI middleware (one responder object per request).

No ``BaseHTTPMiddleware``: that buffers streams and breaks disconnect handling. The shape
follows ``starlette.middleware.gzip``: the middleware decides whether a request is
handled at all, and a fresh :class:`._asgi_responder.Responder` carries that one
request's state.
"""

from __future__ import annotations

from typing import Unpack

from starlette.types import ASGIApp, Receive, Scope, Send

from ._asgi_responder import Responder
from ._options import Config, MiddlewareOptions

__all__ = ["CacheMiddleware"]


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

    def __init__(self, app: ASGIApp, **options: Unpack[MiddlewareOptions]) -> None:
        self.app = app
        self.options = Config(**options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.options.matches(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        await Responder(self.app, self.options, receive)(scope, send)
