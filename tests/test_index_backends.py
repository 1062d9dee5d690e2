"""The three vector-index backends against a real Redis 8.2 (+ RediSearch); no mocks.

Every behavioural test runs for each backend (and for vector sets with int8 and fp32
quantization), because the point of the seam is that callers cannot tell them apart:
same cosine scale, same scope isolation, same TTL and removal semantics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np
import numpy.typing as npt
import pytest
import redis.asyncio as aioredis

from cachekit._index import (
    Candidate,
    FlatIndex,
    SearchIndex,
    VectorIndex,
    VectorSetIndex,
    detect_index,
    make_index,
    resolve_index,
)
from cachekit._index._wire import FOREVER_SECONDS
from cachekit._layout import META_KEY, Space, VectorScope, encode_tenant
from cachekit.errors import CacheConfigError, IndexMismatchError

F32 = npt.NDArray[np.float32]
DIMS = 64

# id -> (make_index kind, quantization, cosine tolerance)
BACKENDS: dict[str, tuple[str, str, float]] = {
    "vectorset-int8": ("vectorset", "int8", 0.02),
    "vectorset-fp32": ("vectorset", "fp32", 1e-4),
    "search": ("search", "int8", 1e-4),
    "flat": ("flat", "int8", 1e-4),
}


def unit(x: npt.ArrayLike) -> F32:
    arr = np.asarray(x, dtype=np.float64)
    return (arr / np.linalg.norm(arr, axis=-1, keepdims=True)).astype(np.float32)


def with_cosine(u: F32, cos: float, rng: np.random.Generator) -> F32:
    """A unit vector whose cosine with unit ``u`` is exactly ``cos`` (up to float32)."""
    w = rng.standard_normal(u.shape[0])
    w -= w.dot(u) * u  # Gram-Schmidt: w is orthogonal to u
    w /= np.linalg.norm(w)
    return unit(cos * u.astype(np.float64) + np.sqrt(1.0 - cos * cos) * w)


def scope_of(
    namespace: str = "ns", tenant: str | None = None, gen: int = 1, digest: str = "s1"
) -> VectorScope:
    return Space(namespace, encode_tenant(tenant)).scope(gen, digest)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    conn = aioredis.Redis.from_url(redis_url)
    yield conn
    await conn.aclose()


@pytest.fixture(params=list(BACKENDS))
def backend_id(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def index(client: aioredis.Redis, backend_id: str) -> VectorIndex:
    kind, quantization, _ = BACKENDS[backend_id]
    idx = make_index(kind, client, quantization=quantization)
    await idx.ensure(DIMS, "test-model")
    return idx


@pytest.fixture
def tolerance(backend_id: str) -> float:
    return BACKENDS[backend_id][2]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


async def store(
    client: aioredis.Redis,
    index: VectorIndex,
    scope: VectorScope,
    items: dict[str, F32],
    ttl: int | None = 600,
) -> None:
    """Like the cache core: one MULTI that writes the entry and queues the vector."""
    pipe = client.pipeline(transaction=True)
    for entry_id, vec in items.items():
        pipe.hset(scope.entry_key(entry_id), "payload", "x")
        index.add(pipe, scope, entry_id, vec, ttl)
    await pipe.execute()


# --------------------------------------------------------------------- behaviour


async def test_same_vector_and_known_cosine(
    client: aioredis.Redis, index: VectorIndex, tolerance: float, rng: np.random.Generator
) -> None:
    scope = scope_of()
    u = unit(rng.standard_normal(DIMS))
    v = with_cosine(u, 0.8, rng)
    assert abs(float(u @ v) - 0.8) < 1e-6
    await store(client, index, scope, {"same": u, "near": v})

    hits = await index.search(scope, u, 5)
    assert [c.entry_id for c in hits] == ["same", "near"]
    assert all(isinstance(c, Candidate) for c in hits)
    assert hits[0].similarity == pytest.approx(1.0, abs=tolerance)
    assert hits[1].similarity == pytest.approx(0.8, abs=tolerance)
    assert all(-1.0 <= c.similarity <= 1.0 for c in hits)


async def test_negative_cosine_keeps_the_cosine_scale(
    client: aioredis.Redis, index: VectorIndex, tolerance: float, rng: np.random.Generator
) -> None:
    """VSIM's (1+cos)/2 and FT's 1-cos must both come back as cos, also below zero."""
    scope = scope_of()
    u = unit(rng.standard_normal(DIMS))
    await store(client, index, scope, {"opposite": -u, "minus-half": with_cosine(u, -0.5, rng)})
    hits = await index.search(scope, u, 5)
    assert [c.entry_id for c in hits] == ["minus-half", "opposite"]
    assert hits[0].similarity == pytest.approx(-0.5, abs=tolerance)
    assert hits[1].similarity == pytest.approx(-1.0, abs=tolerance)


async def test_scope_isolation(
    client: aioredis.Redis, index: VectorIndex, rng: np.random.Generator
) -> None:
    base = scope_of()
    others = [
        scope_of(digest="s2"),
        scope_of(gen=2),
        scope_of(tenant="alice"),
        scope_of(namespace="other"),
    ]
    u = unit(rng.standard_normal(DIMS))
    await store(client, index, base, {"mine": u})
    for i, other in enumerate(others):
        assert await index.search(other, u, 5) == [], other
        await store(client, index, other, {f"theirs-{i}": u})
    assert [c.entry_id for c in await index.search(base, u, 10)] == ["mine"]
    for i, other in enumerate(others):
        assert [c.entry_id for c in await index.search(other, u, 10)] == [f"theirs-{i}"]


async def test_top_k_is_best_first(
    client: aioredis.Redis, index: VectorIndex, tolerance: float, rng: np.random.Generator
) -> None:
    scope = scope_of()
    q = unit(rng.standard_normal(DIMS))
    cosines = [0.95, 0.85, 0.75, 0.6, 0.45, 0.3, 0.1, -0.2]
    items = {f"c{i}": with_cosine(q, c, rng) for i, c in enumerate(cosines)}
    shuffled = dict(sorted(items.items(), key=lambda kv: rng.random()))
    await store(client, index, scope, shuffled)

    top = await index.search(scope, q, 3)
    assert [c.entry_id for c in top] == ["c0", "c1", "c2"]
    for cand, expected in zip(top, cosines, strict=False):
        assert cand.similarity == pytest.approx(expected, abs=tolerance)
    everything = await index.search(scope, q, 50)
    assert [c.entry_id for c in everything] == [f"c{i}" for i in range(len(cosines))]
    assert await index.search(scope, q, 0) == []


async def test_missing_scope_is_empty(index: VectorIndex, rng: np.random.Generator) -> None:
    assert await index.search(scope_of(digest="never"), unit(rng.standard_normal(DIMS)), 5) == []


async def test_remove(client: aioredis.Redis, index: VectorIndex, rng: np.random.Generator) -> None:
    scope = scope_of()
    vecs = {f"e{i}": unit(rng.standard_normal(DIMS)) for i in range(4)}
    await store(client, index, scope, vecs)
    await index.remove(scope, ["e1", "e3", "never-existed"])
    await index.remove(scope, [])
    left = await index.search(scope, vecs["e1"], 10)
    assert sorted(c.entry_id for c in left) == ["e0", "e2"]
    await index.remove(scope, ["e0", "e2"])
    assert await index.search(scope, vecs["e0"], 10) == []


async def test_ttl_expiry(
    client: aioredis.Redis, index: VectorIndex, rng: np.random.Generator
) -> None:
    scope = scope_of()
    u = unit(rng.standard_normal(DIMS))
    await store(client, index, scope, {"short": u}, ttl=1)
    assert [c.entry_id for c in await index.search(scope, u, 5)] == ["short"]
    await asyncio.sleep(2.1)
    assert await index.search(scope, u, 5) == []
    if index.name == "search":
        assert await client.exists(scope.doc_key("short")) == 0
    else:
        assert await client.exists(scope.key("vs" if index.name == "vectorset" else "fl")) == 0


async def test_shared_key_ttl_covers_its_longest_entry(
    client: aioredis.Redis, index: VectorIndex, rng: np.random.Generator
) -> None:
    """A short-lived entry must never shorten a longer-lived neighbour's vector."""
    scope = scope_of()
    await store(client, index, scope, {"long": unit(rng.standard_normal(DIMS))}, ttl=500)
    await store(client, index, scope, {"short": unit(rng.standard_normal(DIMS))}, ttl=5)
    if index.name == "search":
        assert 490 <= await client.ttl(scope.doc_key("long")) <= 500
        assert 0 < await client.ttl(scope.doc_key("short")) <= 5
        await store(client, index, scope, {"forever": unit(rng.standard_normal(DIMS))}, None)
        assert await client.ttl(scope.doc_key("forever")) == -1
        return
    key = scope.key("vs" if index.name == "vectorset" else "fl")
    assert 490 <= await client.ttl(key) <= 500
    await store(client, index, scope, {"forever": unit(rng.standard_normal(DIMS))}, None)
    assert await client.ttl(key) > FOREVER_SECONDS - 10
    await store(client, index, scope, {"later": unit(rng.standard_normal(DIMS))}, ttl=5)
    assert await client.ttl(key) > FOREVER_SECONDS - 10


async def test_concurrent_adds_all_searchable(
    client: aioredis.Redis, index: VectorIndex, rng: np.random.Generator
) -> None:
    scope = scope_of()
    vecs = {f"e{i}": unit(rng.standard_normal(DIMS)) for i in range(50)}

    async def one(entry_id: str, vec: F32) -> None:
        async with client.pipeline(transaction=True) as pipe:
            pipe.set(scope.space.exact_key(scope.generation, entry_id), entry_id, ex=600)
            pipe.hset(scope.entry_key(entry_id), "payload", "x")
            index.add(pipe, scope, entry_id, vec, 600)
            await pipe.execute()

    await asyncio.gather(*(one(eid, vec) for eid, vec in vecs.items()))
    for eid, vec in vecs.items():
        hits = await index.search(scope, vec, 1)
        assert [c.entry_id for c in hits] == [eid]
    assert len(await index.search(scope, vecs["e0"], 100)) == 50


async def test_add_refuses_an_unbuffered_watch_pipeline(
    client: aioredis.Redis, index: VectorIndex, rng: np.random.Generator
) -> None:
    """After WATCH and before MULTI redis-py runs commands at once: add must not drop them."""
    scope = scope_of()
    async with client.pipeline(transaction=True) as pipe:
        await pipe.watch(scope.entry_key("e"))
        with pytest.raises(RuntimeError, match="multi"):
            index.add(pipe, scope, "e", unit(rng.standard_normal(DIMS)), 60)
        pipe.multi()
        index.add(pipe, scope, "e", unit(rng.standard_normal(DIMS)), 60)
        await pipe.execute()
    assert len(await index.search(scope, unit(rng.standard_normal(DIMS)), 5)) == 1


@pytest.mark.parametrize(("protocol", "decode"), [(2, False), (2, True), (3, True)])
async def test_reply_shapes(
    redis_url: str, backend_id: str, protocol: int, decode: bool, rng: np.random.Generator
) -> None:
    """RESP2 arrays, RESP3 maps and decode_responses=True all parse (blobs stay raw)."""
    kind, quantization, tolerance = BACKENDS[backend_id]
    conn = aioredis.Redis.from_url(redis_url, protocol=protocol, decode_responses=decode)
    try:
        idx = make_index(kind, conn, quantization=quantization)
        await idx.ensure(DIMS, "test-model")
        await idx.ensure(DIMS, "test-model")  # idempotent, also validates FT.INFO's shape
        scope = scope_of()
        u = unit(rng.standard_normal(DIMS))
        await store(conn, idx, scope, {"same": u, "near": with_cosine(u, 0.8, rng)})
        hits = await idx.search(scope, u, 5)
        assert [c.entry_id for c in hits] == ["same", "near"]
        assert hits[1].similarity == pytest.approx(0.8, abs=tolerance)
    finally:
        await conn.aclose()


# ------------------------------------------------------------------ ensure / meta


async def test_ensure_mismatch_names_both_sides(client: aioredis.Redis, backend_id: str) -> None:
    kind, quantization, _ = BACKENDS[backend_id]
    first = make_index(kind, client, quantization=quantization)
    await first.ensure(384, "all-MiniLM-L6-v2")
    await first.ensure(384, "all-MiniLM-L6-v2")
    meta = {k.decode(): v.decode() for k, v in (await client.hgetall(META_KEY)).items()}
    assert meta == {"backend": kind, "dims": "384", "metric": "cosine", "model": "all-MiniLM-L6-v2"}

    second = make_index(kind, client, quantization=quantization)
    with pytest.raises(IndexMismatchError) as err:
        await second.ensure(1536, "text-embedding-3-small")
    text = str(err.value)
    assert "384" in text and "1536" in text
    assert "all-MiniLM-L6-v2" in text and "text-embedding-3-small" in text
    with pytest.raises(IndexMismatchError, match="other-model"):
        await second.ensure(384, "other-model")


async def test_concurrent_ensure_has_one_winner(client: aioredis.Redis, backend_id: str) -> None:
    """Workers starting together: same config all succeed, a conflicting one fails."""
    kind, quantization, _ = BACKENDS[backend_id]
    same = [make_index(kind, client, quantization=quantization) for _ in range(5)]
    await asyncio.gather(*(idx.ensure(32, "m") for idx in same))
    if kind == "search":
        assert await client.execute_command("FT._LIST") == [b"cachekit"]

    await client.delete(META_KEY)
    if kind == "search":
        await client.execute_command("FT.DROPINDEX", "cachekit")
    rivals = [make_index(kind, client, quantization=quantization) for _ in range(2)]
    results = await asyncio.gather(
        rivals[0].ensure(32, "m"), rivals[1].ensure(48, "m"), return_exceptions=True
    )
    assert sum(isinstance(r, IndexMismatchError) for r in results) == 1, results


async def test_search_index_checks_ft_info(client: aioredis.Redis) -> None:
    """Meta gone but the FT index remains: its DIM still protects it."""
    await make_index("search", client).ensure(8, "m")
    await client.delete(META_KEY)
    with pytest.raises(IndexMismatchError, match=r"8-d.*16-d"):
        await make_index("search", client).ensure(16, "m")

    await client.delete(META_KEY)
    await client.execute_command(
        "FT.CREATE", "l2idx", "ON", "HASH", "PREFIX", 1, "ckv:", "SCHEMA",
        "vec", "VECTOR", "FLAT", 6, "TYPE", "FLOAT32", "DIM", 8, "DISTANCE_METRIC", "L2",
    )  # fmt: skip
    with pytest.raises(IndexMismatchError, match="L2"):
        await make_index("search", client, index_name="l2idx").ensure(8, "m")


async def test_switching_backend_is_allowed(client: aioredis.Redis) -> None:
    await make_index("vectorset", client).ensure(8, "m")
    await make_index("flat", client).ensure(8, "m")
    assert await client.hget(META_KEY, "backend") == b"flat"


# ------------------------------------------------------------------ selection


async def test_auto_detection_picks_vector_sets(client: aioredis.Redis) -> None:
    assert await detect_index(client) == "vectorset"
    assert await resolve_index("auto", client) == "vectorset"
    assert await resolve_index("search", client) == "search"
    assert await resolve_index("flat", client) == "flat"
    with pytest.raises(CacheConfigError, match="'auto'"):
        await resolve_index("hnsw", client)
    auto = make_index(await resolve_index("auto", client), client, quantization="fp32")
    assert isinstance(auto, VectorSetIndex)
    assert auto.name == "vectorset" and auto.quantization == "fp32"
    assert isinstance(make_index("search", client), SearchIndex)
    assert isinstance(make_index("flat", client), FlatIndex)
    for idx in (auto, make_index("search", client), make_index("flat", client)):
        assert isinstance(idx, VectorIndex)


def test_bad_options_are_config_errors() -> None:
    client = aioredis.Redis()  # never connects: make_index does no I/O
    with pytest.raises(CacheConfigError, match=r"'vectorset'.*'search'.*'flat'"):
        make_index("hnsw", client)
    with pytest.raises(CacheConfigError, match="resolve_index"):
        make_index("auto", client)
    with pytest.raises(CacheConfigError, match="int8"):
        make_index("vectorset", client, quantization="q4")
    with pytest.raises(CacheConfigError, match="ef_runtime"):
        make_index("search", client, ef_runtime=0)


async def test_binary_quantization_still_ranks(
    client: aioredis.Redis, rng: np.random.Generator
) -> None:
    """BIN is coarse (Hamming-based scores) but exact matches still come first."""
    idx = make_index("vectorset", client, quantization="bin")
    await idx.ensure(DIMS, "m")
    scope = scope_of()
    u = unit(rng.standard_normal(DIMS))
    await store(client, idx, scope, {"same": u, "far": with_cosine(u, -0.5, rng)})
    hits = await idx.search(scope, u, 5)
    assert hits[0] == Candidate("same", 1.0)
    assert hits[1].similarity < 0.5


# --------------------------------------------------------------------- recall


@pytest.mark.timeout(300)
async def test_recall_against_exact_search(
    client: aioredis.Redis, backend_id: str, rng: np.random.Generator
) -> None:
    """2,000 random 128-d vectors, 50 random queries: top-1 agrees with numpy's exact top-1.

    Random Gaussian data is the hard case (nearly orthogonal, tiny margins); int8 vector
    sets lose some top-1s to quantization alone (TRUTH scans show the same misses).
    """
    kind, quantization, _ = BACKENDS[backend_id]
    idx = make_index(kind, client, quantization=quantization)
    dims, n = 128, 2000
    await idx.ensure(dims, "m")
    data = unit(rng.standard_normal((n, dims)))
    queries = unit(rng.standard_normal((50, dims)))
    scope = scope_of()
    for start in range(0, n, 250):
        pipe = client.pipeline(transaction=False)
        for i in range(start, start + 250):
            idx.add(pipe, scope, str(i), data[i], 600)
        await pipe.execute()

    exact = (data @ queries.T).argmax(axis=0)
    agree = 0
    latencies: list[float] = []
    for j, q in enumerate(queries):
        t0 = time.perf_counter()
        hits = await idx.search(scope, q, 5)
        latencies.append(time.perf_counter() - t0)
        agree += bool(hits) and hits[0].entry_id == str(exact[j])
    recall = agree / len(queries)
    print(
        f"{backend_id}: top-1 recall {recall:.2f}, search p50 "
        f"{1e3 * float(np.median(latencies)):.2f} ms (n={n}, d={dims})"
    )
    assert recall >= (0.9 if quantization == "int8" and kind == "vectorset" else 0.95)
