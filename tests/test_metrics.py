"""Prometheus metrics: the observer, the exposition route, the middleware path (real Redis)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from cachekit import CacheConfigError, CacheResult, LLMCache, cached_llm, last_result
from cachekit.metrics import MetricsObserver, instrument, metrics_app, mount_metrics
from cachekit.middleware import CacheMiddleware
from tests._helpers import MakeCache, bow_embedder, settle


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def cache(make_cache: MakeCache) -> LLMCache:
    """This module's cache has an embedder: the metrics of semantic hits are tested too."""
    return make_cache(embedder=bow_embedder())


def value(reg: CollectorRegistry, name: str, **labels: str) -> float:
    found = reg.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_decorated_calls_become_metrics(cache: LLMCache, registry: CollectorRegistry) -> None:
    obs = instrument(cache, registry)
    assert instrument(cache, registry) is obs  # idempotent per registry
    assert sum(isinstance(o, MetricsObserver) for o in cache.observers) == 1

    @cached_llm(namespace="m", cache=cache, threshold=0.8, tenant=lambda c: c.arguments.get("org"))
    def ask(prompt: str, org: str | None = "acme") -> str:
        return "answer"

    ask("what is the capital city of france")
    settle(cache)
    ask("what is the capital city of france")
    assert last_result().status == "exact"  # type: ignore[union-attr]
    ask("tell me what is the capital city of france")
    assert last_result().status == "semantic"  # type: ignore[union-attr]
    ask("how do plants grow in winter")  # a miss with a (far) nearest candidate
    ask("no tenant", org=None)
    assert last_result().status == "bypass"  # type: ignore[union-attr]

    assert value(registry, "cachekit_hits_total", namespace="m", layer="exact") == 1
    assert value(registry, "cachekit_hits_total", namespace="m", layer="semantic") == 1
    assert value(registry, "cachekit_misses_total", namespace="m") == 2
    assert value(registry, "cachekit_bypasses_total", namespace="m", reason="no_tenant") == 1
    assert value(registry, "cachekit_overhead_seconds_count", namespace="m", status="exact") == 1
    assert value(registry, "cachekit_overhead_seconds_sum", namespace="m", status="miss") > 0
    assert value(registry, "cachekit_similarity_count", namespace="m", outcome="hit") == 1
    hit_sim = value(registry, "cachekit_similarity_sum", namespace="m", outcome="hit")
    assert 0.8 <= hit_sim <= 1.0
    assert value(registry, "cachekit_similarity_count", namespace="m", outcome="miss") >= 1
    assert value(registry, "cachekit_hit_age_seconds_count", namespace="m", layer="exact") == 1


def test_errors_by_stage_and_reason_labels_stay_bounded(registry: CollectorRegistry) -> None:
    obs = MetricsObserver(registry)
    obs(CacheResult(status="error", namespace="n", reason="lookup failed: ConnectionError: 111"))
    obs(CacheResult(status="error", namespace="n", reason="store failed: TimeoutError: "))
    obs(CacheResult(status="error", namespace="n", reason="circuit open: skipped"))
    obs(CacheResult(status="bypass", namespace="n", reason="Some free text: 42 {x}"))
    obs(CacheResult(status="bypass", namespace="n", reason=None))
    assert value(registry, "cachekit_errors_total", namespace="n", stage="lookup") == 1
    assert value(registry, "cachekit_errors_total", namespace="n", stage="store") == 1
    assert value(registry, "cachekit_errors_total", namespace="n", stage="other") == 1
    assert value(registry, "cachekit_bypasses_total", namespace="n", reason="other") == 1
    assert value(registry, "cachekit_bypasses_total", namespace="n", reason="unspecified") == 1


def test_stage_timings_when_the_result_carries_them(registry: CollectorRegistry) -> None:
    class WithTimings:
        status = "miss"
        namespace = "n"
        reason = None
        similarity = None
        age_s = None
        latency_ms = 3.0
        timings: ClassVar[dict[str, Any]] = {"lookup": 0.001, "embed": 0.002, "bogus": "x"}

    MetricsObserver(registry)(WithTimings())  # type: ignore[arg-type]
    assert value(registry, "cachekit_stage_seconds_count", namespace="n", stage="lookup") == 1
    assert value(registry, "cachekit_stage_seconds_sum", namespace="n", stage="embed") == 0.002
    assert value(registry, "cachekit_stage_seconds_count", namespace="n", stage="bogus") == 0


def test_observer_never_raises(registry: CollectorRegistry) -> None:
    MetricsObserver(registry)(object())  # type: ignore[arg-type]


def test_mount_metrics_serves_the_registry(registry: CollectorRegistry) -> None:
    async def catch_all(request: Request) -> Response:
        return PlainTextResponse("app")

    app = Starlette(routes=[Route("/{path:path}", catch_all)])
    mount_metrics(app, registry=registry)
    MetricsObserver(registry)(CacheResult(status="miss", namespace="web"))
    with TestClient(app) as client:
        reply = client.get("/metrics")
        assert reply.status_code == 200
        assert 'cachekit_misses_total{namespace="web"} 1.0' in reply.text
        assert client.get("/anything").text == "app"  # the app keeps its routes
        assert client.get("/metrics/").text == "app"  # a route, not a prefix mount


def test_mount_metrics_rejects_what_it_cannot_mount(registry: CollectorRegistry) -> None:
    with pytest.raises(CacheConfigError):
        mount_metrics(object(), registry=registry)
    with pytest.raises(CacheConfigError):
        mount_metrics(Starlette(), path="metrics", registry=registry)


def test_metrics_app_is_plain_asgi(registry: CollectorRegistry) -> None:
    MetricsObserver(registry)(CacheResult(status="exact", namespace="x", latency_ms=0.3))
    app = Starlette(routes=[Route("/m", metrics_app(registry))])
    with TestClient(app) as client:
        assert 'cachekit_hits_total{layer="exact",namespace="x"} 1.0' in client.get("/m").text


def test_middleware_requests_are_observed(redis_url: str, registry: CollectorRegistry) -> None:
    async def chat(request: Request) -> Response:
        body = await request.json()
        return JSONResponse(
            {
                "id": "c1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1},
            }
        )

    cache = LLMCache.from_url(redis_url)
    instrument(cache, registry)
    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    app.add_middleware(CacheMiddleware, cache=cache, namespace="http", allow_global=True)
    mount_metrics(app, registry=registry)
    body: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hello there"}],
    }
    try:
        with TestClient(app) as client:
            assert client.post("/v1/chat/completions", json=body).headers["x-cache"] == "MISS"
            cache.drain_sync()
            assert client.post("/v1/chat/completions", json=body).headers["x-cache"] == "HIT"
            text = client.get("/metrics").text
    finally:
        cache.close()
    assert 'cachekit_misses_total{namespace="http"} 1.0' in text
    assert 'cachekit_hits_total{layer="exact",namespace="http"} 1.0' in text


def test_saved_tokens_and_usd_of_hits(cache: LLMCache, registry: CollectorRegistry) -> None:
    instrument(cache, registry)

    @cached_llm(namespace="save", cache=cache, threshold=None)
    def ask(prompt: str, model: str = "gpt-4o-mini") -> dict[str, Any]:
        return {"answer": prompt, "usage": {"prompt_tokens": 1000, "completion_tokens": 500}}

    ask("price me")
    settle(cache)
    ask("price me")
    hit = last_result()
    assert hit is not None and hit.status == "exact"
    assert (hit.saved_tokens, hit.model, hit.saved_estimated) == ((1000, 500), "gpt-4o-mini", False)
    labels = {"namespace": "save", "source": "reported"}
    assert value(registry, "cachekit_tokens_saved_total", direction="input", **labels) == 1000
    assert value(registry, "cachekit_tokens_saved_total", direction="output", **labels) == 500
    from cachekit import Pricing

    expected = Pricing.load().cost("gpt-4o-mini", 1000, 500)
    assert expected is not None and expected > 0
    assert value(registry, "cachekit_saved_usd_total", namespace="save") == pytest.approx(expected)


def test_breaker_state_follows_the_breaker(registry: CollectorRegistry) -> None:
    from cachekit._server import free_port

    dead = LLMCache.from_url(f"redis://127.0.0.1:{free_port()}/0", breaker_threshold=1)
    try:
        instrument(dead, registry)
        assert value(registry, "cachekit_breaker_open", breaker="node") == 0

        @cached_llm(namespace="down", cache=dead)
        def ask(prompt: str) -> str:
            return "fresh"

        assert ask("anyone") == "fresh"
        assert last_result().status == "error"  # type: ignore[union-attr]
        assert value(registry, "cachekit_breaker_open", breaker="node") == 1
    finally:
        dead.close()


def test_dropped_stores_are_counted(make_cache: MakeCache, registry: CollectorRegistry) -> None:
    import asyncio
    import threading

    cache = make_cache(max_pending_stores=1)
    instrument(cache, registry)
    release = threading.Event()

    async def hold() -> None:
        await asyncio.to_thread(release.wait, 30)

    @cached_llm(namespace="full", cache=cache)
    def ask(prompt: str) -> str:
        return "answer"

    try:
        ask("warm up")  # binds the cache's loop; its store lands
        cache.drain_sync()
        assert cache.background(hold)  # the one slot of the store queue is taken
        ask("no room for my store")
        assert last_result().stored is False  # type: ignore[union-attr]
        assert cache.dropped_stores == 1
        assert value(registry, "cachekit_dropped_stores_total") == 1
    finally:
        release.set()
        cache.drain_sync()


def test_build_info(registry: CollectorRegistry) -> None:
    import importlib.metadata

    MetricsObserver(registry)
    version = importlib.metadata.version("cachekit")
    assert value(registry, "cachekit_build_info", version=version) == 1
