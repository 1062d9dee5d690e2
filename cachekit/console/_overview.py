"""What the overview page reads: the stats report in scope, key memory, breakers, Redis."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .._layout import Space, own_pattern
from .._stats_report import StatsReport, StatsRow, merge_rows
from ._scope import ViewScope

if TYPE_CHECKING:
    from ..cache import LLMCache

__all__ = ["KeyMemory", "Overview", "key_memory", "read_overview"]

#: Keys measured per (namespace, tenant) with MEMORY USAGE; past it the figure is a floor.
MAX_KEYS_MEASURED: Final = 5000


@dataclass(frozen=True, slots=True)
class KeyMemory:
    keys: int
    bytes: int
    #: More keys exist than were measured: ``bytes`` is a lower bound.
    truncated: bool
    #: MEMORY USAGE refused (some managed Redis services disable it).
    unavailable: bool = False


@dataclass(slots=True)
class Overview:
    report: StatsReport
    rows: list[StatsRow]
    totals: StatsRow
    memory: dict[tuple[str, str], KeyMemory] = field(default_factory=dict)
    breakers: list[tuple[str, str]] = field(default_factory=list)
    redis_memory: dict[str, Any] = field(default_factory=dict)


async def read_overview(cache: LLMCache, scope: ViewScope, *, measure_memory: bool) -> Overview:
    """The stats rows in ``scope`` (a pinned tenant never sees another's row), with totals."""
    report = await cache.stats(scope.namespace, tenant_token=scope.tenant_token)
    rows = [r for r in report.rows if scope.allows(r.namespace, r.tenant_token)]
    out = Overview(report, rows, merge_rows(rows))
    out.breakers = [(name, b.state) for name, b in cache.breakers.named()]
    if measure_memory:
        for row in rows:
            space = Space(row.namespace, row.tenant_token)
            out.memory[(row.namespace, row.tenant_token)] = await cache.run(
                key_memory, cache, space
            )
    if scope.tenant_token is None:
        # Server-wide figures say nothing of one tenant; a tenant-pinned view omits them.
        out.redis_memory = await cache.run(_info_memory, cache)
    return out


async def key_memory(cache: LLMCache, space: Space) -> KeyMemory:
    """Bytes held by the space's keys (entries, exact keys, vectors, stats, search
    documents), by MEMORY USAGE over at most :data:`MAX_KEYS_MEASURED` keys (SCAN).
    A search backend's index structures are shared by every space and not counted."""
    from redis.exceptions import ResponseError

    client = cache.redis
    keys: list[Any] = []
    truncated = False
    from .._index import index_key_patterns

    own = own_pattern(space.tag_glob)
    extra = [p for p in index_key_patterns(space.tag_glob) if not p.startswith(own[:-1])]
    patterns = [own, *extra]
    for pattern in patterns:  # the search backend's documents live outside ck:{tag}:*
        async for key in client.scan_iter(match=pattern, count=1000):
            if len(keys) >= MAX_KEYS_MEASURED:
                truncated = True
                break
            keys.append(key)
    total = 0
    for start in range(0, len(keys), 200):
        # One slot (the space's hash tag): a plain pipeline, on a cluster as well.
        async with client.pipeline(transaction=False) as pipe:
            for key in keys[start : start + 200]:
                pipe.memory_usage(key, samples=0)
            replies = await pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, ResponseError):
                return KeyMemory(len(keys), 0, truncated, unavailable=True)
            if isinstance(reply, int):
                total += reply
    return KeyMemory(len(keys), total, truncated)


async def _info_memory(cache: LLMCache) -> dict[str, Any]:
    from redis.exceptions import RedisError

    try:
        info = await cache.redis.info("memory")
    except RedisError:
        return {}
    if not isinstance(info, dict):
        return {}
    if "used_memory" not in info and info:
        # A cluster client answers per node: {node: info}.
        nodes = [v for v in info.values() if isinstance(v, dict)]
        return {
            "used_memory": sum(int(n.get("used_memory", 0)) for n in nodes),
            "maxmemory": sum(int(n.get("maxmemory", 0)) for n in nodes),
            "maxmemory_policy": next((n.get("maxmemory_policy") for n in nodes), None),
            "nodes": len(nodes),
        }
    return {k: info.get(k) for k in ("used_memory", "maxmemory", "maxmemory_policy")}
