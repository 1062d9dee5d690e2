"""cachekit: exact and semantic caching of LLM calls in Redis."""

from __future__ import annotations

from ._codec import register_type
from ._defaults import get_default_cache, resolve_redis_url, set_default_cache
from ._index import register_index
from ._manifest import KeyManifest, default_normalize
from .cache import Budgets, LLMCache
from .decorator import BoundCall, cached_llm
from .embedders import register_embedder
from .errors import (
    CacheBackendError,
    CacheConfigError,
    CacheKeyError,
    CacheKitError,
    CodecError,
    EmbedderError,
    IndexMismatchError,
)
from .result import CacheControl, CacheResult, cache_control, last_result, use_tenant
from .stats import Pricing, StatsReport, StatsRow, track_outcomes

__version__ = "0.1.0"

__all__ = [
    "BoundCall",
    "Budgets",
    "CacheBackendError",
    "CacheConfigError",
    "CacheControl",
    "CacheKeyError",
    "CacheKitError",
    "CacheResult",
    "CodecError",
    "EmbedderError",
    "IndexMismatchError",
    "KeyManifest",
    "LLMCache",
    "Pricing",
    "StatsReport",
    "StatsRow",
    "__version__",
    "cache_control",
    "cached_llm",
    "default_normalize",
    "get_default_cache",
    "last_result",
    "register_embedder",
    "register_index",
    "register_type",
    "resolve_redis_url",
    "set_default_cache",
    "track_outcomes",
    "use_tenant",
]
