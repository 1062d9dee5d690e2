"""The semantic layer: embed the prompt, search its scope, verify and serve a neighbour.

Owns the embedder (and its background warm-up), the vector index of the bound event loop
and the near-miss sample. The cache hands it a way to reach the loop's Redis client and
resets it when it binds another loop; it never touches the exact layer or the store.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._batching import BatchingEmbedder
from ._entry import Entry, LookupOutcome, int_or_none, text
from ._layout import Space
from ._manifest import KeyManifest
from ._policy import OUTAGES, Budgets, RateLimitedLog
from ._warmup import Warmup
from .errors import CacheBackendError, CacheTimeoutError, IndexMismatchError

if TYPE_CHECKING:
    from ._index import Candidate, VectorIndex
    from .embedders import Embedder

__all__ = ["NEAR_MISS_MAXLEN", "SemanticLayer"]

#: Near misses kept per tenant+namespace (a capped stream).
NEAR_MISS_MAXLEN = 2000
#: Seconds between checks of an unusable vector-index meta hash.
_INDEX_RETRY = 30.0


class SemanticLayer:
    """Embedding, vector search and verification for one cache."""

    def __init__(
        self,
        embedder: Embedder,
        *,
        redis: Callable[[], Any],
        budgets: Budgets,
        warn: RateLimitedLog,
        index_kind: str,
        quantization: str,
        candidates: int,
        near_miss_sample: float,
        near_miss_margin: float,
    ) -> None:
        self.embedder = embedder
        self._batcher = BatchingEmbedder(embedder)
        self._redis = redis
        self.budgets = budgets
        self.warn = warn
        self.index_kind = index_kind
        self.quantization = quantization
        self.candidates = candidates
        self.near_miss_sample = near_miss_sample
        self.near_miss_margin = near_miss_margin
        # Loading a local model takes seconds: start now, in the background, so that it
        # never runs inside a call's lookup budget.
        self.warm = Warmup(embedder)
        self.warm.start()
        self.resolved_kind: str | None = None
        self._index: VectorIndex | None = None
        self._index_ready: asyncio.Future[VectorIndex] | None = None
        self._index_retry_at = -1.0

    @property
    def ready(self) -> bool:
        return self.warm.ready

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
                kind = await resolve_index(self.index_kind, self._redis())
                index = make_index(kind, self._redis(), quantization=self.quantization)
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
            async with asyncio.timeout(self.budgets.embed):
                return await self._batcher.embed_one(text)
        except TimeoutError as exc:
            raise CacheTimeoutError("embedding the prompt", self.budgets.embed) from exc

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
            async with asyncio.timeout(self.budgets.search):
                found = await index.search(scope, vector, self.candidates)
        except TimeoutError as exc:
            raise CacheTimeoutError("the vector search", self.budgets.search) from exc
        above = [c for c in found if c.similarity >= threshold]
        if not above:
            if found:
                outcome.similarity = found[0].similarity
                if (
                    self.near_miss_sample > 0.0
                    and found[0].similarity >= threshold - self.near_miss_margin
                    and random.random() < self.near_miss_sample
                ):
                    await self._record_near_miss(manifest, space, found[0], threshold)
            return
        async with self._redis().pipeline(transaction=False) as pipe:
            for cand in above:
                pipe.hmget(
                    space.entry_key(cand.entry_id),
                    ["v", "c", "p", "ne", "g", "m", "ti", "to", "te"],
                )
                pipe.pttl(space.entry_key(cand.entry_id))
            # raise_on_error=False: an entry key of another type is a foreign value (a
            # miss for that candidate), not a failed lookup.
            rows = await pipe.execute(raise_on_error=False)
        dangling: list[str] = []
        corrupt: list[str] = []
        now = time.time()
        for i, cand in enumerate(above):
            row, pttl = rows[2 * i], rows[2 * i + 1]
            if isinstance(row, BaseException) or isinstance(pttl, BaseException):
                continue
            payload, created, prompt, ne, gen, *tokens = row
            if payload is None:
                dangling.append(cand.entry_id)
                continue
            try:
                entry_epoch, created_at = int(ne), float(created)
            except (TypeError, ValueError):
                # Written by something else: never serve it; drop entry and vector.
                corrupt.append(cand.entry_id)
                continue
            if entry_epoch != outcome.epoch or int_or_none(gen) != outcome.generation:
                continue
            if max_age is not None and now - created_at > max_age:
                continue
            outcome.entry = Entry(cand.entry_id, bytes(payload), created_at, text(prompt))
            # The entry id is the exact digest of its request: finding our own digest means
            # an identical request was stored between our exact read and this search.
            outcome.layer = "exact" if cand.entry_id == manifest.exact_digest else "semantic"
            outcome.similarity = cand.similarity
            await self._write_alias(manifest, space, outcome, int(pttl), tokens)
            break
        if corrupt:
            await self._redis().delete(*(space.entry_key(e) for e in corrupt))
        if dangling or corrupt:
            await index.remove(scope, dangling + corrupt)

    async def _record_near_miss(
        self, manifest: KeyManifest, space: Space, best: Candidate, threshold: float
    ) -> None:
        """Keep (prompt, nearest prompt, similarity) for ``cachekit tune``/``explain``."""
        nearest = await self._redis().hget(space.entry_key(best.entry_id), "p")
        await self._redis().xadd(
            space.near_miss_key,
            {
                "prompt": manifest.prompt or "",
                "nearest": text(nearest) if nearest is not None else "",
                "similarity": repr(best.similarity),
                "threshold": repr(threshold),
                "model": manifest.model or "",
            },
            maxlen=NEAR_MISS_MAXLEN,
            approximate=True,
        )

    async def _write_alias(
        self,
        manifest: KeyManifest,
        space: Space,
        outcome: LookupOutcome,
        pttl: int,
        tokens: Sequence[Any] = (None, None, None, None),
    ) -> None:
        """After a semantic hit, make the same prompt an exact hit next time."""
        assert outcome.entry is not None
        entry_key = space.entry_key(outcome.entry.entry_id)
        xkey = space.exact_key(outcome.generation, manifest.exact_digest)
        async with self._redis().pipeline(transaction=True) as pipe:
            if pttl > 0:
                pipe.set(xkey, outcome.entry.entry_id, px=pttl)
            else:
                pipe.set(xkey, outcome.entry.entry_id)
            pipe.hincrby(entry_key, "h", 1)
            # "exact" when the search found this very request's own entry (see _semantic).
            pipe.hincrby(space.stats_key, outcome.layer or "semantic", 1)
            # Tokens this hit saved, like the exact lookup script (m, ti, to, te of the entry).
            model, tin, tout, estimated = tokens
            count_in, count_out = int_or_none(tin), int_or_none(tout)
            if model is not None:
                kind = "e" if estimated else "t"
                if count_in is not None:
                    pipe.hincrby(space.stats_key, f"{kind}in:{text(model)}", count_in)
                if count_out is not None:
                    pipe.hincrby(space.stats_key, f"{kind}out:{text(model)}", count_out)
            # A stats key of another type must not undo the alias or fail the hit.
            await pipe.execute(raise_on_error=False)
