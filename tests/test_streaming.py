"""Streams through the decorator: generator functions and OpenAI ``stream=True`` calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from cachekit import LLMCache, cached_llm, last_result
from tests.llm_server import LocalOpenAIServer


async def test_async_generator_recorded_then_replayed(cache: LLMCache) -> None:
    runs = 0

    @cached_llm(namespace="gen", cache=cache)
    async def tokens(prompt: str) -> AsyncIterator[str]:
        nonlocal runs
        runs += 1
        for word in ("Paris", " is", " the", " capital"):
            yield word

    assert [t async for t in tokens("capital of France?")] == ["Paris", " is", " the", " capital"]
    assert last_result().status == "miss"  # type: ignore[union-attr]
    assert [t async for t in tokens("capital of France?")] == ["Paris", " is", " the", " capital"]
    assert last_result().status == "exact"  # type: ignore[union-attr]
    assert runs == 1


async def test_async_generator_consumer_stops_early_stores_nothing(cache: LLMCache) -> None:
    @cached_llm(namespace="gen", cache=cache)
    async def tokens(prompt: str) -> AsyncIterator[int]:
        for i in range(10):
            yield i

    agen = tokens("p")
    async for i in agen:
        if i == 3:
            break
    await agen.aclose()
    assert [t async for t in tokens("p")] == list(range(10))
    assert last_result().status == "miss"  # type: ignore[union-attr]
    assert [t async for t in tokens("p")] == list(range(10))
    assert last_result().status == "exact"  # type: ignore[union-attr]


def test_sync_generator_and_producer_error(cache: LLMCache) -> None:
    fail = True

    @cached_llm(namespace="gen", cache=cache)
    def words(prompt: str) -> Iterator[str]:
        yield "a"
        if fail:
            raise RuntimeError("upstream broke mid-stream")
        yield "b"

    with pytest.raises(RuntimeError, match="mid-stream"):
        list(words("p"))
    fail = False
    assert list(words("p")) == ["a", "b"]
    assert last_result().status == "miss"  # type: ignore[union-attr]
    fail = True  # a hit never runs the producer again
    assert list(words("p")) == ["a", "b"]
    assert last_result().status == "exact"  # type: ignore[union-attr]


async def test_openai_async_stream_true_replays_real_chunks(
    redis_url: str, upstream: LocalOpenAIServer
) -> None:
    upstream.reset()
    client = openai.AsyncOpenAI(base_url=upstream.base_url, api_key="sk-test", max_retries=0)
    async with LLMCache.from_url(redis_url) as cache:
        create = cached_llm(namespace="oai", cache=cache)(client.chat.completions.create)
        msgs = [{"role": "user", "content": "Tell me about Paris please"}]

        async def read() -> list[ChatCompletionChunk]:
            stream = await create(model="gpt-4o-mini", messages=msgs, stream=True)
            return [chunk async for chunk in stream]

        first = await read()
        assert last_result().status == "miss"  # type: ignore[union-attr]
        second = await read()
        assert last_result().status == "exact"  # type: ignore[union-attr]
        assert all(isinstance(c, ChatCompletionChunk) for c in second)
        assert second == first
        text = "".join(c.choices[0].delta.content or "" for c in second if c.choices)
        assert text == "echo: Tell me about Paris please"
        assert upstream.count("/v1/chat/completions") == 1
        # stream and non-stream calls never share an entry
        full = await create(model="gpt-4o-mini", messages=msgs)
        assert full.choices[0].message.content == text
        assert upstream.count("/v1/chat/completions") == 2
    await client.close()


def test_openai_sync_interrupted_stream_is_not_stored(
    redis_url: str, upstream: LocalOpenAIServer
) -> None:
    upstream.reset()
    client = openai.OpenAI(base_url=upstream.base_url, api_key="sk-test", max_retries=0)
    cache = LLMCache.from_url(redis_url)
    create = cached_llm(namespace="oai", cache=cache)(client.chat.completions.create)
    msgs: list[Any] = [{"role": "user", "content": "one two three four five six"}]
    upstream.break_stream_after(2)
    with pytest.raises(openai.APIConnectionError):
        for _ in create(model="m", messages=msgs, stream=True):
            pass
    chunks = list(create(model="m", messages=msgs, stream=True))
    assert last_result().status == "miss"  # type: ignore[union-attr]
    replay = list(create(model="m", messages=msgs, stream=True))
    assert last_result().status == "exact"  # type: ignore[union-attr]
    assert replay == chunks and upstream.count("/v1/chat/completions") == 2
    # a consumer that stops early stores nothing either
    other: list[Any] = [{"role": "user", "content": "another question entirely"}]
    with create(model="m", messages=other, stream=True) as stream:
        next(iter(stream))
    list(create(model="m", messages=other, stream=True))
    assert last_result().status == "miss"  # type: ignore[union-attr]
    client.close()
    cache.close()
