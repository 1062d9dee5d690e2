"""What the overview page reads: the stats report in scope, key memory, breakers, Redis."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .._layout import DOC_PREFIX, Space, own_pattern, parse_tag
from .._stats_report import StatsReport, StatsRow, merge_rows
from ._scope import ViewScope

if TYPE_CHECKING:
    from ..cache import LLMCache

__all__ = ["KeyMemory", "Overview", "key_memory", "read_overview"]

#: Keys measured per (namespace, tenant) with MEMORY USAGE; past it the figure is a floor.
MAX_KEYS_MEASURED: Final = 5000
#: Up to this many spaces are measured one SCAN each (narrow patterns); more share one.
_FEW_SPACES: Final = 4


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
    if measure_memory and rows:
        spaces = [(r.namespace, r.tenant_token) for r in rows]
        out.memory = await cache.run(memory_of, cache, spaces)
    if scope.tenant_token is None:
        # Server-wide figures say nothing of one tenant; a tenant-pinned view omits them.
        out.redis_memory = await cache.run(_info_memory, cache)
    return out


async def memory_of(
    cache: LLMCache, spaces: list[tuple[str, str]]
) -> dict[tuple[str, str], KeyMemory]:
    """:func:`key_memory` of each space; many spaces share one SCAN of the keyspace
    (a SCAN with MATCH still walks every key, so one per space would cost spaces x keys)."""
    if len(spaces) <= _FEW_SPACES:
        return {s: await key_memory(cache, Space(*s)) for s in spaces}
    wanted = set(spaces)
    found: dict[tuple[str, str], list[Any]] = {s: [] for s in spaces}
    seen, truncated = 0, False
    for pattern in ("ck:{*", f"{DOC_PREFIX}{{*"):
        async for raw in cache.redis.scan_iter(match=pattern + "}:*", count=1000):
            name = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            parsed = parse_tag(
                "ck:" + name[len(DOC_PREFIX) :] if name.startswith(DOC_PREFIX) else name
            )
            if parsed is None or (parsed[0], parsed[1]) not in wanted:
                continue
            seen += 1
            if seen > MAX_KEYS_MEASURED * 4:
                truncated = True
                break
            found[(parsed[0], parsed[1])].append(raw)
    return {s: await _measure(cache, keys, truncated) for s, keys in found.items()}


async def key_memory(cache: LLMCache, space: Space) -> KeyMemory:
    """Bytes held by the space's keys (entry hashes and bodies, exact aliases, vectors,
    stats, search documents), by MEMORY USAGE over at most :data:`MAX_KEYS_MEASURED` keys (SCAN).
    A search backend's index structures are shared by every space and not counted."""

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
    return await _measure(cache, keys, truncated)


async def _measure(cache: LLMCache, keys: list[Any], truncated: bool) -> KeyMemory:
    """MEMORY USAGE of ``keys`` (all of one space: one hash slot), summed."""
    from redis.exceptions import ResponseError

    client = cache.redis
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
