"""Prometheus metrics for a cache (``pip install 'cachekit[metrics]'``).

    from cachekit import metrics
    metrics.instrument(cache)          # counts every decorated call / middleware request
    metrics.mount_metrics(app)         # GET /metrics on a Starlette / FastAPI app

These are per-process numbers, as Prometheus expects (it sums the workers); the Redis
counters behind :func:`cachekit.stats.stats` are the cluster-wide, long-term view.

Metrics (label ``namespace`` everywhere):

* ``cachekit_hits_total{layer}``: served from the cache, ``layer`` exact | semantic;
* ``cachekit_misses_total``: the function / upstream ran and (normally) the answer was stored;
* ``cachekit_bypasses_total{reason}``: cache skipped on purpose (no tenant, no-cache, ...);
* ``cachekit_errors_total{stage}``: the cache failed (lookup | store) and the call went on;
* ``cachekit_verifier_rejections_total{reason}``: semantic candidates the hit verifier
  refused (``number``, ``order``, ``negation``, ...);
* ``cachekit_overhead_seconds{status}``: time spent in cachekit itself per call;
* ``cachekit_stage_seconds{stage}``: per-stage time, when the result carries ``timings``;
* ``cachekit_similarity{outcome}``: cosine similarity of semantic hits (``hit``) and of
  the nearest candidate of semantic misses (``miss``): where the threshold sits;
* ``cachekit_hit_age_seconds``: age of the entries served.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from .errors import CacheConfigError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from .cache import LLMCache
    from .result import CacheResult

__all__ = [
    "LATENCY_BUCKETS",
    "SIMILARITY_BUCKETS",
    "MetricsObserver",
    "instrument",
    "metrics_app",
    "mount_metrics",
]

log = logging.getLogger("cachekit.metrics")

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

# Bypass reasons come from a small fixed set in the core ("no tenant", "cache-control",
# "body too large", ...); anything that looks like free text (an exception message) is
# folded into "other" so a label can never explode the series count.
_REASON_RE: Final = re.compile(r"^[a-z][a-z _-]{0,39}$")
_STAGE_RE: Final = re.compile(r"^([a-z_]{1,20}) failed\b")


def _require_prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise CacheConfigError(
            "metrics need prometheus_client: pip install 'cachekit[metrics]'"
        ) from exc
    return prometheus_client


class _Metrics:
    """The metric objects of one registry (a registry refuses duplicate names).

    Every metric is labelled by namespace first, then by its own label.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        pc = _require_prometheus()

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


_by_registry: weakref.WeakKeyDictionary[Any, _Metrics] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def _metrics_for(registry: CollectorRegistry | None) -> tuple[CollectorRegistry, _Metrics]:
    pc = _require_prometheus()
    reg = registry if registry is not None else pc.REGISTRY
    with _registry_lock:
        found = _by_registry.get(reg)
        if found is None:
            found = _by_registry[reg] = _Metrics(reg)
    return reg, found


class MetricsObserver:
    """A ``cache.observers`` entry that turns each :class:`~cachekit.CacheResult` into metrics."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry, self._m = _metrics_for(registry)

    def __call__(self, result: CacheResult) -> None:
        # Observers run on the caller's path: no I/O here, and never raise.
        try:
            self._observe(result)
        except Exception:  # metrics must never break a call
            log.debug("cachekit: metrics observer failed", exc_info=True)

    def _observe(self, result: CacheResult) -> None:
        m = self._m
        ns = result.namespace
        status = result.status
        if status in ("exact", "semantic"):
            m.hits.labels(ns, status).inc()
            if result.age_s is not None:
                m.age.labels(ns, status).observe(max(0.0, result.age_s))
        elif status == "miss":
            m.misses.labels(ns).inc()
        elif status == "bypass":
            reason = (result.reason or "unspecified").lower()
            m.bypasses.labels(ns, reason if _REASON_RE.match(reason) else "other").inc()
        elif status == "error":
            match = _STAGE_RE.match(result.reason or "")
            m.errors.labels(ns, match.group(1) if match else "other").inc()
        if getattr(result, "verdict", None) == "rejected":
            reason = (getattr(result, "verify_reason", None) or "other").lower()
            m.rejections.labels(ns, reason if _REASON_RE.match(reason) else "other").inc()
        m.overhead.labels(ns, status).observe(max(0.0, result.latency_ms) / 1000.0)
        if result.similarity is not None:
            outcome = "hit" if status == "semantic" else "miss"
            m.similarity.labels(ns, outcome).observe(result.similarity)
        # Per-stage timings (seconds) when the core reports them (CacheResult.timings).
        timings = getattr(result, "timings", None)
        if isinstance(timings, Mapping):
            for stage, seconds in timings.items():
                if isinstance(seconds, int | float) and isinstance(stage, str):
                    m.stages.labels(ns, stage).observe(max(0.0, float(seconds)))


def instrument(cache: LLMCache, registry: CollectorRegistry | None = None) -> MetricsObserver:
    """Record Prometheus metrics for every call through ``cache`` (idempotent per registry).

    ``registry``: a ``prometheus_client.CollectorRegistry``; default the global one.
    """
    _, wanted = _metrics_for(registry)
    for observer in cache.observers:
        if isinstance(observer, MetricsObserver) and observer._m is wanted:
            return observer
    observer = MetricsObserver(registry)
    cache.observers.append(observer)
    return observer


class _MetricsASGI:
    """The exposition endpoint as a class instance, so Starlette routes it as raw ASGI."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        pc = _require_prometheus()
        self._app = pc.make_asgi_app(registry if registry is not None else pc.REGISTRY)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)


def metrics_app(registry: CollectorRegistry | None = None) -> Any:
    """A bare ASGI app serving the exposition format (for any ASGI framework)."""
    return _MetricsASGI(registry)


def mount_metrics(
    app: Any, path: str = "/metrics", registry: CollectorRegistry | None = None
) -> None:
    """Serve ``GET path`` on a Starlette (or FastAPI) ``app`` with the registry's metrics.

    A route rather than a mount: a mount answers ``/metrics`` with a redirect to
    ``/metrics/``, which some scrapers do not follow. Gzip and OpenMetrics negotiation
    come from prometheus_client.
    """
    if not isinstance(path, str) or not path.startswith("/"):
        raise CacheConfigError(f"path must start with '/', got {path!r}")
    from starlette.routing import Route

    router = getattr(app, "router", app)
    routes = getattr(router, "routes", None)
    if not isinstance(routes, list):
        raise CacheConfigError(
            f"mount_metrics needs a Starlette/FastAPI app or router, got {type(app).__name__}; "
            "for another framework serve cachekit.metrics.metrics_app()"
        )
    # Routes match in order: put ours first so a catch-all route (a proxy's "/{path}")
    # does not swallow it.
    routes.insert(0, Route(path, _MetricsASGI(registry), methods=["GET"], include_in_schema=False))
