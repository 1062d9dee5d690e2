"""Redis Cluster: a real 3-primary cluster started from the Redis 8 binary on loopback."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import redis
from redis.cluster import RedisCluster

from cachekit import LLMCache, cached_llm, last_result
from cachekit._server import RedisServer
from cachekit.embedders import CallableEmbedder
from tests._helpers import GENEROUS


def words_embedder() -> CallableEmbedder:
    vocab = ["capital", "france", "paris", "city", "bread", "bake", "weather"]

    def embed(texts: list[str]) -> np.ndarray:
        out = np.full((len(texts), len(vocab) + 1), 0.05, dtype=np.float32)
        for i, t in enumerate(texts):
            for j, w in enumerate(vocab):
                out[i, j] += t.lower().count(w)
        return out

    return CallableEmbedder(embed, dimensions=len(vocab) + 1, model_id="test/words")


@pytest.mark.parametrize("index", ["vectorset", "flat"])
async def test_cluster_exact_semantic_invalidate_clear(cluster_url: str, index: str) -> None:
    calls: list[str] = []
    async with LLMCache.from_url(
        cluster_url, embedder=words_embedder(), index=index, budgets=GENEROUS
    ) as cache:
        assert cache.cluster

        @cached_llm(namespace="cl", cache=cache, threshold=0.9, tenant=lambda c: c.arguments["org"])
        async def ask(prompt: str, org: str) -> str:
            calls.append(f"{org}:{prompt}")
            return f"{org} answer to {prompt}"

        orgs = [f"org-{i}" for i in range(12)]  # spread over all three primaries
        for org in orgs:
            await ask("capital of france", org)
        await cache.drain()
        for org in orgs:
            assert await ask("capital of france", org) == f"{org} answer to capital of france"
            assert last_result().status == "exact"  # type: ignore[union-attr]
            assert await ask("France: the capital?", org) == f"{org} answer to capital of france"
            assert last_result().status == "semantic"  # type: ignore[union-attr]
        assert len(calls) == len(orgs)
        await cache.invalidate("cl", tenant="org-0")
        await ask("capital of france", "org-0")
        assert last_result().status == "miss"  # type: ignore[union-attr]
        await ask("capital of france", "org-1")
        assert last_result().status == "exact"  # type: ignore[union-attr]
        await cache.drain()
        await cache.invalidate("cl")  # every tenant: the epoch lives in another slot
        for org in orgs[:4]:
            await ask("capital of france", org)
            assert last_result().status == "miss"  # type: ignore[union-attr]
        await cache.drain()
        deleted = await cache.clear("cl")
        assert deleted > len(orgs)
        check = RedisCluster(host="127.0.0.1", port=int(cluster_url.rsplit(":", 1)[1]))
        try:
            assert not list(check.scan_iter(match="ck:{cl:*", target_nodes=RedisCluster.PRIMARIES))
        finally:
            check.close()


async def test_every_key_of_a_tenant_namespace_is_in_one_slot(
    cluster_url: str, cluster: list[RedisServer]
) -> None:
    async with LLMCache.from_url(
        cluster_url, embedder=words_embedder(), index="vectorset", budgets=GENEROUS
    ) as cache:

        @cached_llm(
            namespace="slot", cache=cache, threshold=0.9, tenant=lambda c: c.arguments["org"]
        )
        async def ask(prompt: str, org: str) -> str:
            return "x"

        for p in ("capital of france", "bake bread", "weather"):
            await ask(p, "acme")
        await cache.drain()
    slots: set[int] = set()
    kinds: set[bytes] = set()
    for node in cluster:
        client: Any = redis.Redis(port=node.port)
        for key in client.scan_iter(match="ck:{slot:*"):
            slots.add(int(client.execute_command("CLUSTER", "KEYSLOT", key)))
            kinds.add(key.split(b"}:")[1].split(b":")[0])
        client.close()
    assert len(slots) == 1
    assert {b"e", b"b", b"vs"} <= kinds  # entry hashes, their bodies, the vector set


async def test_cluster_bodies_and_entries_of_the_earlier_layout(cluster_url: str) -> None:
    from tests.test_entry_layout import manifest, put, put_earlier

    async with LLMCache.from_url(
        cluster_url, embedder=words_embedder(), index="vectorset", budgets=GENEROUS
    ) as cache:
        check = RedisCluster(host="127.0.0.1", port=int(cluster_url.rsplit(":", 1)[1]))
        try:
            orgs = [f"org-{i}" for i in range(6)]  # spread over the primaries
            for org in orgs:
                old = await put_earlier(cache, manifest("capital of france", org))
                new = await put(cache, "bake bread", tenant=org)
                space = cache.space(new)
                assert check.exists(space.body_key(new.exact_digest))
                assert check.object("encoding", space.entry_key(new.exact_digest)) == b"listpack"
                for m in (old, new):  # both layouts served, through the cluster's lookup
                    hit = await cache.lookup(m, threshold=0.9)
                    assert hit.layer == "exact" and hit.entry is not None, (org, m.prompt)
                semantic = await cache.lookup(manifest("France: the capital?", org), threshold=0.9)
                assert semantic.layer == "semantic" and semantic.entry is not None
                assert semantic.entry.entry_id == old.exact_digest
                # A body evicted alone: a miss, and the hash goes.
                check.delete(space.body_key(new.exact_digest))
                gone = await cache.lookup(new, threshold=None)
                assert gone.entry is None and gone.reason == "dangling"
                assert not check.exists(space.entry_key(new.exact_digest))
            await cache.invalidate("lay")  # the epoch, in another slot: old layout hidden too
            for org in orgs:
                assert (
                    await cache.lookup(manifest("capital of france", org), threshold=0.9)
                ).entry is None
            assert cache.local_errors == 0
            assert await cache.clear("lay") > 0
            assert not list(check.scan_iter(match="ck:{lay:*", target_nodes=RedisCluster.PRIMARIES))
        finally:
            check.close()


def test_sync_callers_on_a_cluster(cluster_url: str) -> None:
    cache = LLMCache.from_url(cluster_url, budgets=GENEROUS)

    @cached_llm(namespace="sync", cache=cache)
    def ask(prompt: str) -> str:
        return prompt.upper()

    assert ask("hello") == "HELLO"
    cache.drain_sync()
    assert ask("hello") == "HELLO"
    assert last_result().status == "exact"  # type: ignore[union-attr]
    cache.close()


async def test_cluster_hits_send_no_script_text(
    cluster: list[RedisServer], cluster_url: str
) -> None:
    # On a cluster every lookup also reads the namespace epoch on the node that holds it.
    # That read went as EVAL with the whole script on every hit, all on one node; it is
    # EVALSHA now, and survives a SCRIPT FLUSH (NOSCRIPT -> loaded once, then EVALSHA).
    nodes = [redis.Redis(port=n.port) for n in cluster]
    async with LLMCache.from_url(cluster_url, budgets=GENEROUS) as cache:

        @cached_llm(namespace="sha", cache=cache, tenant=lambda c: c.arguments["org"])
        async def ask(prompt: str, org: str) -> str:
            return f"{org}: {prompt}"

        for i in range(6):
            await ask("hello", f"org-{i}")
        await cache.drain()
        for node in nodes:
            node.config_resetstat()
            node.script_flush()
        for _ in range(5):
            for i in range(6):
                assert await ask("hello", f"org-{i}") == f"org-{i}: hello"
                assert last_result().status == "exact"  # type: ignore[union-attr]
    stats = [node.info("commandstats") for node in nodes]
    for node in nodes:
        node.close()
    evals = sum(s.get("cmdstat_eval", {}).get("calls", 0) for s in stats)
    evalshas = sum(s.get("cmdstat_evalsha", {}).get("calls", 0) for s in stats)
    assert evals == 0, stats
    # 30 hits: a lookup script and an epoch read each (plus the NOSCRIPT retries).
    assert evalshas >= 60
