"""The metric families of :mod:`cachekit.metrics` (one set per registry), the bucket
layouts, and the collector that reads the instrumented caches' state at scrape time."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from .errors import CacheConfigError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from .cache import LLMCache

__all__ = [
    "AGE_BUCKETS",
    "LATENCY_BUCKETS",
    "SIMILARITY_BUCKETS",
    "CacheCollector",
    "Metrics",
    "require_prometheus",
]

#: Overhead buckets (seconds): an exact hit is ~0.2-1 ms, a semantic lookup with a local
#: model 5-50 ms, a budget expiry 0.5-2 s.
LATENCY_BUCKETS: Final = (
    0.0002,
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
#: Similarity buckets: fine-grained where thresholds live (0.80-0.99).
SIMILARITY_BUCKETS: Final = (
    0.5,
    0.6,
    0.7,
    0.75,
    0.8,
    0.82,
    0.84,
    0.86,
    0.88,
    0.9,
    0.92,
    0.94,
    0.96,
    0.98,
    0.99,
    1.0,
)
AGE_BUCKETS: Final = (1, 10, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400, 30 * 86400)


def require_prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise CacheConfigError(
            "metrics need prometheus_client: pip install 'cachekit[metrics]'"
        ) from exc
    return prometheus_client


class Metrics:
    """The metric objects of one registry (a registry refuses duplicate names).

    Every metric is labelled by namespace first, then by its own label.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        pc = require_prometheus()

        def counter(name: str, doc: str, *labels: str) -> Any:
            return pc.Counter(name, doc, ["namespace", *labels], registry=registry)

        def histogram(name: str, doc: str, label: str, buckets: Sequence[float]) -> Any:
            labels = ["namespace", label]
            return pc.Histogram(name, doc, labels, buckets=buckets, registry=registry)

        self.hits = counter("cachekit_hits_total", "Calls served from the cache.", "layer")
        self.misses = counter("cachekit_misses_total", "Calls that ran the function (cache miss).")
        self.bypasses = counter(
            "cachekit_bypasses_total", "Calls that skipped the cache on purpose.", "reason"
        )
        self.errors = counter(
            "cachekit_errors_total",
            "Calls where the cache failed and the call went on without it.",
            "stage",
        )
        self.overhead = histogram(
            "cachekit_overhead_seconds",
            "Time spent in cachekit per call (lookup, and the store on a miss).",
            "status",
            LATENCY_BUCKETS,
        )
        self.stages = histogram(
            "cachekit_stage_seconds",
            "Time per cache stage (lookup, embed, search, store).",
            "stage",
            LATENCY_BUCKETS,
        )
        self.similarity = histogram(
            "cachekit_similarity",
            "Cosine similarity of semantic hits and of the nearest candidate of misses.",
            "outcome",
            SIMILARITY_BUCKETS,
        )
        self.age = histogram(
            "cachekit_hit_age_seconds", "Age of the cache entries served.", "layer", AGE_BUCKETS
        )
        self.rejections = counter(
            "cachekit_verifier_rejections_total",
            "Semantic candidates above the threshold that the hit verifier refused to serve.",
            "reason",
        )
        self.tokens_saved = counter(
            "cachekit_tokens_saved_total",
            "Tokens the hits did not send to the LLM (reported by the response or estimated).",
            "direction",
            "source",
        )
        self.usd_saved = counter(
            "cachekit_saved_usd_total", "USD the hits saved at list price (priced models only)."
        )
        pc.Gauge(
            "cachekit_build_info",
            "The cachekit version (always 1).",
            ["version"],
            registry=registry,
        ).labels(_version()).set(1)
        self.caches = CacheCollector()
        registry.register(self.caches)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cachekit")
    except PackageNotFoundError:  # a source checkout that is not installed
        from . import __version__

        return __version__


class CacheCollector:
    """The state of the instrumented caches, read at scrape time: breakers, dropped stores.

    Caches are held weakly: a closed, collected cache leaves the metrics.
    """

    def __init__(self) -> None:
        self._caches: weakref.WeakSet[LLMCache] = weakref.WeakSet()

    def add(self, cache: LLMCache) -> None:
        self._caches.add(cache)

    def describe(self) -> list[Any]:
        return []  # series appear with the first instrumented cache

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        breakers = GaugeMetricFamily(
            "cachekit_breaker_open",
            "1 while a circuit breaker skips the cache (open or probing), else 0.",
            labels=["breaker"],
        )
        dropped = CounterMetricFamily(
            "cachekit_dropped_stores_total",
            "Answers not stored because the store queue was full.",
        )
        states: dict[str, float] = {}
        total = 0
        for cache in list(self._caches):
            total += cache.dropped_stores
            for name, breaker in cache.breakers.named():
                # Several caches on one registry: a breaker name is open if any is.
                is_open = 0.0 if breaker.state == "closed" else 1.0
                states[name] = max(states.get(name, 0.0), is_open)
        for name, state in sorted(states.items()):
            breakers.add_metric([name], state)
        dropped.add_metric([], total)
        return iter([breakers, dropped])
