"""Production near misses for ``cachekit tune``: prompts that missed just under the threshold.

Written (sampled, opt-in: ``near_miss_sample=``) to a capped stream per namespace+tenant
with the nearest cached prompt and its similarity. Part of :mod:`cachekit._tune`.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _schema as F
from ._layout import GLOBAL_TENANT, HIT_SAMPLE, NEAR_MISS, encode_tenant, key_pattern, parse_tag

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["NearMiss", "read_near_misses"]


@dataclass(frozen=True, slots=True)
class NearMiss:
    namespace: str
    tenant_token: str
    id: str
    prompt: str
    nearest: str
    similarity: float
    threshold: float
    model: str
    #: The hit verifier's reason when it rejected the nearest entry ("" below threshold).
    reason: str = ""
    #: ``near``, ``rejected`` or ``hit`` (a sampled semantic hit, ``review_sample=``).
    kind: str = "near"
    #: The nearest (or served) entry's id; "" in records written before it was kept.
    entry_id: str = ""


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


async def read_near_misses(
    client: aioredis.Redis,
    namespace: str,
    tenant: str | None = None,
    *,
    tenant_token: str | None = None,
    limit: int = 2000,
    kinds: Collection[str] = ("near", "rejected"),
) -> list[NearMiss]:
    """The newest near misses of a namespace (one tenant's, or every tenant's).

    ``kinds``: which records (``near``, ``rejected``, ``hit``); ``tune`` reads the misses,
    the console's review queue all three.
    """
    if tenant is not None:
        tenant_token = encode_tenant(tenant)
    # Sampled hits have their own stream; near misses and rejections share one.
    suffixes = [NEAR_MISS] if any(k != "hit" for k in kinds) else []
    if "hit" in kinds:
        suffixes.append(HIT_SAMPLE)
    keys: list[Any] = []
    for suffix in suffixes:
        if tenant_token is not None:
            keys.append(key_pattern(suffix, namespace, tenant_token))
        else:
            pattern = key_pattern(suffix, namespace)
            keys.extend([k async for k in client.scan_iter(match=pattern, count=1000)])
    out: list[NearMiss] = []
    for key in keys:
        parsed = parse_tag(_text(key))
        token = (parsed[1] if parsed else "") or GLOBAL_TENANT
        # Page back through the stream until ``limit`` records of the asked kinds are
        # found: the newest ``limit`` entries may all be of another kind (a review queue
        # of rejections behind a burst of near misses). The stream is capped, so this ends.
        found = 0
        newest: str = "+"
        chunk = max(limit, 200)
        while found < limit:
            entries = await client.xrevrange(key, max=newest, count=chunk) or []
            for entry_id, fields in entries:
                record = _record(namespace, token, entry_id, fields, kinds)
                if record is not None:
                    out.append(record)
                    found += 1
            if len(entries) < chunk:
                break
            newest = "(" + _text(entries[-1][0])
    out.sort(key=lambda n: n.id, reverse=True)
    return out[:limit]


def _record(
    namespace: str, token: str, entry_id: Any, fields: Any, kinds: Collection[str]
) -> NearMiss | None:
    """One stream entry as a record, or None if it is of another kind or unreadable."""
    f = {_text(k): _text(v) for k, v in (fields or {}).items()}
    try:
        sim = float(f.get(F.NM_SIMILARITY, "nan"))
        thr = float(f.get(F.NM_THRESHOLD, "nan"))
    except ValueError:
        return None
    if math.isnan(sim):
        return None
    reason = f.get(F.NM_REASON, "")
    kind = f.get(F.NM_KIND) or ("rejected" if reason else "near")
    if kind not in kinds:
        return None
    return NearMiss(
        namespace=namespace,
        tenant_token=token,
        id=_text(entry_id),
        prompt=f.get(F.NM_PROMPT, ""),
        nearest=f.get(F.NM_NEAREST, ""),
        similarity=sim,
        threshold=thr,
        model=f.get(F.NM_MODEL, ""),
        reason=reason,
        kind=kind,
        entry_id=f.get(F.NM_ENTRY, ""),
    )
