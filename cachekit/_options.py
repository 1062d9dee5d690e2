"""The options every entry point shares, validated once, and the one "not given" sentinel.

The decorator, the ASGI and WSGI middlewares and the proxy each take a cache, a
namespace, a threshold, a ttl, a tenant callback and an ``on_result`` hook. Their checks
and messages live here, so a bad option reads the same wherever it is passed, and
:class:`EntryOptions` carries them to :class:`~cachekit._pipeline.Pipeline`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._layout import NAMESPACE_RE
from ._sentinel import NOT_GIVEN, NotGiven
from .errors import CacheConfigError

if TYPE_CHECKING:
    from .cache import LLMCache
    from .result import CacheResult

__all__ = [
    "NOT_GIVEN",
    "EntryOptions",
    "NotGiven",
    "check_callable",
    "check_names",
    "check_namespace",
    "check_positive_int",
    "check_threshold",
    "check_ttl",
]


def check_namespace(namespace: object) -> str:
    if not isinstance(namespace, str) or not NAMESPACE_RE.match(namespace):
        raise CacheConfigError(
            "namespace must be 1-64 characters of A-Z a-z 0-9 _ . - (it is part of Redis "
            f"key names), got {namespace!r}"
        )
    return namespace


def check_threshold(threshold: object) -> float | NotGiven | None:
    if threshold is NOT_GIVEN or threshold is None:
        return threshold
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise CacheConfigError(f"threshold must be a number in [-1, 1], got {threshold!r}")
    if not -1.0 <= float(threshold) <= 1.0:
        raise CacheConfigError(
            f"threshold is a cosine similarity and must be in [-1, 1], got {threshold!r}"
        )
    return float(threshold)


def check_ttl(ttl: object) -> int | None:
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0):
        raise CacheConfigError(f"ttl must be a positive int (seconds) or None, got {ttl!r}")
    return ttl


def check_positive_int(name: str, value: object, what: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CacheConfigError(f"{name} must be a positive int{what}, got {value!r}")
    return value


def check_callable(name: str, value: object, shape: str) -> None:
    if value is not None and not callable(value):
        raise CacheConfigError(f"{name} must be a {shape}, got {value!r}")


def check_names(name: str, values: object, what: str) -> frozenset[str]:
    if (
        isinstance(values, str)
        or not isinstance(values, Iterable)
        or not all(isinstance(x, str) for x in values)
    ):
        raise CacheConfigError(f"{name} must be a collection of {what}, got {values!r}")
    return frozenset(values)


def check_cache(cache: object) -> None:
    from .cache import LLMCache

    if cache is not None and not isinstance(cache, LLMCache):
        raise CacheConfigError(f"cache must be an LLMCache, got {type(cache).__name__}")


@dataclass(slots=True)
class EntryOptions:
    """What one entry point (a decorated function, a middleware) asks of the pipeline.

    Built once, at decoration or construction time; construction checks the values
    and raises :class:`~cachekit.errors.CacheConfigError` naming the bad one.
    """

    namespace: str
    cache: LLMCache | None = None
    threshold: float | NotGiven | None = NOT_GIVEN
    ttl: int | None = None
    on_result: Callable[[CacheResult], None] | None = None
    #: Who answers when the cache does not: "the function", "the app" (log lines).
    goes_to: str = "the function"
    #: Wait for the store before the caller gets its answer (HTTP: a client that has the
    #: whole answer and asks again gets a hit). None: the cache's ``background_stores``.
    wait_for_store: bool | None = None
    #: Whether a miss joins identical calls in flight (in this process and, through the
    #: Redis lock, across processes) until ``complete``/``abort``. False for an entry point
    #: that cannot promise to settle every miss (LangChain never says when a model raised):
    #: a lookup then holds nothing while the answer is computed.
    single_flight: bool = True
    #: Largest entry stored (payload + prompt, UTF-8 bytes); None: no cap.
    max_entry_bytes: int | None = None
    #: Results not stored because they were over ``max_entry_bytes``.
    oversize: int = field(default=0)
    label: str = ""

    def __post_init__(self) -> None:
        check_namespace(self.namespace)
        check_cache(self.cache)
        self.threshold = check_threshold(self.threshold)
        check_ttl(self.ttl)
        check_callable("on_result", self.on_result, "callable(CacheResult)")
        if not isinstance(self.single_flight, bool):
            raise CacheConfigError(
                f"single_flight must be True or False, got {self.single_flight!r}"
            )

    def resolve_cache(self) -> LLMCache:
        if self.cache is not None:
            return self.cache
        from ._defaults import get_default_cache

        return get_default_cache()

    def effective_threshold(self, cache: LLMCache) -> float | None:
        if not isinstance(self.threshold, NotGiven):
            return self.threshold
        embedder = cache.embedder
        return embedder.default_threshold if embedder is not None else None


def blank_to_none(tenant: str | None) -> str | None:
    """An empty or blank tenant id is no tenant, not one tenant shared by every caller
    that sends an empty one."""
    return None if tenant is not None and not tenant.strip() else tenant
