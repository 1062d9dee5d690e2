"""The vector-index seam: one small protocol, plain types, three interchangeable backends.

Everything above this seam speaks *cosine similarity* in [-1, 1] and float32 unit vectors;
each backend converts from its server's own score scale (VSIM's ``(1+cos)/2``, RediSearch's
cosine *distance* ``1-cos``) so the semantic threshold means the same thing everywhere.

The helpers below exist because redis-py replies differ with the protocol (RESP2 flat
arrays vs RESP3 maps, redis-py 8 defaults to RESP3) and with ``decode_responses``; every
backend parses replies through them instead of assuming one shape.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, cast, runtime_checkable

import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError, ResponseError

from .._layout import META_KEY, VectorScope
from ..errors import CacheBackendError, CacheConfigError, IndexMismatchError

__all__ = [
    "FOREVER_SECONDS",
    "METRIC",
    "Candidate",
    "IndexBase",
    "Vector",
    "VectorIndex",
    "as_map",
    "check_meta",
    "check_pipeline",
    "clip_similarity",
    "has_command",
    "queue_key_ttl",
    "run",
    "server_version",
    "to_blob",
    "to_float",
    "to_text",
]

log = logging.getLogger("cachekit.index")

#: The only metric cachekit uses; stored in the meta hash so a future change is detected.
METRIC: Final = "cosine"
#: "No expiry" for a *shared* index key (vector set / flat hash). A real PERSIST cannot be
#: told apart from "new key, no TTL yet" by ``EXPIRE ... NX``, so a later entry with a TTL
#: would shorten the life of a forever entry's vector. ~100 years is forever for a cache
#: and keeps the rule "key TTL = max over its elements" expressible with NX + GT.
FOREVER_SECONDS: Final = 100 * 365 * 24 * 3600

Vector = npt.NDArray[np.floating[Any]]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One nearest-neighbour hit.

    ``similarity`` is cosine similarity in [-1, 1] whatever the backend, so callers compare
    it against the user's threshold without knowing which index answered.
    """

    entry_id: str
    similarity: float


@runtime_checkable
class VectorIndex(Protocol):
    """What the cache core needs from a vector index, and nothing more.

    Vectors are float32 unit vectors (1-D). ``search``/``remove`` let redis-py errors
    propagate: the caller owns the time budget and the fail-open policy. Only ``ensure``
    translates failures into cachekit errors, because it runs once at start-up where a
    clear message is worth more than fail-open.
    """

    name: str

    async def ensure(self, dims: int, model: str) -> None:
        """Create or validate what the backend needs; raise IndexMismatchError on conflict."""
        ...

    def add(
        self, pipe: Pipeline, scope: VectorScope, entry_id: str, vector: Vector, ttl: int | None
    ) -> None:
        """Queue (never await) the commands that index ``vector`` on the caller's MULTI."""
        ...

    async def search(self, scope: VectorScope, vector: Vector, k: int) -> list[Candidate]:
        """Up to ``k`` candidates of exactly this scope, best first."""
        ...

    async def remove(self, scope: VectorScope, entry_ids: Sequence[str]) -> None:
        """Drop vectors whose entry is gone (expired, evicted, flushed)."""
        ...


class IndexBase(ABC):
    """What the built-in backends share; a new backend may start from it (or not).

    :meth:`add` refuses an immediate-mode pipeline and converts the vector to the FP32
    wire format once, then hands the blob to :meth:`queue_add`; :meth:`search` answers
    ``k < 1`` without a round trip, else asks :meth:`knn`. A subclass sets ``name`` and
    implements ``ensure``, ``queue_add``, ``knn`` and ``remove``.
    """

    name: str

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    @abstractmethod
    async def ensure(self, dims: int, model: str) -> None:
        """Create or validate what the backend needs; raise IndexMismatchError on conflict."""

    def add(
        self, pipe: Pipeline, scope: VectorScope, entry_id: str, vector: Vector, ttl: int | None
    ) -> None:
        check_pipeline(pipe)
        self.queue_add(pipe, scope, entry_id, to_blob(vector), ttl)

    @abstractmethod
    def queue_add(
        self, pipe: Pipeline, scope: VectorScope, entry_id: str, blob: bytes, ttl: int | None
    ) -> None:
        """Queue the commands that store ``blob`` (FP32 little-endian) for ``entry_id``."""

    async def search(self, scope: VectorScope, vector: Vector, k: int) -> list[Candidate]:
        return [] if k < 1 else await self.knn(scope, vector, k)

    @abstractmethod
    async def knn(self, scope: VectorScope, vector: Vector, k: int) -> list[Candidate]:
        """Up to ``k`` (>= 1) candidates of exactly this scope, best first."""

    @abstractmethod
    async def remove(self, scope: VectorScope, entry_ids: Sequence[str]) -> None:
        """Drop vectors whose entry is gone (expired, evicted, flushed)."""


# --------------------------------------------------------------------------- helpers


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


def clip_similarity(value: float) -> float:
    """Keep float rounding (1.0000001) and quantization noise inside the documented scale."""
    return min(1.0, max(-1.0, value))


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


async def check_meta(client: aioredis.Redis, backend: str, dims: int, model: str) -> None:
    """Record (first writer wins) or validate the global index meta hash.

    Set-if-absent and read-back run in one MULTI, so two workers starting at once with
    different embedders cannot both believe they own the index. ``backend`` is the one
    field that is overwritten (after validation): switching backends is legal (the other
    backend's vectors simply are not consulted), and the hash should say what runs now.
    """
    if dims <= 0:
        raise CacheConfigError(f"vector dimensions must be positive, got {dims}")
    try:
        pipe = client.pipeline(transaction=True)
        pipe.hsetnx(META_KEY, "dims", str(dims))
        pipe.hsetnx(META_KEY, "metric", METRIC)
        pipe.hsetnx(META_KEY, "model", model)
        pipe.hgetall(META_KEY)
        replies = await pipe.execute()
    except RedisError as exc:
        raise CacheBackendError(f"cannot read the vector index meta {META_KEY!r}: {exc}") from exc
    stored = {k: to_text(v) for k, v in as_map(replies[3]).items()}
    old_dims = stored.get("dims", str(dims))
    old_model = stored.get("model", model)
    old_metric = stored.get("metric", METRIC)
    if old_dims != str(dims) or old_model != model or old_metric != METRIC:
        raise IndexMismatchError(
            f"vector index was built for {old_dims}-d vectors of {old_model!r} "
            f"(metric {old_metric}) but the embedder gives {dims}-d vectors of {model!r} "
            f"(metric {METRIC}); run cache.clear() / drop the index (and the {META_KEY!r} "
            "hash) or use another Redis database"
        )
    old_backend = stored.get("backend")
    if old_backend == backend:
        return
    if old_backend is not None:
        log.warning(
            "vector index backend changed from %r to %r: semantic entries indexed by %r "
            "are not searched until they age out",
            old_backend,
            backend,
            old_backend,
        )
    try:
        await client.hset(META_KEY, "backend", backend)
    except RedisError as exc:
        raise CacheBackendError(f"cannot write the vector index meta {META_KEY!r}: {exc}") from exc
