"""Management operations: invalidate (generation / epoch bump), clear, index metadata."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from ._layout import META_KEY, NAMESPACE_RE, Space, encode_tenant
from ._policy import CACHE_ERRORS
from ._scripts import BUMP_LUA
from .errors import CacheBackendError, CacheConfigError

if TYPE_CHECKING:
    from .cache import LLMCache

__all__ = ["check_namespace", "clear", "index_meta", "invalidate"]


def check_namespace(namespace: str) -> None:
    if not isinstance(namespace, str) or not NAMESPACE_RE.match(namespace):
        raise CacheConfigError(f"namespace must match {NAMESPACE_RE.pattern}, got {namespace!r}")


async def invalidate(cache: LLMCache, namespace: str, tenant: str | None) -> int:
    """Bump the tenant generation or the namespace epoch (run on the home loop)."""
    # Values computed here but not yet stored belong to the old generation too.
    if tenant is None:
        cache.flights.forget(f"{{{namespace}:")
    else:
        cache.flights.forget(Space(namespace, encode_tenant(tenant)).tag)
    try:
        key = (
            f"ck:{{{namespace}}}:epoch"
            if tenant is None
            else (Space(namespace, encode_tenant(tenant)).gen_key)
        )
        return int(await cache.redis.eval(BUMP_LUA, 1, key))
    except CACHE_ERRORS as exc:
        raise CacheBackendError(f"invalidate({namespace!r}) failed: {exc}") from exc


async def clear(cache: LLMCache, namespace: str, tenant: str | None) -> int:
    """SCAN + UNLINK a namespace's (or one tenant's) keys (run on the home loop)."""
    if tenant is None:
        patterns: Sequence[str] = (f"ck:{{{namespace}:*", f"ckv:{{{namespace}:*")
    else:
        patterns = Space(namespace, encode_tenant(tenant)).patterns
    deleted = 0
    try:
        for pattern in patterns:
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


async def index_meta(cache: LLMCache) -> dict[Any, Any]:
    return cast(dict[Any, Any], await cache.redis.hgetall(META_KEY))
