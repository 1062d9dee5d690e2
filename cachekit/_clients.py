"""Redis clients: factories from a URL or a client, cluster start-up, closing, redaction.

A cache holds a *factory*, not a client: ``redis.asyncio`` connections belong to one event
loop, so the cache opens a fresh client with the same settings whenever it binds another
loop (see ``_runtime``).
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from ._policy import Budgets
from ._pool import FastBlockingPool
from ._scripts import COUNTER_ONLY_LUA, LOOKUP_LUA, STORE_LUA
from .errors import CacheConfigError

__all__ = [
    "client_factory",
    "close_client",
    "no_touch",
    "prepare_cluster",
    "redact",
    "url_factory",
]

_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")
#: A client factory and the ``LLMCache`` arguments it implies (description, cluster).
Factory = tuple[Callable[[], Any], dict[str, Any]]


def url_factory(url: str, max_connections: int, budgets: Budgets) -> Factory:
    """Clients of the Redis at ``url`` (see ``LLMCache.from_url``)."""
    if not isinstance(url, str) or "://" not in url:
        raise CacheConfigError(f"expected a redis:// URL, got {redact(str(url))!r}")
    if not isinstance(max_connections, int) or max_connections < 1:
        raise CacheConfigError(f"max_connections must be an int >= 1, got {max_connections!r}")
    scheme = url.split("://", 1)[0].lower()
    if scheme not in _SCHEMES:
        raise CacheConfigError(
            f"unsupported URL scheme {scheme!r}: use redis://, rediss://, unix://, "
            "redis+cluster:// or rediss+cluster://"
        )
    if scheme.endswith("+cluster"):
        plain = url.replace("+cluster", "", 1)

        def cluster_factory() -> Any:
            from redis.asyncio.cluster import RedisCluster

            return RedisCluster.from_url(
                plain,
                max_connections=max_connections,
                socket_connect_timeout=budgets.connect,
                socket_timeout=None,
            )

        options = {"cluster": True, "cluster_connections": max_connections}
        return cluster_factory, options | {"description": redact(url)}

    def factory() -> aredis.Redis:
        # socket_timeout=None on purpose: redis-py wraps every read of a socket with
        # a timeout in wait_for (~80 µs a command here); the stage budgets bound waits.
        pool = FastBlockingPool.from_url(
            url,
            max_connections=max_connections,
            timeout=budgets.pool_wait,
            socket_timeout=None,
            socket_connect_timeout=budgets.connect,
            health_check_interval=30,
            # A restarted Redis leaves every pooled connection dead, and each one fails
            # its next command once ("Connection closed by server"). One immediate retry
            # on a fresh connection absorbs that; a Redis that is really down fails the
            # retry just as fast (refused), and a hung one is bounded by the stage budget.
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        return aredis.Redis(connection_pool=pool)

    return factory, {"description": redact(url)}


def client_factory(client: Any) -> Factory:
    """``client`` first, then fresh clients with its settings (``LLMCache.from_client``)."""
    from redis.asyncio.cluster import RedisCluster

    used = [False]
    if isinstance(client, RedisCluster):

        def cluster_factory() -> Any:
            if not used[0]:
                used[0] = True
                return client
            node = client.get_default_node()
            return RedisCluster(host=node.host, port=node.port, **client.connection_kwargs)

        kwargs = getattr(getattr(client, "nodes_manager", None), "connection_kwargs", {})
        per_node = kwargs.get("max_connections", 100) if isinstance(kwargs, dict) else 100
        options = {"cluster": True, "cluster_connections": int(per_node)}
        return cluster_factory, options | {"description": repr(client)}
    if not isinstance(client, aredis.Redis):
        raise CacheConfigError(
            "from_client() takes a redis.asyncio.Redis or RedisCluster, not "
            f"{type(client).__name__}"
        )
    original = client.connection_pool

    def factory() -> aredis.Redis:
        if not used[0]:
            used[0] = True
            return client
        pool = type(original)(
            connection_class=original.connection_class,
            max_connections=original.max_connections,
            **original.connection_kwargs,
        )
        return aredis.Redis(connection_pool=pool)

    return factory, {"description": repr(original)}


async def prepare_cluster(client: Any) -> None:
    """Discover the cluster and load the scripts once, not once per first caller.

    Without this, every caller of a fresh cluster client discovers the topology and
    meets NOSCRIPT on each node at the same moment; under load that herd alone ran
    past lookup budgets.
    """
    await client.initialize()
    # One at a time: each load goes to every node at once, and a pool of two
    # connections per node (max_connections=2) would run out with more in flight.
    for script in (LOOKUP_LUA, STORE_LUA, COUNTER_ONLY_LUA):
        await client.script_load(script)


_SECRET_PARAMS = frozenset({"password", "username", "user", "pass"})


def redact(url: str) -> str:
    """A URL safe for logs, reprs and errors: no user name, no password, anywhere.

    Covers ``user:password@`` in the netloc and redis-py's ``?password=``/``?username=``
    query parameters; anything unparsable is replaced whole.
    """
    if "://" not in url:
        return "<redacted URL>" if "@" in url or "password" in url.lower() else url
    try:
        parts = urllib.parse.urlsplit(url)
        params = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if "@" not in parts.netloc and not any(k.lower() in _SECRET_PARAMS for k, _ in params):
            return url
        host = parts.netloc.rsplit("@", 1)[-1]
        netloc = f"***@{host}" if "@" in parts.netloc else host
        query = urllib.parse.urlencode(
            [(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in params]
        )
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return "<unparsable redis URL>"


async def close_client(client: Any) -> None:
    if isinstance(client, aredis.Redis):
        await client.connection_pool.disconnect()
    else:
        await client.aclose()


@contextlib.asynccontextmanager
async def no_touch(client: Any) -> AsyncIterator[Any]:
    """A client like ``client`` whose reads leave the keys' LRU/LFU clocks alone.

    For diagnostics (``explain``, ``inspect``): looking at an entry must not keep it
    from being evicted. One connection of its own with ``CLIENT NO-TOUCH ON`` (Redis >=
    7.2), set again on every reconnect and closed afterwards, so the flag never reaches
    the cache's pool. On a cluster, or a server without the command, ``client`` itself:
    the reads then count as uses, as any read does.
    """
    if not isinstance(client, aredis.Redis):
        yield client
        return
    original = client.connection_pool
    pool = aredis.BlockingConnectionPool(
        connection_class=original.connection_class,
        max_connections=1,
        timeout=None,
        **{**original.connection_kwargs, "redis_connect_func": _no_touch_on},
    )
    reader = aredis.Redis(connection_pool=pool)
    try:
        yield reader
    finally:
        await pool.disconnect()


async def _no_touch_on(conn: Any) -> None:
    await conn.on_connect()
    with contextlib.suppress(ResponseError):  # Redis < 7.2: no NO-TOUCH
        await conn.send_command("CLIENT", "NO-TOUCH", "ON")
        await conn.read_response()
