"""Exact cosine search in numpy over one Redis hash per scope; works on any Redis.

The fallback when the server has neither vector sets nor the query engine (Redis < 8,
older managed services, KeyDB, ...). A scope's vectors live in ``ck:{ns:T}:fl:<gen>:<scope>``
as ``entry_id -> float32 blob``; a search is one HGETALL plus a matrix product. That is
exact (no recall loss) and fast for the sizes a single scope usually reaches (hundreds to a
few thousand prompts); past that, prefer ``vectorset`` or ``search``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

import numpy as np
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.client import NEVER_DECODE
from redis.exceptions import RedisError

from .._layout import VectorScope
from ..errors import CacheBackendError
from ._meta import check_meta
from ._registry import TAG, register_index
from ._wire import queue_key_ttl, run, server_version, to_text
from .base import Candidate, IndexBase, Vector, clip_similarity

__all__ = ["FlatIndex"]

log = logging.getLogger("cachekit.index")

#: Key kind of a scope's vector hash (``VectorScope.key("fl")``).
KEY_KIND: Final = "fl"
#: What ``clear()`` deletes for this index (see ``register_index``).
KEYS: Final = (f"ck:{TAG}:{KEY_KIND}:*",)


class FlatIndex(IndexBase):
    """HSET / HGETALL + numpy / HDEL on one hash per scope."""

    name: str = "flat"

    #: EXPIRE NX/GT exist since Redis 7.0; assumed until ensure() learns otherwise.
    _expire_options = True

    def key(self, scope: VectorScope) -> str:
        """The hash that holds ``scope``'s vectors (a subclass may store them elsewhere)."""
        return scope.key(KEY_KIND)

    async def ensure(self, dims: int, model: str) -> None:
        """Validate the meta hash and learn whether EXPIRE NX/GT can be used."""
        await check_meta(self._client, self.name, dims, model)
        try:
            version = await server_version(self._client)
        except RedisError as exc:
            raise CacheBackendError(f"cannot probe the Redis server: {exc}") from exc
        self._expire_options = not version or version >= (7,)
        if not self._expire_options:
            log.info("Redis %s has no EXPIRE NX/GT: flat index keys take the latest TTL", version)

    def queue_add(
        self, pipe: Pipeline, scope: VectorScope, entry_id: str, blob: bytes, ttl: int | None
    ) -> None:
        """Queue HSET of the blob and the expiry that keeps the hash alive for it."""
        key = self.key(scope)
        pipe.execute_command("HSET", key, entry_id, blob)
        queue_key_ttl(pipe, key, ttl, has_expire_options=self._expire_options)

    async def knn(self, scope: VectorScope, vector: Vector, k: int) -> list[Candidate]:
        """Exact top-k: dot products of unit vectors are cosines; argpartition, then sort k.

        NEVER_DECODE keeps the blobs raw even on a ``decode_responses=True`` client.
        """
        reply = await run(self._client, "HGETALL", self.key(scope), **{NEVER_DECODE: True})
        fields = _as_pairs(reply)
        if not fields:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        width = query.shape[0] * 4
        ids: list[str] = []
        blobs: list[bytes] = []
        for field, blob in fields:
            if len(blob) != width:  # written under other dims: never comparable
                continue
            ids.append(field)
            blobs.append(blob)
        if not ids:
            return []
        matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(ids), -1)
        scores = matrix @ query
        top = np.argpartition(-scores, k - 1)[:k] if k < len(ids) else np.arange(len(ids))
        top = top[np.argsort(-scores[top], kind="stable")]
        return [Candidate(ids[i], clip_similarity(float(scores[i]))) for i in top]

    async def remove(self, scope: VectorScope, entry_ids: Sequence[str]) -> None:
        """One HDEL for all ids (Redis deletes the hash when it becomes empty)."""
        if entry_ids:
            await self._client.hdel(self.key(scope), *entry_ids)


def _as_pairs(reply: object) -> list[tuple[str, bytes]]:
    """HGETALL as ``[(field, blob)]`` from a RESP3 map, a parsed dict or a RESP2 array."""
    if isinstance(reply, Mapping):
        items = reply.items()
        return [(to_text(f), bytes(v)) for f, v in items]
    flat = list(cast("Sequence[Any]", reply or []))
    return [(to_text(flat[i]), bytes(flat[i + 1])) for i in range(0, len(flat) - 1, 2)]


async def _any_redis(client: aioredis.Redis) -> bool:
    return True


register_index("flat", FlatIndex, probe=_any_redis, key_patterns=KEYS, priority=-100)
