"""Verified semantic hits end to end: real MiniLM, real Redis, the default verifier.

Each trap below is a prompt MiniLM puts above the shipped 0.92 threshold of a cached one
while asking something else; before verification the cache served the cached answer.
"""

from __future__ import annotations

import pytest
import redis.asyncio as aredis

from cachekit import CacheConfigError, LLMCache, cached_llm, last_result
from cachekit._explanation import explain
from cachekit._manifest import build_manifest
from cachekit._tune_near_misses import read_near_misses
from cachekit.embedders import SentenceTransformerEmbedder
from cachekit.metrics import instrument
from tests._helpers import MakeCache

# (cached prompt, trap, the reason the verifier must give)
TRAPS = [
    ("What is the status of order 12345?", "What is the status of order 12346?", "identifier"),
    ("Show me flights from Paris to London", "Show me flights from London to Paris", "order"),
    ("Should I buy Tesla stock now?", "Should I sell Tesla stock now?", "polarity"),
]


@pytest.fixture
def semantic(make_cache: MakeCache, minilm: SentenceTransformerEmbedder) -> LLMCache:
    # The default verifier (make_cache turns it off only when it is not asked for).
    from cachekit.verify import default_verifier

    return make_cache(
        embedder=minilm, verifier=default_verifier(), background_stores=False, near_miss_sample=1.0
    )


async def test_one_word_traps_are_misses_with_the_reason(
    semantic: LLMCache, redis_url: str
) -> None:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    instrument(semantic, registry)
    calls: list[str] = []

    @cached_llm(namespace="verified", cache=semantic)
    async def ask(prompt: str) -> str:
        calls.append(prompt)
        return f"answer to: {prompt}"

    for cached, trap, reason in TRAPS:
        assert await ask(cached) == f"answer to: {cached}"
        # The trap is above the threshold (the verifier is what stops it) ...
        assert await ask(trap) == f"answer to: {trap}", f"{trap!r} got {cached!r}'s answer"
        r = last_result()
        assert r is not None and r.status == "miss", r
        assert r.verdict == "rejected" and r.verify_reason == reason, r
        assert r.similarity is not None and r.similarity >= 0.92, r
    assert calls == [p for c, t, _ in TRAPS for p in (c, t)]
    rejected = {
        s.labels["reason"]: s.value
        for metric in registry.collect()
        if metric.name == "cachekit_verifier_rejections"
        for s in metric.samples
        if s.name.endswith("_total")
    }
    assert rejected == {"identifier": 1.0, "order": 1.0, "polarity": 1.0}
    # Sampled into the near-miss stream with the reason, for `cachekit tune`.
    client = aredis.Redis.from_url(redis_url)
    near = await read_near_misses(client, "verified")
    await client.aclose()
    assert {(n.prompt, n.reason) for n in near} >= {(t, reason) for _, t, reason in TRAPS}


@pytest.mark.parametrize(
    ("cached", "paraphrase"),
    [
        ("How can I reset my password?", "How do I reset my password?"),
        ("What is the capital of France?", "What's the capital of France?"),
        ("How do I cancel my subscription?", "How can I cancel my subscription?"),
    ],
)
async def test_a_paraphrase_is_still_a_verified_semantic_hit(
    semantic: LLMCache, cached: str, paraphrase: str
) -> None:
    @cached_llm(namespace="verified", cache=semantic)
    async def ask(prompt: str) -> str:
        return f"answer to: {prompt}"

    await ask(cached)
    assert await ask(paraphrase) == f"answer to: {cached}"
    r = last_result()
    assert r is not None and r.status == "semantic" and r.verdict == "accepted", r


async def test_explain_shows_the_rejection(
    semantic: LLMCache, minilm: SentenceTransformerEmbedder
) -> None:
    @cached_llm(namespace="verified", cache=semantic)
    async def ask(prompt: str) -> str:
        return "the status of order 12345"

    await ask("What is the status of order 12345?")
    function_id = f"{__name__}.test_explain_shows_the_rejection.<locals>.ask"
    trap = {"prompt": "What is the status of order 12346?"}
    manifest = build_manifest("verified", None, trap, function_id=function_id)
    report = await explain(
        semantic, manifest, function_id=function_id, embedder=minilm, threshold=0.92
    )
    assert report.verdict.startswith("MISS (the hit verifier rejected"), report.verdict
    assert "identifier (12345 vs 12346)" in report.verdict
    best = report.candidates[0]
    assert best.verifier == "rejected" and best.live
    assert best.check is not None and best.check.reason == "identifier"
    assert best.check.detail == "12345 vs 12346"


async def test_without_a_verifier_the_trap_is_served(
    make_cache: MakeCache, minilm: SentenceTransformerEmbedder
) -> None:
    """What verification prevents: ``verifier=None`` is cachekit before #11."""
    cache = make_cache(embedder=minilm, verifier=None, background_stores=False)

    @cached_llm(namespace="unverified", cache=cache)
    async def ask(prompt: str) -> str:
        return f"answer to: {prompt}"

    cached, trap, _ = TRAPS[0]
    await ask(cached)
    assert await ask(trap) == f"answer to: {cached}"
    r = last_result()
    assert r is not None and r.status == "semantic" and r.verdict is None


def test_a_verifier_without_verify_is_refused(redis_url: str) -> None:
    with pytest.raises(CacheConfigError, match="verifier must have a verify"):
        LLMCache.from_url(redis_url, verifier=object())
