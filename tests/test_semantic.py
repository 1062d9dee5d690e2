"""The semantic-layer contract, run unchanged against every vector-index backend.

Stores are synchronous here (``background_stores=False``) so a paraphrase asked right
after a store sees it; background stores are covered in test_core and test_resilience.

Real Redis 8 (vector sets built in, RediSearch loaded for ``search``), real MiniLM
embeddings for paraphrases, and a table embedder with exactly known cosines for the
threshold edges.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import numpy as np
import pytest
import redis

from cachekit import Budgets, IndexMismatchError, LLMCache, cached_llm, last_result, use_tenant
from cachekit.embedders import CallableEmbedder, SentenceTransformerEmbedder
from cachekit.errors import CacheConfigError
from tests._helpers import MakeCache

BACKENDS = ["vectorset", "search", "flat"]
#: The machine running the tests may be loaded: these tests are about behaviour, not
#: time budgets, so give every stage plenty of time (fail-open is tested elsewhere).
GENEROUS = Budgets(connect=10, lookup=10, embed=60, search=10, store=10, command=10, pool_wait=10)
DIMS = 16


class TableEmbedder:
    """Prompt -> fixed vector, with a call counter. Unknown prompts get a hashed vector."""

    def __init__(self, dims: int = DIMS) -> None:
        self.dims = dims
        self.table: dict[str, np.ndarray] = {}
        self.calls: list[list[str]] = []

    def set(self, prompt: str, vector: np.ndarray) -> None:
        self.table[prompt] = vector.astype(np.float32)

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        out = []
        for t in texts:
            if t in self.table:
                out.append(self.table[t])
            else:
                rng = np.random.default_rng(abs(hash(t)) % 2**32)
                out.append(rng.standard_normal(self.dims).astype(np.float32))
        return np.stack(out)

    @property
    def n_texts(self) -> int:
        return sum(len(c) for c in self.calls)


def with_cosine(base: np.ndarray, cos: float, seed: int = 0) -> np.ndarray:
    """A unit vector whose cosine with unit ``base`` is exactly ``cos``."""
    rng = np.random.default_rng(seed)
    other = rng.standard_normal(base.shape[0])
    other -= other.dot(base) * base
    other /= np.linalg.norm(other)
    return (cos * base + math.sqrt(1 - cos * cos) * other).astype(np.float32)


E1 = np.eye(DIMS, dtype=np.float32)[0]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def table() -> TableEmbedder:
    return TableEmbedder()


@pytest.fixture
async def tcache(make_cache: MakeCache, backend: str, table: TableEmbedder) -> LLMCache:
    emb = CallableEmbedder(table, dimensions=DIMS, model_id="test/table")
    # Functional tests: budgets a loaded 2-core box cannot run out of (the budget tests
    # make caches of their own).
    cache = make_cache(embedder=emb, index=backend, background_stores=False, budgets=GENEROUS)
    await cache.connect()
    return cache


async def test_backend_is_the_one_asked_for(tcache: LLMCache, backend: str) -> None:
    meta = await tcache.index_meta()
    assert meta["backend"] == backend and meta["dims"] == str(DIMS)


async def test_paraphrase_hits_unrelated_misses_then_exact(
    redis_url: str, backend: str, minilm: SentenceTransformerEmbedder
) -> None:
    calls: list[str] = []
    async with LLMCache.from_url(
        redis_url, embedder=minilm, index=backend, background_stores=False
    ) as cache:

        @cached_llm(namespace="sem", cache=cache, threshold=0.8)
        async def ask(prompt: str, system: str = "You are terse.") -> str:
            calls.append(prompt)
            return f"answer to {prompt}"

        first = await ask("What is the capital of France?")
        assert last_result().status == "miss"  # type: ignore[union-attr]
        para = await ask("Tell me the capital city of France.")
        r = last_result()
        assert r is not None and r.status == "semantic" and r.layer == "semantic"
        assert para == first
        assert r.similarity is not None and 0.8 <= r.similarity <= 1.0
        assert r.matched_prompt == "What is the capital of France?"
        await ask("Tell me the capital city of France.")
        assert last_result().status == "exact"  # type: ignore[union-attr]
        await ask("How do I bake sourdough bread?")
        assert last_result().status == "miss"  # type: ignore[union-attr]
        assert calls == ["What is the capital of France?", "How do I bake sourdough bread?"]


@pytest.mark.parametrize("true_cos", [0.9, 0.5])
async def test_threshold_edge_and_reported_similarity(
    tcache: LLMCache, table: TableEmbedder, backend: str, true_cos: float
) -> None:
    # int8 vector sets quantise: similarities are exact to about 0.01 there.
    eps = 0.03 if backend == "vectorset" else 1e-3
    table.set("stored prompt", E1)
    table.set("probe above", with_cosine(E1, true_cos, seed=1))
    table.set("probe below", with_cosine(E1, true_cos, seed=2))

    def make(threshold: float) -> Any:
        @cached_llm(namespace="edge", cache=tcache, threshold=threshold)
        async def ask(prompt: str) -> str:
            return f"fresh:{prompt}"

        return ask

    await make(0.0)("stored prompt")
    assert await make(true_cos - eps)("probe above") == "fresh:stored prompt"
    r = last_result()
    assert r is not None and r.status == "semantic"
    assert r.similarity == pytest.approx(true_cos, abs=eps)
    assert await make(true_cos + eps)("probe below") == "fresh:probe below"
    assert last_result().status == "miss"  # type: ignore[union-attr]


async def test_scope_isolation(tcache: LLMCache, table: TableEmbedder) -> None:
    """The same prompt (cosine 1.0) never matches across system, model, turns or tenant."""
    for p in ("q", "q2"):
        table.set(p, E1)  # "q2" is a perfect paraphrase of "q"

    @cached_llm(namespace="iso", cache=tcache, threshold=0.5, tenant=lambda c: c.arguments["org"])
    async def create(*, messages: list[dict[str, str]], model: str, org: str) -> str:
        return f"{model}|{org}|{len(messages)}|{messages[0]['content']}"

    def convo(system: str, prompt: str, earlier: bool = False) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": system}]
        if earlier:
            msgs += [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
        return [*msgs, {"role": "user", "content": prompt}]

    await create(messages=convo("S1", "q"), model="m1", org="acme")
    await create(messages=convo("S1", "q2"), model="m1", org="acme")
    assert last_result().status == "semantic"  # type: ignore[union-attr]
    variants = [
        {"messages": convo("S2", "q2"), "model": "m1", "org": "acme"},
        {"messages": convo("S1", "q2"), "model": "m2", "org": "acme"},
        {"messages": convo("S1", "q2", earlier=True), "model": "m1", "org": "acme"},
        {"messages": convo("S1", "q2"), "model": "m1", "org": "globex"},
    ]
    for kwargs in variants:
        value = await create(**kwargs)
        r = last_result()
        assert r is not None and r.status == "miss", kwargs
        assert value.startswith(f"{kwargs['model']}|{kwargs['org']}|")


async def test_ttl_expiry_with_vectors_left_behind(
    tcache: LLMCache, table: TableEmbedder, redis_sync: redis.Redis
) -> None:
    table.set("long lived", E1)
    table.set("short lived", with_cosine(E1, 0.99, seed=3))
    table.set("probe", with_cosine(E1, 0.995, seed=4))

    @cached_llm(namespace="ttl", cache=tcache, threshold=0.9, ttl=1)
    async def short(prompt: str) -> str:
        return f"short:{prompt}"

    await short("short lived")
    for key in redis_sync.scan_iter("ck:*:e:*"):
        redis_sync.persist(key)  # only the entry outlives its TTL...
        redis_sync.delete(key)  # ...then is evicted (as LRU would), leaving its vector
    assert await short("probe") == "short:probe"
    assert last_result().status == "miss"  # type: ignore[union-attr]
    await asyncio.sleep(2.2)
    assert await short("probe") == "short:probe"  # the miss above stored "probe" with ttl 1
    assert last_result().status == "miss"  # type: ignore[union-attr]


async def test_dangling_vectors_are_removed(
    tcache: LLMCache, table: TableEmbedder, redis_sync: redis.Redis
) -> None:
    table.set("a", E1)
    table.set("b", with_cosine(E1, 0.97, seed=5))

    @cached_llm(namespace="dang", cache=tcache, threshold=0.9)
    async def ask(prompt: str) -> str:
        return prompt

    await ask("a")
    for key in redis_sync.scan_iter("ck:*:e:*"):
        redis_sync.delete(key)
    await ask("b")
    assert last_result().status == "miss"  # type: ignore[union-attr]
    # The dangling vector of "a" was removed; only "b"'s remains in the scope.
    space_keys = [k for k in redis_sync.scan_iter("ck:*") if b":vs:" in k or b":fl:" in k]
    docs = list(redis_sync.scan_iter("ckv:*"))
    if space_keys:
        (key,) = space_keys
        if redis_sync.type(key) == b"vectorset":
            assert redis_sync.execute_command("VCARD", key) == 1
        else:
            assert redis_sync.hlen(key) == 1
    else:
        assert len(docs) == 1


async def test_dimension_mismatch_fails_loudly_at_connect_and_open_in_calls(
    redis_url: str, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    small = CallableEmbedder(lambda t: np.ones((len(t), 8)), dimensions=8, model_id="m/eight")
    big = CallableEmbedder(lambda t: np.ones((len(t), 12)), dimensions=12, model_id="m/twelve")
    async with LLMCache.from_url(redis_url, embedder=small, index=backend):
        pass
    other = LLMCache.from_url(redis_url, embedder=big, index=backend)
    with pytest.raises(IndexMismatchError) as info:
        await other.connect()
    text = str(info.value)
    assert "8" in text and "12" in text and "m/eight" in text and "m/twelve" in text

    @cached_llm(namespace="dim", cache=other, threshold=0.9)
    async def ask(prompt: str) -> str:
        return "still answered"

    with caplog.at_level(logging.WARNING, logger="cachekit"):
        assert await ask("hello") == "still answered"
    # A mismatched index is a configuration problem, not an outage: the exact layer keeps
    # working (a miss that is stored), the breaker is untouched, and the log says why.
    assert last_result().status == "miss"  # type: ignore[union-attr]
    assert "semantic layer is off" in caplog.text and "m/twelve" in caplog.text
    await other.drain()
    assert await ask("hello") == "still answered"
    assert last_result().status == "exact"  # type: ignore[union-attr]
    assert other.breaker.state == "closed"
    await other.aclose()


async def test_concurrent_stores_all_searchable(tcache: LLMCache, table: TableEmbedder) -> None:
    rng = np.random.default_rng(7)
    base = rng.standard_normal((40, DIMS)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    for i in range(40):
        table.set(f"p{i}", base[i])
        table.set(f"para{i}", with_cosine(base[i], 0.99, seed=100 + i))

    @cached_llm(namespace="conc", cache=tcache, threshold=0.95)
    async def ask(prompt: str) -> str:
        return f"a:{prompt}"

    await asyncio.gather(*(ask(f"p{i}") for i in range(40)))
    results = await asyncio.gather(*(ask(f"para{i}") for i in range(40)))
    assert results == [f"a:p{i}" for i in range(40)]


async def test_prompt_embedded_once_per_call_and_batched(
    tcache: LLMCache, table: TableEmbedder
) -> None:
    @cached_llm(namespace="once", cache=tcache, threshold=0.9)
    async def ask(prompt: str) -> str:
        return prompt

    table.calls.clear()  # connect() warmed the embedder up
    await ask("only once please")
    assert table.n_texts == 1  # the lookup's vector was reused for the store
    await ask("only once please")
    assert table.n_texts == 1  # exact hit: no embedding at all
    table.calls.clear()
    await asyncio.gather(*(ask(f"concurrent {i}") for i in range(20)))
    # each prompt embedded exactly once (coalescing itself is tested in test_embedders)
    assert sorted(t for c in table.calls for t in c) == sorted(f"concurrent {i}" for i in range(20))


async def test_no_prompt_text_means_exact_only(tcache: LLMCache, table: TableEmbedder) -> None:
    @cached_llm(namespace="empty", cache=tcache, threshold=0.5)
    async def ask(prompt: str) -> str:
        return "x"

    table.calls.clear()
    await ask("   ")
    await ask("   ")
    assert last_result().status == "exact"  # type: ignore[union-attr]
    await ask("")
    assert table.n_texts == 0


async def test_embedder_failure_fails_open(redis_url: str, backend: str) -> None:
    def broken(texts: list[str]) -> np.ndarray:
        raise RuntimeError("embedding service down")

    emb = CallableEmbedder(broken, dimensions=DIMS, model_id="test/broken")
    async with LLMCache.from_url(
        redis_url, embedder=emb, index=backend, background_stores=False
    ) as cache:

        @cached_llm(namespace="fail", cache=cache, threshold=0.9)
        async def ask(prompt: str) -> str:
            return "from the llm"

        assert await ask("hello") == "from the llm"
        r = last_result()
        assert (
            r is not None and r.status == "error" and "embedding service down" in (r.reason or "")
        )


async def test_long_prompt_is_truncated_for_embedding(
    redis_url: str, minilm: SentenceTransformerEmbedder
) -> None:
    async with LLMCache.from_url(
        redis_url, embedder=minilm, background_stores=False, budgets=GENEROUS
    ) as cache:

        @cached_llm(namespace="long", cache=cache, threshold=0.9)
        async def ask(prompt: str) -> str:
            return "ok"

        long = "word " * 30_000
        assert await ask(long) == "ok"
        assert last_result().status == "miss"  # type: ignore[union-attr]
        assert await ask(long) == "ok"
        assert last_result().status == "exact"  # type: ignore[union-attr]


async def test_tenants_never_share_semantic_hits(tcache: LLMCache, table: TableEmbedder) -> None:
    table.set("secret question", E1)
    table.set("secret question, rephrased", E1)

    @cached_llm(namespace="ten", cache=tcache, threshold=0.5, tenant=lambda c: None)
    async def ask(prompt: str) -> str:
        from cachekit.result import current_tenant

        return f"for {current_tenant()}"

    with use_tenant("acme"):
        await ask("secret question")
    with use_tenant("globex"):
        assert await ask("secret question, rephrased") == "for globex"
        assert last_result().status == "miss"  # type: ignore[union-attr]
    with use_tenant("acme"):
        assert await ask("secret question, rephrased") == "for acme"
        assert last_result().status == "semantic"  # type: ignore[union-attr]


@pytest.mark.parametrize("backend_name", ["vectorset", "search"])
async def test_search_effort_and_candidates_reach_redis(
    make_cache: MakeCache, redis_sync: redis.Redis, table: TableEmbedder, backend_name: str
) -> None:
    # ef_runtime= and candidates= are the knobs of the recall/latency curve: the search
    # command Redis receives must carry them (read back from Redis' own SLOWLOG).
    emb = CallableEmbedder(table, dimensions=DIMS, model_id="test/table")
    cache = make_cache(
        embedder=emb, index=backend_name, background_stores=False, budgets=GENEROUS,
        ef_runtime=37, candidates=3,
    )  # fmt: skip
    table.set("first question", E1)
    table.set("second question", with_cosine(E1, 0.99))

    @cached_llm(namespace="effort", cache=cache, threshold=0.9, allow_global=True)
    async def ask(prompt: str) -> str:
        return f"answer to {prompt}"

    await ask("first question")
    redis_sync.config_set("slowlog-log-slower-than", 0)
    redis_sync.config_set("slowlog-max-len", 1024)
    redis_sync.slowlog_reset()
    try:
        await ask("second question")
        assert last_result().status == "semantic"  # type: ignore[union-attr]
        entries = redis_sync.slowlog_get(1024, decode_responses=False)
        logged = [e["command"].decode("latin-1").split() for e in entries]
    finally:
        redis_sync.config_set("slowlog-log-slower-than", 10000)
    searches = [c for c in logged if c[0].upper() in ("VSIM", "FT.SEARCH")]
    assert searches, logged
    words = searches[0]
    if backend_name == "vectorset":
        assert words[words.index("EF") + 1] == "37" and words[words.index("COUNT") + 1] == "3"
    else:
        assert words[words.index("K") + 1] == "3" and words[words.index("EF") + 1] == "37"


@pytest.mark.parametrize(
    ("option", "value"), [("ef_runtime", 0), ("ef_runtime", True), ("candidates", 0)]
)
def test_bad_search_effort_is_a_config_error(option: str, value: object) -> None:
    with pytest.raises(CacheConfigError, match=option):
        LLMCache.from_url("redis://127.0.0.1:1", **{option: value})
