"""Stats in Redis: pricing, counters of every worker, savings, projections (real Redis)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from cachekit import CacheConfigError, LLMCache, cached_llm, last_result
from cachekit._layout import encode_tenant
from cachekit.embedders import CallableEmbedder
from cachekit.result import CacheResult
from cachekit.stats import (
    OutcomeCounter,
    Pricing,
    decode_tenant_token,
    estimate_tokens,
    estimate_usage,
    parse_stats_hash,
    response_text,
    stats,
    track_outcomes,
)

REPO = Path(__file__).resolve().parent.parent


def reply(text: str, tin: int = 10, tout: int = 20) -> dict[str, Any]:
    return {
        "choices": [{"message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": tin, "completion_tokens": tout},
    }


def wait_entries(r: redis.Redis, pattern: str, n: int, timeout: float = 10.0) -> None:
    """Stores may run in the background: wait until ``n`` entries have landed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(list(r.scan_iter(match=pattern))) >= n:
            return
        time.sleep(0.01)
    raise AssertionError(f"expected {n} entries matching {pattern}")


# ------------------------------------------------------------------------- pricing
# These tests are about the bundled table (its names, its refusals, overrides on it), so
# they ask for it: with genai-prices installed the default source is genai-prices.

BUNDLED = Pricing.load(source="bundled")


@pytest.mark.parametrize(
    ("model", "priced_as"),
    [
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
        ("GPT-4o", "gpt-4o"),
        ("openai/gpt-4.1-mini", "gpt-4.1-mini"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("gpt-4-0613", "gpt-4"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("o3-pro", "o3-pro"),
        ("o1-preview", "o1"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-sonnet-4-0", "claude-sonnet-4"),
        ("anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"),
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"),
        ("text-embedding-3-small", "text-embedding-3-small"),
    ],
)
def test_pricing_matches_dated_and_routed_names(model: str, priced_as: str) -> None:
    found = BUNDLED.lookup(model)
    assert found is not None and found[0] == priced_as


@pytest.mark.parametrize(
    "model", ["gpt-4o-realtime-preview", "gpt-4-32k", "claude-sonnet-4-5", "my-model", "o3x"]
)
def test_pricing_refuses_to_guess_other_products(model: str) -> None:
    assert BUNDLED.lookup(model) is None
    assert BUNDLED.cost(model, 1000, 1000) is None


def test_pricing_table_has_the_well_known_prices_and_a_date() -> None:
    p = BUNDLED
    assert p.as_of and len(p.as_of) == 10
    assert p.models["gpt-4o-mini"].input == 0.15 and p.models["gpt-4o-mini"].output == 0.60
    assert p.models["gpt-4o"].input == 2.50 and p.models["gpt-4o"].output == 10.00
    assert p.models["claude-3-5-haiku"].input == 0.80
    assert p.models["claude-sonnet-4"].output == 15.00
    assert p.models["text-embedding-3-small"].input == 0.02
    # 1M input + 1M output tokens of gpt-4o-mini = 0.15 + 0.60
    assert p.cost("gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000) == pytest.approx(0.75)


def test_pricing_overrides_from_a_dict_and_a_file(tmp_path: Path) -> None:
    p = Pricing.load({"gpt-4o-mini": {"input": 1, "output": 2}, "my-llm": [3, 4]}, source="bundled")
    assert p.cost("gpt-4o-mini-2024-07-18", 1_000_000, 0) == 1.0
    assert p.cost("my-llm", 0, 1_000_000) == 4.0
    assert p.cost("gpt-4o", 1_000_000, 0) == 2.5  # the rest of the table stays
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"as_of": "2030-01-01", "models": {"my-llm": {"input": 5}}}))
    q = Pricing.load(path, source="bundled")
    assert q.as_of == "2030-01-01"
    assert q.cost("my-llm", 1_000_000, 1_000_000) == 5.0
    assert Pricing.load(str(path)).cost("my-llm", 1_000_000, 0) == 5.0


@pytest.mark.parametrize(
    "bad",
    [{"m": {"input": -1}}, {"m": "cheap"}, {"m": [1]}, {"m": {"input": True}}, ["not", "a", "map"]],
)
def test_pricing_rejects_bad_overrides(bad: Any) -> None:
    with pytest.raises(CacheConfigError):
        Pricing.load(bad)


def test_pricing_file_errors_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(CacheConfigError, match="cannot read"):
        Pricing.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(CacheConfigError, match="not valid JSON"):
        Pricing.load(bad)


# ------------------------------------------------------------------ estimates, parsing


def test_estimates_and_response_text() -> None:
    assert estimate_tokens("") == 0
    assert 1 <= estimate_tokens("hello world, how are you today?") <= 10
    assert response_text("plain") == "plain"
    assert response_text(reply("hi there")) == "hi there"
    anthropic = {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    assert response_text(anthropic) == "ab"
    chunks = [
        {"choices": [{"delta": {"content": "x"}}]},
        {"choices": [{"delta": {"content": "y"}}]},
    ]
    assert response_text(chunks) == "xy"
    tin, tout = estimate_usage("a prompt of some words", "an answer", "gpt-4o-mini")
    assert tin > 0 and tout > 0


def test_tenant_tokens_decode() -> None:
    assert decode_tenant_token(encode_tenant("acme")) == "acme"
    assert decode_tenant_token(encode_tenant("ünï:cødé}")) == "ünï:cødé}"
    assert decode_tenant_token(encode_tenant("x" * 100)) is None  # hashed
    assert decode_tenant_token("_") is None


def test_parse_stats_hash_prices_and_projects() -> None:
    now = 1_000_000.0
    raw = {
        b"exact": b"30",
        b"semantic": b"10",
        b"miss": b"60",
        b"bypass": b"5",
        b"error": b"2",
        b"tin:gpt-4o-mini": b"1000000",
        b"tout:gpt-4o-mini": b"1000000",
        b"ein:gpt-4o": b"100000",
        b"eout:gpt-4o": b"0",
        b"tin:mystery-model": b"50",
        b"since": str(now - 2 * 86400).encode(),
        b"junk": b"1",
    }
    row = parse_stats_hash("ns", "_", raw, Pricing.load(), now)
    assert (row.exact, row.semantic, row.miss, row.bypass, row.error) == (30, 10, 60, 5, 2)
    assert row.hit_rate == pytest.approx(0.4)
    assert row.tokens_in == 1_100_050 and row.tokens_out == 1_000_000
    assert row.usd_saved == pytest.approx(0.75 + 0.25)
    assert row.usd_saved_estimated == pytest.approx(0.25)
    assert row.has_estimates
    assert row.unpriced_models == {"mystery-model"}
    # 1.00 USD over 2 days -> 0.50/day -> 15.00 per 30 days
    assert row.projected_monthly_usd == pytest.approx(15.0)
    d = row.to_dict()
    assert d["tenant"] == "(none)" and d["usd_saved"] == pytest.approx(1.0)


def test_no_projection_from_minutes_of_data() -> None:
    now = 1_000_000.0
    raw = {b"exact": b"1", b"tin:gpt-4o": b"1000", b"since": str(now - 60).encode()}
    assert parse_stats_hash("ns", "_", raw, Pricing.load(), now).projected_monthly_usd is None


# ------------------------------------------------------------------- stats() on Redis


def test_stats_per_tenant_with_tokens_and_dollars(redis_url: str, redis_sync: redis.Redis) -> None:
    writer = LLMCache.from_url(redis_url)

    def make(c: LLMCache) -> Any:
        @cached_llm(namespace="support", cache=c, tenant=lambda call: call.arguments["org"])
        def ask(prompt: str, org: str, model: str = "gpt-4o-mini") -> dict[str, Any]:
            return reply(f"answer to {prompt}", tin=1000, tout=4000)

        return ask

    ask = make(writer)
    for org in ("acme", "globex"):
        ask("What is the capital of France?", org=org)
        ask("How do I reset my password?", org=org)
    writer.close()
    wait_entries(redis_sync, "ck:{support:*}:e:*", 4)

    reader = LLMCache.from_url(redis_url)  # a fresh process-state: hits come from Redis
    ask = make(reader)
    for _ in range(3):
        ask("What is the capital of France?", org="acme")
        assert last_result().status == "exact"  # type: ignore[union-attr]
    ask("How do I reset my password?", org="globex")
    try:
        report = reader.run_sync(stats, reader, timeout=10)
        by_tenant = {r.tenant: r for r in report.rows}
        assert set(by_tenant) == {"acme", "globex"}
        acme, globex = by_tenant["acme"], by_tenant["globex"]
        assert (acme.exact, acme.miss) == (3, 2)
        assert (globex.exact, globex.miss) == (1, 2)
        assert acme.tokens == {"gpt-4o-mini": [3000, 12000]}
        assert acme.usd_saved == pytest.approx((3000 * 0.15 + 12000 * 0.60) / 1e6)
        assert acme.hit_rate == pytest.approx(3 / 5)
        t = report.totals
        assert (t.exact, t.miss, t.tokens_in, t.tokens_out) == (4, 4, 4000, 16000)
        assert t.usd_saved == pytest.approx(acme.usd_saved + globex.usd_saved)
        assert report.pricing_as_of

        only = reader.run_sync(stats, reader, "support", "globex", timeout=10)
        assert [r.tenant for r in only.rows] == ["globex"]
        assert reader.run_sync(stats, reader, "nope", timeout=10).rows == []
        # Pricing overrides flow through stats().
        custom = reader.run_sync(
            lambda: stats(reader, pricing={"gpt-4o-mini": [1000, 0]}), timeout=10
        )
        assert custom.totals.usd_saved == pytest.approx(4000 * 1000 / 1e6)
    finally:
        reader.close()


def test_monthly_projection_from_the_since_field(cache: LLMCache, redis_sync: redis.Redis) -> None:
    key = "ck:{proj:_}:stats"
    redis_sync.hset(
        key,
        mapping={
            "exact": 10,
            "miss": 10,
            "tin:gpt-4o": 400_000,  # 1.00 USD
            "tout:gpt-4o": 0,
            "since": repr(time.time() - 4 * 86400),
        },
    )
    report = cache.run_sync(stats, cache, "proj", timeout=10)
    (row,) = report.rows
    assert row.usd_saved == pytest.approx(1.0)
    assert row.projected_monthly_usd == pytest.approx(30 / 4, rel=1e-3)
    assert report.totals.projected_monthly_usd == pytest.approx(30 / 4, rel=1e-3)


def test_hashed_tenants_show_their_token(cache: LLMCache, redis_sync: redis.Redis) -> None:
    long_id = "tenant-" + "x" * 80
    token = encode_tenant(long_id)
    redis_sync.hset(f"ck:{{ns:{token}}}:stats", "miss", 1)
    report = cache.run_sync(stats, cache, timeout=10)
    assert [r.tenant for r in report.rows] == [token]
    # Asking by the tenant id finds it (it is encoded the same way).
    assert cache.run_sync(stats, cache, "ns", long_id, timeout=10).rows[0].miss == 1


# --------------------------------------------------------- bypasses, errors, flights


def test_bypasses_and_errors_reach_redis(redis_url: str, redis_sync: redis.Redis) -> None:
    def broken(texts: list[str]) -> Any:
        raise RuntimeError("embedding service down")

    cache = LLMCache.from_url(
        redis_url, embedder=CallableEmbedder(broken, dimensions=8, model_id="test/broken")
    )
    counter = track_outcomes(cache)
    assert track_outcomes(cache) is counter  # idempotent

    @cached_llm(
        namespace="ops", cache=cache, threshold=0.9, tenant=lambda call: call.arguments.get("org")
    )
    def ask(prompt: str, org: str | None = None) -> str:
        return "A"

    try:
        ask("no tenant here")
        assert last_result().status == "bypass"  # type: ignore[union-attr]
        ask("the embedder fails", org="acme")
        assert last_result().status == "error"  # type: ignore[union-attr]
        cache.run_sync(counter.flush, timeout=5)
        assert counter.pending == {}
        report = cache.run_sync(stats, cache, "ops", timeout=10)
        assert report.totals.bypass == 1
        assert report.totals.error >= 1
    finally:
        cache.close()
    assert redis_sync.hget("ck:{ops:_}:stats", "since") is not None


def test_outcome_counts_survive_redis_being_down(redis_url: str) -> None:
    down = LLMCache.from_url("redis://127.0.0.1:1/0")
    counter = OutcomeCounter(down, retry_interval=60)
    down.observers.append(counter)
    counter(CacheResult(status="error", namespace="ns", reason="lookup failed: boom"))
    counter(CacheResult(status="bypass", namespace="ns", reason="no tenant"))
    counter(CacheResult(status="miss", namespace="ns"))  # counted by the store, not here
    # The background flush fails and keeps the counts for later.
    expected = {("ns", "_", "error"): 1, ("ns", "_", "bypass"): 1}
    deadline = time.monotonic() + 10
    while (counter.pending != expected or counter._inflight) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert counter.pending == expected
    with pytest.raises(Exception):  # noqa: B017 - any connection error
        down.run_sync(counter.flush, timeout=5)
    assert counter.pending == expected
    down.close()
    # The same counts land once a Redis answers.
    up = LLMCache.from_url(redis_url)
    try:
        moved = OutcomeCounter(up)
        moved._pending.update(counter._pending)
        up.run_sync(moved.flush, timeout=5)
        report = up.run_sync(stats, up, "ns", timeout=10)
        assert (report.totals.error, report.totals.bypass) == (1, 1)
    finally:
        up.close()


def test_hits_and_misses_are_left_to_the_core(cache: LLMCache) -> None:
    counter = OutcomeCounter(cache)
    reason = "single-flight: served the result of an identical call in flight"
    counter(CacheResult(status="exact", namespace="sf", reason=reason))
    counter(CacheResult(status="semantic", namespace="sf", similarity=0.95))
    counter(CacheResult(status="miss", namespace="sf"))
    assert counter.pending == {}


# ---------------------------------------------------- two processes, one set of totals

WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from collections import Counter
    from cachekit import LLMCache, cached_llm, last_result
    from cachekit.stats import track_outcomes

    cache = LLMCache.from_url(sys.argv[1])
    track_outcomes(cache)

    @cached_llm(namespace="multi", cache=cache, tenant=lambda c: c.arguments.get("org"))
    def ask(prompt, org=None, model="gpt-4o-mini"):
        time.sleep(0.002)
        return {"choices": [{"message": {"content": "A:" + prompt}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 7}}

    print("ready", flush=True)
    go = sys.argv[2]
    while not os.path.exists(go):
        time.sleep(0.005)
    seen = Counter()
    for round_ in range(3):
        for i in range(8):
            ask(f"question number {i}", org="acme")
            seen[last_result().status] += 1
    for _ in range(2):
        ask("anonymous")
        seen[last_result().status] += 1
    cache.close()
    print(json.dumps(seen), flush=True)
    """
)


def test_stats_add_up_across_two_processes(redis_url: str, cache: LLMCache, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), redis_url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready"
        go.write_text("go")  # both start their calls at once
        seen: dict[str, int] = {}
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            for status, n in json.loads(out.strip().splitlines()[-1]).items():
                seen[status] = seen.get(status, 0) + n
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    report = cache.run_sync(stats, cache, "multi", timeout=10)
    t = report.totals
    assert sum(seen.values()) == 2 * (24 + 2)
    # What both processes saw is exactly what Redis counted, whoever ran first.
    assert t.exact + t.semantic == seen.get("exact", 0) + seen.get("semantic", 0)
    assert t.miss == seen.get("miss", 0)
    assert t.bypass == seen.get("bypass", 0) == 4
    assert t.error == seen.get("error", 0) == 0
    assert t.exact + t.miss == 48
    assert 8 <= t.miss <= 16  # each question computed at most once per process
    # Exact hits read from Redis carry the tokens their entry stored.
    assert t.tokens_in % 5 == 0 and t.tokens_out % 7 == 0


# ------------------------------------------- with the core changes proposed in #6
# (skipped until cache.py / decorator.py / result.py carry them)

_CORE_TOKENS = "usage_estimated" in __import__("inspect").signature(LLMCache.store).parameters
_CORE_TENANT = "tenant" in CacheResult.__dataclass_fields__
needs_core_tokens = pytest.mark.skipif(not _CORE_TOKENS, reason="core change not applied yet")


@needs_core_tokens
def test_semantic_hits_estimates_and_since(redis_url: str, redis_sync: redis.Redis) -> None:
    def embedder() -> CallableEmbedder:
        def embed(texts: list[str]) -> Any:
            import numpy as np

            vocab = ["capital", "france", "password", "reset"]
            out = np.full((len(texts), len(vocab) + 1), 0.05, dtype=np.float32)
            for i, t in enumerate(texts):
                for j, w in enumerate(vocab):
                    out[i, j] += t.lower().count(w)
            return out

        return CallableEmbedder(embed, dimensions=5, model_id="test/vocab5")

    def make(c: LLMCache) -> tuple[Any, Any]:
        @cached_llm(namespace="core", cache=c, threshold=0.9)
        def ask(prompt: str, model: str = "gpt-4o") -> dict[str, Any]:
            return reply("answer", tin=1000, tout=2000)

        @cached_llm(namespace="core", cache=c)
        def plain(prompt: str, model: str = "gpt-4o-mini") -> str:
            return "x" * 400  # no usage reported: ~100 tokens estimated

        return ask, plain

    writer = LLMCache.from_url(redis_url, embedder=embedder())
    ask, plain = make(writer)
    ask("capital of france")
    plain("reset my password please")
    writer.close()
    assert redis_sync.hget("ck:{core:_}:stats", "since") is not None  # the store set it
    reader = LLMCache.from_url(redis_url, embedder=embedder())
    ask, plain = make(reader)
    try:
        ask("France: the capital?")
        assert last_result().status == "semantic"  # type: ignore[union-attr]
        plain("reset my password please")
        assert last_result().status == "exact"  # type: ignore[union-attr]
        (row,) = reader.run_sync(stats, reader, "core", timeout=10).rows
    finally:
        reader.close()
    assert row.tokens["gpt-4o"] == [1000, 2000]  # the semantic hit saved the entry's usage
    assert row.estimated_tokens["gpt-4o-mini"][1] >= 50
    assert row.has_estimates and row.usd_saved_estimated > 0


@pytest.mark.skipif(not _CORE_TENANT, reason="core change not applied yet")
def test_bypasses_land_on_their_tenant(cache: LLMCache) -> None:
    counter = track_outcomes(cache)

    @cached_llm(namespace="tb", cache=cache)
    def ask(prompt: str) -> str:
        return "A"

    from cachekit import cache_control, use_tenant

    with use_tenant("acme"), cache_control(skip_lookup=True, skip_store=True):
        ask("hello")
    assert last_result().status == "bypass"  # type: ignore[union-attr]
    cache.drain_sync()
    cache.run_sync(counter.flush, timeout=5)
    (row,) = cache.run_sync(stats, cache, "tb", timeout=10).rows
    assert (row.tenant, row.bypass) == ("acme", 1)
