"""HTTP middlewares: cache LLM API requests in front of an ASGI or WSGI app.

    from cachekit.middleware import CacheMiddleware, api_key_tenant

    app.add_middleware(CacheMiddleware, cache=cache, tenant=api_key_tenant)

See :class:`CacheMiddleware` for the options and the ``X-Cache`` headers; the WSGI twin
:class:`WSGICacheMiddleware` takes the same options.
"""

from __future__ import annotations

from ._asgi import CacheMiddleware
from ._options import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_METHODS,
    DEFAULT_PATHS,
)
from ._record import CachedResponse
from ._request import (
    EXTRACT_IGNORE,
    api_key_tenant,
    default_extractor,
    parse_cache_control,
)
from ._wsgi import WSGICacheMiddleware

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_METHODS",
    "DEFAULT_PATHS",
    "EXTRACT_IGNORE",
    "CacheMiddleware",
    "CachedResponse",
    "WSGICacheMiddleware",
    "api_key_tenant",
    "default_extractor",
    "parse_cache_control",
]
