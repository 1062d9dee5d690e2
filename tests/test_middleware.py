"""CacheMiddleware (ASGI) in front of real Starlette and FastAPI apps, on a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.types import Message
from starlette.websockets import WebSocket

from cachekit import CacheConfigError, CacheControl, CacheResult, LLMCache
from cachekit._server import free_port
from cachekit.middleware import CacheMiddleware, api_key_tenant, parse_cache_control
from tests._helpers import MakeCache, assert_no_traceback, bow_embedder, entry_keys

CHAT = "/v1/chat/completions"


def chat_body(prompt: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": prompt},
        ],
    }
    body.update(extra)
    return body


class FakeLLM:
    """A real Starlette app answering in the OpenAI chat-completions shape."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []
        self.status = 200
        self.headers: dict[str, str] = {}
        self.media_type = "application/json"
        self.break_after: int | None = None
        self.pad = 0
        self.app = Starlette(
            routes=[
                Route(CHAT, self.chat, methods=["POST", "GET"]),
                Route("/v1/completions", self.chat, methods=["POST"]),
                Route("/other", self.chat, methods=["POST"]),
                WebSocketRoute("/ws", self.ws),
            ]
        )

    async def ws(self, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    async def chat(self, request: Request) -> Response:
        raw = await request.body()
        self.calls.append(raw)
        try:
            body = json.loads(raw)
        except ValueError:
            return JSONResponse({"error": "bad json", "received": len(raw)}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "not an object", "received": len(raw)}, status_code=400)
        messages = body.get("messages") or [{"role": "user", "content": body.get("prompt", "")}]
        text = f"echo: {messages[-1]['content']}" + "x" * self.pad
        n = len(self.calls)
        if body.get("stream"):
            pieces = text.split(" ")
            broken = self.break_after

            async def events() -> AsyncIterator[str]:
                for i, piece in enumerate(pieces):
                    if broken is not None and i >= broken:
                        raise RuntimeError("the model server broke the stream")
                    chunk = {"id": f"c{n}", "choices": [{"index": 0, "delta": {"content": piece}}]}
                    yield f"data: {json.dumps(chunk)}\n\n"
                    await asyncio.sleep(0)
                usage = {"prompt_tokens": 3, "completion_tokens": len(pieces)}
                yield f"data: {json.dumps({'id': f'c{n}', 'choices': [], 'usage': usage})}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        payload = {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion",
            "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
        }
        content = json.dumps(payload).encode()
        if self.headers.get("content-encoding") == "gzip":
            content = gzip.compress(content)
        return Response(
            content,
            status_code=self.status,
            headers=self.headers,
            media_type=self.media_type,
        )


@pytest.fixture
def semantic_cache(make_cache: MakeCache) -> LLMCache:
    return make_cache(embedder=bow_embedder())


@pytest.fixture
def fake() -> FakeLLM:
    return FakeLLM()


def client_for(fake: FakeLLM, cache: LLMCache, **options: Any) -> TestClient:
    options.setdefault("allow_global", True)
    return TestClient(CacheMiddleware(fake.app, cache=cache, **options))


# -- the basic contract --------------------------------------------------------------------


def test_miss_then_exact_hit_is_byte_identical(fake: FakeLLM, cache: LLMCache) -> None:
    with client_for(fake, cache) as client:
        first = client.post(CHAT, json=chat_body("What is 2+2?"))
        assert first.status_code == 200
        assert first.headers["x-cache"] == "MISS"
        assert "x-cache-match" not in first.headers
        second = client.post(CHAT, json=chat_body("  what is   2+2?"))
        assert second.headers["x-cache"] == "HIT"
        assert second.headers["x-cache-match"] == "exact"
        assert int(second.headers["age"]) >= 0
        assert second.headers["content-type"] == "application/json"
        assert second.content == first.content
        assert len(fake.calls) == 1


def test_scope_parts_never_share(fake: FakeLLM, cache: LLMCache) -> None:
    with client_for(fake, cache) as client:
        assert client.post(CHAT, json=chat_body("Hi")).headers["x-cache"] == "MISS"
        variants = [
            chat_body("Hi", model="gpt-4o"),
            chat_body("Hi", temperature=0.9),
            chat_body("Hi", tools=[{"type": "function", "function": {"name": "f"}}]),
            {**chat_body("Hi"), "messages": [{"role": "user", "content": "Hi"}]},
        ]
        for body in variants:
            assert client.post(CHAT, json=body).headers["x-cache"] == "MISS"
        # A legacy completion of the same text is another endpoint: another answer.
        legacy = client.post("/v1/completions", json={"model": "gpt-4o-mini", "prompt": "Hi"})
        assert legacy.headers["x-cache"] == "MISS"
        assert client.post(CHAT, json=chat_body("Hi", user="someone")).headers["x-cache"] == "HIT"
        assert len(fake.calls) == 6


def test_legacy_prompt_body(fake: FakeLLM, cache: LLMCache) -> None:
    with client_for(fake, cache) as client:
        body = {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi", "max_tokens": 5}
        assert client.post("/v1/completions", json=body).headers["x-cache"] == "MISS"
        assert client.post("/v1/completions", json=body).headers["x-cache"] == "HIT"
        assert len(fake.calls) == 1


def test_unhandled_paths_methods_and_scopes_pass_through(fake: FakeLLM, cache: LLMCache) -> None:
    with client_for(fake, cache) as client:  # the context runs the lifespan through it
        other = client.post("/other", json=chat_body("Hi"))
        assert other.status_code == 200 and "x-cache" not in other.headers
        got = client.get(CHAT)
        assert "x-cache" not in got.headers
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_text() == "hello"


def test_prefix_paths(fake: FakeLLM, cache: LLMCache) -> None:
    with client_for(fake, cache, paths=["/v1/*"]) as client:
        assert client.post("/v1/completions", json=chat_body("a")).headers["x-cache"] == "MISS"
        assert client.post("/other", json=chat_body("a")).headers.get("x-cache") is None


def test_usage_and_ttl_are_stored(fake: FakeLLM, cache: LLMCache, redis_sync: redis.Redis) -> None:
    with client_for(fake, cache, namespace="usage", ttl=120) as client:
        client.post(CHAT, json=chat_body("count me"))
        client.post(CHAT, json=chat_body("count me"))
    (key,) = entry_keys(redis_sync)
    assert 0 < redis_sync.ttl(key) <= 120
    entry = redis_sync.hgetall(key)
    assert entry[b"ti"] == b"7" and entry[b"to"] == b"2" and entry[b"m"] == b"gpt-4o-mini"
    stats = next(redis_sync.scan_iter(match="ck:{usage:*}:stats"))
    assert redis_sync.hget(stats, "exact") == b"1"
    assert redis_sync.hget(stats, "tin:gpt-4o-mini") == b"7"


def test_on_result_reports_each_request(fake: FakeLLM, cache: LLMCache) -> None:
    seen: list[CacheResult] = []
    with client_for(fake, cache, on_result=seen.append) as client:
        client.post(CHAT, json=chat_body("q"))
        client.post(CHAT, json=chat_body("q"))
        client.post(CHAT, content=b"nope", headers={"content-type": "application/json"})
    assert [r.status for r in seen] == ["miss", "exact", "bypass"]
    assert seen[0].stored and seen[1].hit and seen[2].reason == "invalid JSON"


# -- semantic --------------------------------------------------------------------------------


def test_semantic_hit_inside_the_scope_only(fake: FakeLLM, semantic_cache: LLMCache) -> None:
    with client_for(fake, semantic_cache, threshold=0.6) as client:
        first = client.post(CHAT, json=chat_body("What is the capital of France?"))
        assert first.headers["x-cache"] == "MISS"
        para = client.post(CHAT, json=chat_body("Tell me the capital of France"))
        assert para.headers["x-cache"] == "HIT"
        assert para.headers["x-cache-match"] == "semantic"
        assert 0.6 <= float(para.headers["x-cache-similarity"]) < 1.0
        assert para.content == first.content
        # The same paraphrase under another system prompt is another scope.
        other = chat_body("Tell me the capital of France")
        other["messages"][0]["content"] = "You are verbose."
        assert client.post(CHAT, json=other).headers["x-cache"] == "MISS"
        unrelated = client.post(CHAT, json=chat_body("How do I bake bread?"))
        assert unrelated.headers["x-cache"] == "MISS"
        assert float(unrelated.headers["x-cache-similarity"]) < 0.6
        assert len(fake.calls) == 3


def test_threshold_none_is_exact_only(fake: FakeLLM, semantic_cache: LLMCache) -> None:
    with client_for(fake, semantic_cache, threshold=None) as client:
        client.post(CHAT, json=chat_body("What is the capital of France?"))
        para = client.post(CHAT, json=chat_body("Tell me the capital of France"))
        assert para.headers["x-cache"] == "MISS"


# -- streaming -------------------------------------------------------------------------------


def sse_events(text: str) -> list[str]:
    return [e for e in text.replace("\r\n", "\n").split("\n\n") if e.strip()]


def test_stream_recorded_and_replayed(fake: FakeLLM, cache: LLMCache) -> None:
    with client_for(fake, cache) as client:
        body = chat_body("stream this please", stream=True)
        first = client.post(CHAT, json=body)
        assert first.headers["x-cache"] == "MISS"
        assert first.headers["content-type"].startswith("text/event-stream")
        second = client.post(CHAT, json=body)
        assert second.headers["x-cache"] == "HIT"
        assert second.headers["content-type"].startswith("text/event-stream")
        assert sse_events(second.text) == sse_events(first.text)
        assert sse_events(second.text)[-1] == "data: [DONE]"
        # A stream only ever answers a stream.
        assert client.post(CHAT, json=chat_body("stream this please")).headers["x-cache"] == "MISS"
        assert len(fake.calls) == 2


def test_stream_error_mid_way_is_not_stored(
    fake: FakeLLM, cache: LLMCache, redis_sync: redis.Redis
) -> None:
    fake.break_after = 2
    with client_for(fake, cache) as client:
        body = chat_body("this stream will break", stream=True)
        with pytest.raises(RuntimeError, match="broke the stream"):
            client.post(CHAT, json=body)
        assert entry_keys(redis_sync) == []
        fake.break_after = None
        assert client.post(CHAT, json=body).headers["x-cache"] == "MISS"
        assert client.post(CHAT, json=body).headers["x-cache"] == "HIT"


def http_scope(body: bytes, path: str = CHAT) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }


async def test_client_disconnect_mid_stream_stores_nothing(
    fake: FakeLLM, cache: LLMCache, redis_sync: redis.Redis
) -> None:
    middleware = CacheMiddleware(fake.app, cache=cache, allow_global=True)
    body = json.dumps(chat_body("a long story in many words", stream=True)).encode()
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and len(sent) >= 3:
            raise OSError("the client went away")
        sent.append(message)

    with contextlib.suppress(Exception):
        await middleware(http_scope(body), receive, send)
    assert len(sent) == 3 and len(fake.calls) == 1
    assert entry_keys(redis_sync) == []


async def test_chunked_oversized_body_reaches_the_app_intact(
    fake: FakeLLM, cache: LLMCache
) -> None:
    middleware = CacheMiddleware(fake.app, cache=cache, allow_global=True, max_body_bytes=1000)
    body = json.dumps(chat_body("x" * 5000)).encode()
    parts = [body[i : i + 700] for i in range(0, len(body), 700)]
    messages = [
        {"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
        for i, p in enumerate(parts)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware(http_scope(body), receive, send)
    assert fake.calls == [body]
    assert (b"x-cache", b"BYPASS") in sent[0]["headers"]
    assert sent[0]["status"] == 200


# -- what is not stored ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("status", 500),
        ("status", 201),
        ("headers", {"cache-control": "no-store"}),
        ("headers", {"cache-control": "private, max-age=60"}),
        ("headers", {"cache-control": "Private"}),
        ("headers", {"cache-control": 'max-age=5, NO-STORE, no-cache="x-a"'}),
        ("headers", {"content-encoding": "gzip"}),
        ("media_type", "text/plain"),
    ],
)
def test_uncacheable_responses_are_forwarded_not_stored(
    fake: FakeLLM, cache: LLMCache, setting: str, value: Any
) -> None:
    setattr(fake, setting, value)
    with client_for(fake, cache) as client:
        for _ in range(2):
            reply = client.post(CHAT, json=chat_body("not for keeping"))
            assert reply.headers["x-cache"] == "MISS"
        assert len(fake.calls) == 2


def test_oversized_response_is_forwarded_not_stored(fake: FakeLLM, cache: LLMCache) -> None:
    fake.pad = 5000
    with client_for(fake, cache, max_response_bytes=2000) as client:
        for _ in range(2):
            reply = client.post(CHAT, json=chat_body("big"))
            assert reply.headers["x-cache"] == "MISS" and len(reply.content) > 5000


# -- request Cache-Control -------------------------------------------------------------------


def test_request_cache_control(fake: FakeLLM, cache: LLMCache) -> None:
    with client_for(fake, cache) as client:
        body = chat_body("control")
        store_off = client.post(CHAT, json=body, headers={"cache-control": "no-store"})
        assert store_off.headers["x-cache"] == "MISS"
        assert client.post(CHAT, json=body).headers["x-cache"] == "MISS"  # stored now
        assert client.post(CHAT, json=body).headers["x-cache"] == "HIT"
        fresh = client.post(CHAT, json=body, headers={"cache-control": "no-cache"})
        assert fresh.headers["x-cache"] == "MISS"
        assert fresh.json()["id"] == f"chatcmpl-{len(fake.calls)}"
        # no-cache refreshed the entry: the next hit is the fresh answer.
        assert client.post(CHAT, json=body).json()["id"] == fresh.json()["id"]
        assert (
            client.post(CHAT, json=body, headers={"cache-control": "max-age=0"}).headers["x-cache"]
            == "MISS"
        )
        assert (
            client.post(CHAT, json=body, headers={"cache-control": "max-age=3600"}).headers[
                "x-cache"
            ]
            == "HIT"
        )
        both = client.post(CHAT, json=body, headers={"cache-control": "no-cache, no-store"})
        assert both.headers["x-cache"] == "BYPASS"
        assert len(fake.calls) == 5


def test_parse_cache_control() -> None:
    c = parse_cache_control('No-Cache, max-age="30", foo=bar')
    # The HTTP spelling of cache_control(): one control type for every entry point.
    assert c == CacheControl(skip_lookup=True, skip_store=False, max_age=30)
    assert parse_cache_control("max-age=abc").max_age is None
    assert parse_cache_control("max-age=-5").max_age == 0
    assert parse_cache_control(None).max_age is None


# -- bad input: passed through untouched, never a 500 ----------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type", "reason"),
    [
        (b'{"model": "m", "messages": [', "application/json", "invalid JSON"),
        (b"\xff\xfe not utf8", "application/json", "invalid JSON"),
        (b'["a", "list"]', "application/json", "not an object"),
        (b"model=m&prompt=hi", "application/x-www-form-urlencoded", "content-type"),
        (b'{"model": "m", "prompt": "hi"}', "text/plain", "content-type"),
        (b"", "application/json", "empty body"),
    ],
)
def test_bad_bodies_bypass_untouched(
    fake: FakeLLM, cache: LLMCache, content: bytes, content_type: str, reason: str
) -> None:
    results: list[CacheResult] = []
    with client_for(fake, cache, on_result=results.append) as client:
        reply = client.post(CHAT, content=content, headers={"content-type": content_type})
    assert reply.headers["x-cache"] == "BYPASS"
    assert reply.status_code in (200, 400)
    assert fake.calls == [content]
    assert results[0].status == "bypass" and reason in (results[0].reason or "")


def test_oversized_body_bypasses_untouched(fake: FakeLLM, cache: LLMCache) -> None:
    body = json.dumps(chat_body("y" * (1 << 20))).encode()
    with client_for(fake, cache) as client:
        reply = client.post(CHAT, content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 200 and reply.headers["x-cache"] == "BYPASS"
    assert fake.calls == [body]


def test_corrupt_entry_is_a_miss_and_deleted(
    fake: FakeLLM, cache: LLMCache, redis_sync: redis.Redis
) -> None:
    with client_for(fake, cache) as client:
        body = chat_body("soon corrupt")
        client.post(CHAT, json=body)
        (key,) = entry_keys(redis_sync)
        for garbage in (b"\x00garbage{", json.dumps({"t": "json", "v": {"kind": "?"}}).encode()):
            redis_sync.hset(key, "v", garbage)
            reply = client.post(CHAT, json=body)
            assert reply.status_code == 200 and reply.headers["x-cache"] == "MISS"
            assert reply.json()["choices"][0]["message"]["content"] == "echo: soon corrupt"
            # The corrupt entry was deleted, then the fresh answer stored in its place.
            assert b"garbage" not in (redis_sync.hget(key, "v") or b"")
            assert client.post(CHAT, json=body).headers["x-cache"] == "HIT"
        assert len(fake.calls) == 3


def test_redis_unreachable_fails_open(fake: FakeLLM) -> None:
    port = free_port()
    dead = LLMCache.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        with client_for(fake, dead) as client:
            for _ in range(2):
                reply = client.post(CHAT, json=chat_body("still answered"))
                assert reply.status_code == 200
                assert reply.headers["x-cache"] == "BYPASS"
                assert reply.json()["choices"][0]["message"]["content"] == "echo: still answered"
        assert len(fake.calls) == 2 and dead.local_errors == 2
    finally:
        dead.close()


def test_failing_callbacks_bypass_not_500(fake: FakeLLM, cache: LLMCache) -> None:
    def bad_tenant(request: Request) -> str:
        raise KeyError("no such header")

    def bad_extractor(body: dict[str, Any], request: Any) -> dict[str, Any]:
        raise ValueError("bug")

    for options in (
        {"tenant": bad_tenant},
        {"tenant": lambda r: 42},
        {"extractor": bad_extractor},
        {"extractor": lambda body, r: None},
        {"extractor": lambda body, r: ["not", "a", "dict"]},
        {"extractor": lambda body, r: {"obj": object()}},
    ):
        with client_for(fake, cache, **options) as client:
            reply = client.post(CHAT, json=chat_body("callbacks"))
            assert reply.status_code == 200, options
            assert reply.headers["x-cache"] == "BYPASS", options


# -- tenants ---------------------------------------------------------------------------------


def test_tenants_never_share(fake: FakeLLM, cache: LLMCache) -> None:
    async def tenant(request: Request) -> str | None:
        await asyncio.sleep(0)
        return request.headers.get("x-tenant")

    with client_for(fake, cache, tenant=tenant, allow_global=False) as client:
        body = chat_body("secret plans")
        assert client.post(CHAT, json=body, headers={"x-tenant": "a"}).headers["x-cache"] == "MISS"
        assert client.post(CHAT, json=body, headers={"x-tenant": "a"}).headers["x-cache"] == "HIT"
        assert client.post(CHAT, json=body, headers={"x-tenant": "b"}).headers["x-cache"] == "MISS"
        # No tenant and no allow_global: never silently shared.
        assert client.post(CHAT, json=body).headers["x-cache"] == "BYPASS"
        assert len(fake.calls) == 3


def test_allow_global_uses_the_global_tenant(fake: FakeLLM, cache: LLMCache) -> None:
    with client_for(fake, cache, tenant=lambda r: None, allow_global=True) as client:
        assert client.post(CHAT, json=chat_body("shared")).headers["x-cache"] == "MISS"
        assert client.post(CHAT, json=chat_body("shared")).headers["x-cache"] == "HIT"


@pytest.mark.parametrize("empty", ["", "   "])
def test_empty_tenant_bypasses_like_a_missing_one(
    fake: FakeLLM, cache: LLMCache, empty: str
) -> None:
    def tenant(request: Request) -> str | None:
        return request.headers.get("x-tenant-id")

    with client_for(fake, cache, tenant=tenant, allow_global=False) as client:
        body = chat_body("whose answer is this")
        for _ in range(2):
            reply = client.post(CHAT, json=body, headers={"x-tenant-id": empty})
            assert reply.headers["x-cache"] == "BYPASS"
        assert len(fake.calls) == 2
    # With allow_global an empty tenant is the global tenant, not a tenant "".
    with client_for(fake, cache, tenant=tenant, allow_global=True) as client:
        body = chat_body("a global answer")
        assert client.post(CHAT, json=body).headers["x-cache"] == "MISS"
        reply = client.post(CHAT, json=body, headers={"x-tenant-id": empty})
        assert reply.headers["x-cache"] == "HIT"


def test_api_key_tenant(fake: FakeLLM, cache: LLMCache) -> None:
    with client_for(fake, cache, tenant=api_key_tenant, allow_global=False) as client:
        body = chat_body("keyed")

        def post(headers: dict[str, str]) -> str:
            return client.post(CHAT, json=body, headers=headers).headers["x-cache"]

        assert post({"authorization": "Bearer sk-one"}) == "MISS"
        assert post({"authorization": "Bearer sk-one"}) == "HIT"
        assert post({"authorization": "Bearer sk-two"}) == "MISS"
        assert post({"api-key": "azure-key"}) == "MISS"
        assert post({"api-key": "azure-key"}) == "HIT"
        assert post({}) == "BYPASS"


# -- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({}, "allow_global"),
        ({"allow_global": True, "threshold": 1.5}, "threshold"),
        ({"allow_global": True, "threshold": "high"}, "threshold"),
        ({"allow_global": True, "namespace": "bad ns"}, "namespace"),
        ({"allow_global": True, "ttl": 0}, "ttl"),
        ({"allow_global": True, "paths": "/v1/chat/completions"}, "paths"),
        ({"allow_global": True, "paths": ["v1/chat"]}, "paths"),
        ({"allow_global": True, "paths": []}, "paths"),
        ({"allow_global": True, "methods": []}, "methods"),
        ({"tenant": "header"}, "tenant"),
        ({"allow_global": True, "extractor": 3}, "extractor"),
        ({"allow_global": True, "max_body_bytes": 0}, "max_body_bytes"),
        ({"allow_global": True, "ignore": "user"}, "ignore"),
        ({"allow_global": True, "cache": "redis://x"}, "cache"),
    ],
)
def test_bad_options_fail_at_construction(options: dict[str, Any], match: str) -> None:
    with pytest.raises(CacheConfigError, match=match):
        CacheMiddleware(FakeLLM().app, **options)


def test_custom_extractor_and_ignore(fake: FakeLLM, cache: LLMCache) -> None:
    def only_prompt(body: dict[str, Any], request: Request) -> dict[str, Any]:
        assert request.url.path == CHAT
        return {"prompt": body["messages"][-1]["content"], "model": body["model"]}

    with client_for(fake, cache, extractor=only_prompt) as client:
        client.post(CHAT, json=chat_body("ext", temperature=0.1))
        assert client.post(CHAT, json=chat_body("ext", temperature=0.7)).headers["x-cache"] == "HIT"
    with client_for(fake, cache, namespace="ign", ignore=["temperature"]) as client:
        client.post(CHAT, json=chat_body("ign", temperature=0.1))
        assert client.post(CHAT, json=chat_body("ign", temperature=0.7)).headers["x-cache"] == "HIT"


# -- FastAPI ---------------------------------------------------------------------------------


class ChatRequest(BaseModel):
    model: str
    messages: list[dict[str, Any]]
    temperature: float = 1.0


def test_fastapi_app(cache: LLMCache) -> None:
    calls: list[ChatRequest] = []
    api = FastAPI()

    @api.post(CHAT)
    async def chat(req: ChatRequest) -> dict[str, Any]:
        calls.append(req)
        return {
            "object": "chat.completion",
            "model": req.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
        }

    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    api.add_middleware(CacheMiddleware, cache=cache, allow_global=True, namespace="fastapi")
    with TestClient(api) as client:
        first = client.post(CHAT, json=chat_body("fast"))
        assert first.status_code == 200 and first.headers["x-cache"] == "MISS"
        second = client.post(CHAT, json=chat_body("fast"))
        assert second.headers["x-cache"] == "HIT" and second.json() == first.json()
        # FastAPI's own validation errors (422) are forwarded, never stored.
        for _ in range(2):
            bad = client.post(CHAT, json={"model": "m", "messages": "nope"})
            assert bad.status_code == 422 and bad.headers["x-cache"] == "MISS"
        assert client.get("/health").json() == {"status": "ok"}
    assert len(calls) == 1


def test_cache_observers_see_middleware_requests(fake: FakeLLM, cache: LLMCache) -> None:
    seen: list[CacheResult] = []
    cache.observers.append(seen.append)
    with client_for(fake, cache) as client:
        client.post(CHAT, json=chat_body("observed"))
        client.post(CHAT, json=chat_body("observed"))
    assert [r.status for r in seen] == ["miss", "exact"]


# -- hostile bodies ------------------------------------------------------------------------


def deep_body(depth: int) -> bytes:
    """A chat request with an extra field nested ``depth`` lists deep."""
    head = b'{"model":"m","messages":[{"role":"user","content":"hi"}],"extra":'
    return head + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("depth", [490, 5000])
def test_deeply_nested_body_passes_through(
    cache: LLMCache, caplog: pytest.LogCaptureFixture, depth: int
) -> None:
    seen: list[int] = []

    async def app_view(request: Request) -> Response:
        raw = await request.body()  # the app gets the body untouched (and never parses it)
        seen.append(len(raw))
        return JSONResponse({"received": len(raw)})

    app = Starlette(routes=[Route(CHAT, app_view, methods=["POST"])])
    raw = deep_body(depth)
    caplog.set_level(logging.DEBUG)
    with TestClient(CacheMiddleware(app, cache=cache, allow_global=True)) as client:
        for _ in range(2):
            reply = client.post(CHAT, content=raw, headers={"content-type": "application/json"})
            assert reply.status_code == 200 and reply.headers["x-cache"] == "BYPASS"
            assert reply.json() == {"received": len(raw)}
    assert seen == [len(raw)] * 2
    assert_no_traceback(caplog, max_message=500)


def test_depth_limit_is_a_key_error() -> None:
    from cachekit import CacheKeyError
    from cachekit._canonical import MAX_DEPTH, canonical
    from cachekit._manifest import build_manifest

    nested: Any = []
    for _ in range(MAX_DEPTH):
        nested = [nested]
    with pytest.raises(CacheKeyError, match="nested more than"):
        canonical(nested, "extra")
    with pytest.raises(CacheKeyError, match="extra"):
        build_manifest("ns", None, {"extra": nested, "prompt": "p"}, function_id="f")
    assert canonical(nested[0], "extra") is not None  # exactly MAX_DEPTH levels is fine


# -- savings priced by the response's model ------------------------------------------------


def test_savings_use_the_responses_model_when_the_request_has_none(
    fake: FakeLLM, cache: LLMCache
) -> None:
    """A body without "model" (an Azure deployment path): the answer names the model."""

    async def view(request: Request) -> Response:
        body = json.loads(await request.body())
        if body.get("stream"):

            async def events() -> AsyncIterator[str]:
                chunk = {"model": "gpt-4o-mini", "choices": [{"delta": {"content": "hi"}}]}
                yield f"data: {json.dumps(chunk)}\n\n"
                usage = {"prompt_tokens": 1000, "completion_tokens": 3000}
                last = {"model": "gpt-4o-mini", "choices": [], "usage": usage}
                yield f"data: {json.dumps(last)}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        payload = {
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 3000, "total_tokens": 4000},
        }
        return JSONResponse(payload)

    app = Starlette(routes=[Route(CHAT, view, methods=["POST"])])
    body = {"messages": [{"role": "user", "content": "which model am I?"}]}
    with TestClient(CacheMiddleware(app, cache=cache, allow_global=True, namespace="px")) as c:
        for payload in (body, {**body, "stream": True}):
            assert c.post(CHAT, json=payload).headers["x-cache"] == "MISS"
            assert c.post(CHAT, json=payload).headers["x-cache"] == "HIT"
    report = cache.run_sync(cache.stats, "px", timeout=10)
    row = report.totals
    assert row.exact == 2 and row.miss == 2
    assert row.tokens == {"gpt-4o-mini": [2000, 6000]}
    assert row.usd_saved == pytest.approx((2000 * 0.15 + 6000 * 0.60) / 1e6)


# -- the app's headers on a hit ------------------------------------------------------------


def header_app(calls: list[bytes], cache_control: str | None) -> Starlette:
    async def view(request: Request) -> Response:
        calls.append(await request.body())
        headers = {
            "x-request-model": "gpt-4o-mini-2024-07-18",
            "openai-processing-ms": "412",
            "x-secret": "for the first caller only",
            "date": "Mon, 01 Jan 2024 00:00:00 GMT",
            "connection": "x-hop",
            "x-hop": "one connection",
        }
        if cache_control is not None:
            headers["cache-control"] = cache_control
        response = JSONResponse({"answer": len(calls)}, headers=headers)
        response.set_cookie("session", "abc123")
        return response

    return Starlette(routes=[Route(CHAT, view, methods=["POST"])])


def test_a_hit_replays_the_apps_headers(cache: LLMCache) -> None:
    calls: list[bytes] = []
    app = header_app(calls, 'private="X-Secret", max-age=60')
    with TestClient(CacheMiddleware(app, cache=cache, allow_global=True)) as client:
        first = client.post(CHAT, json=chat_body("headers please"))
        assert first.headers["x-cache"] == "MISS" and "set-cookie" in first.headers
        hit = client.post(CHAT, json=chat_body("headers please"))
    assert hit.headers["x-cache"] == "HIT" and hit.content == first.content
    assert hit.headers["x-request-model"] == "gpt-4o-mini-2024-07-18"
    assert hit.headers["openai-processing-ms"] == "412"
    assert hit.headers["cache-control"] == 'private="X-Secret", max-age=60'
    assert int(hit.headers["content-length"]) == len(hit.content)
    for name in ("set-cookie", "x-secret", "date", "x-hop", "connection"):
        assert name not in hit.headers, name
    assert len(calls) == 1


@pytest.mark.parametrize("control", ["no-store", "private", "max-age=9, Private"])
def test_a_response_the_app_keeps_private_is_not_stored(
    cache: LLMCache, redis_sync: redis.Redis, control: str
) -> None:
    calls: list[bytes] = []
    app = header_app(calls, control)
    with TestClient(CacheMiddleware(app, cache=cache, allow_global=True)) as client:
        for _ in range(2):
            assert client.post(CHAT, json=chat_body("mine")).headers["x-cache"] == "MISS"
    assert len(calls) == 2 and entry_keys(redis_sync) == []


def test_entries_stored_before_header_replay_still_decode(
    fake: FakeLLM, cache: LLMCache, redis_sync: redis.Redis
) -> None:
    from cachekit import _codec
    from cachekit.middleware import CachedResponse

    with client_for(fake, cache) as client:
        first = client.post(CHAT, json=chat_body("old entry"))
        (key,) = entry_keys(redis_sync)
        # The payload as the previous release wrote it: no "replay" list.
        old = {
            "kind": "json",
            "status": 200,
            "headers": {"content-type": "application/json"},
            "body": first.text,
        }
        redis_sync.hset(key, "v", _codec.encode(old))
        hit = client.post(CHAT, json=chat_body("old entry"))
    assert hit.headers["x-cache"] == "HIT" and hit.content == first.content
    assert CachedResponse.decode(_codec.encode(old)).replay == ()
    assert "replay" not in _codec.decode(
        CachedResponse("json", 200, "application/json", "{}").encode()
    )


async def test_a_client_gone_at_the_last_send_still_reports_the_stored_miss(
    cache: LLMCache,
) -> None:
    """The store landed before the last message; the client went away while it was sent."""
    results: list[CacheResult] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b'{"answer": 1}'})

    mw = CacheMiddleware(app, cache=cache, allow_global=True, on_result=results.append)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise OSError("client disconnected")
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": CHAT, "headers": [
        (b"content-type", b"application/json")], "query_string": b""}  # fmt: skip
    with pytest.raises(OSError):
        await mw(scope, receive, send)
    assert results[-1].status == "miss" and results[-1].stored, results[-1]
    assert results[-1].reason is None
    assert len(cache.flights) == 0
