"""Talking to Redis the same way on every server and client setting.

redis-py replies differ with the protocol (RESP2 flat arrays vs RESP3 maps, redis-py 8
defaults to RESP3) and with ``decode_responses``; every backend sends raw commands and
parses replies through these helpers instead of assuming one shape. Also here: the FP32
wire format of vectors, server probes, and the TTL rule for shared index keys.
Part of :mod:`cachekit._index`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

__all__ = [
    "FOREVER_SECONDS",
    "Vector",
    "any_node",
    "as_map",
    "check_pipeline",
    "has_command",
    "queue_key_ttl",
    "run",
    "server_version",
    "to_blob",
    "to_float",
    "to_text",
]

#: "No expiry" for a *shared* index key (vector set / flat hash). A real PERSIST cannot be
#: told apart from "new key, no TTL yet" by ``EXPIRE ... NX``, so a later entry with a TTL
#: would shorten the life of a forever entry's vector. ~100 years is forever for a cache
#: and keeps the rule "key TTL = max over its elements" expressible with NX + GT.
FOREVER_SECONDS: Final = 100 * 365 * 24 * 3600

#: A float vector (1-D); indexes send it as FP32 little-endian (:func:`to_blob`).
Vector = npt.NDArray[np.floating[Any]]


async def run(client: aioredis.Redis, *args: Any, **options: Any) -> object:
    """``client.execute_command`` with a typed signature (redis-py leaves it untyped).

    Raw commands are used on purpose: they work unchanged across redis-py 5-8 and on
    servers whose module commands redis-py has no helper for.
    """
    execute = cast("Callable[..., Awaitable[object]]", client.execute_command)
    return await execute(*args, **options)


def to_blob(vector: Vector) -> bytes:
    """FP32 little-endian bytes: the wire format of both VADD FP32 and RediSearch FLOAT32."""
    arr = np.asarray(vector)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D vector, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype="<f4").tobytes()


def to_text(value: object) -> str:
    """Reply item as ``str`` whether or not the client decodes responses."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "surrogateescape")
    return str(value)


def to_float(value: object) -> float:
    """Reply item as ``float``: RESP2 gives bytes/str, RESP3 gives doubles."""
    if isinstance(value, bytes | bytearray | memoryview):
        return float(bytes(value))
    return float(cast("str | float | int", value))


def as_map(value: object) -> dict[str, Any]:
    """A RESP3 map or a RESP2 flat ``[k, v, k, v, ...]`` array as a str-keyed dict."""
    if isinstance(value, Mapping):
        return {to_text(k): v for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = list(value)
        return {to_text(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}
    raise TypeError(f"expected a map reply, got {type(value).__name__}")


def queue_key_ttl(pipe: Pipeline, key: str, ttl: int | None, *, has_expire_options: bool) -> None:
    """Queue commands that make a *shared* index key outlive the entry just added to it.

    The key must live as long as its longest-lived element: ``EXPIRE NX`` gives a brand-new
    key (no TTL yet) its first TTL, ``EXPIRE GT`` only ever extends an existing one, so an
    entry with a short TTL never shortens the life of its neighbours' vectors. ``ttl=None``
    uses :data:`FOREVER_SECONDS` for the same reason (see there). Vectors of entries that
    expired earlier dangle until the caller removes them; that is a miss, never an error.

    Servers before Redis 7.0 have no NX/GT: the key then gets the TTL of the latest entry
    (PERSIST for ``None``), which is right when one namespace uses one TTL.
    """
    if has_expire_options:
        seconds = FOREVER_SECONDS if ttl is None else max(1, int(ttl))
        pipe.execute_command("EXPIRE", key, seconds, "NX")
        pipe.execute_command("EXPIRE", key, seconds, "GT")
    elif ttl is None:
        pipe.execute_command("PERSIST", key)
    else:
        pipe.execute_command("EXPIRE", key, max(1, int(ttl)))


def check_pipeline(pipe: Pipeline) -> None:
    """Refuse a pipeline in immediate (WATCH, no MULTI yet) mode.

    There redis-py runs commands at once and returns coroutines that ``add`` would drop
    on the floor; the vector would silently never be written.
    """
    # ClusterPipeline has neither attribute (and no immediate mode): nothing to refuse.
    if getattr(pipe, "watching", False) and not getattr(pipe, "explicit_transaction", True):
        raise RuntimeError("VectorIndex.add needs a buffering pipeline: call pipe.multi() first")


async def server_version(client: aioredis.Redis) -> tuple[int, ...]:
    """``redis_version`` from INFO server as a tuple, ``()`` if the server hides it."""
    info = cast("Mapping[Any, Any]", await client.info("server"))
    raw = info.get("redis_version") or info.get(b"redis_version")
    if raw is None:
        return ()
    parts: list[int] = []
    for piece in to_text(raw).split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


def any_node(client: object) -> dict[str, Any]:
    """Routing options for a keyless probe: on Redis Cluster, ask any one node."""
    from redis.asyncio.cluster import RedisCluster

    # A node object, not the RANDOM flag: redis-py resolves flags through its command
    # policy table, which has no entry for keyless module probes like COMMAND INFO.
    if isinstance(client, RedisCluster):
        return {"target_nodes": client.get_random_node()}
    return {}


async def has_command(client: aioredis.Redis, command: str) -> bool:
    """Whether the server knows ``command`` (COMMAND INFO; falls back to INFO's version).

    ``"COMMAND INFO"`` is passed as one word, redis-py's convention for multi-word
    commands; that also skips redis-py's COMMAND reply parser, which crashes on the
    ``[nil]`` reply for unknown commands. Some managed services block COMMAND; then the
    server version decides (vector sets are built into Redis >= 8).
    """
    try:
        reply = await run(client, "COMMAND INFO", command, **any_node(client))
    except ResponseError:
        if command.lower() in {"vadd", "vsim", "vrem"}:
            return await server_version(client) >= (8,)
        return False
    if isinstance(reply, Mapping):
        return bool(reply)
    items = cast("Sequence[object]", reply or [])
    return bool(items) and items[0] is not None
