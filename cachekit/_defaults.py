"""The process-wide default cache used by ``@cached_llm`` without ``cache=``."""

from __future__ import annotations

import os
import threading

from .cache import LLMCache

__all__ = ["get_default_cache", "set_default_cache"]

_default: LLMCache | None = None
_lock = threading.Lock()


def set_default_cache(cache: LLMCache | None) -> None:
    """Use ``cache`` for decorated functions that were given no ``cache=``."""
    global _default
    with _lock:
        _default = cache


def get_default_cache() -> LLMCache:
    """The default cache; created on first use from ``CACHEKIT_REDIS_URL``/``REDIS_URL``."""
    global _default
    with _lock:
        if _default is None:
            url = os.environ.get("CACHEKIT_REDIS_URL") or os.environ.get(
                "REDIS_URL", "redis://localhost:6379/0"
            )
            _default = LLMCache.from_url(url)
        return _default
