"""The URL cache's connection pool: redis-py's blocking semantics with a fast path.

Against the session's real Redis: the limit still holds, a caller over it waits for a
released connection and then runs, a wait past ``timeout`` fails as redis-py's does, and
a command cancelled mid-reply leaves nothing for the next one to read.
"""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aredis
from redis.exceptions import ConnectionError as RedisConnectionError

from cachekit import LLMCache
from cachekit._pool import FastBlockingPool


async def test_the_url_cache_uses_the_fast_pool(redis_url: str) -> None:
    async with LLMCache.from_url(redis_url) as cache:
        await cache.connect()
        client = cache._runtime.client()
        assert isinstance(client.connection_pool, FastBlockingPool)


async def test_reuses_one_idle_connection(redis_url: str) -> None:
    pool = FastBlockingPool.from_url(redis_url, max_connections=4, timeout=1)
    client = aredis.Redis(connection_pool=pool)
    try:
        for i in range(50):
            await client.set("k", i)
        assert await client.get("k") == b"49"
        # Sequential commands never needed a second connection.
        assert len(pool._available_connections) + len(pool._in_use_connections) == 1
    finally:
        await pool.disconnect()


async def test_the_limit_holds_and_waiters_are_woken(redis_url: str) -> None:
    pool = FastBlockingPool.from_url(redis_url, max_connections=2, timeout=5)
    client = aredis.Redis(connection_pool=pool)
    try:
        # 20 concurrent BLPOPs that each hold a connection for ~50 ms: with 2 connections
        # 18 of them must wait for a release and be woken by it.
        async def hold(i: int) -> None:
            await client.blpop([f"empty:{i}"], timeout=0.05)

        await asyncio.gather(*(hold(i) for i in range(20)))
        assert len(pool._available_connections) + len(pool._in_use_connections) <= 2
        assert not pool._in_use_connections
        assert await client.ping()
    finally:
        await pool.disconnect()


async def test_waiting_past_the_timeout_fails_as_redis_py_does(redis_url: str) -> None:
    pool = FastBlockingPool.from_url(redis_url, max_connections=1, timeout=0.1)
    client = aredis.Redis(connection_pool=pool)
    try:
        blocker = asyncio.create_task(client.blpop(["empty"], timeout=1))
        await asyncio.sleep(0.05)  # the blocker holds the only connection
        with pytest.raises(RedisConnectionError, match="No connection available"):
            await client.get("k")
        await blocker
        assert await client.ping()  # and the pool works again afterwards
    finally:
        await pool.disconnect()


async def test_a_command_cancelled_mid_reply_does_not_poison_the_next(redis_url: str) -> None:
    # What a lookup budget does: cancel a command whose reply is still on the way. The
    # connection it used must not hand that late reply to the next command.
    pool = FastBlockingPool.from_url(redis_url, max_connections=1, timeout=1)
    client = aredis.Redis(connection_pool=pool)
    try:
        await client.set("k", "v")
        for _ in range(5):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.02):
                    await client.blpop(["empty"], timeout=0.1)
            await client.rpush("empty", "late")  # would answer the cancelled BLPOP
            assert await client.get("k") == b"v"
            await client.delete("empty")
    finally:
        await pool.disconnect()
