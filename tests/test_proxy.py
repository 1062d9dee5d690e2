"""The caching proxy end to end: the official openai SDK -> proxy (uvicorn) -> a real
OpenAI-wire upstream (LocalOpenAIServer), with a real Redis behind the proxy."""

from __future__ import annotations

import importlib.metadata
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
    # Embeddings are cached now (exact only: tests/test_apis.py); other endpoints are not.
    client = sync_client(proxy)
    for _ in range(2):
        raw = client.models.with_raw_response.list()
        assert "x-cache" not in raw.headers
        assert "gpt-4o-mini" in {m.id for m in raw.parse()}
    assert up.count("/v1/models") == 2


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


# -- standards and per-request control (the real SDK) -------------------------------------------


def cache_status(headers: httpx.Headers) -> dict[str, str | bool]:
    """cachekit's RFC 9211 member (the last one) as {param: value}."""
    member: dict[str, str | bool] = {}
    name, *params = (p.strip() for p in headers.get_list("cache-status")[-1].split(";"))
    assert name == "cachekit"
    for param in params:
        key, sep, value = param.partition("=")
        member[key] = value.strip('"') if sep else True
    return member


def test_the_cache_body_field_is_honoured_and_never_forwarded(
    proxy: Served, up: LocalOpenAIServer, redis_sync: redis.Redis
) -> None:
    client = sync_client(proxy)
    text, first = chat(client, "litellm style", extra_body={"cache": {"ttl": 120}})
    assert text == "echo: litellm style" and first["x-cache"] == "MISS"
    call = up.last_call
    assert call is not None and "cache" not in call.body and call.body["model"] == MODEL
    digest = first["x-cache-key"]
    (key,) = entry_keys(redis_sync, "proxy")
    assert key.decode().endswith(f":e:{digest}") and 0 < redis_sync.ttl(key) <= 120
    # Only the cache field differs: the same entry, the upstream is not asked again.
    _, again = chat(client, "litellm style")
    _, other = chat(client, "litellm style", extra_body={"cache": {"s-maxage": 3600}})
    assert again["x-cache"] == other["x-cache"] == "HIT"
    assert again["x-cache-key"] == other["x-cache-key"] == digest
    assert up.count("/v1/chat/completions") == 1
    _, fresh = chat(client, "litellm style", extra_body={"cache": {"no-cache": True}})
    assert fresh["x-cache"] == "MISS" and cache_status(fresh)["fwd"] == "request"
    assert "cache" not in up.last_call.body  # type: ignore[union-attr]
    with pytest.raises(openai.BadRequestError) as info:
        chat(client, "litellm style", extra_body={"cache": {"ttl": "forever"}})
    assert "cache.ttl" in str(info.value)
    assert up.count("/v1/chat/completions") == 2


def test_cache_status_through_the_proxy(proxy: Served, up: LocalOpenAIServer) -> None:
    client = sync_client(proxy)
    _, miss = chat(client, "status please")
    assert cache_status(miss) == {
        "fwd": "uri-miss",
        "fwd-status": "200",
        "key": miss["x-cache-key"],
    }
    _, hit = chat(client, "status please")
    status = cache_status(hit)
    assert status["hit"] is True and status["detail"] == "exact" and "ttl" not in status
    _, stream = chat_stream(client, "status please")  # another key: never the JSON answer
    assert cache_status(stream)["fwd"] == "uri-miss"
    assert stream["x-cache-key"] != miss["x-cache-key"]


def test_only_if_cached_through_the_proxy_never_reaches_the_upstream(
    proxy: Served, up: LocalOpenAIServer
) -> None:
    client = sync_client(proxy).with_options(default_headers={"Cache-Control": "only-if-cached"})
    with pytest.raises(openai.APIStatusError) as info:
        chat(client, "offline question")
    assert info.value.status_code == 504
    assert info.value.response.json()["error"]["code"] == "only_if_cached"
    assert up.count() == 0
    chat(sync_client(proxy), "offline question")  # now it is cached
    text, headers = chat(client, "offline question")
    assert text == "echo: offline question" and headers["x-cache"] == "HIT"
    assert up.count() == 1


def test_offline_replay_mode(cache: LLMCache, up: LocalOpenAIServer) -> None:
    online = Served(create_proxy_app(cache, up.base_url))
    offline = Served(create_proxy_app(cache, up.base_url, only_if_cached=True))
    try:
        chat(sync_client(online), "recorded once")
        assert up.count() == 1
        text, headers = chat(sync_client(offline), "recorded once")
        assert text == "echo: recorded once" and headers["x-cache"] == "HIT"
        with pytest.raises(openai.APIStatusError) as info:
            chat(sync_client(offline), "never recorded")
        assert info.value.status_code == 504
        with pytest.raises(openai.APIStatusError) as info:
            sync_client(offline).models.list()  # not a cached endpoint: not forwarded either
        assert info.value.status_code == 504
        assert up.count() == 1
        assert httpx.get(f"{offline.url}/healthz").json()["mode"] == "offline"
    finally:
        online.stop()
        offline.stop()


def test_x_cache_key_explains_through_the_cli(
    proxy: Served, up: LocalOpenAIServer, redis_url: str
) -> None:
    from click.testing import CliRunner

    from cachekit.cli import cli

    _, headers = chat(sync_client(proxy, "sk-explained"), "explain this key")
    digest = headers["x-cache-key"]
    assert "sk-explained" not in str(dict(headers))
    runner = CliRunner(env={"CACHEKIT_REDIS_URL": redis_url})
    result = runner.invoke(cli, ["explain", "--key", digest])  # namespace proxy by default
    assert result.exit_code == 0, result.output
    assert "Verdict: HIT (exact)" in result.output and "explain this key" in result.output


def test_healthz_up_and_down(up: LocalOpenAIServer, own_server: Any) -> None:
    cache = LLMCache.from_url(own_server.url)
    served = Served(create_proxy_app(cache, up.base_url))
    try:
        healthy = httpx.get(f"{served.url}/healthz")
        assert healthy.status_code == 200 and healthy.json()["status"] == "ok"
        assert healthy.headers["cache-control"] == "no-store" and "x-cache" not in healthy.headers
        own_server.stop()
        down = httpx.get(f"{served.url}/healthz")
        assert down.status_code == 503
        problem = down.json()["redis"]
        assert problem.startswith("unreachable: ") and "Error" in problem
        own_server.start()
        assert httpx.get(f"{served.url}/healthz").status_code == 200
        assert up.count() == 0  # never forwarded
    finally:
        served.stop()
        cache.close()


def test_metrics_endpoint_has_the_new_series(proxy: Served, up: LocalOpenAIServer) -> None:
    client = sync_client(proxy)
    chat(client, "metrics please")
    chat(client, "metrics please")
    httpx.post(f"{proxy.url}/v1/chat/completions", json={"model": MODEL, "messages": []})
    text = httpx.get(f"{proxy.url}/metrics").text
    assert up.count("/metrics") == 0
    version = importlib.metadata.version("cachekit")
    assert f'cachekit_build_info{{version="{version}"}} 1.0' in text
    assert 'cachekit_breaker_open{breaker="node"} 0.0' in text
    assert "cachekit_dropped_stores_total 0.0" in text
    assert 'cachekit_hits_total{layer="exact",namespace="proxy"} 1.0' in text
    # The echo server counts words: "Be brief." + "metrics please" in, "echo: ..." out.
    assert (
        'cachekit_tokens_saved_total{direction="input",namespace="proxy",source="reported"} 4.0'
        in text
    )
    assert (
        'cachekit_tokens_saved_total{direction="output",namespace="proxy",source="reported"} 3.0'
        in text
    )
    saved = [line for line in text.splitlines() if line.startswith("cachekit_saved_usd_total{")]
    assert saved and float(saved[0].split()[-1]) > 0
    assert 'cachekit_bypasses_total{namespace="proxy",reason="no_tenant"} 1.0' in text
    assert "process_cpu_seconds_total" in text  # the proxy's registry has the process too
