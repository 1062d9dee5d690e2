"""The Anthropic SDK with cachekit as its transport (anthropic 2.x takes httpx2 clients).

    python examples/anthropic_transport.py

The LLM is Anthropic when ANTHROPIC_API_KEY is set, else the offline wire-format
stand-in from tests/llm_server.py (it speaks /v1/messages too). Redis is
CACHEKIT_REDIS_URL, else REDIS_URL, else a throwaway Redis 8 started for the run.
"""

from __future__ import annotations

import asyncio

import anthropic
import httpx2
from _backends import backends

from cachekit import LLMCache
from cachekit.transport.httpx2 import AsyncCacheTransport, CacheTransport

MODEL = "claude-sonnet-4"


def sync_demo(cache: LLMCache, base_url: str | None, api_key: str) -> None:
    # The tenant is a digest of the x-api-key (the default): two keys never share answers.
    http = httpx2.Client(transport=CacheTransport(cache=cache, namespace="claude", ttl=86400))
    client = anthropic.Anthropic(base_url=base_url, api_key=api_key, http_client=http)
    for _ in range(2):
        raw = client.messages.with_raw_response.create(
            model=MODEL,
            max_tokens=128,
            system="Answer in one sentence.",
            messages=[{"role": "user", "content": "What is the capital of France?"}],
        )
        text = raw.parse().content[0].text  # type: ignore[union-attr]
        print(f"sync   X-Cache: {raw.headers['x-cache']:4}  {text}")
        cache.drain_sync()  # a demo asks again at once; a real app need not wait
    client.close()


async def stream_demo(cache: LLMCache, base_url: str | None, api_key: str) -> None:
    http = httpx2.AsyncClient(transport=AsyncCacheTransport(cache=cache, namespace="claude"))
    client = anthropic.AsyncAnthropic(base_url=base_url, api_key=api_key, http_client=http)
    for _ in range(2):
        async with client.messages.stream(
            model=MODEL,
            max_tokens=128,
            messages=[{"role": "user", "content": "Stream me a haiku about caches"}],
        ) as stream:
            text = "".join([t async for t in stream.text_stream])
            print(f"stream X-Cache: {stream.response.headers['x-cache']:4}  {text}")
        await cache.drain()
    await client.close()


def main() -> None:
    with backends("anthropic") as (redis_url, base_url, api_key):
        cache = LLMCache.from_url(redis_url)
        try:
            sync_demo(cache, base_url, api_key)
            asyncio.run(stream_demo(cache, base_url, api_key))
        finally:
            cache.close()


if __name__ == "__main__":
    main()
