"""The two seams a newcomer extends: ``register_index`` and ``register_embedder``.

A custom index here is a real one over the real Redis (a flat index that keeps its vectors
under its own key prefix), so the test shows what the registry promises: ``index=<name>``
builds it, ``index="auto"`` asks its probe in priority order, and ``clear()`` deletes the
keys it declared. A custom embedder is reached by name from the cache's caller and from the
command line's ``--embedder``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import click
import numpy as np
import pytest
import redis
import redis.asyncio as aioredis
from click.testing import CliRunner

import cachekit
from cachekit import Budgets, LLMCache, cached_llm, last_result, use_tenant
from cachekit._index import (
    FlatIndex,
    IndexOptions,
    index_names,
    make_index,
    resolve_index,
    unregister_index,
)
from cachekit._layout import VectorScope, encode_tenant
from cachekit.cli import cli
from cachekit.cli._common import make_embedder
from cachekit.embedders import CallableEmbedder, embedder_from_spec, embedder_names
from cachekit.embedders import unregister_embedder as forget_embedder
from cachekit.errors import CacheConfigError

DIMS = 8
GENEROUS = Budgets(lookup=10, embed=60, search=10, store=10, command=10, pool_wait=10)
E1 = np.eye(DIMS, dtype=np.float32)[0]


class PrefixedFlatIndex(FlatIndex):
    """The flat index, but its hashes live under ``ckt:{tag}:...``, outside ``ck:{tag}:``:
    only its registered key pattern tells ``clear()`` about them."""

    name = "prefixed-flat"

    def __init__(self, client: aioredis.Redis, options: IndexOptions | None = None) -> None:
        super().__init__(client, options)
        self.searches = 0

    def key(self, scope: VectorScope) -> str:
        return f"ckt:{scope.space.tag}:{scope.generation}:{scope.scope_digest}"

    async def knn(self, scope: VectorScope, vector: Any, k: int) -> list[Any]:
        self.searches += 1
        return await super().knn(scope, vector, k)


built: list[PrefixedFlatIndex] = []


def build_prefixed(client: aioredis.Redis, options: IndexOptions) -> PrefixedFlatIndex:
    index = PrefixedFlatIndex(client, options)
    built.append(index)
    return index


@pytest.fixture
def prefixed_index() -> Iterator[str]:
    built.clear()
    cachekit.register_index(PrefixedFlatIndex.name, build_prefixed, key_patterns=("ckt:{tag}:*",))
    yield PrefixedFlatIndex.name
    unregister_index(PrefixedFlatIndex.name)


def table_embedder(table: dict[str, np.ndarray], model_id: str = "test/reg") -> CallableEmbedder:
    def embed(texts: list[str]) -> np.ndarray:
        return np.stack([table.get(t, np.ones(DIMS, dtype=np.float32)) for t in texts])

    return CallableEmbedder(embed, dimensions=DIMS, model_id=model_id)


def near(cos: float) -> np.ndarray:
    """A unit vector whose cosine with E1 is ``cos``."""
    other = np.eye(DIMS, dtype=np.float32)[1]
    return (cos * E1 + np.sqrt(1 - cos * cos) * other).astype(np.float32)


@pytest.fixture
async def cache(redis_url: str, prefixed_index: str) -> AsyncIterator[LLMCache]:
    emb = table_embedder({"a": E1, "b": near(0.97), "c": near(0.5)})
    async with LLMCache.from_url(
        redis_url, embedder=emb, index=prefixed_index, background_stores=False, budgets=GENEROUS
    ) as c:
        yield c


# --------------------------------------------------------------------------- indexes


async def test_a_registered_index_serves_the_semantic_layer(
    cache: LLMCache, redis_sync: redis.Redis
) -> None:
    @cached_llm(namespace="reg", cache=cache, threshold=0.9)
    async def ask(prompt: str) -> str:
        return f"answer to {prompt}"

    assert await ask("a") == "answer to a"
    assert last_result().status == "miss"  # type: ignore[union-attr]
    assert await ask("b") == "answer to a"
    result = last_result()
    assert result is not None and result.status == "semantic"
    assert result.similarity is not None and abs(result.similarity - 0.97) < 1e-4
    await ask("c")
    assert last_result().status == "miss"  # type: ignore[union-attr]

    (index,) = built
    assert index.searches == 3  # one per semantic lookup: "a" (empty scope), "b", "c"
    assert (await cache.index_meta())["backend"] == "prefixed-flat"
    (key,) = redis_sync.scan_iter("ckt:*")
    assert redis_sync.hlen(key) == 2  # "a" and "c" were stored; "b" was a hit
    assert not [k for k in redis_sync.scan_iter("ck:*") if b":fl:" in k]  # not the flat hash


async def test_clear_deletes_the_registered_key_patterns(
    cache: LLMCache, redis_sync: redis.Redis
) -> None:
    @cached_llm(namespace="reg", cache=cache, threshold=0.9)
    async def ask(prompt: str) -> str:
        return prompt

    @cached_llm(namespace="other", cache=cache, threshold=0.9)
    async def elsewhere(prompt: str) -> str:
        return prompt

    for tenant in ("t1", "t2"):
        with use_tenant(tenant):
            await ask("a")
    await elsewhere("a")
    vectors = {k.decode() for k in redis_sync.scan_iter("ckt:*")}
    assert len(vectors) == 3

    # One tenant: its vectors go; the other tenant's and the other namespace's stay.
    assert await cache.clear("reg", tenant="t1") >= 3  # entry, exact pointer, vectors, ...
    t1 = f"ckt:{{reg:{encode_tenant('t1')}}}:"
    left = {k.decode() for k in redis_sync.scan_iter("ckt:*")}
    assert left == {k for k in vectors if not k.startswith(t1)} and len(left) == 2
    with use_tenant("t2"):
        await ask("a")
    assert last_result().status == "exact"  # type: ignore[union-attr]

    # The whole namespace: no key of it is left, under ck: or under the index's prefix.
    await cache.clear("reg")
    assert not list(redis_sync.scan_iter("ck:{reg:*"))
    assert {k.decode() for k in redis_sync.scan_iter("ckt:*")} == {
        k for k in vectors if k.startswith("ckt:{other:")
    }


async def test_auto_asks_the_registered_probes_by_priority(
    redis_url: str, prefixed_index: str
) -> None:
    asked: list[str] = []

    def says(answer: bool) -> Any:
        async def probe(client: aioredis.Redis) -> bool:
            asked.append(f"{answer}")
            return answer

        return probe

    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await resolve_index("auto", client) == "vectorset"  # no probe: never auto
        cachekit.register_index(
            prefixed_index, build_prefixed, probe=says(False), priority=1000, replace=True
        )
        assert index_names()[0] == prefixed_index
        assert await resolve_index("auto", client) == "vectorset"
        assert asked == ["False"]
        cachekit.register_index(
            prefixed_index, build_prefixed, probe=says(True), priority=1000, replace=True
        )
        assert await resolve_index("auto", client) == prefixed_index
        # Default priority 0: after the built-in HNSW backends, before the flat fallback.
        cachekit.register_index(prefixed_index, build_prefixed, probe=says(True), replace=True)
        assert index_names() == ("vectorset", "search", prefixed_index, "flat")
        assert await resolve_index("auto", client) == "vectorset"
    finally:
        await client.aclose()


def test_register_index_refuses_what_would_break_the_cache(prefixed_index: str) -> None:
    with pytest.raises(CacheConfigError, match="already registered"):
        cachekit.register_index(prefixed_index, build_prefixed)
    with pytest.raises(CacheConfigError, match=r"\{tag\}"):
        cachekit.register_index("loose", build_prefixed, key_patterns=("ckt:*",))
    with pytest.raises(CacheConfigError, match="bad vector index name"):
        cachekit.register_index("auto", build_prefixed)
    with pytest.raises(CacheConfigError, match="not callable"):
        cachekit.register_index("broken", "nope")  # type: ignore[arg-type]
    assert "loose" not in index_names() and "broken" not in index_names()
    # The error for an unknown name lists the registered ones, in probe order.
    with pytest.raises(CacheConfigError, match=r"'vectorset', 'search', 'prefixed-flat', 'flat'"):
        make_index("hnsw", aioredis.Redis())


# --------------------------------------------------------------------------- embedders

made: list[str] = []


def toy(argument: str) -> CallableEmbedder:
    made.append(argument)
    return table_embedder({"a": E1, "b": near(0.97)}, model_id=f"test/toy-{argument or 'x'}")


@pytest.fixture
def toy_embedder() -> Iterator[str]:
    made.clear()
    cachekit.register_embedder("toy", toy)
    yield "toy"
    forget_embedder("toy")


async def test_a_registered_embedder_is_built_by_name_and_used(
    redis_url: str, toy_embedder: str
) -> None:
    assert "toy" in embedder_names()
    emb = embedder_from_spec("TOY:v2")
    assert emb is not None and emb.model_id == "test/toy-v2" and made == ["v2"]
    assert embedder_from_spec("none") is None
    async with LLMCache.from_url(
        redis_url, embedder=emb, background_stores=False, budgets=GENEROUS
    ) as cache:

        @cached_llm(namespace="emb", cache=cache, threshold=0.9)
        async def ask(prompt: str) -> str:
            return f"answer to {prompt}"

        await ask("a")
        assert await ask("b") == "answer to a"
        assert last_result().status == "semantic"  # type: ignore[union-attr]
        assert (await cache.index_meta())["model"] == "test/toy-v2"
    with pytest.raises(CacheConfigError, match="already registered"):
        cachekit.register_embedder("toy", toy)
    with pytest.raises(CacheConfigError, match="bad embedder name"):
        cachekit.register_embedder("none", toy)


def test_the_cli_embedder_option_reads_the_registry(redis_url: str, toy_embedder: str) -> None:
    emb = make_embedder("toy:cli")
    assert emb is not None and emb.model_id == "test/toy-cli"
    with pytest.raises(click.BadParameter) as raised:
        make_embedder("magic:thing")
    message = str(raised.value)
    for name in ("none", "local", "minilm", "openai", "py", "st", "toy"):
        assert f"'{name}'" in message or f" {name}" in message, (name, message)

    runner = CliRunner(env={"REDIS_URL": redis_url, "CACHEKIT_REDIS_URL": None})
    args = ["explain", "-n", "web", "--prompt", "a", "--json"]
    result = runner.invoke(cli, [*args, "--embedder", "toy:run"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["semantic"]["embedder"] == "test/toy-run"
    result = runner.invoke(cli, [*args, "--embedder", "magic"], catch_exceptions=False)
    assert result.exit_code == 2 and "toy" in result.stderr and "minilm" in result.stderr
