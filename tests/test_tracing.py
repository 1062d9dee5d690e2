"""OpenTelemetry spans of the pipeline, read back from the SDK's in-memory exporter.

Real Redis, the real SDK; the decorator (sync and async) and the ASGI middleware.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler, SamplingResult
from opentelemetry.trace import StatusCode

from cachekit import Budgets, LLMCache, cache_control, cached_llm, last_result
from cachekit._server import free_port
from cachekit.middleware import CacheMiddleware
from tests._helpers import GENEROUS, MakeCache, bow_embedder, settle

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "What is the capital of France?"
TENANT = "tenant-acme-4242"


class Switch(Sampler):
    """Samples while on. The global tracer provider can be set once per process: after
    this module its spans are dropped, so later tests record nothing."""

    on = True

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return (ALWAYS_ON if self.on else ALWAYS_OFF).should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return "Switch"


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    sampler = Switch()
    provider = TracerProvider(sampler=sampler)
    trace.set_tracer_provider(provider)
    current = trace.get_tracer_provider()
    assert current is provider, "another tracer provider was set before these tests"
    exp = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exp))
    yield exp
    sampler.on = False


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    exporter.clear()
    return exporter


tracer = trace.get_tracer("tests")


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    found = named(spans, name)
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


def child_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    return span.parent is not None and span.parent.span_id == parent.context.span_id


def children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[str]:
    return sorted(s.name for s in spans if child_of(s, parent))


def assert_private(spans: Sequence[ReadableSpan], *secrets: str) -> None:
    """No attribute of any span carries the prompt or the tenant, nor a part of them."""
    for span in spans:
        for key, value in (span.attributes or {}).items():
            for secret in secrets:
                assert secret.lower() not in str(value).lower(), (span.name, key, value)
                assert "capital" not in str(value).lower(), (span.name, key, value)
        assert not any(key.startswith("gen_ai.usage.cache_read") for key in span.attributes or {})


# ------------------------------------------------------------------ the decorator


def test_exact_hit_sync(spans: InMemorySpanExporter, cache: LLMCache) -> None:
    @cached_llm(namespace="traced", cache=cache, tenant=lambda call: TENANT)
    def ask(prompt: str, model: str = "gpt-4o-mini") -> str:
        return "Paris"

    ask(PROMPT)
    settle(cache)
    spans.clear()
    with tracer.start_as_current_span("request") as request:
        assert ask(PROMPT) == "Paris"
    assert last_result().status == "exact"  # type: ignore[union-attr]
    got = spans.get_finished_spans()
    root = one(got, "request")
    get = one(got, "cache.get")
    # The sync call crossed to the cache's loop thread, and its span stayed the request's.
    assert child_of(get, root) and get.context.trace_id == request.get_span_context().trace_id
    assert dict(get.attributes or {}) == {
        "cachekit.namespace": "traced",
        "gen_ai.request.model": "gpt-4o-mini",
        "cachekit.layer": "exact",
        "cachekit.status": "exact",
    }
    assert get.status.status_code is StatusCode.UNSET
    assert children(got, get) == ["cache.lookup"]
    lookup = one(got, "cache.lookup")
    assert lookup.attributes == {"cachekit.layer": "exact", "cachekit.status": "hit"}
    assert not named(got, "cache.put")  # a hit stores nothing
    assert_private(got, PROMPT, TENANT)


def test_miss_and_its_store_sync(spans: InMemorySpanExporter, cache: LLMCache) -> None:
    @cached_llm(namespace="traced", cache=cache, tenant=lambda call: TENANT)
    def ask(prompt: str, model: str = "gpt-4o-mini") -> str:
        return "Paris"

    with tracer.start_as_current_span("request"):
        ask(PROMPT)
    settle(cache)  # the store ran in the background, after the request span ended
    got = spans.get_finished_spans()
    root, get, put = one(got, "request"), one(got, "cache.get"), one(got, "cache.put")
    assert (get.attributes or {})["cachekit.status"] == "miss"
    assert (get.attributes or {})["cachekit.layer"] == "none"
    assert children(got, get) == ["cache.lock", "cache.lookup"]
    assert child_of(get, root) and child_of(put, root)
    assert [link.context.span_id for link in put.links] == [get.context.span_id]
    assert dict(put.attributes or {}) == {
        "cachekit.namespace": "traced",
        "gen_ai.request.model": "gpt-4o-mini",
        "cachekit.status": "stored",
    }
    assert children(got, put) == ["cache.store"]
    assert (one(got, "cache.store").attributes or {})["cachekit.status"] == "stored"
    assert_private(got, PROMPT, TENANT)


def test_async_caller_on_another_loop(spans: InMemorySpanExporter, cache: LLMCache) -> None:
    """The cache's loop is its own thread (a sync call bound it): the async caller's
    lookup hops there, and its stages still nest under its cache.get."""

    @cached_llm(namespace="bound", cache=cache)
    def warm(prompt: str) -> str:
        return "x"

    warm("bind the cache to its loop thread")

    @cached_llm(namespace="hop", cache=cache)
    async def ask(prompt: str) -> str:
        return "Paris"

    async def main() -> str | None:
        await ask(PROMPT)
        await cache.drain()
        await asyncio.sleep(0.05)
        with tracer.start_as_current_span("request"):
            await ask(PROMPT)
        return last_result().status  # type: ignore[union-attr]

    spans.clear()
    assert asyncio.run(main()) == "exact"
    got = spans.get_finished_spans()
    root = one(got, "request")
    [get] = [s for s in named(got, "cache.get") if child_of(s, root)]
    assert children(got, get) == ["cache.lookup"]
    assert (get.attributes or {})["cachekit.status"] == "exact"


def test_semantic_hit(spans: InMemorySpanExporter, make_cache: MakeCache) -> None:
    cache = make_cache(embedder=bow_embedder(), budgets=GENEROUS, background_stores=False)
    cache.warmup_sync(30)

    @cached_llm(namespace="sem", cache=cache, threshold=0.8)
    def ask(prompt: str) -> str:
        return f"answer to {prompt}"

    with tracer.start_as_current_span("first"):
        ask("capital of France please tell me")
    got = spans.get_finished_spans()
    get, put = one(got, "cache.get"), one(got, "cache.put")
    # The miss searched an empty scope, then led the key's flight (its lock, and a last
    # look for another process's answer); its vector (embedded once) is stored with it.
    assert children(got, get) == ["cache.embed", "cache.lock", "cache.lookup", "cache.search"]
    assert children(got, one(got, "cache.lock")) == ["cache.lookup"]
    assert children(got, put) == ["cache.index", "cache.store"]

    spans.clear()
    with tracer.start_as_current_span("second"):
        assert (
            ask("please tell me capital of France") == "answer to capital of France please tell me"
        )
    result = last_result()
    assert result is not None and result.status == "semantic"
    got = spans.get_finished_spans()
    get = one(got, "cache.get")
    attrs = dict(get.attributes or {})
    assert attrs["cachekit.layer"] == "semantic" and attrs["cachekit.status"] == "semantic"
    assert attrs["cachekit.similarity"] == pytest.approx(result.similarity)
    assert attrs["cachekit.similarity"] >= 0.8
    assert children(got, get) == ["cache.embed", "cache.lookup", "cache.search", "cache.verify"]
    search = one(got, "cache.search")
    assert (search.attributes or {})["cachekit.candidates"] == 1
    assert (search.attributes or {})["cachekit.similarity"] == pytest.approx(result.similarity)
    assert (one(got, "cache.verify").attributes or {})["cachekit.candidates"] == 1
    assert not named(got, "cache.put")
    assert_private(got, "capital of France")


def test_a_forced_refresh_embeds_at_the_store(
    spans: InMemorySpanExporter, make_cache: MakeCache
) -> None:
    cache = make_cache(embedder=bow_embedder(), budgets=GENEROUS, background_stores=False)
    cache.warmup_sync(30)

    @cached_llm(namespace="fresh", cache=cache, threshold=0.8)
    def ask(prompt: str) -> str:
        return "answer"

    with cache_control(skip_lookup=True):
        ask("a prompt never looked up")
    got = spans.get_finished_spans()
    assert children(got, one(got, "cache.get")) == []  # no lookup: no vector yet
    assert children(got, one(got, "cache.put")) == ["cache.embed", "cache.index", "cache.store"]


def test_fail_open_records_the_exception(spans: InMemorySpanExporter) -> None:
    dead = LLMCache.from_url(
        f"redis://127.0.0.1:{free_port()}/0", breaker_threshold=1000, budgets=Budgets(connect=2)
    )
    try:

        @cached_llm(namespace="down", cache=dead)
        def ask(prompt: str) -> str:
            return "fresh"

        with tracer.start_as_current_span("request"):
            assert ask(PROMPT) == "fresh"
        result = last_result()
        assert result is not None and result.status == "error"
        got = spans.get_finished_spans()
        get = one(got, "cache.get")
        attrs = dict(get.attributes or {})
        assert attrs["cachekit.status"] == "error" and attrs["cachekit.layer"] == "none"
        assert attrs["cachekit.reason"] == result.reason
        assert get.status.status_code is StatusCode.ERROR
        events = [e for e in get.events if e.name == "exception"]
        assert len(events) == 1, [dict(e.attributes or {}) for e in events]
        assert "Connection" in str((events[0].attributes or {})["exception.type"])
        # The stage that failed says so too.
        lookup = one(got, "cache.lookup")
        assert lookup.status.status_code is StatusCode.ERROR
        assert any(e.name == "exception" for e in lookup.events)
        assert not named(got, "cache.put")  # a failed lookup stores nothing
    finally:
        dead.close()


# ------------------------------------------------------------------ the ASGI middleware


def _chat(prompt: str) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}


async def test_asgi_middleware(spans: InMemorySpanExporter, cache: LLMCache) -> None:
    async def llm(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        body = b'{"choices": [{"message": {"role": "assistant", "content": "Paris"}}]}'
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    cached = CacheMiddleware(llm, cache=cache, allow_global=True, namespace="http")

    async def server(scope: Any, receive: Any, send: Any) -> None:
        # What an ASGI instrumentation does: one server span per request.
        with tracer.start_as_current_span(f"POST {scope['path']}"):
            await cached(scope, receive, send)

    transport = httpx.ASGITransport(app=server)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        first = await client.post("/v1/chat/completions", json=_chat(PROMPT))
        second = await client.post("/v1/chat/completions", json=_chat(PROMPT))
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    got = spans.get_finished_spans()
    requests = named(got, "POST /v1/chat/completions")
    gets = named(got, "cache.get")
    assert len(requests) == 2 and len(gets) == 2
    miss, hit = sorted(gets, key=lambda s: s.start_time or 0)
    assert child_of(miss, requests[0]) or child_of(miss, requests[1])
    assert (miss.attributes or {})["cachekit.status"] == "miss"
    assert (hit.attributes or {})["cachekit.status"] == "exact"
    assert (hit.attributes or {})["gen_ai.request.model"] == "gpt-4o-mini"
    assert (hit.attributes or {})["cachekit.namespace"] == "http"
    [put] = named(got, "cache.put")
    # HTTP waits for its store: the put is the first request's, before its span ended.
    [request] = [r for r in requests if child_of(put, r)]
    assert child_of(miss, request)
    assert (put.attributes or {})["cachekit.status"] == "stored"
    assert_private(got, PROMPT)


# ------------------------------------------------------------------ off


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_import_cachekit_imports_no_opentelemetry_of_its_own() -> None:
    # redis-py itself imports opentelemetry's SDK when it is installed: count from there.
    code = (
        "import sys, redis, redis.asyncio\n"
        "before = {m for m in sys.modules if m.startswith('opentelemetry')}\n"
        "import cachekit, cachekit.stats, cachekit.middleware, cachekit._pipeline\n"
        "print(sorted({m for m in sys.modules if m.startswith('opentelemetry')} - before))\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_without_opentelemetry_calls_are_cached_untraced(redis_url: str) -> None:
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from cachekit import LLMCache, cached_llm, last_result\n"
        "from cachekit import _tracing\n"
        "cache = LLMCache.from_url(sys.argv[1])\n"
        "@cached_llm(namespace='plain', cache=cache)\n"
        "def ask(prompt: str) -> str:\n    return 'x'\n"
        "ask('q'); cache.drain_sync(); import time; time.sleep(0.05); ask('q')\n"
        "print(last_result().status, _tracing._tracer())\n"
        "cache.close()\n"
    )
    proc = _python(code, redis_url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "exact None"
