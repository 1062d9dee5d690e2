"""``cachekit inspect``: the entries a cache holds, read-only.

Nothing here writes, and on one node the reads leave the entries' eviction clocks alone
(run them on ``LLMCache.reader()``). ``explain`` lives in ``_explanation``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._entry_texts import entry_prompts
from ._layout import Space, entry_pattern, epoch_key, parse_entry_key
from ._schema import INFO_FIELDS, PROMPT, decode_row, int_or_none, text
from ._stats_report import tenant_label

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["EntryInfo", "counter_values", "list_entries"]

_PROMPT_AT = INFO_FIELDS.index(PROMPT)


@dataclass(slots=True)
class EntryInfo:
    namespace: str
    tenant_token: str
    entry_id: str
    prompt: str
    model: str | None
    created: float | None
    hits: int
    tokens_in: int | None
    tokens_out: int | None
    size_bytes: int | None
    ttl_s: int | None
    live: bool
    scope_digest: str | None

    @property
    def tenant(self) -> str:
        return tenant_label(self.tenant_token)

    def age_s(self, now: float) -> float | None:
        return None if self.created is None else max(0.0, now - self.created)

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "tenant": self.tenant,
            "tenant_token": self.tenant_token,
            "entry_id": self.entry_id,
            "prompt": self.prompt,
            "model": self.model,
            "created": self.created,
            "age_s": self.age_s(now),
            "hits": self.hits,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "size_bytes": self.size_bytes,
            "ttl_s": self.ttl_s,
            "live": self.live,
            "scope_digest": self.scope_digest,
        }


async def counter_values(
    client: aioredis.Redis, spaces: Sequence[tuple[str, str]]
) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """Current tenant generations and namespace epochs (what "live" is measured against);
    0 for a counter that does not exist (plain GETs: nothing is created)."""
    namespaces = sorted({ns for ns, _ in spaces})
    async with client.pipeline(transaction=False) as pipe:
        for ns, tok in spaces:
            pipe.get(Space(ns, tok).gen_key)
        for ns in namespaces:
            pipe.get(epoch_key(ns))
        replies = await pipe.execute()
    gens = {space: _int(v) for space, v in zip(spaces, replies[: len(spaces)], strict=True)}
    epochs = {ns: _int(v) for ns, v in zip(namespaces, replies[len(spaces) :], strict=True)}
    return gens, epochs


def _field(values: Any, at: int) -> Any:
    """One field of an HMGET reply (None when the read failed: a key of another type)."""
    return values[at] if isinstance(values, list) else None


def _size(entry: Any, body: Any) -> int | None:
    """MEMORY USAGE of the hash plus its body (None: MEMORY is disabled here)."""
    if not isinstance(entry, int):
        return None
    return entry + (body if isinstance(body, int) else 0)


def _int(value: Any) -> int:
    number = int_or_none(value)
    return 0 if number is None else number


async def list_entries(
    client: aioredis.Redis,
    namespace: str | None = None,
    tenant_token: str | None = None,
    *,
    limit: int = 20,
    sort: str = "recent",
    max_scan: int = 10_000,
    include_stale: bool = True,
) -> tuple[list[EntryInfo], int, bool]:
    """Entries of a namespace (or all), sorted; returns (entries, scanned, truncated).

    Reads at most ``max_scan`` entries: sorting needs them all in hand, and a cache can
    hold millions. ``live`` is False for entries an ``invalidate()`` made unreachable
    (they age out by TTL or LRU).
    """
    keys: list[tuple[str, str, str, str]] = []
    truncated = False
    async for raw in client.scan_iter(match=entry_pattern(namespace, tenant_token), count=1000):
        key = text(raw)
        parsed = parse_entry_key(key)
        if parsed is None:
            continue
        if len(keys) >= max_scan:
            truncated = True
            break
        keys.append((key, *parsed))
    entries: list[EntryInfo] = []
    spaces = sorted({(ns, tok) for _, ns, tok, _ in keys})
    gens, epochs = await counter_values(client, spaces) if spaces else ({}, {})
    for start in range(0, len(keys), 500):
        batch = keys[start : start + 500]
        async with client.pipeline(transaction=False) as pipe:
            for key, ns, tok, entry_id in batch:
                pipe.hmget(key, list(INFO_FIELDS))
                pipe.memory_usage(key)
                pipe.memory_usage(Space(ns, tok).body_key(entry_id))
                pipe.ttl(key)
            # MEMORY may be disabled on managed services: keep going without sizes.
            replies = await pipe.execute(raise_on_error=False)
        read = [replies[4 * i : 4 * i + 4] for i in range(len(batch))]
        # The prompts of current entries are at the front of their bodies; an entry of
        # the earlier layout has its own in the hash.
        prompts = await entry_prompts(
            client,
            [(Space(ns, tok), entry_id) for _, ns, tok, entry_id in batch],
            known=[_field(r[0], _PROMPT_AT) for r in read],
        )
        for (_key, ns, tok, entry_id), (fields, size, body_size, ttl), prompt in zip(
            batch, read, prompts, strict=True
        ):
            if isinstance(fields, BaseException) or fields is None or fields[0] is None:
                continue  # expired between SCAN and read
            row = decode_row(INFO_FIELDS, fields)
            live = row.generation == gens.get((ns, tok), 0) and row.epoch == epochs.get(ns, 0)
            if not live and not include_stale:
                continue
            entries.append(
                EntryInfo(
                    namespace=ns,
                    tenant_token=tok,
                    entry_id=entry_id,
                    prompt=prompt or "",
                    model=row.model,
                    created=row.created,
                    hits=row.hits or 0,
                    tokens_in=row.tokens_in,
                    tokens_out=row.tokens_out,
                    size_bytes=_size(size, body_size),
                    ttl_s=ttl if isinstance(ttl, int) and ttl >= 0 else None,
                    live=live,
                    scope_digest=row.scope_digest,
                )
            )
    keyfn = {
        "recent": lambda e: -(e.created or 0.0),
        "oldest": lambda e: e.created or 0.0,
        "hits": lambda e: -e.hits,
        "size": lambda e: -(e.size_bytes or 0),
    }[sort]
    entries.sort(key=keyfn)
    return entries[:limit], len(keys), truncated
