"""The openai SDK with cachekit as its httpx transport: no proxy, no code change per call.

    python examples/openai_transport.py

The LLM is OpenAI when OPENAI_API_KEY is set, else the offline OpenAI-wire stand-in from
tests/llm_server.py. Redis is CACHEKIT_REDIS_URL, else REDIS_URL, else a throwaway Redis 8
started for the run. Every SDK that takes ``http_client=`` works the same way (Anthropic,
LangChain's ``ChatOpenAI``, LlamaIndex, Pydantic AI): see examples/transport.md.
"""

from __future__ import annotations

import asyncio

import httpx
import openai
from _backends import backends

from cachekit import LLMCache
from cachekit.transport import AsyncCacheTransport, CacheTransport

MODEL = "gpt-4o-mini"


def sync_demo(cache: LLMCache, base_url: str, api_key: str) -> None:
    # Tenant: a digest of the API key (the default), so two keys never share answers.
    http = httpx.Client(transport=CacheTransport(cache=cache, namespace="chat", ttl=86400))
    client = openai.OpenAI(base_url=base_url, api_key=api_key, http_client=http)
    question = [{"role": "user", "content": "What is the capital of France?"}]
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=question)
        answer = raw.parse().choices[0].message.content
        print(f"sync   X-Cache: {raw.headers['x-cache']:4}  {answer}")
        cache.drain_sync()  # a demo asks again at once; a real app need not wait
    client.close()


async def async_demo(cache: LLMCache, base_url: str, api_key: str) -> None:
    http = httpx.AsyncClient(transport=AsyncCacheTransport(cache=cache, namespace="chat"))
    client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, http_client=http)
    haiku = [{"role": "user", "content": "Stream me a haiku about caches"}]
    for _ in range(2):
        raw = await client.chat.completions.with_raw_response.create(
            model=MODEL, messages=haiku, stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
        print(f"stream X-Cache: {raw.headers['x-cache']:4}  {text}")
        await cache.drain()
    await client.close()


def main() -> None:
    with backends() as (redis_url, base_url, api_key):
        cache = LLMCache.from_url(redis_url)
        try:
            sync_demo(cache, base_url, api_key)
            asyncio.run(async_demo(cache, base_url, api_key))
        finally:
            cache.close()


if __name__ == "__main__":
    main()
