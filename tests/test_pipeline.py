"""The one pipeline: every entry point's calls cross to the cache's loop as few times as
the policy needs, and the sync and async colours behave alike."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cachekit import LLMCache, cached_llm, last_result
from tests._helpers import MakeCache


class Crossings:
    """Counts the sync -> home-loop crossings of one thread (``run_sync`` goes through
    ``submit`` too)."""

    def __init__(self, cache: LLMCache, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.thread = threading.get_ident()
        monkeypatch.setattr(cache, "submit", self._counting(cache.submit))

    def _counting(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == self.thread:
                self.count += 1
            return real(*args, **kwargs)

        return counted


@pytest.fixture
def crossings(cache: LLMCache, monkeypatch: pytest.MonkeyPatch) -> Iterator[Crossings]:
    yield Crossings(cache, monkeypatch)


def test_a_sync_miss_crosses_once_and_a_hit_once(cache: LLMCache, crossings: Crossings) -> None:
    @cached_llm(namespace="cross", cache=cache)
    def ask(prompt: str) -> str:
        return f"answer to {prompt}"

    assert ask("one") == "answer to one"
    r = last_result()
    assert r is not None and r.status == "miss" and r.stored
    assert crossings.count == 1, "begin crosses once; the store is handed over"
    cache.drain_sync()
    crossings.count = 0
    assert ask("one") == "answer to one"
    assert last_result().status == "exact"  # type: ignore[union-attr]
    assert crossings.count == 1


def test_a_sync_stream_miss_crosses_once(cache: LLMCache, crossings: Crossings) -> None:
    @cached_llm(namespace="cross", cache=cache)
    def tokens(prompt: str) -> Iterator[str]:
        yield from prompt.split()

    assert list(tokens("a b c")) == ["a", "b", "c"]
    assert crossings.count == 1
    cache.drain_sync()
    assert list(tokens("a b c")) == ["a", "b", "c"]
    assert last_result().status == "exact"  # type: ignore[union-attr]


def test_waiting_for_stores_is_one_more_crossing(
    make_cache: MakeCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = make_cache(background_stores=False)
    crossings = Crossings(cache, monkeypatch)

    @cached_llm(namespace="cross", cache=cache)
    def ask(prompt: str) -> str:
        return prompt.upper()

    assert ask("two") == "TWO"
    assert crossings.count == 2  # begin, then the store the caller waits for
    crossings.count = 0
    assert ask("two") == "TWO"
    assert last_result().status == "exact"  # type: ignore[union-attr]
    assert crossings.count == 1


async def test_sync_and_async_callers_share_one_entry(cache: LLMCache) -> None:
    """The same algorithm in both colours: one stores, the other is served."""

    @cached_llm(namespace="colours", cache=cache)
    async def ask_async(prompt: str) -> str:
        return f"async {prompt}"

    @cached_llm(namespace="colours", cache=cache)
    def ask_sync(prompt: str) -> str:
        return f"sync {prompt}"

    # Different functions are different scopes; each colour finds its own entry.
    assert await ask_async("p") == "async p"
    await cache.drain()
    assert await ask_async("p") == "async p"
    assert last_result().status == "exact"  # type: ignore[union-attr]

    def sync_twice() -> list[tuple[str, Any]]:
        return [(ask_sync("p"), last_result()), (ask_sync("p"), last_result())]

    # The home loop is this test's: it must keep running while the sync caller waits.
    (first, r1), (second, r2) = await asyncio.to_thread(sync_twice)
    assert first == second == "sync p"
    assert (r1.status, r2.status) == ("miss", "exact")
