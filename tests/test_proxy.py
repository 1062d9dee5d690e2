"""The caching proxy end to end: the official openai SDK -> proxy (uvicorn) -> a real
OpenAI-wire upstream (LocalOpenAIServer), with a real Redis behind the proxy."""

from __future__ import annotations

import inspect
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import redis
import uvicorn
from starlette.applications import Starlette

from cachekit import CacheConfigError, LLMCache
from cachekit._server import free_port
from cachekit.proxy import create_proxy_app
from tests._helpers import assert_no_traceback, bow_embedder, entry_keys
from tests.llm_server import LocalOpenAIServer

MODEL = "gpt-4o-mini"


def messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}]


class Served:
    """An ASGI app under uvicorn in a background thread, on a free loopback port."""

    def __init__(self, app: Starlette) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level=os.environ.get("PROXY_LOG", "critical"),
            access_log=False,
            lifespan="on",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "proxy did not start"
            time.sleep(0.005)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def up(upstream: LocalOpenAIServer) -> Iterator[LocalOpenAIServer]:
    upstream.reset()
    yield upstream
    upstream.reset()
    upstream.stream_delay = 0.0


@pytest.fixture
def proxy(cache: LLMCache, up: LocalOpenAIServer) -> Iterator[Served]:
    served = Served(create_proxy_app(cache, up.base_url))
    yield served
    served.stop()


def sync_client(proxy: Served, key: str = "sk-alpha", **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0, **kwargs)


def chat(client: openai.OpenAI, prompt: str, **kwargs: Any) -> tuple[str, httpx.Headers]:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages(prompt), **kwargs
    )
    completion = raw.parse()
    return completion.choices[0].message.content or "", raw.headers


def chat_stream(client: openai.OpenAI, prompt: str, **kwargs: Any) -> tuple[str, httpx.Headers]:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages(prompt), stream=True, **kwargs
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)
    return text, raw.headers


# -- hits ------------------------------------------------------------------------------------


def test_sync_non_stream_hit(proxy: Served, up: LocalOpenAIServer) -> None:
    client = sync_client(proxy, organization="org-1", project="proj-1")
    text, headers = chat(client, "What is Redis?")
    assert text == "echo: What is Redis?" and headers["x-cache"] == "MISS"
    again, headers = chat(client, "what is   redis?")
    assert again == text
    assert headers["x-cache"] == "HIT" and headers["x-cache-match"] == "exact"
    assert int(headers["age"]) >= 0
    assert up.count("/v1/chat/completions") == 1
    # The caller's credentials went upstream; the proxy holds none of its own.
    call = up.last_call
    assert call is not None and call.api_key == "sk-alpha"
    assert call.headers["openai-organization"] == "org-1"
    assert call.headers["openai-project"] == "proj-1"


def test_sync_stream_hit(proxy: Served, up: LocalOpenAIServer) -> None:
    client = sync_client(proxy)
    options = {"stream_options": {"include_usage": True}}
    text, headers = chat_stream(client, "stream me a reply", **options)
    assert text == "echo: stream me a reply" and headers["x-cache"] == "MISS"
    again, headers = chat_stream(client, "stream me a reply", **options)
    assert again == text and headers["x-cache"] == "HIT"
    assert headers["content-type"].startswith("text/event-stream")
    # Non-stream and stream answers never stand in for each other.
    assert chat(client, "stream me a reply")[1]["x-cache"] == "MISS"
    assert up.count("/v1/chat/completions") == 2


async def test_async_client_stream_and_non_stream(proxy: Served, up: LocalOpenAIServer) -> None:
    client = openai.AsyncOpenAI(base_url=f"{proxy.url}/v1", api_key="sk-async", max_retries=0)
    async with client:
        for _ in range(2):
            completion = await client.chat.completions.create(
                model=MODEL, messages=messages("async please")
            )
            assert completion.choices[0].message.content == "echo: async please"
        texts = []
        for _ in range(2):
            raw = await client.chat.completions.with_raw_response.create(
                model=MODEL, messages=messages("async stream"), stream=True
            )
            stream = raw.parse()
            if inspect.isawaitable(stream):
                stream = await stream
            parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
            texts.append(("".join(parts), raw.headers["x-cache"]))
        assert texts == [("echo: async stream", "MISS"), ("echo: async stream", "HIT")]
        legacy = [
            await client.completions.create(model="gpt-3.5-turbo-instruct", prompt="legacy")
            for _ in range(2)
        ]
        assert legacy[0].choices[0].text == legacy[1].choices[0].text == "echo: legacy"
    assert up.count("/v1/chat/completions") == 2
    assert up.count("/v1/completions") == 1


def test_semantic_hit(redis_url: str, up: LocalOpenAIServer) -> None:
    cache = LLMCache.from_url(redis_url, embedder=bow_embedder(), verifier=None)
    served = Served(create_proxy_app(cache, up.base_url, threshold=0.6))
    try:
        client = sync_client(served)
        text, headers = chat(client, "What is the capital of France?")
        assert headers["x-cache"] == "MISS"
        para, headers = chat(client, "Tell me the capital of France")
        assert para == text == "echo: What is the capital of France?"
        assert headers["x-cache"] == "HIT" and headers["x-cache-match"] == "semantic"
        assert float(headers["x-cache-similarity"]) >= 0.6
        assert up.count("/v1/chat/completions") == 1
    finally:
        served.stop()
        cache.close()


# -- tenants ---------------------------------------------------------------------------------


def test_api_keys_never_share(proxy: Served, up: LocalOpenAIServer) -> None:
    assert chat(sync_client(proxy, "sk-one"), "tenant test")[1]["x-cache"] == "MISS"
    assert chat(sync_client(proxy, "sk-one"), "tenant test")[1]["x-cache"] == "HIT"
    assert chat(sync_client(proxy, "sk-two"), "tenant test")[1]["x-cache"] == "MISS"
    body = {"model": MODEL, "messages": messages("tenant test")}
    for headers in ({}, {"authorization": "Bearer"}):
        reply = httpx.post(f"{proxy.url}/v1/chat/completions", json=body, headers=headers)
        assert reply.status_code == 200 and reply.headers["x-cache"] == "BYPASS"
    assert up.count("/v1/chat/completions") == 4


# -- what is not stored ------------------------------------------------------------------------


def test_no_store_and_max_age(proxy: Served, up: LocalOpenAIServer) -> None:
    client = sync_client(proxy)
    no_store = {"extra_headers": {"Cache-Control": "no-store"}}
    assert chat(client, "control", **no_store)[1]["x-cache"] == "MISS"
    assert chat(client, "control")[1]["x-cache"] == "MISS"
    assert chat(client, "control")[1]["x-cache"] == "HIT"
    old = {"extra_headers": {"Cache-Control": "max-age=0"}}
    assert chat(client, "control", **old)[1]["x-cache"] == "MISS"
    fresh = {"extra_headers": {"Cache-Control": "max-age=3600"}}
    assert chat(client, "control", **fresh)[1]["x-cache"] == "HIT"
    assert up.count("/v1/chat/completions") == 3


def test_error_responses_not_cached(proxy: Served, up: LocalOpenAIServer) -> None:
    client = sync_client(proxy)
    up.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        chat(client, "flaky")
    up.fail_next(429)
    with pytest.raises(openai.RateLimitError):
        chat(client, "flaky")
    text, headers = chat(client, "flaky")
    assert text == "echo: flaky" and headers["x-cache"] == "MISS"
    assert chat(client, "flaky")[1]["x-cache"] == "HIT"
    assert up.count("/v1/chat/completions") == 3


def test_interrupted_upstream_stream_not_cached(
    proxy: Served, up: LocalOpenAIServer, redis_sync: redis.Redis
) -> None:
    client = sync_client(proxy)
    up.break_stream_after(2)
    with pytest.raises((httpx.HTTPError, openai.APIError)):
        chat_stream(client, "a stream that will break")
    assert entry_keys(redis_sync) == []
    text, headers = chat_stream(client, "a stream that will break")
    assert text == "echo: a stream that will break" and headers["x-cache"] == "MISS"
    assert chat_stream(client, "a stream that will break")[1]["x-cache"] == "HIT"


def test_client_disconnect_mid_stream_not_cached(
    proxy: Served, up: LocalOpenAIServer, redis_sync: redis.Redis
) -> None:
    up.stream_delay = 0.1
    body = {
        "model": MODEL,
        "messages": messages("one two three four five six seven eight"),
        "stream": True,
    }
    headers = {"authorization": "Bearer sk-hangup"}
    started = time.monotonic()
    with (
        httpx.Client(base_url=proxy.url) as client,
        client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as reply,
    ):
        assert reply.headers["x-cache"] == "MISS"
        first = next(reply.iter_raw())
        # Chunks are relayed as they come: the first arrives long before the stream ends.
        assert first.startswith(b"data: ") and time.monotonic() - started < 1.0
    time.sleep(1.3)  # longer than the whole upstream stream
    assert entry_keys(redis_sync) == []


# -- pass-through and failures -----------------------------------------------------------------


def test_other_endpoints_pass_through_uncached(proxy: Served, up: LocalOpenAIServer) -> None:
    client = sync_client(proxy)
    for _ in range(2):
        raw = client.embeddings.with_raw_response.create(
            model="text-embedding-3-small", input="hi", dimensions=8
        )
        assert "x-cache" not in raw.headers
        assert len(raw.parse().data[0].embedding) == 8
    assert "gpt-4o-mini" in {m.id for m in client.models.list()}
    assert up.count("/v1/embeddings") == 2


def test_upstream_down_is_a_502_never_cached(cache: LLMCache) -> None:
    port = free_port()
    served = Served(create_proxy_app(cache, f"http://127.0.0.1:{port}/v1", timeout=5))
    try:
        for _ in range(2):
            with pytest.raises(openai.APIStatusError) as info:
                chat(sync_client(served), "anyone there?")
            assert info.value.status_code == 502
            assert info.value.response.headers["x-cache"] == "MISS"
    finally:
        served.stop()


def test_upstream_without_v1_suffix(cache: LLMCache, up: LocalOpenAIServer) -> None:
    served = Served(create_proxy_app(cache, up.url))
    try:
        assert chat(sync_client(served), "no suffix")[0] == "echo: no suffix"
        assert up.count("/v1/chat/completions") == 1
    finally:
        served.stop()


def test_bad_proxy_options(cache: LLMCache) -> None:
    with pytest.raises(CacheConfigError, match="upstream"):
        create_proxy_app(cache, "ftp://example.com")
    with pytest.raises(CacheConfigError, match="upstream"):
        create_proxy_app(cache, "not a url")
    with pytest.raises(CacheConfigError, match="timeout"):
        create_proxy_app(cache, "http://127.0.0.1:1/v1", timeout=0)
    with pytest.raises(CacheConfigError, match="threshold"):
        create_proxy_app(cache, "http://127.0.0.1:1/v1", threshold=3.0)
    with pytest.raises(CacheConfigError, match="cache"):
        create_proxy_app("redis://localhost", "http://127.0.0.1:1/v1")  # type: ignore[arg-type]


def test_run_proxy_serves_until_interrupted(redis_url: str, up: LocalOpenAIServer) -> None:
    port = free_port()
    code = (
        "from cachekit.proxy import run_proxy; "
        f"run_proxy({up.base_url!r}, port={port}, redis_url={redis_url!r}, log_level='warning')"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        body = {"model": MODEL, "messages": messages("via run_proxy")}
        headers = {"authorization": "Bearer sk-run"}
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                first = httpx.post(url, json=body, headers=headers)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "run_proxy did not start"
                time.sleep(0.1)
        assert first.headers["x-cache"] == "MISS"
        assert httpx.post(url, json=body, headers=headers).headers["x-cache"] == "HIT"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


def test_redis_down_proxy_starts_and_answers(up: LocalOpenAIServer) -> None:
    port = free_port()
    dead = LLMCache.from_url(f"redis://127.0.0.1:{port}/0")
    served = Served(create_proxy_app(dead, up.base_url))
    try:
        text, headers = chat(sync_client(served), "redis is down")
        assert text == "echo: redis is down" and headers["x-cache"] == "BYPASS"
    finally:
        served.stop()
        dead.close()


# -- hostile bodies ------------------------------------------------------------------------


def _deep(depth: int) -> Any:
    nested: Any = []
    for _ in range(depth):
        nested = [nested]
    return nested


def test_deeply_nested_body_via_the_sdk_passes_through(
    proxy: Served, up: LocalOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="uvicorn.error")  # the proxy's own error log
    client = sync_client(proxy)
    for _ in range(2):
        text, headers = chat(client, "deep", extra_body={"extra": _deep(490)})
        assert text == "echo: deep" and headers["x-cache"] == "BYPASS"
    assert up.count("/v1/chat/completions") == 2
    assert_no_traceback(caplog)


@pytest.mark.parametrize("depth", [490, 5000])
def test_deeply_nested_raw_body_passes_through(
    proxy: Served, up: LocalOpenAIServer, caplog: pytest.LogCaptureFixture, depth: int
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    head = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"extra":'
    raw = head + b"[" * depth + b"]" * depth + b"}"
    headers = {"authorization": "Bearer sk-deep", "content-type": "application/json"}
    direct = httpx.post(f"{up.base_url}/chat/completions", content=raw, headers=headers)
    assert direct.status_code in (200, 400)  # the upstream's own answer (400: too deep)
    for _ in range(2):
        reply = httpx.post(f"{proxy.url}/v1/chat/completions", content=raw, headers=headers)
        assert reply.status_code == direct.status_code, reply.text[:300]
        assert reply.headers["x-cache"] == "BYPASS"
    assert up.count("/v1/chat/completions") == 3
    assert_no_traceback(caplog)


def test_identical_concurrent_requests_are_each_counted_once(
    cache: LLMCache, proxy: Served, up: LocalOpenAIServer
) -> None:
    up.delay = 0.5  # every duplicate arrives while the first is upstream
    try:
        body = {"model": MODEL, "messages": messages("counted once each")}
        headers = {"authorization": "Bearer sk-count"}
        replies: list[httpx.Response] = []
        barrier = threading.Barrier(4)

        def one() -> None:
            barrier.wait(10)
            replies.append(
                httpx.post(f"{proxy.url}/v1/chat/completions", json=body, headers=headers)
            )

        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        up.delay = 0.0
    assert sorted(r.headers["x-cache"] for r in replies) == ["HIT", "HIT", "HIT", "MISS"]
    assert up.count("/v1/chat/completions") == 1
    cache.drain_sync()
    totals = cache.run_sync(cache.stats, "proxy", timeout=10).totals
    assert (totals.miss, totals.exact, totals.semantic) == (1, 3, 0)
