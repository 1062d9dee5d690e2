"""Management operations: invalidate (generation / epoch bump), clear, index metadata.

Each is an ``LLMCache`` method (assigned there) written over the cache's public API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from ._layout import (
    META_KEY,
    NAMESPACE_RE,
    TENANT_TOKEN_RE,
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


def _token(tenant: str | None, tenant_token: str | None) -> str | None:
    if tenant is not None and tenant_token is not None:
        raise CacheConfigError("give tenant or tenant_token, not both")
    if tenant_token is not None and not TENANT_TOKEN_RE.fullmatch(tenant_token):
        raise CacheConfigError(
            f"tenant_token must be an encoded token (_, b<base64>, h<sha-256>), got "
            f"{tenant_token[:80]!r}"
        )
    return encode_tenant(tenant) if tenant is not None else tenant_token


async def invalidate(
    cache: LLMCache,
    namespace: str,
    tenant: str | None = None,
    *,
    tenant_token: str | None = None,
) -> int:
    """Make every worker miss the namespace's current entries at once (no SCAN).

    With ``tenant`` only that tenant's entries; with ``tenant=None`` every tenant's (the
    namespace epoch). ``tenant_token``: one tenant by its encoded token instead (``"_"``
    is the calls without a tenant). Old entries are not deleted: they age out by TTL/LRU.
    Returns the new generation (or epoch).
    """
    check_namespace(namespace)
    return await cache.run(_bump, cache, namespace, _token(tenant, tenant_token))


async def _bump(cache: LLMCache, namespace: str, token: str | None) -> int:
    # Values computed here but not yet stored belong to the old generation too.
    if token is None:
        cache.flights.forget(f"{{{namespace}:")
    else:
        cache.flights.forget(Space(namespace, token).tag)
    try:
        key = epoch_key(namespace) if token is None else Space(namespace, token).gen_key
        return int(await cache.redis.eval(BUMP_LUA, 1, key))
    except CACHE_ERRORS as exc:
        raise CacheBackendError(f"invalidate({namespace!r}) failed: {exc}") from exc


def clear_patterns(
    namespace: str, tenant: str | None, *, tenant_token: str | None = None
) -> tuple[str, ...]:
    """SCAN patterns of a namespace's (or one tenant's) keys: the cache's own, plus every
    registered vector index's (``register_index(key_patterns=...)``) not already covered."""
    from ._index import index_key_patterns

    token = _token(tenant, tenant_token)
    tag_glob = namespace_tag_glob(namespace) if token is None else Space(namespace, token).tag_glob
    own = own_pattern(tag_glob)
    extra = [p for p in index_key_patterns(tag_glob) if not p.startswith(own[:-1])]
    if token is None:
        # The whole namespace: its adaptive evidence goes too (cachekit._adaptive_state).
        extra.append(f"ck:{{{namespace}}}:adapt:*")
    return (own, *extra)


async def clear(
    cache: LLMCache,
    namespace: str,
    tenant: str | None = None,
    *,
    tenant_token: str | None = None,
) -> int:
    """Delete a namespace's keys (one tenant's, or every tenant's) with SCAN + UNLINK.

    ``tenant_token`` names one tenant by its encoded token, as for :func:`invalidate`.
    Returns the number of keys deleted. Works on every primary of a cluster.
    """
    check_namespace(namespace)
    return await cache.run(_unlink, cache, namespace, _token(tenant, tenant_token))


async def _unlink(cache: LLMCache, namespace: str, token: str | None) -> int:
    deleted = 0
    try:
        for pattern in clear_patterns(namespace, None, tenant_token=token):
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
