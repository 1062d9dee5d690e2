"""Shared fixtures: real Redis 8 servers on free loopback ports, never mocks."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import redis

from cachekit import LLMCache
from cachekit._server import RedisServer, start_cluster
from tests._helpers import MakeCache

if TYPE_CHECKING:
    from cachekit.embedders import SentenceTransformerEmbedder
    from tests.llm_server import LocalOpenAIServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One Redis 8 server for the session, with the RediSearch module loaded."""
    server = RedisServer(search=True).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server, emptied before each test."""
    client = redis.Redis(port=redis_server.port)
    try:
        client.flushall()
        # Each test starts without search indexes left by an earlier test.
        for name in client.execute_command("FT._LIST"):
            client.execute_command("FT.DROPINDEX", name)
    finally:
        client.close()
    return redis_server.url


@pytest.fixture
def redis_sync(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


# -- caches ---------------------------------------------------------------------------


@pytest.fixture
async def make_cache(redis_url: str) -> AsyncIterator[MakeCache]:
    """``make_cache(url=None, **options)``: a new ``LLMCache.from_url(url, **options)``.

    ``url`` defaults to the session server, which ``redis_url`` empties before every
    test (keys and search indexes), so no test sees another's entries, stats or
    generations. Pass a URL for a server of the test's own (``own_server``, a cluster).
    Construction does no I/O, as with ``from_url``: the cache binds to the loop of its
    first use (an ``async def`` test's loop, or its background thread for sync calls);
    an async fixture wanting a connected cache awaits ``cache.connect()``.

    At teardown every cache made is closed (``aclose``: queued stores drained, pool and
    loop thread closed), newest first; closing one the test closed already is a no-op.
    The fixture is async so that the pool of a cache bound to the test's own loop is
    closed on that loop while it still runs.
    """
    made: list[LLMCache] = []

    def make(url: str | None = None, **options: Any) -> LLMCache:
        if "embedder" in options:
            # Tests' embedders (bag of words, tables of vectors) give cosines that say
            # nothing about the prompt texts, which the hit verifier reads: it is off
            # unless a test asks for it (the verifier's own tests use real MiniLM).
            options.setdefault("verifier", None)
        cache = LLMCache.from_url(url or redis_url, **options)
        made.append(cache)
        return cache

    yield make
    for cache in reversed(made):
        await cache.aclose()


@pytest.fixture
def cache(make_cache: MakeCache) -> LLMCache:
    """A cache with the default options on the emptied session server.

    A module whose tests need other options overrides this fixture with one line that
    asks ``make_cache`` for them (an embedder, budgets, ``background_stores=False``).
    """
    return make_cache()


# -- other servers ----------------------------------------------------------------------


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A Redis of this test alone: it may be killed, paused and restarted."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[RedisServer]]:
    """A Redis Cluster of three primaries, one per test module that asks for it."""
    with start_cluster(primaries=3) as nodes:
        yield nodes


@pytest.fixture
def cluster_url(cluster: list[RedisServer]) -> str:
    """``cluster`` emptied before each test, seeded from a node that is not the first."""
    from redis.cluster import RedisCluster

    client = RedisCluster(host="127.0.0.1", port=cluster[0].port)
    try:
        client.flushall(target_nodes=RedisCluster.PRIMARIES)
    finally:
        client.close()
    return f"redis+cluster://127.0.0.1:{cluster[1].port}"


@pytest.fixture(scope="module")
def upstream() -> Iterator[LocalOpenAIServer]:
    """A real OpenAI-wire server (tests/llm_server.py), one per test module."""
    from tests.llm_server import LocalOpenAIServer

    with LocalOpenAIServer() as server:
        yield server


# -- embedders --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm() -> Iterator[SentenceTransformerEmbedder]:
    """The bundled all-MiniLM-L6-v2, loaded once per module (a few seconds)."""
    from cachekit.embedders import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    # Its own short-lived loop: the embedder holds nothing loop-bound, which the tests
    # (each on a fresh pytest loop) then rely on.
    asyncio.run(embedder.warmup())
    yield embedder
    embedder.close()
