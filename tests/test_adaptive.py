"""Adaptive, verified thresholds: checks against the real function, evidence in Redis that
every worker reads, a learned threshold per scope.

The embedder is a table of vectors so that each prompt's cosine to the cached one is
exactly what the test says; the policy, Redis and the decorator are the real ones.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import redis

from cachekit import LLMCache, cached_llm, last_result
from cachekit.adaptive import (
    AdaptiveThreshold,
    EmbeddingAnswers,
    Evidence,
    exact_answers,
    normalised_answers,
)
from cachekit.embedders import CallableEmbedder
from cachekit.errors import CacheConfigError
from tests._helpers import MakeCache, entry_keys

DIM = 8
# prompt -> (cosine to BASE along its own axis, the answer the function gives); each cosine
# sits mid-bin (0.01 bins), clear of the int8 quantisation's rounding.
BASE = "how do I reset my password"
TABLE: dict[str, tuple[float, str]] = {
    BASE: (1.0, "Use the reset link."),
    "trap at 0.93": (0.935, "Something else entirely."),
    "paraphrase at 0.95": (0.955, "use the reset link"),  # same answer, other casing
    "paraphrase at 0.96": (0.965, "Use the reset link."),
    "trap at 0.94": (0.945, "Another answer."),
    "paraphrase at 0.97": (0.975, "Use the reset link."),
}
AXES = {text: i for i, text in enumerate(TABLE)}


_BY_NORMAL = {text.casefold(): value for text, value in TABLE.items()}


def _vectors(texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for row, text in enumerate(texts):
        cos, _ = _BY_NORMAL.get(text.casefold().strip(), (0.0, ""))
        out[row, 0] = cos
        # Each prompt leans away from BASE along an axis of its own, so two of them are
        # further apart from each other than from BASE (BASE stays the nearest).
        axis = AXES.get(next((t for t in TABLE if t.casefold() == text.casefold().strip()), ""))
        out[row, 1 + (axis if axis is not None else DIM - 2) % (DIM - 1)] = math.sqrt(
            max(0.0, 1 - cos * cos)
        )
    return out


def _embedder() -> CallableEmbedder:
    return CallableEmbedder(_vectors, dimensions=DIM, model_id="test/table8")


def _cache(make_cache: MakeCache, **adaptive: Any) -> LLMCache:
    settings = {"delta": 0.2, "confidence": 0.6, "audit": 0.0, "refresh_s": 0.0, "bin_width": 0.01}
    return make_cache(
        embedder=_embedder(),
        background_stores=False,
        adaptive=AdaptiveThreshold(**settings | adaptive),
    )


def _asker(cache: LLMCache, calls: list[str]) -> Any:
    @cached_llm("help", cache=cache, threshold=0.9, allow_global=True, normalize=None)
    async def ask(prompt: str) -> str:
        calls.append(prompt)
        return TABLE[prompt][1]

    return ask


async def test_the_threshold_is_learned_from_checks_and_shared_by_workers(
    make_cache: MakeCache, redis_sync: redis.Redis
) -> None:
    cache, calls = _cache(make_cache), []
    ask = _asker(cache, calls)
    await ask(BASE)
    # No evidence yet: a candidate above the static threshold is checked, not served.
    assert await ask("trap at 0.93") == "Something else entirely."
    result = last_result()
    assert result is not None and result.status == "miss"
    assert result.reason_code == "adaptive_check"
    await cache.drain()
    assert await ask("paraphrase at 0.95") == "use the reset link"  # checked: same answer
    await cache.drain()
    keys = list(redis_sync.scan_iter(match="ck:{help}:adapt:*"))
    assert len(keys) == 1
    assert redis_sync.hgetall(keys[0]) == {b"d:93": b"1", b"s:95": b"1"}
    # The evidence says 0.95 and above is safe (1 of 1 the same answer at 0.6 confidence),
    # 0.93 is not: 0.96 is served, 0.94 checked.
    assert await ask("paraphrase at 0.96") == "Use the reset link."
    result = last_result()
    assert result is not None and result.status == "semantic"
    assert calls == [BASE, "trap at 0.93", "paraphrase at 0.95"]
    assert await ask("trap at 0.94") == "Another answer."
    assert last_result().reason_code == "adaptive_check"  # type: ignore[union-attr]
    await cache.drain()
    # Another worker (its own process memory) reads the same evidence from Redis.
    other_calls: list[str] = []
    other = _asker(_cache(make_cache), other_calls)
    assert await other("paraphrase at 0.97") == "Use the reset link."
    assert last_result().status == "semantic"  # type: ignore[union-attr]
    assert other_calls == []


async def test_an_audit_still_checks_above_the_learned_threshold(
    make_cache: MakeCache, redis_sync: redis.Redis
) -> None:
    cache, calls = _cache(make_cache, audit=1.0), []  # every candidate audited
    ask = _asker(cache, calls)
    await ask(BASE)
    for prompt in ("paraphrase at 0.95", "paraphrase at 0.96", "paraphrase at 0.97"):
        await ask(prompt)
        assert last_result().reason_code == "adaptive_check"  # type: ignore[union-attr]
        await cache.drain()
    assert len(calls) == 4
    (key,) = redis_sync.scan_iter(match="ck:{help}:adapt:*")
    assert sum(int(v) for v in redis_sync.hgetall(key).values()) == 3


async def test_a_failing_comparator_gives_no_evidence(
    make_cache: MakeCache, redis_sync: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(cached: str, fresh: str) -> bool:
        raise RuntimeError("comparator down")

    cache, calls = _cache(make_cache, comparator=broken), []
    ask = _asker(cache, calls)
    await ask(BASE)
    with caplog.at_level("WARNING", logger="cachekit"):
        assert await ask("paraphrase at 0.95") == "use the reset link"
        await cache.drain()  # the comparison fails in the background: logged, no evidence
    assert last_result().status == "miss"  # type: ignore[union-attr]
    assert not list(redis_sync.scan_iter(match="ck:{help}:adapt:*"))
    assert any("comparator failed" in r.getMessage() for r in caplog.records)


async def test_a_check_is_a_miss_not_a_hit(make_cache: MakeCache, redis_sync: redis.Redis) -> None:
    cache, calls = _cache(make_cache), []
    ask = _asker(cache, calls)
    await ask(BASE)
    await ask("paraphrase at 0.95")
    await cache.drain()
    result = last_result()
    assert result is not None and result.status == "miss" and result.verdict is None
    (stats_key,) = redis_sync.scan_iter(match="ck:{help:_}:stats")
    stats = redis_sync.hgetall(stats_key)
    assert b"semantic" not in stats and stats[b"miss"] == b"2"  # no hit counted, no alias
    # A check leaves no alias to BASE's entry: the checked prompt has an entry of its own.
    assert not list(redis_sync.scan_iter(match="ck:{help:_}:x:*"))
    assert len(entry_keys(redis_sync, "help")) == 2
    await ask("paraphrase at 0.95")
    assert last_result().status == "exact"  # type: ignore[union-attr]


def test_a_sync_function_records_its_checks(make_cache: MakeCache, redis_sync: redis.Redis) -> None:
    cache = _cache(make_cache)
    calls: list[str] = []

    @cached_llm("help", cache=cache, threshold=0.9, allow_global=True, normalize=None)
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return TABLE[prompt][1]

    ask(BASE)
    assert ask("paraphrase at 0.96") == "Use the reset link."
    assert last_result().reason_code == "adaptive_check"  # type: ignore[union-attr]
    cache.drain_sync()
    (key,) = redis_sync.scan_iter(match="ck:{help}:adapt:*")
    assert redis_sync.hgetall(key) == {b"s:96": b"1"}


async def test_unreadable_evidence_means_a_check_not_an_error(
    make_cache: MakeCache, redis_sync: redis.Redis
) -> None:
    cache, calls = _cache(make_cache), []
    ask = _asker(cache, calls)
    await ask(BASE)
    await ask("paraphrase at 0.95")
    await cache.drain()
    (key,) = redis_sync.scan_iter(match="ck:{help}:adapt:*")
    redis_sync.delete(key)
    redis_sync.set(key, "not a hash")  # something else holds the key: HGETALL fails
    assert await ask("paraphrase at 0.96") == "Use the reset link."
    result = last_result()
    assert result is not None and result.status == "miss", result
    assert result.reason_code == "adaptive_check"


async def test_explain_says_the_candidate_would_be_checked(make_cache: MakeCache) -> None:
    from cachekit._explanation import explain

    cache, calls = _cache(make_cache), []
    ask = _asker(cache, calls)
    await ask(BASE)
    function_id = f"{__name__}._asker.<locals>.ask"
    from cachekit._manifest import build_manifest

    manifest = build_manifest(
        "help", None, {"prompt": "paraphrase at 0.95"}, function_id=function_id, normalize=None
    )
    report = await explain(
        cache, manifest, function_id=function_id, embedder=cache.embedder, threshold=0.9
    )
    assert report.verdict.startswith("MISS (adaptive check: no learned threshold yet")


def test_clean_checks_high_up_do_not_dilute_errors_lower_down() -> None:
    ev = Evidence(0.005)
    z = 1.6448536269514722
    for _ in range(2000):
        ev.add(0.995, True)
    for i in range(10):
        ev.add(0.902, i % 2 == 0)  # 50% wrong at 0.90
    assert ev.threshold(0.02, z, window=1.0) == pytest.approx(0.9)  # pooled bound alone
    assert ev.threshold(0.02, z, window=0.02) == pytest.approx(0.995)  # the window's says no


def test_comparable_text_reads_the_answer_of_every_shape() -> None:
    import json

    from cachekit import _codec
    from cachekit._answer_text import comparable_text
    from cachekit.middleware._record import CachedResponse

    def body(message: dict[str, Any], **extra: Any) -> str:
        data = {"id": "x", "created": 1, "choices": [{"message": message}], **extra}
        return CachedResponse("json", 200, "application/json", body=json.dumps(data)).encode()

    same_text = [body({"content": "Paris."}), body({"content": "Paris."}, id="y", created=2)]
    assert comparable_text(same_text[0]) == comparable_text(same_text[1]) == "Paris."
    call = {"content": None, "tool_calls": [{"function": {"name": "weather", "arguments": "{}"}}]}
    other = {"content": None, "tool_calls": [{"function": {"name": "stocks", "arguments": "{}"}}]}
    assert comparable_text(body(call)) != comparable_text(body(other))
    sse = CachedResponse(
        "sse", 200, "text/event-stream",
        events=('data: {"choices":[{"delta":{"tool_calls":[{"function":{"name":"weather",'
                '"arguments":"{}"}}]}}]}\n\n', "data: [DONE]\n\n"),
    )  # fmt: skip
    assert "weather" in (comparable_text(sse.encode()) or "")
    assert comparable_text(_codec.encode_stream(["Hel", "lo"])) == "Hello"
    assert comparable_text(_codec.encode("x" * 9000)) == "x" * 9000  # never cut
    assert comparable_text(_codec.encode({"choices": []})) is None  # nothing to compare
    langchain = json.dumps([{"lc": 1, "type": "constructor", "id": ["ChatGeneration"],
        "kwargs": {"text": "Paris.", "message": {"lc": 1, "kwargs": {
            "content": "Paris.", "id": "run-1", "response_metadata": {"t": 1}}}}}])  # fmt: skip
    assert comparable_text(langchain) == "Paris."


def test_evidence_threshold_needs_enough_clean_checks() -> None:
    ev = Evidence(0.01)
    z = 1.6448536269514722  # 95% one-sided
    assert ev.threshold(0.05, z) is None
    for _ in range(40):
        ev.add(0.97, True)
    assert ev.threshold(0.05, z) is None  # 40 clean checks: the bound is still ~6.3%
    for _ in range(20):
        ev.add(0.97, True)
    assert ev.threshold(0.05, z) == pytest.approx(0.97)
    ev.add(0.93, False)
    for _ in range(5):
        ev.add(0.92, True)
    # Pooling 0.93 and below would bring an error in: the threshold stays at 0.97.
    assert ev.threshold(0.05, z) == pytest.approx(0.97)
    round_trip = Evidence.from_hash(
        {b"s:97": b"60", b"d:93": b"1", b"s:92": b"5", b"junk": b"x"}, 0.01
    )
    assert round_trip.same == ev.same and round_trip.different == ev.different


def test_settings_are_checked() -> None:
    for bad in ({"delta": 0}, {"delta": 1.5}, {"confidence": 0.4}, {"audit": -0.1},
                {"audit": True}, {"bin_width": 0}, {"bin_width": 1e-9}, {"refresh_s": -1},
                {"refresh_s": float("nan")}, {"refresh_s": float("inf")},
                {"comparator": "same"}, {"window": 0.0001}):  # fmt: skip
        with pytest.raises(CacheConfigError):
            AdaptiveThreshold(**bad)  # type: ignore[arg-type]
    with pytest.raises(CacheConfigError, match="adaptive must be"):
        LLMCache.from_url("redis://127.0.0.1:1/0", adaptive=0.05)
    with pytest.raises(CacheConfigError, match="needs a semantic layer"):
        LLMCache.from_url("redis://127.0.0.1:1/0", adaptive=AdaptiveThreshold())


async def test_comparators() -> None:
    assert normalised_answers("Use the reset link.", "use the  reset link")
    assert not normalised_answers("Paris.", "London.")
    assert not exact_answers("Paris.", "Paris")

    def table(texts: list[str]) -> np.ndarray:
        return np.array([[1.0, 0.0] if "Paris" in t else [0.0, 1.0] for t in texts])

    same_meaning = EmbeddingAnswers(CallableEmbedder(table, dimensions=2, model_id="t/2"))
    assert await same_meaning("Paris is the capital.", "It is Paris.")
    assert not await same_meaning("Paris is the capital.", "London.")
    with pytest.raises(CacheConfigError):
        EmbeddingAnswers(object())


async def test_a_check_through_the_proxy_compares_the_upstreams_answer(
    make_cache: MakeCache, redis_sync: redis.Redis, upstream: Any
) -> None:
    import httpx
    from openai import AsyncOpenAI

    from cachekit.proxy import create_proxy_app

    cache = _cache(make_cache)
    app = create_proxy_app(cache, upstream.base_url, namespace="proxy", threshold=0.9)
    sdk = AsyncOpenAI(
        base_url="http://proxy.test/v1",
        api_key="sk-adaptive",
        max_retries=0,
        http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=app)),
    )
    try:
        before = len(upstream.calls)
        for prompt in (BASE, "paraphrase at 0.95"):
            raw = await sdk.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
            )
            assert raw.headers["x-cache"] == "MISS"
        await cache.drain()
    finally:
        await sdk.close()
    assert len(upstream.calls) == before + 2  # the candidate was checked upstream
    (key,) = redis_sync.scan_iter(match="ck:{proxy}:adapt:*")
    # The local LLM echoes the prompt: the two answers differ, and that is counted.
    assert redis_sync.hgetall(key) == {b"d:95": b"1"}


async def test_the_same_answer_with_other_ids_counts_as_the_same(
    make_cache: MakeCache, redis_sync: redis.Redis
) -> None:
    import httpx
    from openai import AsyncOpenAI

    from cachekit.proxy import create_proxy_app
    from tests.llm_server import LocalOpenAIServer

    cache = _cache(make_cache)
    with LocalOpenAIServer(responder=lambda body: "Use the reset link.") as server:
        app = create_proxy_app(cache, server.base_url, namespace="proxy", threshold=0.9)
        sdk = AsyncOpenAI(
            base_url="http://proxy.test/v1",
            api_key="sk-adaptive",
            max_retries=0,
            http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=app)),
        )
        try:
            for prompt in (BASE, "paraphrase at 0.95"):
                await sdk.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
                )
            await cache.drain()
        finally:
            await sdk.close()
    (key,) = redis_sync.scan_iter(match="ck:{proxy}:adapt:*")
    # Each response has its own id and created time; the answers are the same.
    assert redis_sync.hgetall(key) == {b"s:95": b"1"}
