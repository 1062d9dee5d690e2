"""The proxy's own endpoints: ``GET /healthz`` and ``GET /metrics``.

Answered by the proxy itself, never cached and never forwarded: they are routed before
the catch-all that relays to the upstream, and the cache handles only POSTs. Part of
:mod:`cachekit.proxy`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ._policy import describe_failure
from .cache import LLMCache

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["health_route", "metrics_route", "proxy_registry"]

log = logging.getLogger("cachekit.proxy")

_NO_STORE: Final = {"cache-control": "no-store"}


async def _ping(cache: LLMCache) -> None:
    await cache.redis.ping()


def health_route(cache: LLMCache, *, offline: bool) -> Route:
    """``GET /healthz``: 200 while Redis answers a PING within the cache's connect and
    command budgets, else 503 naming what failed. The upstream is not probed: a proxy
    whose upstream is down still answers hits."""
    budget = cache.budgets.connect + cache.budgets.command
    mode = "offline" if offline else "online"

    async def healthz(request: Request) -> Response:
        try:
            async with asyncio.timeout(budget):
                await cache.run(_ping, cache)
        except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy", and named
            problem = describe_failure("Redis ping", exc, budget)
            log.warning("cachekit proxy: /healthz: Redis unreachable: %s", problem)
            body = {"status": "unavailable", "redis": f"unreachable: {problem}", "mode": mode}
            return JSONResponse(body, status_code=503, headers=_NO_STORE)
        return JSONResponse({"status": "ok", "redis": "ok", "mode": mode}, headers=_NO_STORE)

    return Route("/healthz", healthz, methods=["GET"], include_in_schema=False)


def proxy_registry(cache: LLMCache) -> CollectorRegistry | None:
    """A registry of the proxy's own: the cache's metrics plus the process collectors
    (None without ``prometheus_client``: ``/metrics`` then says how to get it)."""
    try:
        import prometheus_client as pc
    except ImportError:
        return None
    from .metrics import instrument

    registry = pc.CollectorRegistry()
    for collector in (pc.ProcessCollector, pc.PlatformCollector, pc.GCCollector):
        collector(registry=registry)
    instrument(cache, registry)
    return registry


def metrics_route(registry: CollectorRegistry | None) -> Route:
    """``GET /metrics``: the registry in Prometheus' text format."""
    if registry is None:

        async def missing(request: Request) -> Response:
            text = "metrics need prometheus_client: pip install 'cachekit[metrics]'\n"
            return PlainTextResponse(text, status_code=503, headers=_NO_STORE)

        return Route("/metrics", missing, methods=["GET"], include_in_schema=False)
    from .metrics import metrics_app

    endpoint: Any = metrics_app(registry)
    return Route("/metrics", endpoint, methods=["GET"], include_in_schema=False)
