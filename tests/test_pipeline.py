"""The one pipeline: every entry point's calls cross to the cache's loop as few times as
the policy needs, and the sync and async colours behave alike."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from cachekit import CacheConfigError, LLMCache, _flow, cached_llm, last_result
from cachekit._call import _Codec
from cachekit._manifest import build_manifest
from cachekit._options import EntryOptions
from cachekit._pipeline import Pipeline
from cachekit._ticket import Hit, Miss, Ticket
from tests._helpers import MakeCache, bow_embedder


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


# -- defects found in review: each test failed before its fix ----------------------------


async def test_a_caller_cancelled_while_its_store_is_waited_for_leaves_no_flight(
    make_cache: MakeCache,
) -> None:
    """The value must not stay in memory as the key's answer: the store never landed."""
    cache = make_cache(background_stores=False)
    calls: list[int] = []

    @cached_llm(namespace="cancel", cache=cache)
    async def ask(prompt: str) -> str:
        calls.append(1)
        return f"answer {len(calls)}"

    real = cache.store

    async def slow_store(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.5)
        return await real(*args, **kwargs)

    cache.store = slow_store  # type: ignore[method-assign]
    task = asyncio.create_task(ask("q"))
    await asyncio.sleep(0.15)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    cache.store = real  # type: ignore[method-assign]
    assert len(cache.flights) == 0
    assert await ask("q") == "answer 2"  # a miss: nothing was stored, nothing in memory
    assert last_result().status == "miss"  # type: ignore[union-attr]


def _lock_keys(url: str) -> list[bytes]:
    client = redis.Redis.from_url(url)
    try:
        return list(client.scan_iter("ck:*:lk:*"))
    finally:
        client.close()


def test_locks_are_freed_when_the_store_queue_is_full(
    make_cache: MakeCache, redis_url: str
) -> None:
    cache = make_cache(max_pending_stores=1)

    @cached_llm(namespace="fullq", cache=cache)
    def ask(prompt: str) -> str:
        return prompt.upper()

    for prompt in ("q1", "q2", "q3"):
        assert ask(prompt) == prompt.upper()
        cache.drain_sync()
    time.sleep(0.2)
    assert _lock_keys(redis_url) == []


async def test_a_caller_cancelled_as_its_claim_returns_frees_the_lock(
    make_cache: MakeCache, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An async caller on another loop than the cache's: its claim ends on the home loop."""
    cache = make_cache()

    @cached_llm(namespace="claim", cache=cache)
    def warm(prompt: str) -> str:
        return prompt

    warm("binds the home loop to the cache's own thread")

    @cached_llm(namespace="claim", cache=cache)
    async def ask(prompt: str) -> str:
        return prompt

    started = threading.Event()
    real = _flow._claim

    async def slow_claim(*args: Any) -> Any:
        started.set()
        await asyncio.sleep(0.1)
        return await real(*args)

    monkeypatch.setattr(_flow, "_claim", slow_claim)
    task = asyncio.create_task(ask("q"))
    while not started.is_set():
        await asyncio.sleep(0.001)
    time.sleep(0.3)  # this loop is busy while the home loop finishes the claim
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.3)
    assert _lock_keys(redis_url) == []
    assert len(cache.flights) == 0


def test_a_bug_in_single_flight_never_reaches_the_call(
    make_cache: MakeCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = make_cache()

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("a bug in the lock path")

    monkeypatch.setattr(type(cache), "try_lock", broken)

    @cached_llm(namespace="bug", cache=cache)
    def ask(prompt: str) -> str:
        return "answered"

    assert ask("q") == "answered"
    r = last_result()
    assert r is not None and r.status == "error" and "single-flight" in (r.reason or "")
    assert len(cache.flights) == 0


async def test_a_verifier_returning_garbage_rejects_and_the_call_goes_on(
    make_cache: MakeCache,
) -> None:
    class Broken:
        def verify(self, *args: Any) -> bool:
            return True  # not a Verdict

    cache = make_cache(embedder=bow_embedder(), verifier=Broken(), background_stores=False)

    @cached_llm(namespace="garbage", cache=cache, threshold=0.5)
    async def ask(prompt: str) -> str:
        return f"answer to {prompt}"

    await ask("what is the capital of france")
    assert await ask("capital of france what is it") == "answer to capital of france what is it"
    r = last_result()
    assert r is not None and r.status == "miss" and r.verdict == "rejected", r
    assert r.verify_reason == "verifier error"


def _ticket(namespace: str, prompt: str) -> Ticket:
    manifest = build_manifest(namespace, None, {"prompt": prompt}, "tests.pipeline")
    return Ticket(manifest, _Codec(stream=False, cache_none=True), None, time.perf_counter())


async def test_an_entry_point_without_single_flight_holds_nothing_until_it_completes(
    cache: LLMCache, redis_url: str
) -> None:
    """``EntryOptions(single_flight=False)`` (LangChain: a model that raised is never
    reported): a miss holds no flight and no lock, so an identical call misses at once."""
    with pytest.raises(CacheConfigError, match="single_flight"):
        EntryOptions("nofl", cache, single_flight="no")  # type: ignore[arg-type]
    free = Pipeline(EntryOptions("nofl", cache, wait_for_store=True, single_flight=False))
    first = await free.begin(_ticket("nofl", "q"))
    assert isinstance(first, Miss) and first.used_cache
    assert len(cache.flights) == 0 and _lock_keys(redis_url) == []
    second = await free.begin(_ticket("nofl", "q"))  # leader-less: no wait, no follow
    assert isinstance(second, Miss) and first.ticket.flight is None
    await free.complete(first, "the answer")  # the first miss never ends: it holds nothing
    hit = await free.begin(_ticket("nofl", "q"))
    assert isinstance(hit, Hit) and hit.value == "the answer"
    # The default still leads: the lock is held until complete/abort.
    held = Pipeline(EntryOptions("nofl", cache))
    lead = await held.begin(_ticket("nofl", "other"))
    assert isinstance(lead, Miss) and lead.ticket.flight is not None
    assert len(_lock_keys(redis_url)) == 1
    held.abort(lead)
