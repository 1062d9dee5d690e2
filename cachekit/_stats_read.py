"""Reading the stats counters of every worker from Redis (SCAN, cluster-safe) into a report.

Part of :mod:`cachekit.stats` (import from there).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from ._layout import NAMESPACE_RE, STATS, Space, encode_tenant, key_pattern
from ._outcomes import OutcomeCounter, _is_cluster
from ._pricing import Pricing
from ._stats_report import SkippedKey, StatsReport, _text, merge_rows, parse_stats_hash
from .errors import CacheConfigError

if TYPE_CHECKING:
    from .cache import LLMCache

__all__ = ["stats", "stats_pattern"]

_STATS_KEY_RE: Final = re.compile(r"^ck:\{(?P<ns>[^:{}]+):(?P<tok>[^:{}]+)\}:stats$")


def stats_pattern(namespace: str | None, tenant_token: str | None) -> str:
    """SCAN pattern of the stats hashes to read (namespaces and tokens hold no glob chars)."""
    return key_pattern(STATS, namespace, tenant_token)


async def stats(
    cache: LLMCache,
    namespace: str | None = None,
    tenant: str | None = None,
    *,
    tenant_token: str | None = None,
    pricing: Pricing | Mapping[str, Any] | str | os.PathLike[str] | None = None,
) -> StatsReport:
    """Hit, miss and savings counters of every worker, per (namespace, tenant), with totals.

    ``namespace``/``tenant`` narrow the report (``tenant`` is the id as your code passes
    it; ``tenant_token`` the encoded form, e.g. ``"_"`` for calls without a tenant).
    Without both it SCANs ``ck:{*}:stats`` (every primary on a cluster), which costs time
    proportional to the key count: run it from a dashboard job, not per request.
    ``pricing``: a :class:`Pricing` or what ``Pricing.load`` takes (default: genai-prices
    when installed, else the bundled table); saved tokens are priced at the report's time
    and each row's ``priced_by`` names the source of each model.
    """
    if namespace is not None and not NAMESPACE_RE.match(namespace):
        raise CacheConfigError(f"namespace must match {NAMESPACE_RE.pattern}, got {namespace!r}")
    if tenant is not None:
        tenant_token = encode_tenant(tenant)
    table = Pricing.load(pricing)
    for observer in cache.observers:
        if isinstance(observer, OutcomeCounter):
            await observer.flush()
    raw_rows, skipped = await cache.run(_read_stats, cache, namespace, tenant_token)
    now = time.time()
    rows = []
    for ns, tok, raw in raw_rows:
        malformed: list[str] = []
        rows.append(parse_stats_hash(ns, tok, raw, table, now, malformed))
        if malformed:
            key = Space(ns, tok).stats_key
            skipped.append(SkippedKey(key, "malformed fields not counted: " + ", ".join(malformed)))
    rows.sort(key=lambda r: (r.namespace, r.tenant_token))
    skipped.sort(key=lambda k: k.key)
    if skipped:
        cache.warn(
            "stats-skipped",
            "cachekit: stats skipped %d key(s) it did not write as expected: %s",
            len(skipped),
            ", ".join(k.key for k in skipped[:10]),
        )
    return StatsReport(
        rows=rows,
        totals=merge_rows(rows),
        generated_at=now,
        pricing_as_of=table.as_of,
        skipped_keys=skipped,
        pricing_source=table.source,
    )


async def _read_stats(
    cache: LLMCache, namespace: str | None, tenant_token: str | None
) -> tuple[list[tuple[str, str, dict[Any, Any]]], list[SkippedKey]]:
    """The stats hashes to count, and the keys under the pattern that are not ones.

    Every reply is taken as it comes (``raise_on_error=False``, ``return_exceptions``):
    a WRONGTYPE on one key must not lose the others.
    """
    from redis.exceptions import ResponseError

    client = cache.redis
    if namespace is not None and tenant_token is not None:
        keys: list[Any] = [stats_pattern(namespace, tenant_token)]
    else:
        # redis-py's scan_iter visits every primary of a cluster client.
        pattern = stats_pattern(namespace, tenant_token)
        keys = [k async for k in client.scan_iter(match=pattern, count=1000)]
    replies: list[Any] = []
    if _is_cluster(cache):
        # One command per key, never a cross-slot pipeline: when such a pipeline meets a
        # dead node, redis-py closes the *whole* cluster client, failing every other
        # caller's command (a stats read during a failover would take the cache down).
        limit = asyncio.Semaphore(32)

        async def one(key: Any) -> Any:
            async with limit:
                return await client.hgetall(key)

        replies = list(await asyncio.gather(*(one(k) for k in keys), return_exceptions=True))
    else:
        for start in range(0, len(keys), 500):
            async with client.pipeline(transaction=False) as pipe:
                for key in keys[start : start + 500]:
                    pipe.hgetall(key)
                replies.extend(await pipe.execute(raise_on_error=False))
    out: list[tuple[str, str, dict[Any, Any]]] = []
    skipped: list[SkippedKey] = []
    for key, raw in zip(keys, replies, strict=True):
        name = _text(key)
        if isinstance(raw, ResponseError) and "WRONGTYPE" in str(raw):
            kind = _text(await client.type(key))
            skipped.append(SkippedKey(name, f"a {kind}, not a hash: not cachekit's"))
            continue
        if isinstance(raw, BaseException):
            raise raw  # a real failure (connection, cluster): the caller reports it
        match = _STATS_KEY_RE.match(name)
        if match is None:
            skipped.append(SkippedKey(name, "not a cachekit stats key name"))
            continue
        if not raw:
            continue  # expired or deleted since the SCAN
        out.append((match["ns"], match["tok"], raw))
    return out, skipped
