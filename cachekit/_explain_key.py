"""``cachekit explain --key``: the entry an ``X-Cache-Key`` digest names, and what a
lookup of it would find now.

The header carries the request's exact digest only (a hash: no tenant, no namespace), so
the tenant is either given or found: every tenant of the namespace that holds the entry
of that digest or an exact alias for it. Each is read with the lookup's own script in its
read-only mode (:meth:`LLMCache.peek`), so the verdict is what a request would get;
nothing is written, and on one node the reads leave eviction clocks alone.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ._layout import ENTRY, EXACT, Space, key_pattern, parse_tag, space_of
from ._manifest import KeyManifest
from ._schema import GENERATION, SCOPE, int_or_none, text

if TYPE_CHECKING:
    from .cache import LLMCache

__all__ = ["DIGEST_RE", "KeyExplanation", "KeyMatch", "explain_key"]

#: What ``X-Cache-Key`` holds: a BLAKE2b-128 digest in hex.
DIGEST_RE: Final = re.compile(r"^[0-9a-f]{32}$")
_STATUS: Final = {"epoch": "stale-epoch", "generation": "stale-generation"}
_MAX_SCAN: Final = 1000


@dataclass(slots=True)
class KeyMatch:
    """One tenant's entry for the digest (or the alias it holds), and what a lookup finds."""

    tenant_token: str
    generation: int
    epoch: int
    #: hit | absent | dangling | stale-epoch | stale-generation | stale | corrupt | foreign
    status: str
    entry_id: str | None = None
    prompt: str | None = None
    model: str | None = None
    age_s: float | None = None
    hits: int | None = None
    #: Seconds the entry has left (None: it never expires, or there is no entry).
    ttl_s: float | None = None
    scope_digest: str | None = None
    #: Other generations that hold the digest too (invalidated since).
    older_generations: list[int] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.status == "hit":
            return "HIT (exact)"
        why = {
            "absent": "no entry under the current generation",
            "dangling": "the entry is gone (expired or evicted)",
            "stale-epoch": "stored before the namespace's last invalidate()",
            "stale-generation": "stored before the tenant's last invalidate()",
            "corrupt": "the entry was not written by cachekit",
        }.get(self.status, self.status)
        if self.status == "absent" and self.older_generations:
            why += " (only under invalidated generations)"
        return f"MISS ({why})"

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__} | {"verdict": self.verdict}


@dataclass(slots=True)
class KeyExplanation:
    namespace: str
    digest: str
    #: The tenant asked for (None: the global tenant); ``searched``: every tenant was.
    tenant: str | None
    searched: bool
    matches: list[KeyMatch]

    @property
    def verdict(self) -> str:
        if not self.matches:
            return (
                f"MISS (no tenant of namespace {self.namespace!r} holds this key: never "
                "stored, expired, evicted, or stored in another namespace)"
            )
        hits = [m for m in self.matches if m.status == "hit"]
        return hits[0].verdict if hits else self.matches[0].verdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "namespace": self.namespace,
            "digest": self.digest,
            "tenant": self.tenant,
            "searched_every_tenant": self.searched,
            "matches": [m.to_dict() for m in self.matches],
        }


async def _pointers(cache: LLMCache, namespace: str, digest: str) -> dict[str, list[int]]:
    """Tenant token -> generations holding ``digest``: its entry (``e:<digest>``, of the
    generation in its ``g`` field) or an exact alias (``x:<gen>:<digest>``). One SCAN."""
    found: dict[str, list[int]] = {}
    entries: list[tuple[str, str]] = []  # (tenant token, entry key)
    async with cache.reader() as client:
        pattern = key_pattern(f"[{ENTRY}{EXACT}]:*{digest}", namespace)
        async for raw in client.scan_iter(match=pattern, count=1000):
            key = text(raw)
            parsed = parse_tag(key)
            if parsed is None:
                continue
            _, token, rest = parsed
            if rest == f"{ENTRY}:{digest}":
                entries.append((token, key))
            elif rest.count(":") == 2 and rest.startswith(f"{EXACT}:"):
                generation = rest.split(":")[1]
                if generation.isdigit():
                    found.setdefault(token, []).append(int(generation))
            if len(found) + len(entries) >= _MAX_SCAN:
                break
        if entries:
            async with client.pipeline(transaction=False) as pipe:
                for _, key in entries:
                    pipe.hget(key, GENERATION)
                gens = await pipe.execute(raise_on_error=False)
            for (token, _), raw_gen in zip(entries, gens, strict=True):
                of_entry = int_or_none(None if isinstance(raw_gen, BaseException) else raw_gen)
                held = found.setdefault(token, [])
                if of_entry is not None and of_entry not in held:
                    held.append(of_entry)
    return found


async def _entry_details(cache: LLMCache, space: Space, entry_id: str) -> tuple[Any, int]:
    async with cache.reader() as client:
        key = space.entry_key(entry_id)
        async with client.pipeline(transaction=False) as pipe:
            pipe.hget(key, SCOPE)
            pipe.pttl(key)
            scope, pttl = await pipe.execute()
    return scope, int(pttl)


async def _match(cache: LLMCache, space: Space, digest: str, gens: list[int]) -> KeyMatch:
    manifest = KeyManifest(space.namespace, None, None, None, None, {}, "", digest)
    peek = await cache.peek(manifest, threshold=None, space=space)
    outcome = peek.outcome
    match = KeyMatch(
        tenant_token=space.tenant_token,
        generation=outcome.generation,
        epoch=outcome.epoch,
        status=_STATUS.get(peek.exact, peek.exact),
        entry_id=peek.exact_entry_id,
        older_generations=sorted(g for g in gens if g != outcome.generation),
    )
    row = peek.exact_row
    if row is not None and row.exists and peek.exact_entry_id is not None:
        scope, pttl = await cache.run(_entry_details, cache, space, peek.exact_entry_id)
        match.prompt, match.model, match.hits = row.prompt, row.model, row.hits or 0
        match.age_s = None if row.created is None else max(0.0, time.time() - row.created)
        match.ttl_s = pttl / 1000 if pttl >= 0 else None
        match.scope_digest = text(scope) if scope is not None else None
    return match


async def explain_key(
    cache: LLMCache, namespace: str, digest: str, *, tenant: str | None, search: bool
) -> KeyExplanation:
    """What the entry of ``digest`` is, for ``tenant`` or (``search``) every tenant of
    ``namespace`` that holds it. ``digest`` is checked by the caller (:data:`DIGEST_RE`)."""
    if search:
        pointers = await cache.run(_pointers, cache, namespace, digest)
        spaces = [(Space(namespace, token), gens) for token, gens in sorted(pointers.items())]
    else:
        spaces = [(space_of(namespace, tenant), [])]
    matches = [await _match(cache, space, digest, gens) for space, gens in spaces]
    return KeyExplanation(namespace, digest, tenant, search, matches)
