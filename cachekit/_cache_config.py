"""The options of one :class:`~cachekit.LLMCache`, validated once at construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._breaker import CircuitBreaker
from ._index._options import DEFAULT_EF_RUNTIME
from ._policy import Budgets
from ._sentinel import NOT_GIVEN
from .errors import CacheConfigError

__all__ = ["NOT_GIVEN", "CacheConfig"]


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """Every keyword option of ``LLMCache`` but the client factory and the embedder.

    Raises :class:`CacheConfigError` for a value no cache accepts; nothing is checked
    against the server here (construction does no I/O).
    """

    #: The client is a ``RedisCluster`` (set by ``from_url``/``from_client``).
    cluster: bool = False
    default_ttl: int | None = None
    budgets: Budgets = field(default_factory=Budgets)
    index: str = "auto"
    quantization: str = "int8"
    #: Search-time exploration factor of the HNSW backends (VSIM EF / FT EF_RUNTIME).
    ef_runtime: int = DEFAULT_EF_RUNTIME
    #: Neighbours fetched per semantic lookup (each is verified before it is served).
    candidates: int = 4
    near_miss_sample: float = 0.0
    near_miss_margin: float = 0.1
    #: Share of semantic hits kept in the review stream (the console's review queue).
    review_sample: float = 0.0
    #: Adaptive, verified thresholds (``cachekit.adaptive.AdaptiveThreshold``), or None.
    adaptive: Any = None
    background_stores: bool = True
    max_pending_stores: int = 1000
    breaker_threshold: int = 5
    breaker_cooldown: float = 5.0
    single_flight: bool = True
    #: Connections per cluster node (sizes the cluster gate, see ``_runtime``).
    cluster_connections: int = 32
    #: Asked about every semantic candidate before it is served (:mod:`cachekit.verify`):
    #: not given, the default ``TextVerifier``; None, every candidate above the threshold
    #: is served (cachekit before verification).
    verifier: Any = NOT_GIVEN

    def __post_init__(self) -> None:
        if self.verifier is NOT_GIVEN:
            from .verify import default_verifier

            object.__setattr__(self, "verifier", default_verifier())
        elif self.verifier is not None and not callable(getattr(self.verifier, "verify", None)):
            raise CacheConfigError(
                "verifier must have a verify(new_prompt, cached_prompt, similarity, scope) "
                f"method (cachekit.verify.HitVerifier) or be None, got {self.verifier!r}"
            )
        ttl = self.default_ttl
        if ttl is not None and (not isinstance(ttl, int) or ttl <= 0):
            raise CacheConfigError(f"default_ttl must be a positive int (seconds), got {ttl!r}")
        if not 0.0 <= self.near_miss_sample <= 1.0:
            raise CacheConfigError(
                f"near_miss_sample must be in [0, 1], got {self.near_miss_sample!r}"
            )
        if self.adaptive is not None:
            from .adaptive import AdaptiveThreshold

            if not isinstance(self.adaptive, AdaptiveThreshold):
                raise CacheConfigError(
                    "adaptive must be a cachekit.adaptive.AdaptiveThreshold or None, got "
                    f"{type(self.adaptive).__name__}"
                )
        if not 0.0 <= self.review_sample <= 1.0:
            raise CacheConfigError(f"review_sample must be in [0, 1], got {self.review_sample!r}")
        if not 0.0 < self.near_miss_margin <= 2.0:
            raise CacheConfigError(
                f"near_miss_margin must be in (0, 2], got {self.near_miss_margin!r}"
            )
        if not _positive_int(self.cluster_connections):
            raise CacheConfigError(
                f"cluster_connections must be an int >= 1, got {self.cluster_connections!r}"
            )
        if isinstance(self.ef_runtime, bool) or not _positive_int(self.ef_runtime):
            raise CacheConfigError(f"ef_runtime must be an int >= 1, got {self.ef_runtime!r}")
        if isinstance(self.candidates, bool) or not _positive_int(self.candidates):
            raise CacheConfigError(f"candidates must be an int >= 1, got {self.candidates!r}")
        try:
            CircuitBreaker.check(self.breaker_threshold, self.breaker_cooldown)
        except ValueError as exc:
            raise CacheConfigError(str(exc)) from exc
        if not _positive_int(self.max_pending_stores):
            raise CacheConfigError(
                f"max_pending_stores must be >= 1, got {self.max_pending_stores!r}"
            )


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and value >= 1
