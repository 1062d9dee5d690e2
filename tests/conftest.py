"""Shared fixtures: real Redis 8 servers on free loopback ports, never mocks."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from cachekit._server import RedisServer

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
