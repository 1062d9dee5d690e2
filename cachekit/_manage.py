"""Management operations: invalidate (generation / epoch bump), clear, index metadata.

Each is an ``LLMCache`` method (assigned there) written over the cache's public API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from ._layout import (
    META_KEY,
    NAMESPACE_RE,
    Space,
    encode_tenant,
    epoch_key,
    namespace_tag_glob,
    own_pattern,
)
from ._policy import CACHE_ERRORS
from ._schema import text
from ._scripts import BUMP_LUA
from .errors import CacheBackendError, CacheConfigError

if TYPE_CHECKING:
    from .cache import LLMCache

__all__ = ["check_namespace", "clear", "clear_patterns", "index_meta", "invalidate"]


def check_namespace(namespace: str) -> None:
    if not isinstance(namespace, str) or not NAMESPACE_RE.match(namespace):
        raise CacheConfigError(f"namespace must match {NAMESPACE_RE.pattern}, got {namespace!r}")


async def invalidate(cache: LLMCache, namespace: str, tenant: str | None = None) -> int:
    """Make every worker miss the namespace's current entries at once (no SCAN).

    With ``tenant`` only that tenant's entries; with ``tenant=None`` every tenant's (the
    namespace epoch). Old entries are not deleted: they age out by TTL/LRU. Returns the
    new generation (or epoch).
    """
    check_namespace(namespace)
    return await cache.run(_bump, cache, namespace, tenant)


async def _bump(cache: LLMCache, namespace: str, tenant: str | None) -> int:
    # Values computed here but not yet stored belong to the old generation too.
    if tenant is None:
        cache.flights.forget(f"{{{namespace}:")
    else:
        cache.flights.forget(Space(namespace, encode_tenant(tenant)).tag)
    try:
        key = (
            epoch_key(namespace)
            if tenant is None
            else Space(namespace, encode_tenant(tenant)).gen_key
        )
        return int(await cache.redis.eval(BUMP_LUA, 1, key))
    except CACHE_ERRORS as exc:
        raise CacheBackendError(f"invalidate({namespace!r}) failed: {exc}") from exc


def clear_patterns(namespace: str, tenant: str | None) -> tuple[str, ...]:
    """SCAN patterns of a namespace's (or one tenant's) keys: the cache's own, plus every
    registered vector index's (``register_index(key_patterns=...)``) not already covered."""
    from ._index import index_key_patterns

    if tenant is None:
        tag_glob = namespace_tag_glob(namespace)
    else:
        tag_glob = Space(namespace, encode_tenant(tenant)).tag_glob
    own = own_pattern(tag_glob)
    extra = [p for p in index_key_patterns(tag_glob) if not p.startswith(own[:-1])]
    return (own, *extra)


async def clear(cache: LLMCache, namespace: str, tenant: str | None = None) -> int:
    """Delete a namespace's keys (one tenant's, or every tenant's) with SCAN + UNLINK.

    Returns the number of keys deleted. Works on every primary of a cluster.
    """
    check_namespace(namespace)
    return await cache.run(_unlink, cache, namespace, tenant)


async def _unlink(cache: LLMCache, namespace: str, tenant: str | None) -> int:
    deleted = 0
    try:
        for pattern in clear_patterns(namespace, tenant):
            batch: list[Any] = []
            async for key in cache.redis.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    deleted += int(await cache.redis.unlink(*batch))
                    batch = []
            if batch:
                deleted += int(await cache.redis.unlink(*batch))
    except CACHE_ERRORS as exc:
        raise CacheBackendError(f"clear({namespace!r}) failed: {exc}") from exc
    return deleted


async def index_meta(cache: LLMCache) -> dict[str, str]:
    """The global vector-index metadata (backend, dims, model), if any."""
    raw = await cache.run(_read_meta, cache)
    return {text(k): text(v) for k, v in raw.items()}


async def _read_meta(cache: LLMCache) -> dict[Any, Any]:
    return cast(dict[Any, Any], await cache.redis.hgetall(META_KEY))
