"""``history="similar"``: do a candidate's earlier turns match this conversation's, up to
wording? Part of the semantic layer (``_semantic``), which runs it before serving."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from ._policy import CACHE_ERRORS, RateLimitedLog
from .errors import EmbedderError

if TYPE_CHECKING:
    from ._manifest import KeyManifest
    from ._neighbours import Neighbour

__all__ = ["HISTORY_THRESHOLD", "history_matches"]

#: How similar each differing earlier turn must be: above the prompt's threshold, as
#: measured on the multi-turn traps (benchmarks/hit_quality.py).
HISTORY_THRESHOLD: Final = 0.95
#: What comparing earlier turns may meet and turn into a miss (never a failed lookup).
_EMBED_ERRORS: Final[tuple[type[BaseException], ...]] = (*CACHE_ERRORS, EmbedderError)


async def history_matches(
    manifest: KeyManifest,
    cand: Neighbour,
    *,
    embed: Callable[[str], Awaitable[np.ndarray]],
    verifier: Any,
    warn: RateLimitedLog,
    memo: dict[str, np.ndarray] | None = None,
) -> bool:
    """Each earlier turn is identical, or at least :data:`HISTORY_THRESHOLD` similar and
    accepted by the hit verifier (the same check a prompt gets, at a higher bar).
    Anything that cannot be checked (an embedding failure, a verifier error) is a no: a
    miss costs less than another conversation's answer, and never fails the lookup.
    ``memo`` keeps this request's turn vectors across the candidates of one lookup."""
    mine, theirs = manifest.history, cand.row.history
    if theirs is None or len(theirs) != len(mine):
        return False
    pairs = [(new, old) for new, old in zip(mine, theirs, strict=True) if new != old]
    if not pairs:
        return True
    memo = {} if memo is None else memo
    try:
        for new, _old in pairs:
            if new not in memo:
                memo[new] = await embed(new)
        theirs_vectors = await asyncio.gather(*(embed(old) for _new, old in pairs))
    except _EMBED_ERRORS as exc:
        warn("history-embed", "cachekit: earlier turns not compared (a miss): %s", exc)
        return False
    from .verify import VerifyScope

    scope = VerifyScope(manifest.namespace, manifest.model, manifest.tenant)
    for (new, old), theirs_vector in zip(pairs, theirs_vectors, strict=True):
        cos = _cosine(memo[new], theirs_vector)
        if cos < HISTORY_THRESHOLD:
            return False
        if verifier is not None:
            try:
                accept = verifier.verify(new, old, cos, scope).accept
            except Exception as exc:  # noqa: BLE001 - a verifier bug must not serve
                warn("history-verify", "cachekit: the hit verifier failed: %r", exc)
                return False
            if accept is not True:
                return False
    return True


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norms = float(np.linalg.norm(x) * np.linalg.norm(y))
    return min(1.0, float(x @ y) / norms) if norms > 0 else 0.0
