"""The process-wide default cache used by ``@cached_llm`` without ``cache=``, and the one
rule every entry point uses to find its Redis."""

from __future__ import annotations

import os
import threading
from typing import Final

from .cache import LLMCache

__all__ = [
    "DEFAULT_REDIS_URL",
    "configured_redis_url",
    "get_default_cache",
    "resolve_redis_url",
    "set_default_cache",
]

#: The Redis used when nothing names one.
DEFAULT_REDIS_URL: Final = "redis://localhost:6379/0"
#: Environment variables naming the Redis, strongest first. The cachekit-specific one
#: wins, so an app whose platform sets REDIS_URL for something else can still point
#: cachekit elsewhere; the library, the CLI, the proxy and the demo must all agree, or
#: ``cachekit stats`` reads another Redis than ``@cached_llm`` writes.
REDIS_URL_ENV: Final = ("CACHEKIT_REDIS_URL", "REDIS_URL")

_default: LLMCache | None = None
_lock = threading.Lock()


def configured_redis_url() -> str | None:
    """The Redis URL the environment names (``CACHEKIT_REDIS_URL``, then ``REDIS_URL``).

    None when neither is set (an empty value counts as unset).
    """
    for name in REDIS_URL_ENV:
        value = os.environ.get(name)
        if value:
            return value
    return None


def resolve_redis_url(explicit: str | None = None) -> str:
    """The Redis to use: ``explicit`` > ``CACHEKIT_REDIS_URL`` > ``REDIS_URL`` > localhost."""
    return explicit or configured_redis_url() or DEFAULT_REDIS_URL


def set_default_cache(cache: LLMCache | None) -> None:
    """Use ``cache`` for decorated functions that were given no ``cache=``."""
    global _default
    with _lock:
        _default = cache


def get_default_cache() -> LLMCache:
    """The default cache; created on first use from :func:`resolve_redis_url`."""
    global _default
    with _lock:
        if _default is None:
            _default = LLMCache.from_url(resolve_redis_url())
        return _default
