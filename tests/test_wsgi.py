"""WSGICacheMiddleware in front of a real Flask app, on a real Redis (and real HTTP)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

from cachekit import CacheConfigError, CacheResult, LLMCache
from cachekit._server import free_port
from cachekit.middleware import WSGICacheMiddleware, api_key_tenant
from tests._helpers import bow_embedder, entry_keys, put_payload

CHAT = "/v1/chat/completions"


def chat_body(prompt: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": prompt},
        ],
        **extra,
    }


class FlaskLLM:
    """A real Flask app answering chat completions, JSON or SSE."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []
        self.status = 200
        self.break_after: int | None = None
        self.chunk_delay = 0.0
        app = Flask("fake_llm")

        @app.post(CHAT)
        def chat() -> Any:
            raw = request.get_data()
            self.calls.append(raw)
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                return jsonify(error="bad body", received=len(raw)), 400
            text = "echo: " + body["messages"][-1]["content"]
            n = len(self.calls)
            if body.get("stream"):
                broken, delay = self.break_after, self.chunk_delay

                def events() -> Iterator[str]:
                    for i, word in enumerate(text.split(" ")):
                        if broken is not None and i >= broken:
                            raise RuntimeError("the model broke the stream")
                        chunk = {"id": f"c{n}", "choices": [{"delta": {"content": word}}]}
                        yield f"data: {json.dumps(chunk)}\n\n"
                        time.sleep(delay)
                    yield "data: [DONE]\n\n"

                return Response(events(), mimetype="text/event-stream")
            payload = {
                "id": f"chatcmpl-{n}",
                "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7},
            }
            return jsonify(payload), self.status

        @app.get("/health")
        def health() -> Any:
            return jsonify(status="ok")

        self.flask = app


@pytest.fixture
def llm() -> FlaskLLM:
    return FlaskLLM()


def wrap(llm: FlaskLLM, cache: LLMCache, **options: Any) -> FlaskLLM:
    options.setdefault("allow_global", True)
    llm.flask.wsgi_app = WSGICacheMiddleware(  # type: ignore[method-assign]
        llm.flask.wsgi_app, cache=cache, **options
    )
    return llm


def post(llm: FlaskLLM, body: Any = None, **kwargs: Any) -> TestResponse:
    # buffered=True: the test client closes the response iterable, like a real server.
    client = llm.flask.test_client()
    if body is not None:
        kwargs["json"] = body
    return client.post(CHAT, buffered=True, **kwargs)


def test_flask_miss_then_hit(llm: FlaskLLM, cache: LLMCache, redis_sync: redis.Redis) -> None:
    results: list[CacheResult] = []
    wrap(llm, cache, on_result=results.append, ttl=60)
    first = post(llm, chat_body("Hello Flask"))
    assert first.status_code == 200 and first.headers["X-Cache"] == "MISS"
    second = post(llm, chat_body("hello   flask"))
    assert second.headers["X-Cache"] == "HIT" and second.headers["X-Cache-Match"] == "exact"
    assert second.data == first.data
    assert second.headers["Content-Type"] == "application/json"
    assert int(second.headers["Content-Length"]) == len(first.data)
    assert len(llm.calls) == 1
    assert [r.status for r in results] == ["miss", "exact"]
    (key,) = entry_keys(redis_sync)
    assert redis_sync.hget(key, "ti") == b"4" and 0 < redis_sync.ttl(key) <= 60
    health = llm.flask.test_client().get("/health")
    assert health.json == {"status": "ok"} and "X-Cache" not in health.headers


def test_flask_semantic_hit(llm: FlaskLLM, redis_url: str) -> None:
    c = LLMCache.from_url(redis_url, embedder=bow_embedder(), verifier=None)
    try:
        wrap(llm, c, threshold=0.6)
        assert post(llm, chat_body("What is the capital of France?")).headers["X-Cache"] == "MISS"
        para = post(llm, chat_body("Tell me the capital of France"))
        assert para.headers["X-Cache"] == "HIT" and para.headers["X-Cache-Match"] == "semantic"
        assert float(para.headers["X-Cache-Similarity"]) >= 0.6
        assert len(llm.calls) == 1
    finally:
        c.close()


def test_flask_stream_recorded_and_replayed(llm: FlaskLLM, cache: LLMCache) -> None:
    wrap(llm, cache)
    body = chat_body("stream from flask", stream=True)
    first = post(llm, body)
    assert first.headers["X-Cache"] == "MISS"
    second = post(llm, body)
    assert second.headers["X-Cache"] == "HIT"
    assert second.mimetype == "text/event-stream"
    assert second.data == first.data
    assert second.data.endswith(b"data: [DONE]\n\n")
    assert len(llm.calls) == 1


def test_flask_stream_error_is_not_stored(
    llm: FlaskLLM, cache: LLMCache, redis_sync: redis.Redis
) -> None:
    wrap(llm, cache)
    llm.break_after = 1
    body = chat_body("a stream that breaks", stream=True)
    with pytest.raises(RuntimeError, match="broke the stream"):
        post(llm, body)
    assert entry_keys(redis_sync) == []
    llm.break_after = None
    assert post(llm, body).headers["X-Cache"] == "MISS"
    assert post(llm, body).headers["X-Cache"] == "HIT"


def test_flask_errors_and_no_store_not_stored(llm: FlaskLLM, cache: LLMCache) -> None:
    wrap(llm, cache)
    llm.status = 503
    for _ in range(2):
        assert post(llm, chat_body("err")).headers["X-Cache"] == "MISS"
    llm.status = 200
    headers = {"Cache-Control": "no-store"}
    assert post(llm, chat_body("err"), headers=headers).headers["X-Cache"] == "MISS"
    assert post(llm, chat_body("err")).headers["X-Cache"] == "MISS"
    assert post(llm, chat_body("err")).headers["X-Cache"] == "HIT"
    refreshed = post(llm, chat_body("err"), headers={"Cache-Control": "no-cache"})
    assert refreshed.headers["X-Cache"] == "MISS"
    assert (
        post(llm, chat_body("err"), headers={"Cache-Control": "max-age=0"}).headers["X-Cache"]
        == "MISS"
    )
    assert len(llm.calls) == 6


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"prompt=hi", "application/x-www-form-urlencoded"),
        (b"", "application/json"),
    ],
)
def test_flask_bad_bodies_bypass_untouched(
    llm: FlaskLLM, cache: LLMCache, data: bytes, content_type: str
) -> None:
    wrap(llm, cache)
    reply = post(llm, data=data, content_type=content_type)
    assert reply.status_code == 400 and reply.headers["X-Cache"] == "BYPASS"
    assert llm.calls == [data]


def test_flask_oversized_body_bypasses_untouched(llm: FlaskLLM, cache: LLMCache) -> None:
    wrap(llm, cache, max_body_bytes=1000)
    raw = json.dumps(chat_body("z" * 3000)).encode()
    reply = post(llm, data=raw, content_type="application/json")
    assert reply.status_code == 200 and reply.headers["X-Cache"] == "BYPASS"
    assert llm.calls == [raw]


def test_flask_corrupt_entry_is_a_miss(
    llm: FlaskLLM, cache: LLMCache, redis_sync: redis.Redis
) -> None:
    wrap(llm, cache)
    post(llm, chat_body("corrupt me"))
    (key,) = entry_keys(redis_sync)
    put_payload(redis_sync, key, b"\x00not an envelope")
    reply = post(llm, chat_body("corrupt me"))
    assert reply.status_code == 200 and reply.headers["X-Cache"] == "MISS"
    assert post(llm, chat_body("corrupt me")).headers["X-Cache"] == "HIT"
    assert len(llm.calls) == 2


def test_flask_redis_unreachable_fails_open(llm: FlaskLLM) -> None:
    port = free_port()
    dead = LLMCache.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        wrap(llm, dead)
        reply = post(llm, chat_body("answer anyway"))
        assert reply.status_code == 200 and reply.headers["X-Cache"] == "BYPASS"
        assert reply.json["choices"][0]["message"]["content"] == "echo: answer anyway"
    finally:
        dead.close()


def test_flask_tenants_from_environ(llm: FlaskLLM, cache: LLMCache) -> None:
    wrap(llm, cache, tenant=api_key_tenant, allow_global=False)
    body = chat_body("per key")

    def label(key: str | None) -> str:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return post(llm, body, headers=headers).headers["X-Cache"]

    assert label("sk-a") == "MISS"
    assert label("sk-a") == "HIT"
    assert label("sk-b") == "MISS"
    assert label(None) == "BYPASS"


@pytest.mark.parametrize("empty", ["", "   "])
def test_flask_empty_tenant_bypasses_like_a_missing_one(
    llm: FlaskLLM, cache: LLMCache, empty: str
) -> None:
    def tenant(environ: dict[str, Any]) -> str | None:
        value = environ.get("HTTP_X_TENANT_ID")
        return value if isinstance(value, str) else None

    wrap(llm, cache, tenant=tenant, allow_global=False)
    body = chat_body("whose answer is this")
    for _ in range(2):
        assert post(llm, body, headers={"X-Tenant-Id": empty}).headers["X-Cache"] == "BYPASS"
    assert len(llm.calls) == 2


def test_flask_empty_tenant_is_the_global_tenant_when_allowed(
    llm: FlaskLLM, cache: LLMCache
) -> None:
    def tenant(environ: dict[str, Any]) -> str | None:
        value = environ.get("HTTP_X_TENANT_ID")
        return value if isinstance(value, str) else None

    wrap(llm, cache, tenant=tenant, allow_global=True)
    body = chat_body("a global answer")
    assert post(llm, body).headers["X-Cache"] == "MISS"
    assert post(llm, body, headers={"X-Tenant-Id": ""}).headers["X-Cache"] == "HIT"


def test_flask_async_tenant_is_refused_per_request(llm: FlaskLLM, cache: LLMCache) -> None:
    async def tenant(environ: dict[str, Any]) -> str:
        return "t"

    wrap(llm, cache, tenant=tenant)
    assert post(llm, chat_body("async tenant")).headers["X-Cache"] == "BYPASS"


def test_wsgi_bad_options() -> None:
    with pytest.raises(CacheConfigError, match="allow_global"):
        WSGICacheMiddleware(FlaskLLM().flask.wsgi_app)
    with pytest.raises(CacheConfigError, match="threshold"):
        WSGICacheMiddleware(FlaskLLM().flask.wsgi_app, allow_global=True, threshold=2)


async def test_wsgi_on_the_cache_loop_thread_bypasses(llm: FlaskLLM, cache: LLMCache) -> None:
    await cache.connect()  # this loop is now the cache's home loop
    wrap(llm, cache)
    # A sync WSGI call on the home loop's thread cannot wait for it: bypass, no deadlock.
    reply = post(llm, chat_body("same thread"))
    assert reply.status_code == 200 and reply.headers["X-Cache"] == "BYPASS"


# -- real HTTP: a threaded werkzeug server -------------------------------------------------


@pytest.fixture
def served(llm: FlaskLLM, cache: LLMCache) -> Iterator[str]:
    wrap(llm, cache)
    server = make_server("127.0.0.1", 0, llm.flask, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def test_real_server_stream_and_concurrent_hits(served: str, llm: FlaskLLM) -> None:
    body = chat_body("over real http", stream=True)
    with httpx.Client(base_url=served) as client:
        first = client.post(CHAT, json=body)
        assert first.headers["x-cache"] == "MISS"
        results: list[httpx.Response] = []

        def hit() -> None:
            results.append(client.post(CHAT, json=body))

        threads = [threading.Thread(target=hit) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert [r.headers["x-cache"] for r in results] == ["HIT"] * 8
    assert all(r.content == first.content for r in results)
    assert len(llm.calls) == 1


def test_real_server_client_disconnect_stores_nothing(
    served: str, llm: FlaskLLM, redis_sync: redis.Redis
) -> None:
    llm.chunk_delay = 0.05
    body = chat_body("one two three four five six seven eight nine ten", stream=True)
    with httpx.Client(base_url=served) as client, client.stream("POST", CHAT, json=body) as reply:
        assert reply.headers["x-cache"] == "MISS"
        for _ in reply.iter_raw(16):
            break  # hang up after the first bytes
    time.sleep(0.8)  # the server notices the broken pipe on its next write
    assert entry_keys(redis_sync) == []


# -- clients and servers that do not buffer the response -----------------------------------


def list_app(calls: list[bytes]) -> Any:
    """A bare PEP 3333 app whose body is a list (what most frameworks return)."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        calls.append(raw)
        body = json.dumps({"model": "m", "answer": f"call {len(calls)}"}).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


def test_unbuffered_werkzeug_client_gets_the_body_once_and_stores(cache: LLMCache) -> None:
    from werkzeug.test import Client

    calls: list[bytes] = []
    client = Client(WSGICacheMiddleware(list_app(calls), cache=cache, allow_global=True))
    body = chat_body("list body")
    first = client.post(CHAT, json=body)  # not buffered, never closed by the caller
    assert first.headers["X-Cache"] == "MISS"
    assert json.loads(first.data) == {"model": "m", "answer": "call 1"}  # once, not twice
    second = client.post(CHAT, json=body)
    assert second.headers["X-Cache"] == "HIT" and second.data == first.data
    assert len(calls) == 1


def test_flask_default_test_client_stores(llm: FlaskLLM, cache: LLMCache) -> None:
    wrap(llm, cache)
    client = llm.flask.test_client()  # the default: buffered=False, the response not closed
    first = client.post(CHAT, json=chat_body("default client"))
    assert first.headers["X-Cache"] == "MISS" and first.json is not None
    second = client.post(CHAT, json=chat_body("default client"))
    assert second.headers["X-Cache"] == "HIT" and second.data == first.data
    assert len(llm.calls) == 1


def test_httpx_wsgi_transport_gets_the_body_once_and_stores(cache: LLMCache) -> None:
    calls: list[bytes] = []
    app = WSGICacheMiddleware(list_app(calls), cache=cache, allow_global=True)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t") as client:
        first = client.post(CHAT, json=chat_body("via httpx"))
        assert first.headers["x-cache"] == "MISS"
        assert first.json() == {"model": "m", "answer": "call 1"}
        second = client.post(CHAT, json=chat_body("via httpx"))
        assert second.headers["x-cache"] == "HIT" and second.content == first.content
    assert len(calls) == 1


def test_real_wsgiref_server_list_body(cache: LLMCache) -> None:
    from wsgiref.simple_server import WSGIRequestHandler
    from wsgiref.simple_server import make_server as make_wsgiref

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    calls: list[bytes] = []
    app = WSGICacheMiddleware(list_app(calls), cache=cache, allow_global=True)
    server = make_wsgiref("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.server_port}") as client:
            replies = [client.post(CHAT, json=chat_body("over wsgiref")) for _ in range(3)]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert [r.headers["x-cache"] for r in replies] == ["MISS", "HIT", "HIT"]
    assert all(r.json() == {"model": "m", "answer": "call 1"} for r in replies)
    assert len(calls) == 1


@pytest.mark.parametrize("depth", [490, 5000])
def test_deeply_nested_body_passes_through(
    cache: LLMCache, caplog: pytest.LogCaptureFixture, depth: int
) -> None:
    head = b'{"model":"m","messages":[{"role":"user","content":"hi"}],"extra":'
    raw = head + b"[" * depth + b"]" * depth + b"}"
    calls: list[bytes] = []
    app = WSGICacheMiddleware(list_app(calls), cache=cache, allow_global=True)
    caplog.set_level(logging.DEBUG)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t") as client:
        for _ in range(2):
            reply = client.post(CHAT, content=raw, headers={"content-type": "application/json"})
            assert reply.status_code == 200 and reply.headers["x-cache"] == "BYPASS"
    assert calls == [raw, raw]  # the app got the body untouched
    noisy = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not noisy, [r.getMessage()[:200] for r in noisy]


def test_flask_hit_replays_the_apps_headers(cache: LLMCache) -> None:
    app = Flask("headers")
    calls: list[int] = []

    @app.post(CHAT)
    def chat() -> Any:
        calls.append(1)
        response = jsonify(answer=len(calls))
        response.headers["X-Request-Model"] = "gpt-4o-mini-2024-07-18"
        response.headers["OpenAI-Processing-Ms"] = "412"
        response.headers["X-Secret"] = "first caller only"
        response.headers["Cache-Control"] = 'no-cache="X-Secret"'
        response.headers["Date"] = "Mon, 01 Jan 2024 00:00:00 GMT"
        response.set_cookie("session", "abc123")
        return response

    app.wsgi_app = WSGICacheMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, cache=cache, allow_global=True
    )
    client = app.test_client()
    first = client.post(CHAT, json=chat_body("headers"), buffered=True)
    assert first.headers["X-Cache"] == "MISS" and "Set-Cookie" in first.headers
    hit = client.post(CHAT, json=chat_body("headers"), buffered=True)
    assert hit.headers["X-Cache"] == "HIT" and hit.data == first.data
    assert hit.headers["X-Request-Model"] == "gpt-4o-mini-2024-07-18"
    assert hit.headers["OpenAI-Processing-Ms"] == "412"
    assert int(hit.headers["Content-Length"]) == len(hit.data)
    for name in ("Set-Cookie", "X-Secret", "Date"):
        assert name not in hit.headers, name
    assert len(calls) == 1


def test_a_response_dropped_without_close_frees_its_flight_and_lock(
    cache: LLMCache, redis_sync: redis.Redis
) -> None:
    """A non-compliant server that drops the iterable mid-stream (no close())."""
    import gc

    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        yield b'data: {"choices": [{"delta": {"content": "a"}}]}\n\n'
        yield b"data: [DONE]\n\n"

    mw = WSGICacheMiddleware(app, cache=cache, allow_global=True)
    body = json.dumps(
        {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    )
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/v1/chat/completions",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": __import__("io").BytesIO(body.encode()),
    }
    results: list[CacheResult] = []
    cache.observers.append(results.append)
    it = mw(environ, lambda status, headers, exc_info=None: None)
    assert next(iter(it)).startswith(b"data:")
    assert len(cache.flights) == 1
    del it
    gc.collect()
    cache.drain_sync()
    time.sleep(0.2)
    assert len(cache.flights) == 0
    assert list(redis_sync.scan_iter("ck:*:lk:*")) == []
    assert results and results[-1].status == "miss" and not results[-1].stored
    assert results[-1].reason == "response dropped without close()"
