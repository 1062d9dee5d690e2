"""The global index meta hash: which backend, dimensions, metric and embedder model.

First writer wins; a later start with another embedder fails loudly instead of mixing
vectors of two models. Part of :mod:`cachekit._index`.
"""

from __future__ import annotations

import logging
from typing import Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .._layout import META_KEY
from ..errors import CacheBackendError, CacheConfigError, IndexMismatchError
from ._wire import as_map, to_text

__all__ = ["METRIC", "check_meta"]

log = logging.getLogger("cachekit.index")

#: The only metric cachekit uses; stored in the meta hash so a future change is detected.
METRIC: Final = "cosine"


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
