"""``CacheTransport`` / ``AsyncCacheTransport``: the real ``openai`` SDK, given an httpx
client with the cache as its transport, against a real local OpenAI-wire server and a
real Redis."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import redis
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from cachekit import Budgets, CacheConfigError, LLMCache, last_result
from cachekit.transport import AsyncCacheTransport, CacheTransport
from tests._helpers import GENEROUS, MakeCache, bow_embedder, entry_keys
from tests.llm_server import LocalOpenAIServer
from tests.test_proxy import Served

MODEL = "gpt-4o-mini"


def messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}]


@pytest.fixture
def up(upstream: LocalOpenAIServer) -> Iterator[LocalOpenAIServer]:
    upstream.reset()
    yield upstream
    upstream.reset()


def sdk(
    up: LocalOpenAIServer, cache: LLMCache, key: str = "sk-alpha", **options: Any
) -> openai.OpenAI:
    http = httpx.Client(transport=CacheTransport(cache=cache, namespace="t", **options))
    return openai.OpenAI(base_url=up.base_url, api_key=key, max_retries=0, http_client=http)


def asdk(up: LocalOpenAIServer, cache: LLMCache, key: str = "sk-alpha") -> openai.AsyncOpenAI:
    http = httpx.AsyncClient(transport=AsyncCacheTransport(cache=cache, namespace="t"))
    return openai.AsyncOpenAI(base_url=up.base_url, api_key=key, max_retries=0, http_client=http)


def chat(client: openai.OpenAI, prompt: str, **kwargs: Any) -> tuple[Any, httpx.Headers]:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages(prompt), **kwargs
    )
    return raw.parse(), raw.headers


def chat_stream(client: openai.OpenAI, prompt: str) -> tuple[str, httpx.Headers]:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages(prompt), stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    return text, raw.headers


# -- hits --------------------------------------------------------------------------------


def test_sync_repeat_is_a_hit_with_the_same_sdk_object(
    cache: LLMCache, up: LocalOpenAIServer
) -> None:
    client = sdk(up, cache)
    first, headers = chat(client, "What is the capital of France?")
    assert headers["x-cache"] == "MISS"
    assert last_result() is not None and last_result().status == "miss"  # type: ignore[union-attr]
    cache.drain_sync()
    second, headers = chat(client, "What is the capital of France?")
    assert headers["x-cache"] == "HIT" and headers["x-cache-match"] == "exact"
    assert last_result().status == "exact"  # type: ignore[union-attr]
    assert second.model_dump() == first.model_dump()  # id, content, usage: byte-identical
    assert first.choices[0].message.content == "echo: What is the capital of France?"
    assert up.count("/v1/chat/completions") == 1


def test_sync_stream_is_recorded_and_replayed(cache: LLMCache, up: LocalOpenAIServer) -> None:
    client = sdk(up, cache)
    text, headers = chat_stream(client, "stream me three words")
    assert text == "echo: stream me three words" and headers["x-cache"] == "MISS"
    cache.drain_sync()
    text, headers = chat_stream(client, "stream me three words")
    assert text == "echo: stream me three words" and headers["x-cache"] == "HIT"
    assert headers["content-type"].startswith("text/event-stream")
    assert up.count("/v1/chat/completions") == 1
    # A stream is only ever answered with a stream, and the reverse.
    completion, headers = chat(client, "stream me three words")
    assert headers["x-cache"] == "MISS" and completion.choices[0].message.content


async def test_async_client_stream_and_non_stream(cache: LLMCache, up: LocalOpenAIServer) -> None:
    client = asdk(up, cache)
    for _ in range(2):
        raw = await client.chat.completions.with_raw_response.create(
            model=MODEL, messages=messages("async hello")
        )
        assert raw.parse().choices[0].message.content == "echo: async hello"
        await cache.drain()
    assert raw.headers["x-cache"] == "HIT"
    for _ in range(2):
        raw_stream = await client.chat.completions.with_raw_response.create(
            model=MODEL, messages=messages("async stream"), stream=True
        )
        parts = [c.choices[0].delta.content or "" async for c in raw_stream.parse()]
        assert "".join(parts) == "echo: async stream"
        await cache.drain()
    assert raw_stream.headers["x-cache"] == "HIT"
    assert up.count("/v1/chat/completions") == 2
    await client.close()


def test_semantic_hit_through_the_transport(make_cache: MakeCache, up: LocalOpenAIServer) -> None:
    cache = make_cache(embedder=bow_embedder(), budgets=GENEROUS)
    client = sdk(up, cache, threshold=0.8)
    chat(client, "how do I reset my password")
    cache.drain_sync()
    completion, headers = chat(client, "how do I reset my password please")
    assert headers["x-cache"] == "HIT" and headers["x-cache-match"] == "semantic"
    assert completion.choices[0].message.content == "echo: how do I reset my password"
    assert up.count("/v1/chat/completions") == 1


# -- who shares what ------------------------------------------------------------------------


def test_api_keys_never_share(cache: LLMCache, up: LocalOpenAIServer) -> None:
    chat(sdk(up, cache, key="sk-alpha"), "shared question")
    cache.drain_sync()
    assert chat(sdk(up, cache, key="sk-beta"), "shared question")[1]["x-cache"] == "MISS"
    assert chat(sdk(up, cache, key="sk-alpha"), "shared question")[1]["x-cache"] == "HIT"
    assert up.count("/v1/chat/completions") == 2


def test_two_upstreams_never_share(cache: LLMCache, up: LocalOpenAIServer) -> None:
    with LocalOpenAIServer(responder=lambda body: "the other API") as other:
        assert chat(sdk(up, cache), "same request")[1]["x-cache"] == "MISS"
        cache.drain_sync()
        completion, headers = chat(sdk(other, cache), "same request")
        assert headers["x-cache"] == "MISS"
        assert completion.choices[0].message.content == "the other API"


def test_a_tenant_callback_gets_the_httpx_request(cache: LLMCache, up: LocalOpenAIServer) -> None:
    seen: list[httpx.Request] = []

    def tenant(request: httpx.Request) -> str | None:
        seen.append(request)
        return request.headers.get("x-org")

    client = sdk(up, cache, tenant=tenant)
    for org in ("acme", "globex", "acme"):
        chat(client.with_options(default_headers={"x-org": org}), "per org")
        cache.drain_sync()
    assert [r.headers["x-org"] for r in seen] == ["acme", "globex", "acme"]
    assert up.count("/v1/chat/completions") == 2
    # No tenant and no allow_global: never cached, the call still goes through.
    completion, headers = chat(client, "per org")
    assert headers["x-cache"] == "BYPASS" and completion.choices[0].message.content


def test_options_are_checked_at_construction(cache: LLMCache) -> None:
    with pytest.raises(CacheConfigError, match="whose answers"):
        CacheTransport(cache=cache, tenant=None)
    with pytest.raises(CacheConfigError, match="threshold"):
        AsyncCacheTransport(cache=cache, threshold=2.0)
    CacheTransport(cache=cache, tenant=None, allow_global=True).close()


# -- what is not stored ------------------------------------------------------------------------


def test_upstream_errors_are_passed_on_and_never_stored(
    cache: LLMCache, up: LocalOpenAIServer, redis_sync: redis.Redis
) -> None:
    client = sdk(up, cache)
    up.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        chat(client, "flaky")
    assert entry_keys(redis_sync) == []
    assert chat(client, "flaky")[1]["x-cache"] == "MISS"  # not held by the failed flight
    cache.drain_sync()
    assert chat(client, "flaky")[1]["x-cache"] == "HIT"


def test_a_broken_stream_is_not_stored(
    cache: LLMCache, up: LocalOpenAIServer, redis_sync: redis.Redis
) -> None:
    client = sdk(up, cache)
    up.break_stream_after(2)
    with pytest.raises((httpx.HTTPError, openai.APIError)):
        chat_stream(client, "a stream that will break")
    cache.drain_sync()
    assert entry_keys(redis_sync) == []
    assert chat_stream(client, "a stream that will break")[1]["x-cache"] == "MISS"
    cache.drain_sync()
    assert chat_stream(client, "a stream that will break")[1]["x-cache"] == "HIT"


def _stream_request(client: httpx.Client, prompt: str) -> httpx.Request:
    body = {"model": MODEL, "messages": messages(prompt), "stream": True}
    return client.build_request(
        "POST", "/v1/chat/completions", json=body, headers={"authorization": "Bearer sk-a"}
    )


@pytest.mark.parametrize("how", ["closed early", "dropped unclosed"])
def test_a_stream_left_unread_stores_nothing_and_frees_its_flight(
    make_cache: MakeCache, up: LocalOpenAIServer, redis_sync: redis.Redis, how: str
) -> None:
    # A held flight would make the next identical call wait flight_wait, then fail open.
    cache = make_cache(budgets=Budgets(flight_wait=3.0, flight_lease=3.0))
    transport = CacheTransport(cache=cache, namespace="t")
    with httpx.Client(transport=transport, base_url=up.url) as client:
        reply = client.send(_stream_request(client, "left unread"), stream=True)
        assert reply.headers["x-cache"] == "MISS"
        next(reply.iter_raw())
        if how == "closed early":
            reply.close()
        else:
            del reply
            gc.collect()
        cache.drain_sync()
        assert entry_keys(redis_sync) == []
        again = client.send(_stream_request(client, "left unread"))
        assert again.headers["x-cache"] == "MISS" and b"[DONE]" in again.content
        r = last_result()
        assert r is not None and r.status == "miss", r


def test_a_compressed_answer_is_recorded_decoded(make_cache: MakeCache) -> None:
    cache = make_cache()
    server = LocalOpenAIServer()
    server.app = GZipMiddleware(server.app, minimum_size=0)  # type: ignore[assignment]
    with server:
        client = sdk(server, cache)
        first, headers = chat(client, "compress this answer please " * 20)
        assert headers["x-cache"] == "MISS"
        cache.drain_sync()
        second, headers = chat(client, "compress this answer please " * 20)
        assert headers["x-cache"] == "HIT"
        assert second.model_dump() == first.model_dump()
        assert server.count("/v1/chat/completions") == 1
        with httpx.Client() as plain:  # the upstream does compress
            body = {"model": MODEL, "messages": messages("x " * 300)}
            reply = plain.post(f"{server.base_url}/chat/completions", json=body)
            assert reply.headers["content-encoding"] == "gzip"


def test_request_cache_control_is_honoured(cache: LLMCache, up: LocalOpenAIServer) -> None:
    client = sdk(up, cache)
    chat(client, "controlled")
    cache.drain_sync()
    fresh, headers = chat(client, "controlled", extra_headers={"cache-control": "no-cache"})
    assert headers["x-cache"] == "MISS" and fresh.choices[0].message.content
    assert chat(client, "controlled")[1]["x-cache"] == "HIT"
    assert up.count("/v1/chat/completions") == 2


def test_other_endpoints_pass_through_untouched(cache: LLMCache, up: LocalOpenAIServer) -> None:
    # Embeddings are cached now (exact only: tests/test_apis.py); other endpoints are not.
    client = sdk(up, cache)
    raw_models = client.models.with_raw_response.list()
    assert "x-cache" not in raw_models.headers and len(raw_models.parse().data) > 0


def test_a_base_url_with_a_prefix_still_matches(cache: LLMCache, up: LocalOpenAIServer) -> None:
    # Gateways mount the API under a prefix of their own: the tail of the path matches.
    http = httpx.Client(transport=CacheTransport(cache=cache, namespace="t"))
    request = http.build_request(
        "POST",
        f"{up.url}/gateway/v1/chat/completions",
        json={"model": MODEL, "messages": messages("prefixed")},
        headers={"authorization": "Bearer sk-a"},
    )
    reply = http.send(request)
    assert reply.headers["x-cache"] == "MISS"  # the server answers any path under /
    http.close()


# -- standards and per-request control --------------------------------------------------------


def test_only_if_cached_never_reaches_the_upstream(cache: LLMCache, up: LocalOpenAIServer) -> None:
    client = sdk(up, cache)
    offline = {"cache-control": "only-if-cached"}
    with pytest.raises(openai.APIStatusError) as caught:
        chat(client, "not cached yet", extra_headers=offline)
    assert caught.value.status_code == 504
    assert caught.value.response.headers["x-cache"] == "MISS"
    assert up.count("/v1/chat/completions") == 0
    chat(client, "not cached yet")
    cache.drain_sync()
    completion, headers = chat(client, "not cached yet", extra_headers=offline)
    assert headers["x-cache"] == "HIT" and completion.choices[0].message.content
    assert up.count("/v1/chat/completions") == 1


def test_the_cache_body_field_is_honoured_and_never_sent_upstream(
    cache: LLMCache, up: LocalOpenAIServer
) -> None:
    client = sdk(up, cache)
    chat(client, "field", extra_body={"cache": {"no-store": True}})
    sent = up.last_call
    assert sent is not None and "cache" not in sent.json
    cache.drain_sync()
    # no-store kept it out of the cache; without the field the two requests share a key.
    assert chat(client, "field")[1]["x-cache"] == "MISS"
    cache.drain_sync()
    completion, headers = chat(client, "field", extra_body={"cache": {"s-maxage": 3600}})
    assert headers["x-cache"] == "HIT" and completion.choices[0].message.content
    with pytest.raises(openai.BadRequestError, match="cache"):
        chat(client, "field", extra_body={"cache": {"ttl": "soon"}})
    assert up.count("/v1/chat/completions") == 2


def test_cache_status_and_key_headers(cache: LLMCache, up: LocalOpenAIServer) -> None:
    client = sdk(up, cache)
    _, miss = chat(client, "standard headers")
    assert miss["cache-status"].startswith("cachekit; fwd=uri-miss")
    cache.drain_sync()
    _, hit = chat(client, "standard headers")
    assert hit["cache-status"].startswith("cachekit; hit")
    assert hit["x-cache-key"] == miss["x-cache-key"] and len(hit["x-cache-key"]) >= 16


def test_a_per_request_ttl_is_the_entry_ttl(
    cache: LLMCache, up: LocalOpenAIServer, redis_sync: redis.Redis
) -> None:
    client = sdk(up, cache)
    chat(client, "short lived", extra_headers={"x-cache-ttl": "120"})
    cache.drain_sync()
    (key,) = entry_keys(redis_sync)
    assert 100 < redis_sync.ttl(key) <= 120


def test_langchain_chat_openai_through_the_transport(
    cache: LLMCache, up: LocalOpenAIServer
) -> None:
    langchain_openai = pytest.importorskip("langchain_openai")
    http = httpx.Client(transport=CacheTransport(cache=cache, namespace="lc"))
    llm = langchain_openai.ChatOpenAI(
        model=MODEL, base_url=up.base_url, api_key="sk-lc", http_client=http, max_retries=0
    )
    first = llm.invoke("What is the capital of Italy?")
    cache.drain_sync()
    second = llm.invoke("What is the capital of Italy?")
    assert first.content == second.content == "echo: What is the capital of Italy?"
    assert up.count("/v1/chat/completions") == 1


async def test_anthropic_async_through_the_httpx2_transport(
    cache: LLMCache, up: LocalOpenAIServer
) -> None:
    anthropic = pytest.importorskip("anthropic")
    httpx2 = pytest.importorskip("httpx2")
    from cachekit.transport.httpx2 import AsyncCacheTransport as Httpx2AsyncCacheTransport

    http = httpx2.AsyncClient(transport=Httpx2AsyncCacheTransport(cache=cache, namespace="a"))
    client = anthropic.AsyncAnthropic(
        base_url=up.url, api_key="ak-async", max_retries=0, http_client=http
    )
    params: dict[str, Any] = {"model": "claude-sonnet-4", "max_tokens": 64}
    labels, texts = [], []
    for _ in range(2):
        raw = await client.messages.with_raw_response.create(
            messages=[{"role": "user", "content": "Hi async Claude"}], **params
        )
        labels.append(raw.headers["x-cache"])
        texts.append((await raw.parse()).content[0].text)
        await cache.drain()
    for _ in range(2):
        async with client.messages.stream(
            messages=[{"role": "user", "content": "Stream, async Claude"}], **params
        ) as stream:
            texts.append("".join([t async for t in stream.text_stream]))
            labels.append(stream.response.headers["x-cache"])
        await cache.drain()
    assert labels == ["MISS", "HIT", "MISS", "HIT"]
    assert texts == ["echo: Hi async Claude"] * 2 + ["echo: Stream, async Claude"] * 2
    assert up.count("/v1/messages") == 2
    await client.close()


# -- review findings: each of these failed before its fix -------------------------------------


class _SlowClose(httpx.AsyncByteStream):
    """The real upstream stream, closed slowly (a proxy that lingers)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __aiter__(self) -> Any:
        async for chunk in self.inner:
            yield chunk

    async def aclose(self) -> None:
        await asyncio.sleep(0.2)
        await self.inner.aclose()


class _SlowClosing(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        got = await self.inner.handle_async_request(request)
        stream = _SlowClose(got.stream)
        return httpx.Response(got.status_code, headers=got.headers, stream=stream)


async def test_a_close_cancelled_after_the_final_event_still_settles_the_flight(
    make_cache: MakeCache, up: LocalOpenAIServer
) -> None:
    cache = make_cache(budgets=Budgets(flight_wait=3.0, flight_lease=30.0))
    transport = AsyncCacheTransport(cache=cache, transport=_SlowClosing())
    body = {"model": MODEL, "stream": True, "messages": messages("closed while closing")}
    auth = {"authorization": "Bearer sk-a"}
    async with httpx.AsyncClient(transport=transport, headers=auth) as client:
        request = client.build_request("POST", f"{up.base_url}/chat/completions", json=body)
        reply = await client.send(request, stream=True)
        async for line in reply.aiter_lines():
            if line.startswith("data: [DONE]"):
                break  # what the openai SDK does
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reply.aclose(), 0.05)  # cancelled while closing
        again = await client.post(f"{up.base_url}/chat/completions", json=body)
        r = last_result()
        # Before the fix the flight stayed held: this call waited flight_wait, then failed open.
        assert r is not None and r.status == "exact", r
        assert again.headers["x-cache"] == "HIT" and b"[DONE]" in again.content
    assert up.count("/v1/chat/completions") == 1


async def _lingering_stream(request: Request) -> StreamingResponse:
    body = await request.json()

    def chunk(content: str | None, finish: str | None = None) -> str:
        delta = {"content": content} if content else {}
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        data = {"id": "c1", "object": "chat.completion.chunk", "created": 1}
        return "data: " + json.dumps({**data, "model": body["model"], "choices": [choice]})

    async def events() -> Any:
        yield f"{chunk('hello')}\n\n"
        yield f"{chunk(None, 'stop')}\n\n"
        yield "data: [DONE]\n\n"
        await asyncio.sleep(0.5)  # the body ends late: past the SDK's 0.1 s drain

    return StreamingResponse(events(), media_type="text/event-stream")


async def test_an_answer_whose_body_ends_late_is_still_stored(cache: LLMCache) -> None:
    app = Starlette(routes=[Route("/v1/chat/completions", _lingering_stream, methods=["POST"])])
    served = Served(app)
    try:
        http = httpx.AsyncClient(transport=AsyncCacheTransport(cache=cache, namespace="tail"))
        client = openai.AsyncOpenAI(
            base_url=f"{served.url}/v1", api_key="sk-a", max_retries=0, http_client=http
        )
        statuses = []
        for _ in range(2):
            stream = await client.chat.completions.create(
                model=MODEL, messages=messages("hi"), stream=True
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            assert text == "hello"
            r = last_result()
            assert r is not None
            statuses.append(r.status)
            await cache.drain()
        assert statuses == ["miss", "exact"]  # before the fix: "miss", "miss"
        await client.close()
    finally:
        served.stop()


def test_allow_global_still_keeps_api_keys_apart(cache: LLMCache, up: LocalOpenAIServer) -> None:
    # allow_global lets keyless requests share; before the fix it silently dropped the
    # API-key default, and a second key was served the first key's answer.
    alice = sdk(up, cache, key="sk-alice", allow_global=True)
    bob = sdk(up, cache, key="sk-bob", allow_global=True)
    assert chat(alice, "whose answer")[1]["x-cache"] == "MISS"
    cache.drain_sync()
    assert chat(bob, "whose answer")[1]["x-cache"] == "MISS"
    assert chat(alice, "whose answer")[1]["x-cache"] == "HIT"


def test_a_response_read_after_its_cache_closed_neither_raises_nor_restarts_the_loop(
    make_cache: MakeCache, up: LocalOpenAIServer
) -> None:
    cache = make_cache()
    with httpx.Client(transport=CacheTransport(cache=cache, namespace="t"), base_url=up.url) as c:
        reply = c.send(_stream_request(c, "read after close"), stream=True)
        assert reply.headers["x-cache"] == "MISS"
        cache.close()
        before = [t for t in threading.enumerate() if t.name == "cachekit-loop" and t.is_alive()]
        assert b"[DONE]" in reply.read()  # before the fix: CacheConfigError, cache is closed
        reply.close()
        after = [t for t in threading.enumerate() if t.name == "cachekit-loop" and t.is_alive()]
        assert len(after) <= len(before), "a closed cache started a new loop thread"
