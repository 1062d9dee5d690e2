"""Regression tests of issue #9: nothing the cache does may fail, stall or corrupt a call.

Real servers only: the session Redis, Redis servers of a test's own (paused with SIGSTOP,
killed), real Redis Cluster nodes, and a fresh Python process for a cold model.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from redis.cluster import RedisCluster
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cachekit import Budgets, LLMCache, cache_control, cached_llm, last_result
from cachekit._layout import Space, encode_tenant
from cachekit._server import RedisServer, free_port, start_cluster
from cachekit.middleware import CacheMiddleware
from tests._helpers import GENEROUS

ROOT = Path(__file__).resolve().parents[1]


def status() -> str:
    result = last_result()
    assert result is not None
    return result.status


# -- cold start ---------------------------------------------------------------------------

_COLD_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, logging, sys, time

    import httpx
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from cachekit import LLMCache, cached_llm, last_result
    from cachekit.embedders import SentenceTransformerEmbedder
    from cachekit.middleware import CacheMiddleware

    warnings = []

    class Keep(logging.Handler):
        def emit(self, record):
            warnings.append(record.getMessage())

    logging.getLogger("cachekit").addHandler(Keep(level=logging.WARNING))

    async def main():
        out = {}
        cache = LLMCache.from_url(sys.argv[1], embedder=SentenceTransformerEmbedder(threads=1))
        calls = []

        @cached_llm(namespace="cold", cache=cache)
        async def ask(prompt: str) -> str:
            calls.append(prompt)
            return "answer to " + prompt

        async def one(prompt):
            started = time.perf_counter()
            await ask(prompt)
            return last_result().status, time.perf_counter() - started

        async def chat(request):
            body = await request.json()
            return JSONResponse({"model": "m", "answer": body["messages"][-1]["content"]})

        app = CacheMiddleware(
            Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])]),
            cache=cache, allow_global=True, namespace="coldhttp",
        )
        out["sequential"] = [await one(f"sequential question {i}") for i in range(3)]
        out["concurrent"] = await asyncio.gather(
            *(one(f"concurrent question {i}") for i in range(5))
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            body = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}
            http = []
            for _ in range(4):
                r = await client.post("/v1/chat/completions", json=body)
                http.append((r.status_code, r.headers.get("x-cache")))
            out["http"] = http
        out["ready_before"] = cache.semantic_ready
        out["breaker"] = [cache.breaker.state, cache.breaker.opened]
        await cache.warmup(timeout=300)
        out["ready_after"] = cache.semantic_ready
        await cache.drain()
        await ask("sequential question 0")
        out["repeat"] = last_result().status
        await ask("What is the capital of France?")
        await cache.drain()
        await ask("Which city is the capital of France?")
        out["paraphrase"] = last_result().status
        out["calls"] = len(calls)
        out["vectors_skipped"] = cache.vectors_skipped
        out["warnings"] = warnings
        await cache.aclose()
        print(json.dumps(out))

    asyncio.run(main())
    """
)


def test_cold_process_uses_the_exact_layer_until_the_model_is_ready(redis_url: str) -> None:
    """A fresh process: the model loads in the background, calls never wait or fail."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _COLD_SCRIPT, redis_url],
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["ready_before"] is False  # the calls above really ran against a cold model
    for kind in ("sequential", "concurrent"):
        for st, seconds in out[kind]:
            assert st == "miss", out  # not "error": the exact layer answered alone
            assert seconds < 2.0, out  # never the old 2 s embed budget (generous bound)
    assert [label for _, label in out["http"]] == ["MISS", "HIT", "HIT", "HIT"], out
    assert out["breaker"] == ["closed", 0]
    assert out["ready_after"] is True
    assert out["repeat"] == "exact"  # stored while cold, under the exact key
    assert out["paraphrase"] == "semantic"
    assert out["calls"] == 9  # 3 + 5 cold misses, one warm miss
    assert out["vectors_skipped"] >= 8
    assert not any(w.rstrip().endswith("TimeoutError:") for w in out["warnings"])


async def test_warmup_waits_and_reports_a_broken_embedder(redis_url: str) -> None:
    from cachekit.embedders import SentenceTransformerEmbedder
    from cachekit.errors import EmbedderError

    broken = SentenceTransformerEmbedder("/nonexistent/model/dir", dimensions=8)
    cache = LLMCache.from_url(redis_url, embedder=broken)
    with pytest.raises(EmbedderError):
        await cache.warmup(timeout=60)
    assert cache.semantic_ready is False

    @cached_llm(namespace="broken", cache=cache, threshold=0.9)
    async def ask(prompt: str) -> str:
        return "a"

    await ask("q")
    assert status() == "miss"
    await cache.drain()
    await ask("q")
    assert status() == "exact"
    assert cache.breaker.state == "closed"
    await cache.aclose()


def test_timeout_log_lines_name_the_stage(
    own_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    cache = LLMCache.from_url(own_server.url, budgets=Budgets(lookup=0.3, command=0.3))

    @cached_llm(namespace="hung", cache=cache)
    def ask(prompt: str) -> str:
        return "a"

    ask("warm the pool")
    assert own_server.process is not None
    os.kill(own_server.process.pid, signal.SIGSTOP)
    try:
        with caplog.at_level(logging.WARNING, logger="cachekit"):
            assert ask("q") == "a"
        assert status() == "error"
        reason = last_result().reason  # type: ignore[union-attr]
        assert reason is not None and "lookup took longer than its 0.3 s budget" in reason
        assert "lookup took longer than its 0.3 s budget" in caplog.text
    finally:
        os.kill(own_server.process.pid, signal.SIGCONT)
    cache.close()


# -- budgets -----------------------------------------------------------------------------


def test_store_budget_has_no_embed_share_without_an_embedder(own_server: RedisServer) -> None:
    """Redis hangs after the lookup: the store may cost its own budget, not + embed."""
    budgets = Budgets(lookup=0.5, command=0.3, store=0.4, embed=5.0)
    cache = LLMCache.from_url(own_server.url, budgets=budgets, background_stores=False)
    assert own_server.process is not None
    pid = own_server.process.pid

    @cached_llm(namespace="budget", cache=cache)
    def ask(prompt: str) -> str:
        os.kill(pid, signal.SIGSTOP)  # after the lookup, before the store
        return "a"

    try:
        started = time.perf_counter()
        assert ask("q") == "a"
        took = time.perf_counter() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert status() == "error"
    # store + command = 0.7 s is the documented bound; + embed would be 5.7 s.
    assert took < 3.0
    cache.close()


# -- invalidation against calls in flight ------------------------------------------------


async def test_tenant_invalidate_wins_against_a_call_in_flight(redis_url: str) -> None:
    cache = LLMCache.from_url(redis_url, budgets=GENEROUS)
    version = {"v": "old"}

    @cached_llm(namespace="inv", cache=cache, tenant=lambda c: c.arguments["org"])
    async def ask(prompt: str, org: str) -> str:
        v = version["v"]
        if v == "old":
            await asyncio.sleep(1.0)  # the LLM is slow; invalidate runs meanwhile
        return f"{v} answer"

    in_flight = asyncio.create_task(ask("q", "acme"))
    await asyncio.sleep(0.2)
    await cache.invalidate("inv", tenant="acme")
    version["v"] = "new"
    assert await ask("q", "acme") == "new answer"
    assert status() == "miss"
    await cache.drain()
    assert await in_flight == "old answer"  # the caller still gets its answer
    await cache.drain()
    for _ in range(3):
        assert await ask("q", "acme") == "new answer"
        assert status() == "exact"
    assert cache.stale_stores == 1
    await cache.aclose()


async def test_tenant_invalidate_wins_in_the_middleware(redis_url: str) -> None:
    cache = LLMCache.from_url(redis_url, budgets=GENEROUS)
    version = {"v": "old"}

    async def chat(request: Request) -> JSONResponse:
        v = version["v"]
        if v == "old":
            await asyncio.sleep(1.0)
        return JSONResponse({"answer": f"{v} answer"})

    app = CacheMiddleware(
        Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])]),
        cache=cache,
        namespace="invhttp",
        tenant=lambda r: r.headers.get("x-tenant-id"),
    )
    body = {"model": "m", "messages": [{"role": "user", "content": "q"}]}
    headers = {"x-tenant-id": "acme"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        in_flight = asyncio.create_task(
            client.post("/v1/chat/completions", json=body, headers=headers)
        )
        await asyncio.sleep(0.2)
        await cache.invalidate("invhttp", tenant="acme")
        version["v"] = "new"
        fresh = await client.post("/v1/chat/completions", json=body, headers=headers)
        assert fresh.json() == {"answer": "new answer"}
        assert (await in_flight).json() == {"answer": "old answer"}
        for _ in range(3):
            again = await client.post("/v1/chat/completions", json=body, headers=headers)
            assert again.json() == {"answer": "new answer"}
            assert again.headers["x-cache"] == "HIT"
    await cache.aclose()


# -- foreign and corrupt data ------------------------------------------------------------


def _space(namespace: str, tenant: str | None) -> Space:
    return Space(namespace, encode_tenant(tenant))


async def test_foreign_generation_is_a_miss_for_that_tenant_only(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    cache = LLMCache.from_url(redis_url, budgets=GENEROUS)
    calls: list[str] = []

    @cached_llm(namespace="fg", cache=cache, tenant=lambda c: c.arguments["org"])
    async def ask(prompt: str, org: str) -> str:
        calls.append(org)
        return f"{org}:{prompt}"

    await ask("q", "good")
    await cache.drain()
    redis_sync.set(_space("fg", "bad").gen_key, "not-a-number")
    for _ in range(8):  # more than the breaker threshold
        assert await ask("q", "bad") == "bad:q"
        assert status() == "miss"
        await cache.drain()
    assert await ask("q", "good") == "good:q"
    assert status() == "exact"
    assert cache.breaker.state == "closed"
    # Nothing was stored under a generation nobody can trust; invalidate repairs it.
    assert redis_sync.get(_space("fg", "bad").gen_key) == b"not-a-number"
    await cache.invalidate("fg", tenant="bad")
    await ask("q", "bad")
    await cache.drain()
    await ask("q", "bad")
    assert status() == "exact"
    await cache.aclose()


async def test_foreign_epoch_never_raises_and_invalidate_repairs_it(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    cache = LLMCache.from_url(redis_url, budgets=GENEROUS)

    @cached_llm(namespace="fe", cache=cache)
    async def ask(prompt: str) -> str:
        return prompt.upper()

    redis_sync.set("ck:{fe}:epoch", "garbage")
    for _ in range(6):
        assert await ask("q") == "Q"
        assert status() == "miss"
    assert cache.breaker.state == "closed"
    await cache.invalidate("fe")
    await ask("q")
    await cache.drain()
    await ask("q")
    assert status() == "exact"
    await cache.aclose()


@pytest.mark.parametrize("which", ["gen", "stats", "exact", "entry", "body", "epoch"])
async def test_keys_of_another_type_are_misses_not_errors(
    redis_url: str, redis_sync: redis.Redis, which: str
) -> None:
    cache = LLMCache.from_url(redis_url, budgets=GENEROUS)

    @cached_llm(namespace="wt", cache=cache)
    async def ask(prompt: str) -> str:
        return prompt.upper()

    space = _space("wt", None)
    await ask("q")
    await cache.drain()
    digest = last_result().key  # type: ignore[union-attr]
    gen = int(redis_sync.get(space.gen_key) or 0)
    key = {
        "gen": space.gen_key,
        "stats": space.stats_key,
        "exact": space.exact_key(gen, str(digest)),
        "entry": space.entry_key(str(digest)),
        "body": space.body_key(str(digest)),
        "epoch": "ck:{wt}:epoch",
    }[which]
    redis_sync.delete(key)
    redis_sync.rpush(key, "foreign")
    for _ in range(6):
        assert await ask("q") == "Q"
        assert status() in ("miss", "exact")
        await cache.drain()
    assert cache.breaker.state == "closed"
    assert cache.local_errors == 0
    assert redis_sync.type(key) in (b"list", b"string", b"hash")  # ours to overwrite at most
    await cache.aclose()


async def test_non_utf8_prompt_and_bad_token_counts_still_hit(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    cache = LLMCache.from_url(redis_url, budgets=GENEROUS)

    @cached_llm(namespace="bytes", cache=cache)
    async def ask(prompt: str, model: str = "gpt-4o-mini") -> str:
        return prompt.upper()

    await ask("q")
    await cache.drain()
    digest = str(last_result().key)  # type: ignore[union-attr]
    entry = _space("bytes", None).entry_key(digest)
    redis_sync.hset(entry, mapping={"p": b"\xff\xfe\x00bad", "ti": "many", "to": "1.5e"})
    assert await ask("q") == "Q"
    assert status() == "exact"
    assert last_result().matched_prompt is not None  # type: ignore[union-attr]
    assert cache.local_errors == 0
    await cache.aclose()


async def test_wrong_type_index_meta_turns_the_semantic_layer_off_not_the_cache(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    import numpy as np

    from cachekit.embedders import CallableEmbedder

    redis_sync.rpush("cachekit:index:meta", "foreign")
    emb = CallableEmbedder(lambda t: np.ones((len(t), 4)), dimensions=4, model_id="m/ones")
    cache = LLMCache.from_url(redis_url, embedder=emb, index="vectorset", budgets=GENEROUS)

    @cached_llm(namespace="meta", cache=cache, threshold=0.9)
    async def ask(prompt: str) -> str:
        return prompt.upper()

    for _ in range(7):
        assert await ask("q") == "Q"
        await cache.drain()
    assert status() == "exact"
    assert cache.breaker.state == "closed"
    assert redis_sync.type("cachekit:index:meta") == b"list"  # not ours to delete
    await cache.aclose()


def test_a_foreign_lock_without_expiry_does_not_stall_misses(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    cache = LLMCache.from_url(redis_url, budgets=Budgets(flight_wait=20.0))
    calls: list[str] = []

    @cached_llm(namespace="lk", cache=cache)
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return prompt.upper()

    with cache_control(skip_store=True):
        ask("q")  # learn the digest, store nothing
    digest = str(last_result().key)  # type: ignore[union-attr]
    space = _space("lk", None)
    gen = int(redis_sync.get(space.gen_key) or 0)
    redis_sync.set(space.lock_key(gen, digest), "someone else's")  # no expiry
    started = time.perf_counter()
    assert ask("q") == "Q"
    assert time.perf_counter() - started < 10.0  # not the 20 s flight wait
    assert status() == "miss"
    cache.drain_sync()
    assert ask("q") == "Q"
    assert status() == "exact"
    assert redis_sync.get(space.lock_key(gen, digest)) == b"someone else's"
    cache.close()


# -- Redis Cluster -----------------------------------------------------------------------


def test_unreachable_cluster_fails_open(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    budgets = Budgets(connect=0.2, lookup=0.5, command=0.3, store=0.3)
    cache = LLMCache.from_url(f"redis+cluster://127.0.0.1:{port}", budgets=budgets)
    calls: list[str] = []

    @cached_llm(namespace="down", cache=cache)
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return prompt.upper()

    async_cache = LLMCache.from_url(f"redis+cluster://127.0.0.1:{port}", budgets=budgets)

    @cached_llm(namespace="down", cache=async_cache)
    async def aask(prompt: str) -> str:
        calls.append(prompt)
        return prompt.upper()

    for i in range(8):
        assert ask(f"q{i}") == f"Q{i}"
        assert status() in ("error", "bypass", "miss")
        assert asyncio.run(aask(f"a{i}")) == f"A{i}"
    assert len(calls) == 16
    assert any(b.opened for b in cache.breakers)
    cache.close()
    asyncio.run(async_cache.aclose())


def test_cluster_whose_nodes_all_die_fails_open() -> None:
    with start_cluster(primaries=3) as nodes:
        cache = LLMCache.from_url(
            f"redis+cluster://127.0.0.1:{nodes[0].port}",
            budgets=Budgets(connect=0.2, lookup=0.5, command=0.3, store=0.3),
        )

        @cached_llm(namespace="die", cache=cache, tenant=lambda c: c.arguments["org"])
        def ask(prompt: str, org: str) -> str:
            return f"{org}:{prompt}"

        for i in range(6):
            ask("q", f"org{i}")
        cache.drain_sync()
        assert ask("q", "org1") == "org1:q"
        assert status() == "exact"
        for node in nodes:
            node.kill()
        for i in range(12):
            assert ask("q", f"org{i % 6}") == f"org{i % 6}:q"
            assert status() in ("error", "bypass")
        cache.close()


@pytest.fixture(scope="module")
def cluster_3x3() -> Iterator[list[RedisServer]]:
    with start_cluster(primaries=3, replicas=1) as nodes:
        yield nodes


def test_healthy_cluster_under_load_has_no_cache_errors(cluster_3x3: list[RedisServer]) -> None:
    """24 async callers and 2 sync threads on one cache: every call is served, no errors.

    The budgets are generous: this is about the cluster client under concurrency (MOVED
    replies, pools, two loops), not about latency, and a shared CI box can stall any
    process for half a second (CI once saw 18 of ~5,000 calls pass the default 0.5 s
    lookup budget in one such stall). Latency lives in ``benchmarks/``.
    """
    seed = cluster_3x3[0]
    flush: Any = RedisCluster(host="127.0.0.1", port=seed.port)
    flush.flushall(target_nodes=RedisCluster.PRIMARIES)
    flush.close()
    cache = LLMCache.from_url(f"redis+cluster://127.0.0.1:{seed.port}", budgets=GENEROUS)
    statuses: list[str] = []
    reasons: list[str] = []
    lock = threading.Lock()

    def keep() -> None:
        r = last_result()
        assert r is not None
        with lock:
            statuses.append(r.status)
            if r.status == "error":
                reasons.append(str(r.reason))

    @cached_llm(namespace="load", cache=cache, tenant=lambda c: c.arguments["org"])
    async def aask(prompt: str, org: str) -> str:
        await asyncio.sleep(0.001)
        return f"{org}:{prompt}"

    @cached_llm(namespace="load", cache=cache, tenant=lambda c: c.arguments["org"])
    def ask(prompt: str, org: str) -> str:
        return f"{org}:{prompt}"

    stop = time.monotonic() + 6.0

    def sync_worker(n: int) -> None:
        i = 0
        while time.monotonic() < stop:
            assert ask(f"p{i % 30}", f"org{(i + n) % 16}") == f"org{(i + n) % 16}:p{i % 30}"
            keep()
            i += 1

    async def async_worker(n: int) -> None:
        i = 0
        while time.monotonic() < stop:
            org = f"org{(i * 7 + n) % 16}"
            assert await aask(f"p{i % 30}", org) == f"{org}:p{i % 30}"
            keep()
            i += 1

    async def main() -> None:
        await asyncio.gather(*(async_worker(n) for n in range(24)))

    threads = [threading.Thread(target=sync_worker, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    asyncio.run(main())
    for t in threads:
        t.join()
    cache.close()
    assert len(statuses) > 500
    assert statuses.count("error") == 0, reasons[:5]
    assert statuses.count("exact") > len(statuses) // 2


# -- decorator: empty tenants, sync calls on the home loop --------------------------------


@pytest.mark.parametrize("empty", ["", "   ", "\r\n"])
async def test_an_empty_tenant_is_no_tenant_in_the_decorator(redis_url: str, empty: str) -> None:
    from cachekit import use_tenant

    cache = LLMCache.from_url(redis_url, budgets=GENEROUS)
    calls: list[str] = []

    @cached_llm(namespace="empty", cache=cache, tenant=lambda c: c.arguments["org"])
    async def ask(prompt: str, org: str) -> str:
        calls.append(org)
        return f"answer for {org!r}"

    for _ in range(2):
        await ask("q", empty)
        assert status() == "bypass"
        await cache.drain()
    with use_tenant(empty):

        @cached_llm(namespace="empty2", cache=cache, tenant=lambda c: None)
        async def ask2(prompt: str) -> str:
            return "x"

        await ask2("q")
        assert status() == "bypass"
    assert len(calls) == 2
    await cache.aclose()


async def test_a_sync_call_on_the_home_loop_never_blocks_it_waiting_for_a_flight(
    redis_url: str,
) -> None:
    cache = LLMCache.from_url(redis_url, budgets=GENEROUS)
    await cache.connect()  # the running loop is the cache's home
    release = threading.Event()

    @cached_llm(namespace="home", cache=cache)
    def ask(prompt: str) -> str:
        if threading.current_thread() is not threading.main_thread():
            release.wait(10)  # the leader, in a worker thread, is slow
        return "answer"

    leader = asyncio.get_running_loop().run_in_executor(None, ask, "q")
    await asyncio.sleep(0.3)  # the leader looked up, took the lock and is at the LLM
    threading.Timer(0.5, release.set).start()
    started = time.perf_counter()
    assert ask("q") == "answer"  # on the loop thread: bypasses instead of waiting
    assert time.perf_counter() - started < 0.4
    assert status() == "bypass"
    assert await leader == "answer"
    await cache.aclose()


def test_a_cluster_poller_does_not_hold_a_connection_slot(cluster_3x3: list[RedisServer]) -> None:
    """A call waiting for another process's answer must not starve other calls."""
    url = f"redis+cluster://127.0.0.1:{cluster_3x3[0].port}"
    # "Another process" running the slow call. Generous budgets: its cold cluster client
    # (discovery, nine connections) once took longer than 0.5 s on a loaded CI box, failed
    # open and never took the lock this test is about.
    other = LLMCache.from_url(url, budgets=GENEROUS)
    # Two connections per node: one gate slot, so a poller holding it would block everyone.
    cache = LLMCache.from_url(
        url, max_connections=2, budgets=Budgets(lookup=0.5, command=0.5, flight_wait=5.0)
    )

    def slow(prompt: str) -> str:
        time.sleep(2.0)
        return prompt.upper()

    async def fast(prompt: str) -> str:
        return prompt.upper()

    slow.__qualname__ = fast.__qualname__ = "same_function"
    other_slow = cached_llm(namespace="gate", cache=other)(slow)
    mine = cached_llm(namespace="gate", cache=cache)(fast)
    leader = threading.Thread(target=other_slow, args=("q",))
    leader.start()
    probe: Any = RedisCluster(host="127.0.0.1", port=cluster_3x3[0].port)
    deadline = time.monotonic() + 10
    while not list(probe.scan_iter(match="ck:{gate:_}:lk:*", target_nodes=RedisCluster.PRIMARIES)):
        assert time.monotonic() < deadline, "the other process never took the lock"
        time.sleep(0.02)
    probe.close()  # the other process holds the lock for "q" now

    async def wait_for_q() -> str:
        assert await mine("q") == "Q"
        return status()  # last_result() is per task

    async def main() -> tuple[str, str, float]:
        await mine("warm up")  # this loop's cluster client: discovery and connections
        waiter = asyncio.create_task(wait_for_q())
        await asyncio.sleep(0.3)  # the waiter is polling
        started = time.perf_counter()
        await mine("another question")
        took = time.perf_counter() - started
        first = status()
        return first, await waiter, took

    first, waited, took = asyncio.run(main())
    leader.join()
    assert first == "miss", first  # not "error": it did not queue behind the poller
    assert took < 1.5
    assert waited == "exact"  # the waiter got the other process's answer
    cache.close()
    other.close()
