"""A lookup end to end: the exact layer, then the semantic layer; and its read-only twin.

:meth:`Lookup.peek` runs the real lookup's reads, not a copy of them: the exact layer's
script in its read-only mode (no hit or token counted, no alias cleaned up, no counter
created) and the semantic layer's candidate read and verdict (``_neighbours``), with no
alias written, no near miss recorded and no vector removed. Its vector index is opened
from the index metadata without being created or checked (``ensure`` writes). Used by
``cachekit explain``, on a client whose reads leave eviction clocks alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from . import _tracing as tracing
from ._cache_config import CacheConfig
from ._clients import no_touch
from ._entry import LookupOutcome
from ._exact import ExactLayer
from ._layout import META_KEY, Space
from ._manifest import KeyManifest
from ._neighbours import Neighbour, read_neighbours, verify_neighbours
from ._policy import Counts
from ._schema import EntryRow, text
from ._semantic import SemanticLayer

if TYPE_CHECKING:
    from .embedders import Embedder

__all__ = ["Lookup", "Peek"]

_EXACT: Final = {tracing.LAYER: "exact"}


class Lookup:
    """Composes the exact and the (optional) semantic layer of one cache."""

    def __init__(
        self,
        redis: Callable[[], Any],
        exact: ExactLayer,
        semantic: SemanticLayer | None,
        config: CacheConfig,
        counts: Counts,
    ) -> None:
        self._redis, self._exact, self._sem = redis, exact, semantic
        self._config, self._counts = config, counts

    async def lookup(
        self, manifest: KeyManifest, space: Space, threshold: float | None, max_age: float | None
    ) -> LookupOutcome:
        """Exact layer, then (when configured and the call has prompt text) semantic."""
        with tracing.stage("cache.lookup", _EXACT) as span:
            outcome = await self._exact.read(manifest, space, max_age)
            if span is not None:
                span.set_attribute(tracing.STATUS, "hit" if outcome.entry else "miss")
        if outcome.entry is not None or outcome.generation < 0:
            return outcome
        if threshold is None or self._sem is None or not manifest.has_prompt_text:
            return outcome
        if not self._sem.ready:
            # The model is still loading (or failed to): the exact layer answers alone
            # rather than making the call wait for it or fail.
            outcome.reason = outcome.reason or "semantic layer not ready"
            self._counts.semantic_skipped += 1
            return outcome
        await self._sem.search(manifest, space, outcome, threshold, max_age)
        return outcome

    async def peek(
        self,
        manifest: KeyManifest,
        space: Space,
        embedder: Embedder | None,
        threshold: float | None,
        k: int | None = None,
    ) -> Peek:
        """What :meth:`lookup` would find for ``manifest`` now, writing nothing.

        ``embedder`` and ``threshold`` stand for the cache's (``explain`` may name others);
        up to ``k`` (default ``candidates``) neighbours are reported, whatever their
        similarity. The reads go through :func:`~cachekit._clients.no_touch`.
        """
        async with no_touch(self._redis()) as client:
            return await self._peek(client, manifest, space, embedder, threshold, k)

    async def _peek(
        self,
        client: Any,
        manifest: KeyManifest,
        space: Space,
        embedder: Embedder | None,
        threshold: float | None,
        k: int | None,
    ) -> Peek:
        from ._index import detect_index, make_index

        outcome, status, entry_id, row = await self._exact.peek(manifest, space, client)
        meta = {text(key): text(value) for key, value in (await client.hgetall(META_KEY)).items()}
        result = Peek(outcome, status, entry_id, row, index_backend=meta.get("backend"))
        if embedder is None:
            return result
        if not manifest.has_prompt_text:
            result.semantic = "exact-only" if manifest.exact_only else "no-prompt"
            return result
        if meta.get("model") and meta["model"] != embedder.model_id:
            result.semantic, result.detail = "index-model", meta["model"]
            return result
        backend = meta.get("backend") or await detect_index(client)
        result.index_backend = backend
        vector = (await embedder.embed([manifest.prompt or ""]))[0]
        scope = space.scope(outcome.generation, manifest.scope_digest)
        try:
            index = make_index(
                backend,
                client,
                quantization=self._config.quantization,
                ef_runtime=self._config.ef_runtime,
            )
            found = await index.search(scope, vector, k or self._config.candidates)
        except Exception as exc:  # noqa: BLE001 - reported: a peek is diagnostics
            result.semantic, result.detail = "search-failed", str(exc)
            return result
        result.neighbours = await read_neighbours(client, space, found, outcome, None)
        if threshold is None:
            result.semantic = "no-threshold"
            return result
        # The lookup's own verification, on every candidate above the threshold (explain
        # shows each decision; the lookup stops at the first accepted one).
        result.neighbours = verify_neighbours(
            result.neighbours, self._config.verifier, manifest, threshold=threshold, every=True
        )
        result.semantic = "below-threshold" if found else "empty-scope"
        if status == "hit":
            return result  # the exact layer answered: the lookup never searches
        if found:
            outcome.similarity = found[0].similarity
        for cand in result.neighbours:
            if cand.verdict == "rejected" and result.semantic != "hit":
                result.semantic = "rejected"
                if outcome.verdict is None:
                    outcome.verdict, outcome.verify_reason = "rejected", cand.reason
            if cand.servable and cand.similarity >= threshold:
                if (
                    manifest.history
                    and self._sem is not None
                    and not await self._sem.history_matches(manifest, cand, None)
                ):
                    result.semantic = "history"  # history="similar": another conversation
                    if outcome.verdict is None:
                        outcome.verdict, outcome.verify_reason = "rejected", "history"
                    continue
                why = await self._adaptive_check(manifest, cand.entry_id, cand.similarity)
                if why is not None:  # the lookup would check this candidate, not serve it
                    result.semantic, result.detail = "adaptive-check", why
                    outcome.similarity = cand.similarity
                    break
                result.semantic = "hit"
                outcome.verdict = "accepted" if cand.score is not None else outcome.verdict
                outcome.entry = cand.entry()
                outcome.layer = "exact" if cand.entry_id == manifest.exact_digest else "semantic"
                outcome.similarity = cand.similarity
                break
        return result

    async def _adaptive_check(
        self, manifest: KeyManifest, entry_id: str, similarity: float
    ) -> str | None:
        """Why the adaptive thresholds would check this candidate (None: served; the
        random audit aside)."""
        sem = self._sem
        if sem is None or sem.evidence is None or entry_id == manifest.exact_digest:
            return None
        from ._adaptive_state import evidence_key

        settings = sem.evidence.settings
        key = evidence_key(manifest.namespace, manifest.scope_digest, settings.bin_width)
        evidence = await sem.evidence.get(self._redis(), key)
        learned = settings.learned(evidence)
        if learned is None:
            return f"no learned threshold yet ({evidence.checks} checks in this scope)"
        if similarity + 1e-9 < learned:
            return f"similarity {similarity:.4f} < learned threshold {learned:.3f}"
        return None


@dataclass(slots=True)
class Peek:
    """What :meth:`Lookup.peek` found.

    ``exact``: the lookup script's verdict on the request's entry, its own or the one its
    exact alias names (``hit``, ``absent``, ``dangling``, ``corrupt``, ``epoch``,
    ``generation``, ``foreign``, ...); ``exact_entry_id`` / ``exact_row``: that entry
    and its fields.
    ``semantic``: ``hit``, ``below-threshold``, ``empty-scope``, or why the layer did not
    run: ``no-embedder``, ``no-prompt``, ``exact-only``, ``index-model`` (the index holds
    another model's vectors, see ``detail``), ``search-failed`` (``detail``: the error),
    ``no-threshold``.
    ``neighbours``: the nearest entries of the scope, best first, each judged as the
    lookup judges them. ``outcome``: what :meth:`Lookup.lookup` would return.
    """

    outcome: LookupOutcome
    exact: str
    exact_entry_id: str | None
    exact_row: EntryRow | None
    semantic: str = "no-embedder"
    detail: str | None = None
    index_backend: str | None = None
    neighbours: list[Neighbour] = field(default_factory=list)
