"""Redis >= 8 vector sets: one set per (tenant, namespace, generation, scope).

Why one set per scope: VSIM then searches exactly the scope with no filter, so recall does
not depend on how many other scopes exist, and a whole scope dies with its key (TTL,
``invalidate()`` moving to a new generation, ``clear()``).

Score scale: VSIM ``WITHSCORES`` returns ``(1 + cos) / 2`` in [0, 1] (1 identical, 0
opposite); :meth:`VectorSetIndex.search` converts it back to cosine with ``2*s - 1``.
Quantization (``int8`` default) is chosen per set at its first VADD; a later VADD asking
for another one fails ("asked quantization mismatch"), so changing the option only takes
effect for scopes created afterwards (old scopes fail-open until they expire).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError, ResponseError

from .._layout import VectorScope
from ..errors import CacheBackendError, CacheConfigError
from ._meta import check_meta
from ._options import QUANTIZATIONS
from ._registry import TAG, register_index
from ._wire import has_command, queue_key_ttl, run, to_blob, to_float, to_text
from .base import Candidate, IndexBase, Vector, clip_similarity

__all__ = ["QUANTIZATIONS", "VectorSetIndex"]

log = logging.getLogger("cachekit.index")

#: Key kind of a scope's vector set (``VectorScope.key("vs")``).
KEY_KIND: Final = "vs"
#: What ``clear()`` deletes for this index (see ``register_index``).
KEYS: Final = (f"ck:{TAG}:{KEY_KIND}:*",)


class VectorSetIndex(IndexBase):
    """VADD / VSIM / VREM on one vector set per scope."""

    name: str = "vectorset"

    @property
    def quantization(self) -> str:
        """Chosen per set at its first VADD (see the module docstring)."""
        return self.options.quantization

    async def ensure(self, dims: int, model: str) -> None:
        """Fail at start-up, not on every store, when the server has no vector sets."""
        try:
            available = await has_command(self._client, "vadd")
        except RedisError as exc:
            raise CacheBackendError(f"cannot probe the Redis server: {exc}") from exc
        if not available:
            raise CacheConfigError(
                "the 'vectorset' index needs Redis >= 8 (VADD/VSIM); use index='search' "
                "(RediSearch / Redis Stack) or index='flat' (any Redis)"
            )
        await check_meta(self._client, self.name, dims, model)

    def queue_add(
        self, pipe: Pipeline, scope: VectorScope, entry_id: str, blob: bytes, ttl: int | None
    ) -> None:
        """Queue VADD plus the NX/GT expiry pair (vector sets exist only since Redis 8)."""
        key = scope.key(KEY_KIND)
        token = QUANTIZATIONS[self.options.quantization]
        # CAS: the neighbour search runs on a Redis thread (when not inside a MULTI).
        pipe.execute_command("VADD", key, "FP32", blob, entry_id, "CAS", token)
        queue_key_ttl(pipe, key, ttl, has_expire_options=True)

    async def knn(self, scope: VectorScope, vector: Vector, k: int) -> list[Candidate]:
        """VSIM with an explicit EF: the server's default explores too little for recall."""
        key = scope.key(KEY_KIND)
        try:
            reply = await run(
                self._client,
                "VSIM",
                key,
                "FP32",
                to_blob(vector),
                "WITHSCORES",
                "COUNT",
                k,
                "EF",
                max(self.options.ef_runtime, k),
            )
        except ResponseError as exc:
            if "dimension" not in str(exc).lower() and "wrongtype" not in str(exc).lower():
                raise
            # Not a set of this embedder's vectors (written by something else, or left
            # by an older embedder): it can never match, and every VADD into it would
            # fail too. Drop it; the scope rebuilds from the next stores.
            log.warning("cachekit: dropping %s: %s", key, exc)
            await run(self._client, "UNLINK", key)
            return []
        return _parse_vsim(reply)

    async def remove(self, scope: VectorScope, entry_ids: Sequence[str]) -> None:
        """VREM takes one element per call; pipeline them into one round trip."""
        if not entry_ids:
            return
        key = scope.key(KEY_KIND)
        pipe = self._client.pipeline(transaction=False)
        for entry_id in entry_ids:
            pipe.execute_command("VREM", key, entry_id)
        await pipe.execute()


def _parse_vsim(reply: object) -> list[Candidate]:
    """RESP3 ``{element: score}`` or RESP2 ``[element, score, ...]``; ``[]`` for no key."""
    if isinstance(reply, Mapping):
        pairs = [(to_text(e), to_float(s)) for e, s in reply.items()]
    else:
        items = list(cast("Sequence[Any]", reply or []))
        pairs = [(to_text(items[i]), to_float(items[i + 1])) for i in range(0, len(items) - 1, 2)]
    out = [Candidate(eid, clip_similarity(2.0 * score - 1.0)) for eid, score in pairs]
    out.sort(key=lambda c: c.similarity, reverse=True)
    return out


async def _has_vector_sets(client: aioredis.Redis) -> bool:
    return await has_command(client, "vadd")


register_index("vectorset", VectorSetIndex, probe=_has_vector_sets, key_patterns=KEYS, priority=300)
