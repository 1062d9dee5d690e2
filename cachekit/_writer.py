"""The store after a miss: entry hash and body in one script, then the vector.

Also the two small writes that have no round trip of their own to ride on: counting an
outcome and dropping a corrupt entry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from . import _tracing as tracing
from ._cache_config import CacheConfig
from ._entry import LookupOutcome
from ._layout import Space
from ._manifest import KeyManifest
from ._policy import Counts
from ._schema import encode_entry
from ._scripts import STORE_LUA, STORE_SHA, run_script
from ._semantic import SemanticLayer

if TYPE_CHECKING:
    from ._index import VectorIndex

__all__ = ["StoreMeta", "Writer"]

log = logging.getLogger("cachekit")


class StoreMeta(NamedTuple):
    """How long an answer is kept, and what it cost (for the savings of later hits)."""

    ttl: int | None
    usage: tuple[int, int] | None
    usage_estimated: bool
    #: Overrides the request's model (an HTTP response may name it when the body did not).
    model: str | None


class Writer:
    """Writes entries of one cache (and their vectors, with a semantic layer)."""

    def __init__(
        self,
        redis: Callable[[], Any],
        config: CacheConfig,
        semantic: SemanticLayer | None,
        counts: Counts,
    ) -> None:
        self._redis = redis
        self._sem = semantic
        self._cluster = config.cluster
        self.default_ttl = config.default_ttl
        self._counts = counts

    async def store(
        self, manifest: KeyManifest, outcome: LookupOutcome, payload: str, meta: StoreMeta
    ) -> bool:
        """Entry hash + body in one script on one hash slot, then the vector.

        Returns False when nothing was stored because the generation (or the namespace
        epoch) moved since the lookup: the answer belongs to entries that were
        invalidated while it was being computed.
        """
        if not outcome.storable:
            return False
        space = Space.of(manifest.namespace, manifest.tenant)
        ttl = meta.ttl if meta.ttl is not None else self.default_ttl
        vector = outcome.vector
        index: VectorIndex | None = None
        if self._sem is not None and manifest.has_prompt_text:
            if vector is None and not self._sem.ready:
                # Stored for the exact layer now; this prompt gets no vector (counted).
                self._counts.vectors_skipped += 1
            else:
                index = await self._sem.usable_index()
                if index is not None and vector is None:
                    assert manifest.prompt is not None
                    vector = await self._sem.embed(manifest.prompt)
        entry_id = manifest.exact_digest
        entry = encode_entry(
            payload=payload,
            created=time.time(),
            epoch=outcome.epoch,
            generation=outcome.generation,
            scope_digest=manifest.scope_digest,
            prompt=manifest.prompt,
            model=meta.model or manifest.model,
            usage=meta.usage,
            usage_estimated=meta.usage_estimated,
            history=manifest.history,
        )
        # No exact pointer: the entry id is the exact digest, which the lookup reads
        # directly. The request's alias (left by an earlier semantic hit) is dropped.
        keys = [
            space.gen_key,
            space.entry_key(entry_id),
            space.body_key(entry_id),
            space.exact_key(outcome.generation, manifest.exact_digest),
            space.stats_key,
        ]
        if not self._cluster:
            # One node: the epoch is checked in the same script. On a cluster it lives in
            # another slot; the lookup's epoch check keeps old-epoch entries unserved.
            keys.append(space.epoch_key)
        args: list[Any] = [
            outcome.generation,
            outcome.epoch,
            "" if ttl is None else ttl,
            entry.body,
            repr(time.time()),
        ]
        for name, value in entry.fields.items():
            args += [name, value]
        client = self._redis()
        with tracing.stage("cache.store") as span:
            landed = await run_script(client, STORE_SHA, STORE_LUA, keys, args)
            tracing.note(span, tracing.STATUS, "stored" if landed else "stale")
        if not landed:
            self._counts.stale_stores += 1
            log.debug("cachekit: not storing an answer of an invalidated generation")
            return False
        if index is not None and vector is not None:
            # Pipelined, not MULTI: inside a transaction Redis runs VADD's graph search
            # on its main thread (2.8 ms at 100k x 384-d) and serves nobody meanwhile,
            # exact hits included. Outside one, VADD ... CAS does that search on a
            # thread. One client's pipelined commands still run in order, and a vector
            # without its entry is a dangling pointer the lookup already removes.
            with tracing.stage("cache.index"):
                async with client.pipeline(transaction=False) as pipe:
                    scope = space.scope(outcome.generation, manifest.scope_digest)
                    index.add(pipe, scope, entry_id, vector, ttl)
                    await pipe.execute()
        return True

    async def count(self, manifest: KeyManifest, field: str) -> None:
        """Count an outcome that had no other write to ride on (bypass)."""
        space = Space.of(manifest.namespace, manifest.tenant)
        await self._redis().hincrby(space.stats_key, field, 1)

    async def delete_entry(self, manifest: KeyManifest, entry_id: str) -> None:
        """Drop a corrupt entry (hash and body) so it is not served again."""
        space = Space.of(manifest.namespace, manifest.tenant)
        await self._redis().delete(*space.entry_keys(entry_id))
