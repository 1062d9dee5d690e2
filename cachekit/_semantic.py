"""The semantic layer: embed the prompt, search its scope, verify and serve a neighbour.

Owns the embedder (and its background warm-up), the vector index of the bound event loop
and the near-miss sample. The cache hands it a way to reach the loop's Redis client and
resets it when it binds another loop; it never touches the exact layer or the store.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _tracing as tracing
from ._adaptive_state import AdaptiveCheck, EvidenceStore, evidence_key
from ._batching import BatchingEmbedder
from ._cache_config import CacheConfig
from ._entry import LookupOutcome
from ._history_match import history_matches
from ._layout import Space
from ._manifest import KeyManifest
from ._neighbours import Neighbour, read_neighbours, verify_neighbours
from ._policy import CACHE_ERRORS, OUTAGES, RateLimitedLog
from ._semantic_writes import NEAR_MISS_MAXLEN, record_near_miss, write_alias
from ._warmup import Warmup
from .errors import CacheBackendError, CacheTimeoutError, EmbedderError, IndexMismatchError

if TYPE_CHECKING:
    from ._index import VectorIndex
    from .embedders import Embedder

__all__ = ["NEAR_MISS_MAXLEN", "SemanticLayer"]
#: Seconds between checks of an unusable vector-index meta hash.
_INDEX_RETRY = 30.0


class SemanticLayer:
    """Embedding, vector search and verification for one cache."""

    def __init__(
        self,
        embedder: Embedder,
        config: CacheConfig,
        *,
        redis: Callable[[], Any],
        warn: RateLimitedLog,
    ) -> None:
        self.embedder = embedder
        self._batcher = BatchingEmbedder(embedder)
        self._redis = redis
        self.config = config
        self.budgets = config.budgets
        self.evidence: EvidenceStore | None = (
            EvidenceStore(config.adaptive) if config.adaptive is not None else None
        )
        self.warn = warn
        # Loading a local model takes seconds: start now, in the background, so that it
        # never runs inside a call's lookup budget.
        self.warm = Warmup(embedder)
        self.warm.start()
        self.resolved_kind: str | None = None
        self._index: VectorIndex | None = None
        self._index_ready: asyncio.Future[VectorIndex] | None = None
        self._index_retry_at = -1.0

    @classmethod
    def of(
        cls,
        embedder: Embedder | Callable[..., Any] | None,
        config: CacheConfig,
        *,
        redis: Callable[[], Any],
        warn: RateLimitedLog,
    ) -> SemanticLayer | None:
        """The layer of ``embedder`` (anything ``as_embedder`` takes), or None for none."""
        if embedder is None:
            return None
        from .embedders import as_embedder

        return cls(as_embedder(embedder), config, redis=redis, warn=warn)

    @property
    def ready(self) -> bool:
        """True once the model is loaded: until then lookups use the exact layer alone and
        misses are stored without a vector; a call never waits for the model."""
        return self.warm.ready

    def embeds(self, manifest: KeyManifest) -> bool:
        """Would a lookup or store of ``manifest`` embed now (prompt text, model ready)?"""
        return manifest.has_prompt_text and self.warm.ready

    async def warmup(self, timeout: float | None) -> None:
        """Wait until the model is loaded (it loads in the background anyway).

        For services that want their first request to use the semantic layer. Raises
        :class:`EmbedderError` when loading failed, :class:`CacheTimeoutError` after
        ``timeout`` seconds.
        """
        fut = self.warm.start()
        if fut is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)), timeout)
        except TimeoutError as exc:
            raise CacheTimeoutError("loading the embedding model", timeout or 0.0) from exc

    def warmup_sync(self, timeout: float | None) -> None:
        fut = self.warm.start()
        if fut is None:
            return
        try:
            fut.result(timeout)
        except concurrent.futures.TimeoutError as exc:
            raise CacheTimeoutError("loading the embedding model", timeout or 0.0) from exc

    async def prepare(self) -> None:
        """At connect: resolve the index now; wait for the model if it loads fine."""
        await self.get_index()
        # An embedder that fails to load is not a reason to refuse to start: the
        # exact layer works without it (the failure is logged by the warm-up).
        with contextlib.suppress(EmbedderError):
            await self.warmup(None)

    def reset(self) -> None:
        """A new event loop (and Redis client): the index is resolved again there."""
        self._index = None
        self._index_ready = None

    async def usable_index(self) -> VectorIndex | None:
        """The vector index, or None while its metadata is unusable (semantic layer off).

        A meta hash of another type, or one recorded for another model or dimension, is a
        configuration problem, not an outage: the exact layer keeps working, the breaker
        is not touched, and the check is retried every ``_INDEX_RETRY`` seconds so that
        fixing it needs no restart. Outages (connection, timeout) propagate as usual.
        """
        if self._index is not None:
            return self._index
        if time.monotonic() < self._index_retry_at:
            return None
        try:
            return await self.get_index()
        except (IndexMismatchError, CacheBackendError) as exc:
            cause = exc.__cause__
            if isinstance(cause, OUTAGES):
                raise cause from exc
            self._index_retry_at = time.monotonic() + _INDEX_RETRY
            self.warn(
                "index-meta",
                "cachekit: the semantic layer is off (exact layer only), retrying in %g s: %s",
                _INDEX_RETRY,
                exc,
            )
            return None

    async def get_index(self) -> VectorIndex:
        """The vector index, resolved and checked once per bound loop."""
        if self._index is not None:
            return self._index
        if self._index_ready is None:
            self._index_ready = asyncio.get_running_loop().create_future()
            try:
                from ._index import make_index, resolve_index

                assert self.embedder is not None
                kind = await resolve_index(self.config.index, self._redis())
                index = make_index(
                    kind,
                    self._redis(),
                    quantization=self.config.quantization,
                    ef_runtime=self.config.ef_runtime,
                )
                await index.ensure(self.embedder.dimensions, self.embedder.model_id)
            except BaseException as exc:
                ready, self._index_ready = self._index_ready, None
                ready.set_exception(exc)
                ready.exception()  # mark retrieved: the raise below reports it
                raise
            self.resolved_kind = kind
            self._index = index
            self._index_ready.set_result(index)
            return index
        return await asyncio.shield(self._index_ready)

    async def embed(self, text: str) -> np.ndarray:
        """Embed one prompt through the coalescing batcher, within the embed budget."""
        assert self._batcher is not None
        try:
            with tracing.stage("cache.embed"):
                async with asyncio.timeout(self.budgets.embed):
                    return await self._batcher.embed_one(text)
        except TimeoutError as exc:
            raise CacheTimeoutError("embedding the prompt", self.budgets.embed) from exc

    def _sampled(self, rate: float | None = None) -> bool:
        """Is this near miss (or verifier rejection; a hit with ``review_sample``) one to
        keep in the stream?"""
        if rate is None:
            rate = self.config.near_miss_sample
        return rate > 0.0 and random.random() < rate

    async def history_matches(
        self,
        manifest: KeyManifest,
        cand: Neighbour,
        memo: dict[str, np.ndarray] | None = None,
    ) -> bool:
        """``history="similar"``: see :func:`cachekit._history_match.history_matches`."""
        return await history_matches(
            manifest,
            cand,
            embed=self.embed,
            verifier=self.config.verifier,
            warn=self.warn,
            memo=memo,
        )

    async def _adaptive_serves(
        self, manifest: KeyManifest, cand: Neighbour, outcome: LookupOutcome
    ) -> bool:
        """Does the scope's evidence let this candidate be served? If not, the outcome
        carries an :class:`AdaptiveCheck` (a miss whose answer is compared)."""
        assert self.evidence is not None
        settings = self.evidence.settings
        key = evidence_key(manifest.namespace, manifest.scope_digest, settings.bin_width)
        try:
            evidence = await self.evidence.get(self._redis(), key)
        except CACHE_ERRORS as exc:
            # Unreadable evidence (its node is down, a foreign key): check, never fail
            # the lookup over it, and never serve what nothing vouches for.
            self.warn("adaptive-read", "cachekit: adaptive evidence unreadable: %s", exc)
            evidence = None
        if evidence is not None and settings.serve(evidence, cand.similarity, random.random()):
            return True
        payload = cand.row.payload
        if payload is not None:
            outcome.check = AdaptiveCheck(key, cand.similarity, payload, cand.entry_id)
        # The verifier accepted this candidate; it was checked rather than served.
        outcome.similarity = cand.similarity
        outcome.verdict = "accepted" if cand.score is not None else outcome.verdict
        outcome.verify_score, outcome.verify_reason = cand.score, None
        return False

    async def _keep(
        self,
        manifest: KeyManifest,
        space: Space,
        cand: Neighbour,
        threshold: float,
        reason: str | None = None,
        kind: str | None = None,
    ) -> None:
        """Keep a sampled record (a history rejection, a hit for review); its failure
        never costs the lookup."""
        try:
            await record_near_miss(
                self._redis(), manifest, space, cand, threshold, reason, kind=kind
            )
        except CACHE_ERRORS as exc:
            self.warn("sample", "cachekit: a sampled %s was not recorded: %s", kind or reason, exc)

    async def search(
        self,
        manifest: KeyManifest,
        space: Space,
        outcome: LookupOutcome,
        threshold: float,
        max_age: float | None,
    ) -> None:
        assert manifest.prompt is not None
        index = await self.usable_index()
        if index is None:
            return
        vector = await self.embed(manifest.prompt)
        outcome.vector = vector
        scope = space.scope(outcome.generation, manifest.scope_digest)
        try:
            with tracing.stage("cache.search") as span:
                async with asyncio.timeout(self.budgets.search):
                    found = await index.search(scope, vector, self.config.candidates)
                tracing.note(span, "cachekit.candidates", len(found))
                tracing.note(
                    span, tracing.SIMILARITY, float(found[0].similarity) if found else None
                )
        except TimeoutError as exc:
            raise CacheTimeoutError("the vector search", self.budgets.search) from exc
        above = [c for c in found if c.similarity >= threshold]
        if not above:
            if found:
                outcome.similarity = found[0].similarity
                if found[0].similarity >= threshold - self.config.near_miss_margin and (
                    self._sampled()
                ):
                    await record_near_miss(self._redis(), manifest, space, found[0], threshold)
            return
        dangling: list[str] = []
        corrupt: list[str] = []
        with tracing.stage("cache.verify") as span:
            neighbours = await read_neighbours(self._redis(), space, above, outcome, max_age)
            # With history="similar" a candidate can be passed over after the verifier
            # accepted it (its history differs): every candidate is then verified, so the
            # next one is never served unchecked.
            checked = verify_neighbours(
                neighbours,
                self.config.verifier,
                manifest,
                threshold=None,
                every=bool(manifest.history),
            )
            tracing.note(span, "cachekit.candidates", len(checked))
        own = manifest.exact_digest
        turn_memo: dict[str, np.ndarray] = {}  # this request's turns, embedded once
        for cand in checked:
            if cand.verdict == "dangling":
                dangling.append(cand.entry_id)
            elif cand.verdict == "corrupt":
                corrupt.append(cand.entry_id)
            elif cand.verdict == "rejected" and outcome.verdict is None:
                outcome.verdict, outcome.similarity = "rejected", cand.similarity
                outcome.verify_reason, outcome.verify_score = cand.reason, cand.score
                if self._sampled():
                    await record_near_miss(
                        self._redis(), manifest, space, cand, threshold, cand.reason
                    )
            if not cand.servable:
                continue
            if manifest.history and not await self.history_matches(manifest, cand, turn_memo):
                # history="similar": an earlier turn asks something else (or the entry
                # kept no history to compare): another conversation, not served.
                if outcome.verdict is None:
                    outcome.verdict, outcome.similarity = "rejected", cand.similarity
                    outcome.verify_reason, outcome.verify_score = "history", None
                if self._sampled():
                    await self._keep(manifest, space, cand, threshold, "history")
                continue
            if (
                self.evidence is not None
                and cand.entry_id != own
                and not await self._adaptive_serves(manifest, cand, outcome)
            ):
                break  # checked instead: the call runs, its answer is compared afterwards
            outcome.entry = cand.entry()
            # The entry id is the exact digest of its request: finding our own digest means
            # an identical request was stored between our exact read and this search.
            outcome.layer = "exact" if cand.entry_id == own else "semantic"
            outcome.similarity = cand.similarity
            # What is served decides the verdict (an earlier candidate's rejection does not).
            outcome.verdict = "accepted" if cand.score is not None else None
            outcome.verify_score, outcome.verify_reason = cand.score, None
            await write_alias(self._redis(), manifest, space, outcome, cand.pttl, cand.row)
            if outcome.layer == "semantic" and self._sampled(self.config.review_sample):
                await self._keep(manifest, space, cand, threshold, kind="hit")
            break
        if corrupt:
            await self._redis().delete(*(k for e in corrupt for k in space.entry_keys(e)))
        if dangling or corrupt:
            await index.remove(scope, dangling + corrupt)
