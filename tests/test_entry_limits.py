"""``@cached_llm``'s size cap (``max_entry_bytes``) and ``None`` results (``cache_none``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from cachekit import CacheConfigError, LLMCache, cached_llm, last_result
from tests._helpers import entry_keys, settle

MIB = 1 << 20


# -- max_entry_bytes ---------------------------------------------------------------------


def test_a_10_mb_prompt_is_answered_but_not_stored_by_default(
    cache: LLMCache, redis_sync: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    @cached_llm(namespace="big", cache=cache)
    def ask(prompt: str) -> str:
        calls.append(len(prompt))
        return "short answer"

    prompt = "word " * (2 * MIB)  # 10 MiB of prompt text
    with caplog.at_level(logging.WARNING, logger="cachekit"):
        assert ask(prompt) == "short answer"
        r = last_result()
        assert r is not None and r.status == "miss"
        assert r.stored is False
        assert r.reason is not None and "max_entry_bytes" in r.reason
        settle(cache)
        assert entry_keys(redis_sync, "big") == []
        assert ask(prompt) == "short answer"  # nothing was stored: a miss again
        assert last_result().status == "miss"  # type: ignore[union-attr]
    assert calls == [len(prompt), len(prompt)]
    warnings = [r for r in caplog.records if "max_entry_bytes" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited through cache.warn


async def test_a_large_payload_is_not_stored_and_a_small_one_is(
    cache: LLMCache, redis_sync: redis.Redis
) -> None:
    @cached_llm(namespace="big", cache=cache)
    async def ask(prompt: str, size: int) -> str:
        return "x" * size

    await ask("q", size=2 * MIB)
    r = last_result()
    assert r is not None and r.stored is False and "max_entry_bytes" in (r.reason or "")
    await ask("q", size=100)
    assert last_result().stored is True  # type: ignore[union-attr]
    await cache.drain()
    assert len(entry_keys(redis_sync, "big")) == 1


def test_the_cap_counts_payload_and_prompt_together(
    cache: LLMCache, redis_sync: redis.Redis
) -> None:
    @cached_llm(namespace="sum", cache=cache, max_entry_bytes=1000)
    def ask(prompt: str) -> str:
        return "a" * 600

    ask("p" * 300)  # 600 + ~10 of envelope + 300: under the cap
    assert last_result().stored is True  # type: ignore[union-attr]
    ask("q" * 600)  # each half fits, together they do not
    r = last_result()
    assert r is not None and r.stored is False
    assert "1000" in (r.reason or "")
    # Multi-byte text is measured in UTF-8 bytes, not characters.
    ask("é" * 300)  # 300 characters, 600 bytes
    assert last_result().stored is False  # type: ignore[union-attr]


def test_max_entry_bytes_none_stores_anything(cache: LLMCache, redis_sync: redis.Redis) -> None:
    @cached_llm(namespace="nocap", cache=cache, max_entry_bytes=None)
    def ask(prompt: str) -> str:
        return "y" * (2 * MIB)

    ask("q")
    assert last_result().stored is True  # type: ignore[union-attr]
    settle(cache)
    assert ask("q") == "y" * (2 * MIB)
    assert last_result().status == "exact"  # type: ignore[union-attr]


def test_an_oversized_stream_is_replayed_to_the_caller_but_not_stored(
    cache: LLMCache, redis_sync: redis.Redis
) -> None:
    @cached_llm(namespace="gen", cache=cache, max_entry_bytes=1000)
    def ask(prompt: str) -> Iterator[str]:
        yield from ["z" * 400, "z" * 400, "z" * 400]

    assert "".join(ask("q")) == "z" * 1200
    settle(cache)
    assert entry_keys(redis_sync, "gen") == []


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "1MiB"])
def test_max_entry_bytes_is_validated(bad: Any) -> None:
    with pytest.raises(CacheConfigError, match="max_entry_bytes"):
        cached_llm(namespace="v", max_entry_bytes=bad)


# -- None results ------------------------------------------------------------------------


def test_none_results_are_cached_by_default(cache: LLMCache) -> None:
    """Today's behaviour, kept: None is a value like any other (as functools.cache)."""
    calls: list[str] = []

    @cached_llm(namespace="none", cache=cache)
    def ask(prompt: str) -> None:
        calls.append(prompt)
        return None

    assert ask("q") is None
    assert last_result().stored is True  # type: ignore[union-attr]
    settle(cache)
    assert ask("q") is None
    assert last_result().status == "exact"  # type: ignore[union-attr]
    assert calls == ["q"]


def test_cache_none_false_never_stores_none(cache: LLMCache, redis_sync: redis.Redis) -> None:
    calls: list[str] = []

    @cached_llm(namespace="none", cache=cache, cache_none=False)
    def ask(prompt: str) -> str | None:
        calls.append(prompt)
        return None if prompt == "fail" else "ok"

    assert ask("fail") is None
    r = last_result()
    assert r is not None and r.status == "miss" and r.stored is False
    assert "cache_none" in (r.reason or "")
    settle(cache)
    assert ask("fail") is None
    assert last_result().status == "miss"  # type: ignore[union-attr]
    assert ask("fine") == "ok"
    assert last_result().stored is True  # type: ignore[union-attr]
    assert calls == ["fail", "fail", "fine"]


@pytest.mark.parametrize("bad", [None, 0, "no"])
def test_cache_none_is_validated(bad: Any) -> None:
    with pytest.raises(CacheConfigError, match="cache_none"):
        cached_llm(namespace="v", cache_none=bad)
