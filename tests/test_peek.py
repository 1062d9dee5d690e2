"""The read-only lookup behind ``cachekit explain`` (``LLMCache.peek``).

It must say what the real lookup would serve (same reads, same verdicts), and change
nothing: no hit or token counted, no entry, alias or vector cleaned up, no alias written,
no counter created, and no key's eviction clock touched.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from cachekit import LLMCache
from cachekit._codec import encode
from cachekit._layout import Space, encode_tenant
from cachekit._manifest import KeyManifest, build_manifest
from tests._helpers import GENEROUS, MakeCache, bow_embedder

THRESHOLD = 0.8  # the paraphrase below is at 0.83 under the bag-of-words embedder


def manifest(prompt: str, namespace: str = "pk", tenant: str | None = "acme") -> KeyManifest:
    return build_manifest(namespace, tenant, {"prompt": prompt, "model": "m"}, function_id="f")


@pytest.fixture
async def cache(make_cache: MakeCache) -> LLMCache:
    c = make_cache(embedder=bow_embedder(), index="flat", budgets=GENEROUS)
    await c.connect()
    return c


async def put(cache: LLMCache, prompt: str, **kw: Any) -> None:
    m = manifest(prompt, **kw)
    outcome = await cache.lookup(m, threshold=None)
    assert await cache.store(m, outcome, encode(f"answer to {prompt}"), ttl=3600, usage=(5, 7))


def snapshot(client: redis.Redis) -> dict[bytes, tuple[bytes | None, bool]]:
    """Every key: its serialised value and whether it has a TTL (DUMP touches: call last)."""
    return {key: (client.dump(key), client.ttl(key) >= 0) for key in client.scan_iter()}


async def test_peek_agrees_with_lookup_and_writes_nothing(
    cache: LLMCache, redis_sync: redis.Redis
) -> None:
    await put(cache, "What is the capital of France?")
    await put(cache, "How do I reset my password?")
    exact = manifest("What is the capital of France?")
    paraphrase = manifest("capital of France, what is it?")
    unrelated = manifest("a recipe for bread")
    nothing_here = manifest("What is the capital of France?", namespace="empty-ns")
    # An entry whose body is gone (evicted on its own): the lookup would delete its hash,
    # a peek leaves it.
    gone = manifest("gone")
    await put(cache, "gone")
    redis_sync.delete(Space("pk", encode_tenant("acme")).body_key(gone.exact_digest))
    before = snapshot(redis_sync)

    hit = await cache.peek(exact, threshold=THRESHOLD)
    assert hit.exact == "hit" and hit.outcome.layer == "exact"
    assert hit.exact_row is not None and hit.exact_row.hits == 0
    semantic = await cache.peek(paraphrase, threshold=THRESHOLD)
    assert semantic.exact == "absent" and semantic.semantic == "hit"
    assert semantic.outcome.layer == "semantic" and semantic.outcome.entry is not None
    assert semantic.neighbours[0].entry_id == exact.exact_digest
    assert semantic.neighbours[0].servable
    miss = await cache.peek(unrelated, threshold=THRESHOLD)
    assert miss.semantic == "below-threshold" and miss.outcome.entry is None
    assert miss.neighbours and miss.outcome.similarity == miss.neighbours[0].similarity
    assert (await cache.peek(gone, threshold=None)).exact == "dangling"
    empty = await cache.peek(nothing_here, threshold=THRESHOLD)
    assert empty.exact == "absent" and empty.semantic == "empty-scope"
    assert (empty.outcome.generation, empty.outcome.epoch) == (0, 0)  # read, not created

    assert snapshot(redis_sync) == before  # not one write, not one new key
    # What the lookup then serves is what the peek said it would.
    for m, peeked in ((exact, hit), (paraphrase, semantic), (unrelated, miss)):
        served = await cache.lookup(m, threshold=THRESHOLD)
        assert served.layer == peeked.outcome.layer
        if served.similarity is None:
            assert peeked.outcome.similarity is None
        else:  # the lookup embeds through the batcher: the same vector up to float error
            assert served.similarity == pytest.approx(peeked.outcome.similarity, abs=1e-5)
        assert (served.entry and served.entry.entry_id) == (
            peeked.outcome.entry and peeked.outcome.entry.entry_id
        )


async def test_peek_sees_an_invalidated_entry_as_the_lookup_does(cache: LLMCache) -> None:
    await put(cache, "What is the capital of France?")
    await cache.invalidate("pk")  # the namespace epoch moves: the entry is unreachable
    m = manifest("What is the capital of France?")
    peeked = await cache.peek(m, threshold=THRESHOLD)
    assert peeked.exact == "epoch" and peeked.outcome.entry is None
    assert peeked.neighbours[0].verdict == "epoch" and peeked.semantic != "hit"
    assert (await cache.lookup(m, threshold=THRESHOLD)).entry is None


async def test_peek_leaves_eviction_clocks_alone(cache: LLMCache, redis_sync: redis.Redis) -> None:
    await put(cache, "What is the capital of France?")
    space = Space("pk", encode_tenant("acme"))
    m = manifest("What is the capital of France?")
    keys = [space.entry_key(m.exact_digest), space.body_key(m.exact_digest)]
    await asyncio.sleep(2.2)  # OBJECT IDLETIME counts whole seconds

    await cache.peek(m, threshold=THRESHOLD)
    await cache.peek(manifest("capital of France?"), threshold=THRESHOLD)
    assert all(redis_sync.object("idletime", k) >= 1 for k in keys)
    await cache.lookup(m, threshold=None)  # a real read: the entry counts as used
    assert all(redis_sync.object("idletime", k) == 0 for k in keys)


async def test_explain_writes_nothing(cache: LLMCache, redis_sync: redis.Redis) -> None:
    from cachekit._explanation import explain

    await put(cache, "What is the capital of France?")
    await put(cache, "What is the capital of France?", tenant="globex")
    before = snapshot(redis_sync)
    for prompt in ("What is the capital of France?", "capital of France, what is it?"):
        result = await explain(
            cache,
            manifest(prompt),
            function_id="f",
            embedder=cache.embedder,
            threshold=THRESHOLD,
        )
        assert result.verdict.startswith("HIT")
    assert snapshot(redis_sync) == before
