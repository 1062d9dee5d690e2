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
* ``cachekit_hit_age_seconds``: age of the entries served;
* ``cachekit_tokens_saved_total{direction,source}``: tokens the hits did not send to the
  LLM (``input``/``output``; ``reported`` by the response or ``estimated``);
* ``cachekit_saved_usd_total``: what those tokens cost at list price (priced models only);
* ``cachekit_breaker_open{breaker}``: 1 while a circuit breaker skips the cache (open or
  probing), else 0: ``node`` on one Redis, ``slot:<n>`` per hash slot of a cluster;
* ``cachekit_dropped_stores_total``: answers not stored because the store queue was full;
* ``cachekit_build_info{version}``: always 1.

Bypass reasons are snake_case codes (``no_tenant``, ``cache_control``, ``body_too_large``,
...: ``cachekit._reasons.Reason``); anything else is ``other``.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from ._metrics_families import (
    LATENCY_BUCKETS,
    SIMILARITY_BUCKETS,
    Metrics,
    require_prometheus,
)
from ._reasons import code_of
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

# Verifier reasons come from a small fixed set; anything that looks like free text is
# folded into "other" so a label can never explode the series count. Bypass reasons are
# the codes of one enum (``_reasons.Reason``), free text again "other".
_REASON_RE: Final = re.compile(r"^[a-z][a-z _-]{0,39}$")
_STAGE_RE: Final = re.compile(r"^([a-z_]{1,20}) failed\b")


_by_registry: weakref.WeakKeyDictionary[Any, Metrics] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def _metrics_for(registry: CollectorRegistry | None) -> tuple[CollectorRegistry, Metrics]:
    pc = require_prometheus()
    reg = registry if registry is not None else pc.REGISTRY
    with _registry_lock:
        found = _by_registry.get(reg)
        if found is None:
            found = _by_registry[reg] = Metrics(reg)
    return reg, found


class MetricsObserver:
    """A ``cache.observers`` entry that turns each :class:`~cachekit.CacheResult` into metrics.

    ``pricing`` (a :class:`~cachekit.Pricing` or what ``Pricing.load`` takes) prices the
    saved tokens at the time of each hit; default ``Pricing.load()`` (genai-prices when
    installed, else the bundled table).
    """

    def __init__(self, registry: CollectorRegistry | None = None, pricing: Any = None) -> None:
        from ._pricing import Pricing

        self.registry, self._m = _metrics_for(registry)
        # Loaded here, not on the first hit: genai-prices takes ~0.25 s to load.
        self._pricing: Pricing = Pricing.load(pricing)

    def _price(self, model: str, tokens: tuple[int, int]) -> float | None:
        return self._pricing.cost(model, *tokens)  # at the hit's time: now

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
            self._saved(result)
        elif status == "miss":
            m.misses.labels(ns).inc()
        elif status == "bypass":
            code = getattr(result, "reason_code", None) or code_of(result.reason)
            m.bypasses.labels(ns, code or ("other" if result.reason else "unspecified")).inc()
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

    def _saved(self, result: CacheResult) -> None:
        tokens = getattr(result, "saved_tokens", None)
        if tokens is None:
            return
        m, ns = self._m, result.namespace
        source = "estimated" if getattr(result, "saved_estimated", False) else "reported"
        m.tokens_saved.labels(ns, "input", source).inc(max(0, tokens[0]))
        m.tokens_saved.labels(ns, "output", source).inc(max(0, tokens[1]))
        model = getattr(result, "model", None)
        usd = self._price(model, tokens) if model else None
        if usd is not None and usd > 0:
            m.usd_saved.labels(ns).inc(usd)


def instrument(
    cache: LLMCache, registry: CollectorRegistry | None = None, pricing: Any = None
) -> MetricsObserver:
    """Record Prometheus metrics for every call through ``cache`` (idempotent per registry),
    and expose its breakers and dropped stores.

    ``registry``: a ``prometheus_client.CollectorRegistry``; default the global one.
    ``pricing``: prices the saved tokens (see :class:`MetricsObserver`).
    """
    _, wanted = _metrics_for(registry)
    wanted.caches.add(cache)
    for observer in cache.observers:
        if isinstance(observer, MetricsObserver) and observer._m is wanted:
            return observer
    observer = MetricsObserver(registry, pricing)
    cache.observers.append(observer)
    return observer


class MetricsASGI:
    """The exposition endpoint as a class instance, so Starlette routes it as raw ASGI."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        pc = require_prometheus()
        self._app = pc.make_asgi_app(registry if registry is not None else pc.REGISTRY)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)


def metrics_app(registry: CollectorRegistry | None = None) -> Any:
    """A bare ASGI app serving the exposition format (for any ASGI framework)."""
    return MetricsASGI(registry)


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
    routes.insert(0, Route(path, MetricsASGI(registry), methods=["GET"], include_in_schema=False))
