"""Whatever is in Redis, a user's call gets the function's answer and never an exception.

Entries, pointers and vectors are written here by "something else" (another version, a
person with redis-cli, a hostile neighbour with write access, memory pressure): the cache
must treat what it cannot use as a miss, clean it up, and never import or run anything
named in cached data.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from cachekit import LLMCache, cache_control, cached_llm, last_result
from cachekit._codec import encode
from cachekit._server import RedisServer
from cachekit.embedders import CallableEmbedder
from cachekit.middleware import CacheMiddleware
from tests._helpers import GENEROUS, MakeCache, body_key, entry_keys, put_payload

DIMS = 32
CHAT = "/v1/chat/completions"


def item_embedder() -> CallableEmbedder:
    """``... item <n> ...`` -> a fixed random unit vector per n, plus a tiny per-text wobble.

    Paraphrases of one item are near-identical (cosine > 0.99); different items are
    independent random directions (cosine ~ N(0, 1/32)).
    """

    def embed(texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), DIMS), dtype=np.float32)
        for i, text in enumerate(texts):
            m = re.search(r"item (\d+)", text)
            topic = m.group(1) if m else text
            base = np.random.default_rng(_seed(topic)).standard_normal(DIMS)
            base /= np.linalg.norm(base)
            wobble = np.random.default_rng(_seed(text)).standard_normal(DIMS) * 0.005
            out[i] = base + wobble
        return out

    return CallableEmbedder(embed, dimensions=DIMS, model_id="test/items")


def item_of(prompt: str) -> str:
    m = re.search(r"item (\d+)", prompt)
    assert m is not None, prompt
    return m.group(1)


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


@pytest.fixture
def cache(make_cache: MakeCache) -> LLMCache:
    """Stores are synchronous here: an entry is in Redis when the call that stored it returns."""
    return make_cache(budgets=GENEROUS, background_stores=False)


# -- payloads that are not ours ----------------------------------------------------------

CORRUPT: dict[str, bytes] = {
    "truncated JSON": encode("the real answer").encode()[:-7],
    "garbage bytes": b"\xff\xfe\x00\x01\x80garbage\x00",
    "empty": b"",
    "not an envelope": b'{"x": 1}',
    "bare string": b'"just text"',
    "null": b"null",
    "list": b"[1, 2, 3]",
    "str tag, int value": b'{"t":"str","v":42}',
    "unknown tag": b'{"t":"pickle","v":"gASVCAAAAAAAAACMBHRlc3SULg=="}',
    "pydantic without class": b'{"t":"pydantic","v":{}}',
    "os.system as a model": b'{"t":"pydantic","c":"os:system","v":{"command":"touch /tmp/x"}}',
    "Popen as a dataclass": b'{"t":"dataclass","c":"subprocess:Popen","v":{"args":["true"]}}',
    "builtins eval": b'{"t":"pydantic","c":"builtins:eval","v":"1+1"}',
    "stream for a plain call": b'{"t":"stream","v":[{"t":"str","v":"a"}]}',
    "5000 digits": b'{"t":"json","v":' + b"9" * 5000 + b"}",
}


@pytest.mark.parametrize("where", ["body", "hash"])
@pytest.mark.parametrize("name", list(CORRUPT))
async def test_corrupt_payload_is_a_miss_and_is_deleted(
    cache: LLMCache, redis_sync: redis.Redis, name: str, where: str
) -> None:
    calls: list[str] = []

    @cached_llm(namespace="corrupt", cache=cache)
    async def ask(prompt: str) -> str:
        calls.append(prompt)
        return f"the answer to {prompt}"

    assert await ask("q") == "the answer to q"
    [key] = entry_keys(redis_sync, "corrupt")
    if where == "body":
        put_payload(redis_sync, key, CORRUPT[name])
    else:  # where an entry of the earlier layout keeps its payload, which wins
        redis_sync.hset(key, "v", CORRUPT[name])
    with cache_control(skip_store=True):  # so the key can only be gone if it was deleted
        assert await ask("q") == "the answer to q"
    r = last_result()
    assert r is not None and r.status == "miss", r
    assert not redis_sync.exists(key), "the corrupt entry was left in Redis"
    assert not redis_sync.exists(body_key(key)), "the corrupt entry's body was left in Redis"
    assert calls == ["q", "q"]
    assert await ask("q") == "the answer to q"  # stored afresh, then a hit
    assert await ask("q") == "the answer to q"
    assert last_result().status == "exact"  # type: ignore[union-attr]


def test_corrupt_payload_sync_caller(redis_url: str, redis_sync: redis.Redis) -> None:
    cache = LLMCache.from_url(redis_url, budgets=GENEROUS, background_stores=False)

    @cached_llm(namespace="corrupt-sync", cache=cache)
    def ask(prompt: str) -> str:
        return f"the answer to {prompt}"

    assert ask("q") == "the answer to q"
    [key] = entry_keys(redis_sync, "corrupt-sync")
    for payload in (CORRUPT["garbage bytes"], CORRUPT["os.system as a model"]):
        put_payload(redis_sync, key, payload)
        assert ask("q") == "the answer to q"
        assert last_result().status == "miss"  # type: ignore[union-attr]
        assert ask("q") == "the answer to q"
        assert last_result().status == "exact"  # type: ignore[union-attr]
    cache.close()


async def test_a_class_named_in_cached_data_is_never_imported(
    cache: LLMCache, redis_sync: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"ck_evil_{uuid.uuid4().hex}"
    marker = tmp_path / "imported"
    (tmp_path / f"{module}.py").write_text(
        f"open({str(marker)!r}, 'w').write('pwned')\n"
        "from pydantic import BaseModel\n"
        "class Evil(BaseModel):\n"
        "    x: int = 0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    @cached_llm(namespace="evil", cache=cache)
    async def ask(prompt: str) -> str:
        return "safe"

    out = []
    await ask("q")
    [key] = entry_keys(redis_sync, "evil")
    for tag in ("pydantic", "dataclass"):
        payload = json.dumps({"t": tag, "c": f"{module}:Evil", "v": {"x": 1}})
        put_payload(redis_sync, key, payload)
        out.append(await ask("q"))
        out.append(last_result().status)  # type: ignore[union-attr]
    assert out == ["safe", "miss", "safe", "miss"]
    assert module not in sys.modules
    assert not marker.exists(), "a module named in cached data was imported"


SDK_PROBE = """
import asyncio, json, sys
from pydantic import BaseModel
from cachekit import Budgets, LLMCache, cached_llm, last_result

class Answer(BaseModel):
    text: str

async def main() -> None:
    budgets = Budgets(lookup=120, store=120, command=120, connect=120, pool_wait=120)
    async with LLMCache.from_url(sys.argv[1], budgets=budgets) as cache:

        @cached_llm(namespace="sdkprobe", cache=cache)
        async def ask(prompt: str) -> Answer:
            return Answer(text=prompt)

        await ask("q")
        await cache.drain()
        before = {m for m in sys.modules if m.split(".")[0] in ("openai", "anthropic")}
        value = await ask("q")
        after = {m for m in sys.modules if m.split(".")[0] in ("openai", "anthropic")}
        print(json.dumps({
            "value": value.text,
            "status": last_result().status,
            "imported": sorted({m.split(".")[0] for m in after - before}),
        }))

asyncio.run(main())
"""


def test_first_decode_imports_no_sdk_on_the_event_loop(redis_url: str, tmp_path: Path) -> None:
    """A hit on the app's own pydantic model must not import SDKs it never used."""
    script = tmp_path / "sdk_probe.py"
    script.write_text(SDK_PROBE)
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, str(script), redis_url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(repo),
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["value"] == "q" and result["status"] == "exact", result
    assert result["imported"] == [], f"a cache hit imported {result['imported']}"


# -- fields of the entry hash --------------------------------------------------------------


@pytest.mark.parametrize("caller", ["async", "sync"])
async def test_deeply_nested_payload_is_a_miss(
    redis_url: str, redis_sync: redis.Redis, caller: str
) -> None:
    cache = LLMCache.from_url(redis_url, budgets=GENEROUS, background_stores=False)
    bomb = b'{"t":"json","v":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    try:
        if caller == "async":

            @cached_llm(namespace="deep", cache=cache)
            async def ask_async(prompt: str) -> str:
                return "fine"

            await ask_async("q")
            [key] = entry_keys(redis_sync, "deep")
            put_payload(redis_sync, key, bomb)
            with cache_control(skip_store=True):
                assert await ask_async("q") == "fine"
        else:

            @cached_llm(namespace="deep", cache=cache)
            def ask_sync(prompt: str) -> str:
                return "fine"

            await asyncio.to_thread(ask_sync, "q")
            [key] = entry_keys(redis_sync, "deep")
            put_payload(redis_sync, key, bomb)
            with cache_control(skip_store=True):  # to_thread copies the context
                assert await asyncio.to_thread(ask_sync, "q") == "fine"
        assert not redis_sync.exists(key)
    finally:
        await cache.aclose()


BAD_FIELDS = {
    "created is garbage": ("c", b"yesterday"),
    "created is missing": ("c", None),
}


@pytest.mark.parametrize("max_age", [None, 3600.0])
@pytest.mark.parametrize("bad", list(BAD_FIELDS))
async def test_entry_with_a_bad_field_is_a_miss_and_deleted(
    cache: LLMCache, redis_sync: redis.Redis, bad: str, max_age: float | None
) -> None:
    @cached_llm(namespace="fields", cache=cache)
    async def ask(prompt: str) -> str:
        return "fine"

    await ask("q")
    [key] = entry_keys(redis_sync, "fields")
    field, value = BAD_FIELDS[bad]
    if value is None:
        redis_sync.hdel(key, field)
    else:
        redis_sync.hset(key, field, value)
    with cache_control(max_age=max_age, skip_store=True):
        assert await ask("q") == "fine"
    r = last_result()
    assert r is not None and r.status == "miss", r
    assert not redis_sync.exists(key)


async def test_entry_without_prompt_or_with_foreign_epoch_is_served_or_missed(
    cache: LLMCache, redis_sync: redis.Redis
) -> None:
    """Fields that are optional or checked: no exception, the right answer."""

    @cached_llm(namespace="optional", cache=cache)
    async def ask(prompt: str) -> str:
        return "fine"

    await ask("q")
    [key] = entry_keys(redis_sync, "optional")
    redis_sync.hdel(key, "p", "m", "ti", "to", "h")
    assert await ask("q") == "fine"
    assert last_result().status == "exact"  # type: ignore[union-attr]
    redis_sync.hset(key, "ne", "not-an-epoch")
    assert await ask("q") == "fine"
    assert last_result().status == "miss"  # type: ignore[union-attr]


@pytest.mark.parametrize("field", ["ne", "c"])
async def test_semantic_candidate_with_a_bad_field_is_skipped(
    redis_url: str, redis_sync: redis.Redis, field: str
) -> None:
    async with LLMCache.from_url(
        redis_url, budgets=GENEROUS, embedder=item_embedder(), background_stores=False
    ) as cache:

        @cached_llm(namespace="semfields", cache=cache, threshold=0.9)
        async def ask(prompt: str) -> str:
            return f"about {prompt}"

        await ask("tell me about item 7")
        [key] = entry_keys(redis_sync, "semfields")
        redis_sync.hset(key, field, b"garbage")
        assert await ask("item 7, please") == "about item 7, please"
        r = last_result()
        assert r is not None and r.status == "miss", r


# -- vectors -------------------------------------------------------------------------------


def _vector_key(r: redis.Redis, namespace: str, kind: str) -> bytes:
    [key] = list(r.scan_iter(match=f"ck:{{{namespace}:*}}:{kind}:*"))
    return key


async def test_flat_vector_of_the_wrong_size_is_ignored(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    async with LLMCache.from_url(
        redis_url,
        budgets=GENEROUS,
        embedder=item_embedder(),
        index="flat",
        background_stores=False,
    ) as cache:

        @cached_llm(namespace="flatdims", cache=cache, threshold=0.9)
        async def ask(prompt: str) -> str:
            return f"about {item_of(prompt)}"

        assert await ask("tell me about item 3") == "about 3"
        key = _vector_key(redis_sync, "flatdims", "fl")
        redis_sync.hset(key, "bogus", b"\x00" * 12)  # 3 floats in a 32-dim scope
        redis_sync.hset(key, "junk", b"\x01")
        assert await ask("item 3, please") == "about 3"
        r = last_result()
        assert r is not None and r.status == "semantic", r
        assert await ask("what about item 4") == "about 4"
        assert last_result().status == "miss"  # type: ignore[union-attr]
        assert cache.breaker.state == "closed" and cache.local_errors == 0


async def test_vector_set_of_the_wrong_dimension_is_dropped(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    async with LLMCache.from_url(
        redis_url,
        budgets=GENEROUS,
        embedder=item_embedder(),
        index="vectorset",
        background_stores=False,
        breaker_threshold=3,
    ) as cache:

        @cached_llm(namespace="vsdims", cache=cache, threshold=0.9)
        async def ask(prompt: str) -> str:
            return f"about {item_of(prompt)}"

        assert await ask("tell me about item 3") == "about 3"
        key = _vector_key(redis_sync, "vsdims", "vs")
        redis_sync.delete(key)
        redis_sync.execute_command("VADD", key, "VALUES", 3, 1, 2, 3, "bogus")
        statuses = []
        for i in range(5):  # every answer right, whatever the status
            assert await ask(f"tell me about item {10 + i}") == f"about {10 + i}"
            statuses.append(last_result().status)  # type: ignore[union-attr]
        assert await ask("tell me about item 10, please") == "about 10"
        statuses.append(last_result().status)  # type: ignore[union-attr]
        assert statuses == ["miss"] * 5 + ["semantic"], statuses
        assert cache.breaker.opened == 0


@pytest.mark.parametrize("index", ["vectorset", "flat"])
async def test_dangling_entries_aliases_and_vectors_are_misses_and_removed(
    redis_url: str, redis_sync: redis.Redis, index: str
) -> None:
    async with LLMCache.from_url(
        redis_url,
        budgets=GENEROUS,
        embedder=item_embedder(),
        index=index,
        background_stores=False,
    ) as cache:

        @cached_llm(namespace="dangle", cache=cache, threshold=0.9)
        async def ask(prompt: str) -> str:
            return f"about {item_of(prompt)}"

        assert await ask("tell me about item 5") == "about 5"
        assert await ask("item 5 again") == "about 5"
        assert last_result().status == "semantic"  # type: ignore[union-attr]
        [entry] = entry_keys(redis_sync, "dangle")
        [alias] = list(redis_sync.scan_iter(match="ck:{dangle:*}:x:*"))
        assert redis_sync.get(alias) == entry.rsplit(b":", 1)[1]  # the semantic hit's alias
        vkey = _vector_key(redis_sync, "dangle", "vs" if index == "vectorset" else "fl")
        # What TTL or LRU leaves behind: Redis evicts keys one at a time, the body first.
        redis_sync.delete(entry.replace(b":e:", b":b:"))
        with cache_control(skip_store=True):
            assert await ask("tell me about item 5") == "about 5"  # its own entry: dangling
            assert last_result().status == "miss"  # type: ignore[union-attr]
            assert not redis_sync.exists(entry)  # a hash without its body is dropped
            assert await ask("item 5 again") == "about 5"  # the alias, then the vector
            assert last_result().status == "miss"  # type: ignore[union-attr]
            assert not redis_sync.exists(alias)
        members = (
            redis_sync.execute_command("VCARD", vkey)
            if index == "vectorset"
            else redis_sync.hlen(vkey)
        )
        assert not members, "the dangling vector was not removed"
        assert cache.local_errors == 0


# -- invalidation and eviction -----------------------------------------------------------


@pytest.mark.parametrize("level", ["tenant", "namespace"])
async def test_evicted_generation_key_does_not_resurrect_invalidated_entries(
    cache: LLMCache, redis_sync: redis.Redis, level: str
) -> None:
    version = ["v1"]

    @cached_llm(namespace="resurrect", cache=cache, tenant=lambda c: "acme")
    async def ask(prompt: str) -> str:
        return f"{version[0]}:{prompt}"

    assert await ask("old question") == "v1:old question"
    version[0] = "v2"
    await cache.invalidate("resurrect", tenant="acme" if level == "tenant" else None)
    assert await ask("another question") == "v2:another question"
    # allkeys-lru evicts the (idle, TTL-less) generation key, as it may any key.
    control = (
        list(redis_sync.scan_iter(match="ck:{resurrect:*}:gen"))
        if level == "tenant"
        else [b"ck:{resurrect}:epoch"]
    )
    redis_sync.delete(*control)
    assert await ask("old question") == "v2:old question", "an invalidated answer was served"


# -- memory pressure -------------------------------------------------------------------------


@pytest.fixture
def small_server() -> Iterator[RedisServer]:
    server = RedisServer(
        extra_args=["--maxmemory", "8mb", "--maxmemory-policy", "allkeys-lru"]
    ).start()
    yield server
    server.stop()


async def test_memory_pressure_no_errors_no_wrong_answers(small_server: RedisServer) -> None:
    pad = "x" * 2000
    n_items = 2500

    def prompt(i: int, variant: int) -> str:
        return ("Tell me about item {i}.", "item {i}: what is it?", "Explain item {i}")[
            variant
        ].format(i=i)

    async with LLMCache.from_url(
        small_server.url,
        budgets=GENEROUS,
        embedder=item_embedder(),
        index="vectorset",
        max_pending_stores=100_000,
    ) as cache:

        @cached_llm(namespace="pressure", cache=cache, threshold=0.95)
        async def ask(prompt: str) -> str:
            m = re.search(r"item (\d+)", prompt)
            assert m is not None
            return f"item={m.group(1)}|{pad}"

        statuses: Counter[str] = Counter()
        wrong: list[tuple[str, str]] = []
        raised: list[str] = []
        rng = np.random.default_rng(0)
        queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        for i in range(n_items):
            queue.put_nowait((i, 0))
            if i % 3 == 0:  # ask an earlier item again, or a paraphrase of it
                queue.put_nowait((int(rng.integers(0, i + 1)), int(rng.integers(0, 3))))

        async def worker() -> None:
            while not queue.empty():
                i, variant = queue.get_nowait()
                text = prompt(i, variant)
                try:
                    value = await ask(text)
                except Exception as exc:  # noqa: BLE001 - counting what reaches the user
                    raised.append(f"{type(exc).__name__}: {exc}")
                    continue
                r = last_result()
                statuses[r.status if r is not None else "?"] += 1
                if value != f"item={i}|{pad}":
                    wrong.append((text, value[:40]))

        await asyncio.gather(*(worker() for _ in range(20)))
        await cache.drain(timeout=60)
    info = redis.Redis(port=small_server.port).info()
    assert not raised, raised[:3]
    assert not wrong, wrong[:3]
    assert int(info["evicted_keys"]) > 0, "no eviction: the load did not pressure memory"
    assert statuses["miss"] > n_items / 2, statuses
    assert statuses["exact"] + statuses["semantic"] > 0, statuses
    assert statuses["error"] <= sum(statuses.values()) * 0.01, statuses


# -- the HTTP middleware reads the same entries --------------------------------------------


def test_middleware_corrupt_entry_is_a_miss_and_deleted(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    hits: list[int] = []

    async def chat(request: Request) -> JSONResponse:
        hits.append(1)
        body = await request.json()
        return JSONResponse({"answer": body["messages"][-1]["content"].upper()})

    app = Starlette(routes=[Route(CHAT, chat, methods=["POST"])])
    cache = LLMCache.from_url(redis_url, budgets=GENEROUS)
    wrapped = CacheMiddleware(app, cache=cache, namespace="mwcorrupt", allow_global=True)
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with TestClient(wrapped) as client:
        first = client.post(CHAT, json=body)
        assert first.headers["x-cache"] == "MISS" and first.json() == {"answer": "HI"}
        [key] = entry_keys(redis_sync, "mwcorrupt")
        for payload in (
            CORRUPT["garbage bytes"],
            CORRUPT["os.system as a model"],
            encode({"kind": "json", "status": 200, "headers": {}, "body": "{}"}).encode(),
            encode({"kind": "exe", "status": 200, "headers": {"content-type": "x"}}).encode(),
        ):
            put_payload(redis_sync, key, payload)
            again = client.post(CHAT, json=body, headers={"cache-control": "no-store"})
            assert again.headers["x-cache"] == "MISS" and again.json() == {"answer": "HI"}
            assert not redis_sync.exists(key)
            fresh = client.post(CHAT, json=body)
            assert fresh.headers["x-cache"] == "MISS"
            hit = client.post(CHAT, json=body)
            assert hit.headers["x-cache"] == "HIT" and hit.json() == {"answer": "HI"}
    cache.close()
