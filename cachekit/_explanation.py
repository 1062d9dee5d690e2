"""``cachekit explain``: what a lookup of one request would find now, and why.

It asks the cache itself (:meth:`LLMCache.peek`): the real lookup's reads in their
read-only mode, so the verdict cannot drift from what a call would get. Nothing is
written; on one node the reads leave the entries' eviction clocks alone.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ._attrs import pick_attrs
from ._entry_texts import entry_prompts
from ._layout import Space, entry_pattern, parse_entry_key
from ._lookup import Peek
from ._manifest import KeyManifest
from ._schema import EPOCH, GENERATION, MODEL, PROMPT, SCOPE, decode_row, text

if TYPE_CHECKING:
    from .cache import LLMCache
    from .embedders import Embedder
    from .verify import Verdict

__all__ = ["Candidate", "Explanation", "ScopeSummary", "explain"]

_MAX_SCOPES_SHOWN: Final = 8
_CHECK: Final = ("accept", "reason", "detail", "score")
#: The last is an earlier layout's prompt field (a current entry's is in its body).
_SCOPE_FIELDS: Final = (SCOPE, MODEL, GENERATION, EPOCH, PROMPT)
_PROMPT_AT: Final = _SCOPE_FIELDS.index(PROMPT)
#: How the exact layer's verdicts read in an explanation.
_EXACT_STATUS: Final = {"epoch": "stale-epoch", "generation": "stale-generation"}
#: Why the semantic layer did not run, as an explanation says it.
_SKIPPED: Final = {
    "no-embedder": "skipped: no embedder (--embedder none)",
    "no-prompt": "skipped: the request has no prompt text (exact layer only)",
    "exact-only": "skipped: this endpoint's answers are never shared by similarity",
    "no-threshold": "skipped: no threshold (exact matches only)",
}


@dataclass(slots=True)
class Candidate:
    entry_id: str
    similarity: float
    prompt: str | None
    age_s: float | None
    hits: int
    live: bool
    accepted: bool
    #: The hit verifier's word on it: None (not asked), "accepted" or "rejected", and
    #: its :class:`~cachekit.verify.Verdict` (reason, detail, score).
    verifier: str | None = None
    check: Verdict | None = None


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
        if self.semantic_status == "history":
            return (
                "MISS (history='similar': an earlier turn of the nearest conversation asks "
                "something else)"
            )
        if self.semantic_status.startswith("adaptive check"):
            return f"MISS ({self.semantic_status}: the function runs and is compared)"
        accepted = [c for c in self.candidates if c.accepted]
        if accepted:
            c = accepted[0]
            return (
                f"HIT (semantic: similarity {c.similarity:.4f} >= threshold {self.threshold:.4f})"
            )
        if self.candidates and self.threshold is not None:
            best = self.candidates[0]
            why = f"nearest similarity {best.similarity:.4f} < threshold {self.threshold:.4f}"
            rejected = [c for c in self.candidates if c.verifier == "rejected"]
            if rejected:
                r = rejected[0]
                check = r.check
                assert check is not None
                what = f"{check.reason} ({check.detail})" if check.detail else check.reason
                why = (
                    f"the hit verifier rejected the nearest entry above the threshold "
                    f"(similarity {r.similarity:.4f}): {what}"
                )
            elif best.similarity >= self.threshold and not best.live:
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
                        "verifier": c.verifier,
                        "verify": None if c.check is None else pick_attrs(c.check, *_CHECK),
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
    cache: LLMCache, space: Space, generation: int, epoch: int, max_scan: int = 5000
) -> dict[str, tuple[int, Counter[str], str]]:
    """Live entries of a space grouped by scope digest: (count, models, a sample prompt)."""
    async with cache.reader() as client:
        keys: list[Any] = []
        pattern = entry_pattern(space.namespace, space.tenant_token)
        async for key in client.scan_iter(match=pattern, count=1000):
            keys.append(key)
            if len(keys) >= max_scan:
                break
        counts: dict[str, tuple[int, Counter[str]]] = {}
        samples: dict[str, tuple[str, Any]] = {}  # scope -> (entry id, its hash's prompt)
        for start in range(0, len(keys), 500):
            batch = keys[start : start + 500]
            async with client.pipeline(transaction=False) as pipe:
                for key in batch:
                    pipe.hmget(key, list(_SCOPE_FIELDS))
                replies = await pipe.execute()
            for key, values in zip(batch, replies, strict=True):
                row, parsed = decode_row(_SCOPE_FIELDS, values), parse_entry_key(text(key))
                scope = row.scope_digest
                live = (row.generation, row.epoch) == (generation, epoch)
                if parsed is None or scope is None or not live:
                    continue
                count, models = counts.get(scope, (0, Counter()))
                if row.model is not None:
                    models[row.model] += 1
                counts[scope] = (count + 1, models)
                samples.setdefault(scope, (parsed[2], values[_PROMPT_AT]))
        # One sample prompt per scope, from its body (an earlier layout's hash has its
        # own): never every entry's.
        scopes = list(counts)
        prompts = await entry_prompts(
            client,
            [(space, samples[s][0]) for s in scopes],
            known=[samples[s][1] for s in scopes],
        )
    return {
        scope: (*counts[scope], prompt or "") for scope, prompt in zip(scopes, prompts, strict=True)
    }


async def explain(
    cache: LLMCache,
    manifest: KeyManifest,
    *,
    function_id: str,
    embedder: Embedder | None,
    threshold: float | None,
    k: int = 5,
) -> Explanation:
    """What a lookup of ``manifest`` would find now, and why, without changing anything.

    ``embedder`` and ``threshold`` stand for the application's (the CLI's cache has
    neither); ``k`` neighbours of the scope are shown, whatever their similarity.
    """
    peek = await cache.peek(manifest, threshold=threshold, embedder=embedder, k=k)
    outcome, space = peek.outcome, cache.space(manifest)
    groups = await cache.run(_scopes, cache, space, outcome.generation, outcome.epoch)
    own = groups.pop(manifest.scope_digest, None)
    other = sorted(groups.items(), key=lambda kv: -kv[1][0])
    now = time.time()
    row = peek.exact_row
    exact_entry = None
    if row is not None and row.exists:
        exact_entry = {
            "entry_id": peek.exact_entry_id,
            "prompt": row.prompt,
            "model": row.model,
            "age_s": None if row.created is None else now - row.created,
            "hits": row.hits or 0,
        }
    return Explanation(
        manifest=manifest,
        function_id=function_id,
        tenant_token=space.tenant_token,
        epoch=outcome.epoch,
        generation=outcome.generation,
        exact_key=_exact_key(space, outcome.generation, manifest.exact_digest, peek),
        exact_status=_EXACT_STATUS.get(peek.exact, peek.exact),
        exact_entry=exact_entry,
        semantic_status=_semantic_status(peek, embedder),
        threshold=threshold,
        embedder=embedder.model_id if embedder is not None else None,
        index_backend=peek.index_backend,
        candidates=_candidates(peek, now),
        scope_entries=own[0] if own else 0,
        other_scopes=[
            ScopeSummary(d, n, [m for m, _ in models.most_common(3)], sample)
            for d, (n, models, sample) in other[:_MAX_SCOPES_SHOWN]
        ],
        other_scope_entries=sum(n for _, (n, _, _) in other),
    )


def _exact_key(space: Space, generation: int, digest: str, peek: Peek) -> str:
    """The key the exact verdict is about: the request's own entry, or the alias a
    semantic hit left when that names another entry."""
    if peek.exact_entry_id is None or peek.exact_entry_id == digest:
        return space.entry_key(digest)
    return space.exact_key(generation, digest)


def _semantic_status(peek: Peek, embedder: Embedder | None) -> str:
    if peek.semantic == "index-model":
        model_id = embedder.model_id if embedder is not None else None
        return (
            f"skipped: the index holds vectors of {peek.detail!r}, not {model_id!r} "
            "(pick the matching --embedder)"
        )
    if peek.semantic == "search-failed":
        return f"skipped: index search failed: {peek.detail}"
    if peek.semantic == "adaptive-check":
        return f"adaptive check: {peek.detail}"
    return _SKIPPED.get(peek.semantic, peek.semantic)


def _candidates(peek: Peek, now: float) -> list[Candidate]:
    served = peek.outcome.entry if peek.semantic == "hit" else None
    return [
        Candidate(
            entry_id=n.entry_id,
            similarity=n.similarity,
            prompt=n.row.prompt,
            age_s=None if n.row.created is None else now - n.row.created,
            hits=n.row.hits or 0,
            live=n.servable or n.verdict == "rejected",
            accepted=served is not None and n.entry_id == served.entry_id,
            verifier=None if n.check is None else "accepted" if n.check.accept else "rejected",
            check=n.check,
        )
        for n in peek.neighbours
    ]
