"""The semantic layer's writes after a search: the exact alias of a semantic hit, and the
sampled near-miss stream (the nearest entry below the threshold, or one the hit verifier
rejected) that ``cachekit tune`` and ``explain`` read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _schema as F
from ._entry import LookupOutcome
from ._entry_texts import entry_prompts
from ._layout import Space
from ._manifest import KeyManifest
from ._neighbours import Neighbour
from ._schema import EntryRow

if TYPE_CHECKING:
    from ._index import Candidate

__all__ = ["NEAR_MISS_MAXLEN", "record_near_miss", "write_alias"]

#: Near misses kept per tenant+namespace (a capped stream).
NEAR_MISS_MAXLEN = 2000


async def record_near_miss(
    client: Any,
    manifest: KeyManifest,
    space: Space,
    best: Candidate | Neighbour,
    threshold: float,
    reason: str | None = None,
    *,
    kind: str | None = None,
) -> None:
    """Keep (prompt, nearest prompt, similarity, why (not) served, its entry) for
    ``cachekit tune``, ``explain`` and the console's review queue: the nearest below the
    threshold (``near``), one the verifier rejected (``rejected``), or a sampled semantic
    hit (``hit``)."""
    if isinstance(best, Neighbour):
        nearest = best.row.prompt
    else:
        [nearest] = await entry_prompts(client, [(space, best.entry_id)])
    values = (
        manifest.prompt or "",
        nearest or "",
        repr(best.similarity),
        repr(threshold),
        manifest.model or "",
        reason or "",
    )
    record = dict(zip(F.NEAR_MISS_FIELDS, values, strict=True))
    record[F.NM_KIND] = kind or ("rejected" if reason else "near")
    record[F.NM_ENTRY] = best.entry_id
    record[F.NM_SCOPE] = manifest.scope_digest
    key = space.hit_sample_key if record[F.NM_KIND] == "hit" else space.near_miss_key
    await client.xadd(key, record, maxlen=NEAR_MISS_MAXLEN, approximate=True)


async def write_alias(
    client: Any,
    manifest: KeyManifest,
    space: Space,
    outcome: LookupOutcome,
    pttl: int,
    row: EntryRow,
) -> None:
    """After a semantic hit, make the same prompt an exact hit next time (an alias, for
    the entry of another request; the request's own entry the lookup reads directly)."""
    assert outcome.entry is not None
    entry_id = outcome.entry.entry_id
    entry_key = space.entry_key(entry_id)
    async with client.pipeline(transaction=True) as pipe:
        if entry_id != manifest.exact_digest:
            xkey = space.exact_key(outcome.generation, manifest.exact_digest)
            if pttl > 0:
                pipe.set(xkey, entry_id, px=pttl)
            else:
                pipe.set(xkey, entry_id)
        pipe.hincrby(entry_key, F.HITS, 1)
        # "exact" when the search found this very request's own entry (see search).
        pipe.hincrby(space.stats_key, outcome.layer or F.SEMANTIC_HITS, 1)
        # Tokens this hit saved, like the exact lookup script (m, ti, to, te of the entry).
        model, count_in, count_out, estimated = row.usage()
        if model is not None:
            for direction, count in (("in", count_in), ("out", count_out)):
                if count is not None:
                    field = F.tokens_field(direction, model, estimated=estimated)
                    pipe.hincrby(space.stats_key, field, count)
        # A stats key of another type must not undo the alias or fail the hit.
        await pipe.execute(raise_on_error=False)
