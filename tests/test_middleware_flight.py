"""Single-flight in the ASGI middleware: identical concurrent misses reach the app once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from cachekit import LLMCache
from cachekit.middleware import CacheMiddleware


def make_app(calls: list[str]) -> Starlette:
    async def chat(request: Request) -> Any:
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        calls.append(prompt)
        await asyncio.sleep(0.3)  # an LLM takes a while: every duplicate arrives meanwhile
        if body.get("stream"):

            async def events() -> Any:
                for word in ("one", "two", "three"):
                    yield f'data: {{"w": "{word}"}}\n\n'
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        return JSONResponse({"answer": f"echo {prompt}", "n": len(calls)})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


async def test_identical_concurrent_requests_call_the_app_once(redis_url: str) -> None:
    calls: list[str] = []
    async with LLMCache.from_url(redis_url) as cache:
        app = CacheMiddleware(make_app(calls), cache=cache, namespace="sf", allow_global=True)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            body = {"model": "m", "messages": [{"role": "user", "content": "same question"}]}
            replies = await asyncio.gather(
                *(client.post("/v1/chat/completions", json=body) for _ in range(20))
            )
            assert {r.json()["answer"] for r in replies} == {"echo same question"}
            assert calls == ["same question"]
            labels = sorted(r.headers["x-cache"] for r in replies)
            assert labels == ["HIT"] * 19 + ["MISS"]

            stream = {**body, "stream": True}
            streamed = await asyncio.gather(
                *(client.post("/v1/chat/completions", json=stream) for _ in range(5))
            )
            texts = {r.text for r in streamed}
            assert len(texts) == 1 and "[DONE]" in texts.pop()
            assert calls == ["same question", "same question"]  # one call per body shape


async def test_a_failing_leader_releases_the_waiters(redis_url: str) -> None:
    attempts: list[int] = []

    async def flaky(request: Request) -> Any:
        attempts.append(1)
        await asyncio.sleep(0.2)
        if len(attempts) == 1:
            return JSONResponse({"error": "upstream 500"}, status_code=500)
        return JSONResponse({"answer": "ok"})

    app = Starlette(routes=[Route("/v1/chat/completions", flaky, methods=["POST"])])
    async with LLMCache.from_url(redis_url) as cache:
        wrapped = CacheMiddleware(app, cache=cache, namespace="sf2", allow_global=True)
        transport = httpx.ASGITransport(app=wrapped)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            body = {"model": "m", "messages": [{"role": "user", "content": "q"}]}
            replies = await asyncio.gather(
                *(client.post("/v1/chat/completions", json=body) for _ in range(3))
            )
    # The first answer was an error (never cached, never shared); the waiters asked the app.
    assert sorted(r.status_code for r in replies) == [200, 200, 500]
