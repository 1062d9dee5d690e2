"""A FastAPI service that calls an LLM, with cachekit's CacheMiddleware in front.

    python examples/fastapi_app.py            # demo: a few requests, prints X-Cache headers
    python examples/fastapi_app.py --serve    # serve on http://127.0.0.1:8000

The LLM is OpenAI when OPENAI_API_KEY is set, else the offline OpenAI-wire stand-in from
tests/llm_server.py (answers "echo: <your question>"). Redis is CACHEKIT_REDIS_URL, else
REDIS_URL, else a throwaway Redis 8 started for the run. With sentence-transformers
installed (``cachekit[local]``) paraphrases are served from the semantic layer too.

Try it while serving:

    curl -si localhost:8000/v1/chat/completions -H 'content-type: application/json' \\
         -H 'x-user-id: alice' \\
         -d '{"messages": [{"role": "user", "content": "What is Redis?"}]}' | grep -i x-cache
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import openai
from _backends import backends, make_cache
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from cachekit import LLMCache
from cachekit.middleware import CacheMiddleware


class ChatRequest(BaseModel):
    messages: list[dict[str, Any]]
    model: str = "gpt-4o-mini"
    temperature: float | None = None
    stream: bool = False


def user_of(request: Request) -> str | None:
    """The tenant: here an auth layer in front of us sets X-User-Id. No user: no caching."""
    return request.headers.get("x-user-id")


def build_app(cache: LLMCache, llm: openai.AsyncOpenAI) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Load the embedding model at start-up: a cold model on the first request would
        # blow the lookup's time budget, and that request would skip the cache.
        if cache.embedder is not None:
            await cache.embedder.embed(["warm-up"])
        await cache.connect()
        yield
        await cache.aclose()

    app = FastAPI(title="cachekit FastAPI example", lifespan=lifespan)

    @app.post("/v1/chat/completions")
    async def chat(req: ChatRequest) -> Any:
        params: dict[str, Any] = {"model": req.model, "messages": req.messages}
        if req.temperature is not None:
            params["temperature"] = req.temperature
        if req.stream:
            stream = await llm.chat.completions.create(**params, stream=True)

            async def events() -> AsyncIterator[str]:
                async for chunk in stream:
                    yield f"data: {chunk.model_dump_json()}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        completion = await llm.chat.completions.create(**params)
        return JSONResponse(completion.model_dump(mode="json"))

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(
        CacheMiddleware,
        cache=cache,
        namespace="fastapi-example",
        ttl=24 * 3600,
        tenant=user_of,
    )
    return app


def demo(app: FastAPI) -> None:
    from fastapi.testclient import TestClient

    def ask(question: str, user: str = "alice", **extra: Any) -> None:
        body = {"messages": [{"role": "user", "content": question}], **extra}
        reply = client.post("/v1/chat/completions", json=body, headers={"x-user-id": user})
        h = reply.headers
        line = f"{user:>5} {question!r:40} -> {h['x-cache']}"
        if "x-cache-match" in h:
            line += f" ({h['x-cache-match']}, similarity {h.get('x-cache-similarity', '1')})"
        print(line)

    with TestClient(app) as client:
        ask("What is the capital of France?")
        ask("what is the capital of france?")  # exact: normalised whitespace and case
        ask("Tell me the capital city of France")  # semantic, when an embedder is installed
        ask("What is the capital of France?", user="bob")  # another tenant: never shared
        ask("Write a haiku about caches", stream=True)
        ask("Write a haiku about caches", stream=True)  # the stream is replayed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", help="serve instead of the demo")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    with backends() as (redis_url, base_url, api_key):
        cache = make_cache(redis_url)
        llm = openai.AsyncOpenAI(base_url=base_url, api_key=api_key)
        app = build_app(cache, llm)
        if args.serve:
            import uvicorn

            uvicorn.run(app, host="127.0.0.1", port=args.port)
        else:
            demo(app)


if __name__ == "__main__":
    main()
