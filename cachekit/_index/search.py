"""RediSearch HNSW index: one global index, a TAG pre-filter per scope.

For servers with the query engine (Redis Stack, Redis 8 with RediSearch, Valkey Search,
managed services) but without vector sets. Each entry's vector is a small hash document
``ckv:{ns:T}:<gen>:<entry id>`` (same hash slot as its entry, so it is written in the
caller's pipeline) with fields ``vec`` (FLOAT32 blob), ``scope`` (TAG: a hex digest of
tenant+namespace+generation+scope) and ``eid`` (entry id, stored, not indexed). The
document has the entry's own TTL and leaves the index when it expires.

Score scale: with ``DISTANCE_METRIC COSINE`` the KNN score is cosine *distance*
``1 - cos`` in [0, 2]; :meth:`SearchIndex.search` returns ``1 - dist``.

Cluster note: open-source RediSearch indexes only the keys of its own shard; a Redis
Cluster needs the coordinator (Redis Enterprise / Redis Cloud, or Redis 8 with the
cluster-aware query engine). Without it use the ``vectorset`` or ``flat`` backend there.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError, ResponseError

from .._layout import DOC_PREFIX, VectorScope
from ..errors import CacheBackendError, CacheConfigError, IndexMismatchError
from ._meta import check_meta
from ._options import IndexOptions
from ._registry import TAG, register_index
from ._wire import any_node, as_map, run, to_blob, to_float, to_text
from .base import Candidate, IndexBase, Vector, clip_similarity

__all__ = ["DOC_PREFIX", "SearchIndex"]

log = logging.getLogger("cachekit.index")

#: What ``clear()`` deletes for this index (see ``register_index``); the prefix the index
#: watches is ``_layout.DOC_PREFIX`` (see ``VectorScope.doc_key``).
KEYS: Final = (f"{DOC_PREFIX}{TAG}:*",)
_HNSW_M: Final = 16
_HNSW_EF_CONSTRUCTION: Final = 200
_QUERY: Final = "(@scope:{$S})=>[KNN $K @vec $B EF_RUNTIME $EF AS dist]"


class SearchIndex(IndexBase):
    """FT.CREATE / FT.SEARCH over per-entry hash documents."""

    name: str = "search"

    def __init__(self, client: aioredis.Redis, options: IndexOptions | None = None) -> None:
        super().__init__(client, options)
        self.index_name = self.options.index_name

    async def ensure(self, dims: int, model: str) -> None:
        """Validate the meta hash, then create the FT index or check its DIM and metric."""
        await check_meta(self._client, self.name, dims, model)
        try:
            info = await self._info()
            if info is None:
                try:
                    await self._create(dims)
                    log.info("created search index %r (%d-d, cosine)", self.index_name, dims)
                    return
                except ResponseError as exc:
                    if "already exists" not in str(exc).lower():
                        raise
                    info = await self._info()  # lost a creation race: validate the winner's
                    if info is None:
                        raise
        except ResponseError as exc:
            if "unknown command" in str(exc).lower():
                raise CacheConfigError(
                    "the 'search' index needs the Redis query engine (RediSearch: Redis "
                    "Stack, Redis 8 with modules, Valkey Search); use index='vectorset' "
                    "(Redis >= 8) or index='flat' (any Redis)"
                ) from exc
            raise CacheBackendError(f"search index {self.index_name!r}: {exc}") from exc
        except RedisError as exc:
            raise CacheBackendError(f"search index {self.index_name!r}: {exc}") from exc
        self._validate(info, dims)

    async def _info(self) -> dict[str, Any] | None:
        """FT.INFO as a dict, or None when the index does not exist."""
        try:
            return as_map(await run(self._client, "FT.INFO", self.index_name))
        except ResponseError as exc:
            text = str(exc).lower()
            if "unknown index" in text or "no such index" in text or "not found" in text:
                return None
            raise

    async def _create(self, dims: int) -> None:
        await run(
            self._client,
            "FT.CREATE", self.index_name,
            "ON", "HASH",
            "PREFIX", 1, DOC_PREFIX,
            "SCHEMA",
            "vec", "VECTOR", "HNSW", 10,
            "TYPE", "FLOAT32",
            "DIM", dims,
            "DISTANCE_METRIC", "COSINE",
            "M", _HNSW_M,
            "EF_CONSTRUCTION", _HNSW_EF_CONSTRUCTION,
            "scope", "TAG",
        )  # fmt: skip

    def _validate(self, info: Mapping[str, Any], dims: int) -> None:
        """Check the existing index's ``vec`` field; FT.INFO lists attributes as maps/arrays."""
        vec: dict[str, str] | None = None
        for raw in cast("Sequence[Any]", info.get("attributes") or []):
            attr = {k.lower(): to_text(v) for k, v in as_map(raw).items()}
            if attr.get("attribute", attr.get("identifier")) == "vec":
                vec = attr
                break
        if vec is None or vec.get("type", "").upper() != "VECTOR":
            raise IndexMismatchError(
                f"search index {self.index_name!r} exists but has no VECTOR field 'vec'; "
                f"drop it (FT.DROPINDEX {self.index_name}) or pick another index_name"
            )
        old_dims = vec.get("dim", "?")
        old_metric = vec.get("distance_metric", "?").upper()
        if old_dims != str(dims) or old_metric != "COSINE":
            raise IndexMismatchError(
                f"search index {self.index_name!r} was built for {old_dims}-d vectors with "
                f"metric {old_metric} but the embedder gives {dims}-d vectors (metric COSINE); "
                f"run cache.clear() / FT.DROPINDEX {self.index_name} or pick another index_name"
            )

    def queue_add(
        self, pipe: Pipeline, scope: VectorScope, entry_id: str, blob: bytes, ttl: int | None
    ) -> None:
        """Queue HSET of the document plus its own TTL (PERSIST when re-added forever)."""
        key = scope.doc_key(entry_id)
        pipe.execute_command("HSET", key, "vec", blob, "scope", scope.tag_value, "eid", entry_id)
        if ttl is None:
            pipe.execute_command("PERSIST", key)
        else:
            pipe.execute_command("EXPIRE", key, max(1, int(ttl)))

    async def knn(self, scope: VectorScope, vector: Vector, k: int) -> list[Candidate]:
        """Hybrid KNN with the scope TAG as pre-filter; EF_RUNTIME set for recall."""
        reply = await run(
            self._client,
            "FT.SEARCH", self.index_name, _QUERY,
            "PARAMS", 8,
            "S", scope.tag_value,
            "K", k,
            "B", to_blob(vector),
            "EF", max(self.options.ef_runtime, k),
            "SORTBY", "dist",
            "RETURN", 2, "eid", "dist",
            "LIMIT", 0, k,
            "DIALECT", 2,
        )  # fmt: skip
        return _parse_search(reply, scope)

    async def remove(self, scope: VectorScope, entry_ids: Sequence[str]) -> None:
        """One multi-key DEL: every document of a scope shares its hash slot."""
        if entry_ids:
            await self._client.delete(*(scope.doc_key(eid) for eid in entry_ids))


def _parse_search(reply: object, scope: VectorScope) -> list[Candidate]:
    """RESP3 ``{results: [{id, extra_attributes}]}`` or RESP2 ``[total, id, [f, v], ...]``."""
    rows: list[tuple[str, dict[str, Any]]] = []
    if isinstance(reply, Mapping):
        for raw in cast("Sequence[Any]", as_map(reply).get("results") or []):
            row = as_map(raw)
            rows.append((to_text(row.get("id", "")), as_map(row.get("extra_attributes") or {})))
    else:
        items = list(cast("Sequence[Any]", reply or []))
        for i in range(1, len(items) - 1, 2):
            rows.append((to_text(items[i]), as_map(items[i + 1])))
    prefix = scope.doc_key("")
    out: list[Candidate] = []
    for doc_id, fields in rows:
        if "dist" not in fields:
            continue
        eid = to_text(fields["eid"]) if "eid" in fields else doc_id.removeprefix(prefix)
        out.append(Candidate(eid, clip_similarity(1.0 - to_float(fields["dist"]))))
    out.sort(key=lambda c: c.similarity, reverse=True)
    return out


async def _has_query_engine(client: aioredis.Redis) -> bool:
    try:
        await run(client, "FT._LIST", **any_node(client))
    except ResponseError:
        return False
    return True


register_index("search", SearchIndex, probe=_has_query_engine, key_patterns=KEYS, priority=200)
