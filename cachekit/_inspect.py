"""Read-only views of what a cache holds, for ``cachekit inspect`` and ``cachekit explain``.

Nothing here writes: no hit is counted, no pointer is cleaned up, no index is created.
The lookup script's logic is replayed with plain reads so ``explain`` says what a real
lookup *would* do.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ._layout import META_KEY, Space, encode_tenant
from ._manifest import KeyManifest
from .stats import tenant_label

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from .embedders import Embedder

__all__ = ["EntryInfo", "Explanation", "explain", "list_entries"]

_ENTRY_FIELDS: Final = ("p", "m", "c", "h", "ti", "to", "g", "ne", "s")
_MAX_SCOPES_SHOWN: Final = 8


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(_text(value)) if value is not None else default
    except ValueError:
        return default


def _float(value: Any) -> float | None:
    try:
        return float(_text(value)) if value is not None else None
    except ValueError:
        return None


def _parse_entry_key(key: str) -> tuple[str, str, str] | None:
    """``ck:{ns:T}:e:<id>`` -> (namespace, token, entry id)."""
    if not key.startswith("ck:{") or "}:e:" not in key:
        return None
    tag, _, entry_id = key[4:].partition("}:e:")
    namespace, sep, token = tag.partition(":")
    if not sep or not entry_id:
        return None
    return namespace, token, entry_id


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


async def _generations(
    client: aioredis.Redis, spaces: Sequence[tuple[str, str]]
) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """Current tenant generations and namespace epochs (what "live" is measured against)."""
    namespaces = sorted({ns for ns, _ in spaces})
    async with client.pipeline(transaction=False) as pipe:
        for ns, tok in spaces:
            pipe.get(Space(ns, tok).gen_key)
        for ns in namespaces:
            pipe.get(f"ck:{{{ns}}}:epoch")
        replies = await pipe.execute()
    gens = {space: _int(v) for space, v in zip(spaces, replies[: len(spaces)], strict=True)}
    epochs = {ns: _int(v) for ns, v in zip(namespaces, replies[len(spaces) :], strict=True)}
    return gens, epochs


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
    pattern = f"ck:{{{namespace or '*'}:{tenant_token or '*'}}}:e:*"
    keys: list[tuple[str, str, str, str]] = []
    truncated = False
    async for raw in client.scan_iter(match=pattern, count=1000):
        key = _text(raw)
        parsed = _parse_entry_key(key)
        if parsed is None:
            continue
        if len(keys) >= max_scan:
            truncated = True
            break
        keys.append((key, *parsed))
    entries: list[EntryInfo] = []
    spaces = sorted({(ns, tok) for _, ns, tok, _ in keys})
    gens, epochs = await _generations(client, spaces) if spaces else ({}, {})
    for start in range(0, len(keys), 500):
        batch = keys[start : start + 500]
        async with client.pipeline(transaction=False) as pipe:
            for key, *_ in batch:
                pipe.hmget(key, list(_ENTRY_FIELDS))
                pipe.memory_usage(key)
                pipe.ttl(key)
            # MEMORY may be disabled on managed services: keep going without sizes.
            replies = await pipe.execute(raise_on_error=False)
        for i, (_key, ns, tok, entry_id) in enumerate(batch):
            fields, size, ttl = replies[3 * i : 3 * i + 3]
            if isinstance(fields, BaseException) or fields is None or fields[0] is None:
                continue  # expired between SCAN and read
            p, m, c, h, ti, to, g, ne, s = fields
            live = _int(g, -1) == gens.get((ns, tok), 0) and _int(ne, -1) == epochs.get(ns, 0)
            if not live and not include_stale:
                continue
            entries.append(
                EntryInfo(
                    namespace=ns,
                    tenant_token=tok,
                    entry_id=entry_id,
                    prompt=_text(p),
                    model=_text(m) if m is not None else None,
                    created=_float(c),
                    hits=_int(h),
                    tokens_in=_int(ti) if ti is not None else None,
                    tokens_out=_int(to) if to is not None else None,
                    size_bytes=size if isinstance(size, int) else None,
                    ttl_s=ttl if isinstance(ttl, int) and ttl >= 0 else None,
                    live=live,
                    scope_digest=_text(s) if s is not None else None,
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


# ------------------------------------------------------------------------- explain


@dataclass(slots=True)
class Candidate:
    entry_id: str
    similarity: float
    prompt: str | None
    age_s: float | None
    hits: int
    live: bool
    accepted: bool


@dataclass(slots=True)
class ScopeSummary:
    scope_digest: str
    entries: int
    models: list[str]
    sample_prompt: str


@dataclass(slots=True)
class Explanation:
    manifest: KeyManifest
    function_id: str
    tenant_token: str
    epoch: int
    generation: int
    exact_key: str
    exact_status: str  # hit | absent | dangling | stale-epoch | other-entry
    exact_entry: dict[str, Any] | None
    semantic_status: str  # hit | below-threshold | empty-scope | skipped: <why>
    threshold: float | None
    embedder: str | None
    index_backend: str | None
    candidates: list[Candidate] = field(default_factory=list)
    scope_entries: int = 0
    other_scopes: list[ScopeSummary] = field(default_factory=list)
    other_scope_entries: int = 0

    @property
    def verdict(self) -> str:
        if self.exact_status == "hit":
            return "HIT (exact)"
        accepted = [c for c in self.candidates if c.accepted]
        if accepted:
            c = accepted[0]
            return (
                f"HIT (semantic: similarity {c.similarity:.4f} >= threshold {self.threshold:.4f})"
            )
        if self.candidates and self.threshold is not None:
            best = self.candidates[0]
            why = f"nearest similarity {best.similarity:.4f} < threshold {self.threshold:.4f}"
            if best.similarity >= self.threshold and not best.live:
                why = "the nearest entry was invalidated (older generation/epoch)"
            return f"MISS ({why})"
        if self.scope_entries == 0 and self.other_scope_entries:
            return (
                f"MISS (no entries in this scope; {self.other_scope_entries} entries in "
                f"{len(self.other_scopes)} other scope(s): the function id, model, system "
                "prompt, parameters or earlier turns differ)"
            )
        if self.scope_entries == 0:
            return "MISS (nothing cached for this namespace and tenant)"
        if self.semantic_status.startswith("skipped"):
            return f"MISS (no exact key; semantic layer {self.semantic_status})"
        return "MISS (no exact key and no similar prompt)"

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "verdict": self.verdict,
            "namespace": m.namespace,
            "tenant": m.tenant,
            "tenant_token": self.tenant_token,
            "function_id": self.function_id,
            "manifest": m.explain(),
            "epoch": self.epoch,
            "generation": self.generation,
            "exact": {
                "key": self.exact_key,
                "status": self.exact_status,
                "entry": self.exact_entry,
            },
            "semantic": {
                "status": self.semantic_status,
                "threshold": self.threshold,
                "embedder": self.embedder,
                "index_backend": self.index_backend,
                "candidates": [
                    {
                        "entry_id": c.entry_id,
                        "similarity": c.similarity,
                        "prompt": c.prompt,
                        "age_s": c.age_s,
                        "hits": c.hits,
                        "live": c.live,
                        "accepted": c.accepted,
                    }
                    for c in self.candidates
                ],
            },
            "scope_entries": self.scope_entries,
            "other_scopes": [
                {
                    "scope_digest": s.scope_digest,
                    "entries": s.entries,
                    "models": s.models,
                    "sample_prompt": s.sample_prompt,
                }
                for s in self.other_scopes
            ],
        }


async def _scopes(
    client: aioredis.Redis, space: Space, generation: int, epoch: int, max_scan: int = 5000
) -> dict[str, tuple[int, Counter[str], str]]:
    """Live entries of a space grouped by scope digest: (count, models, a sample prompt)."""
    pattern = f"{space.patterns[0][:-1]}e:*"
    keys: list[Any] = []
    async for key in client.scan_iter(match=pattern, count=1000):
        keys.append(key)
        if len(keys) >= max_scan:
            break
    groups: dict[str, tuple[int, Counter[str], str]] = {}
    for start in range(0, len(keys), 500):
        async with client.pipeline(transaction=False) as pipe:
            for key in keys[start : start + 500]:
                pipe.hmget(key, ["s", "m", "p", "g", "ne"])
            replies = await pipe.execute()
        for s, m, p, g, ne in replies:
            if s is None or _int(g, -1) != generation or _int(ne, -1) != epoch:
                continue
            digest = _text(s)
            count, models, sample = groups.get(digest, (0, Counter(), _text(p or b"")))
            if m is not None:
                models[_text(m)] += 1
            groups[digest] = (count + 1, models, sample)
    return groups


async def explain(
    client: aioredis.Redis,
    manifest: KeyManifest,
    *,
    function_id: str,
    embedder: Embedder | None,
    threshold: float | None,
    k: int = 5,
) -> Explanation:
    """What a lookup of ``manifest`` would find now, and why, without changing anything."""
    from ._index import detect_index, make_index

    space = Space(manifest.namespace, encode_tenant(manifest.tenant))
    async with client.pipeline(transaction=False) as pipe:
        pipe.get(f"ck:{{{manifest.namespace}}}:epoch")
        pipe.get(space.gen_key)
        pipe.hgetall(META_KEY)
        raw_epoch, raw_gen, raw_meta = await pipe.execute()
    epoch, generation = _int(raw_epoch), _int(raw_gen)
    meta = {_text(k): _text(v) for k, v in (raw_meta or {}).items()}
    xkey = space.exact_key(generation, manifest.exact_digest)
    eid = await client.get(xkey)
    exact_status, exact_entry = "absent", None
    now = time.time()
    if eid is not None:
        fields = await client.hmget(space.entry_key(_text(eid)), list(_ENTRY_FIELDS))
        if fields[0] is None:
            exact_status = "dangling"
        else:
            p, m, c, h, _ti, _to, _g, ne, _s = fields
            created = _float(c)
            exact_entry = {
                "entry_id": _text(eid),
                "prompt": _text(p),
                "model": _text(m) if m is not None else None,
                "age_s": None if created is None else now - created,
                "hits": _int(h),
            }
            exact_status = "hit" if _int(ne, -1) == epoch else "stale-epoch"
    groups = await _scopes(client, space, generation, epoch)
    own = groups.pop(manifest.scope_digest, None)
    other = sorted(groups.items(), key=lambda kv: -kv[1][0])
    result = Explanation(
        manifest=manifest,
        function_id=function_id,
        tenant_token=space.tenant_token,
        epoch=epoch,
        generation=generation,
        exact_key=xkey,
        exact_status=exact_status,
        exact_entry=exact_entry,
        semantic_status="skipped: no embedder (--embedder none)",
        threshold=threshold,
        embedder=embedder.model_id if embedder is not None else None,
        index_backend=meta.get("backend"),
        scope_entries=own[0] if own else 0,
        other_scopes=[
            ScopeSummary(d, n, [m for m, _ in models.most_common(3)], sample)
            for d, (n, models, sample) in other[:_MAX_SCOPES_SHOWN]
        ],
        other_scope_entries=sum(n for _, (n, _, _) in other),
    )
    if embedder is None:
        return result
    if not manifest.has_prompt_text:
        result.semantic_status = "skipped: the request has no prompt text (exact layer only)"
        return result
    if meta.get("model") and meta["model"] != embedder.model_id:
        result.semantic_status = (
            f"skipped: the index holds vectors of {meta['model']!r}, not {embedder.model_id!r} "
            "(pick the matching --embedder)"
        )
        return result
    backend = meta.get("backend") or await detect_index(client)
    result.index_backend = backend
    vector = (await embedder.embed([manifest.prompt or ""]))[0]
    scope = space.scope(generation, manifest.scope_digest)
    try:
        found = await make_index(backend, client).search(scope, vector, k)
    except Exception as exc:  # noqa: BLE001 - report, do not crash: explain is diagnostics
        result.semantic_status = f"skipped: index search failed: {exc}"
        return result
    if found:
        async with client.pipeline(transaction=False) as pipe:
            for cand in found:
                pipe.hmget(space.entry_key(cand.entry_id), ["p", "c", "h", "ne"])
            rows = await pipe.execute()
        accepted_one = False
        for cand, (p, c, h, ne) in zip(found, rows, strict=True):
            created = _float(c)
            live = p is not None and _int(ne, -1) == epoch
            accepted = (
                not accepted_one
                and threshold is not None
                and live
                and cand.similarity >= threshold
                and exact_status != "hit"
            )
            accepted_one = accepted_one or accepted
            result.candidates.append(
                Candidate(
                    entry_id=cand.entry_id,
                    similarity=cand.similarity,
                    prompt=_text(p) if p is not None else None,
                    age_s=None if created is None else now - created,
                    hits=_int(h),
                    live=live,
                    accepted=accepted,
                )
            )
    if threshold is None:
        result.semantic_status = "skipped: no threshold (exact matches only)"
    elif any(c.accepted for c in result.candidates):
        result.semantic_status = "hit"
    elif result.candidates:
        result.semantic_status = "below-threshold"
    else:
        result.semantic_status = "empty-scope"
    return result
