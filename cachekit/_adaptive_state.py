"""The adaptive thresholds' evidence in Redis, a worker's copy of it, and the record of a
check (see :mod:`cachekit.adaptive` for the policy)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ._answer_text import comparable_text
from .adaptive import AdaptiveThreshold, Evidence

if TYPE_CHECKING:
    from .cache import LLMCache

__all__ = ["AdaptiveCheck", "EvidenceStore", "evidence_key", "record_check"]

log = logging.getLogger("cachekit")

#: Scopes whose evidence a worker keeps a copy of (the oldest copy goes first).
_MAX_COPIES: Final = 10_000
#: A scope's evidence expires this long after its last check.
EVIDENCE_TTL_S: Final = 30 * 86400


def evidence_key(namespace: str, scope_digest: str, bin_width: float) -> str:
    """``ck:{<ns>}:adapt:w<width in 1/1000>:<scope>``: per namespace and scope, pooled over
    tenants (counts only), in the namespace's own slot like its epoch. The bin width is
    in the key: workers set up with another width never misread each other's bins."""
    return f"ck:{{{namespace}}}:adapt:w{round(bin_width * 1000)}:{scope_digest}"


@dataclass(frozen=True, slots=True)
class AdaptiveCheck:
    """A candidate the policy did not serve: the call runs, then its answer is compared."""

    key: str
    similarity: float
    #: The cached entry's payload, to compare the fresh answer with.
    payload: str | bytes
    entry_id: str


class EvidenceStore:
    """A worker's copies of the evidence, reread from Redis every ``refresh_s``."""

    def __init__(self, settings: AdaptiveThreshold) -> None:
        self.settings = settings
        self._copies: dict[str, tuple[Evidence, float]] = {}

    async def get(self, client: Any, key: str) -> Evidence:
        now = time.monotonic()
        held = self._copies.get(key)
        if held is not None and now - held[1] < self.settings.refresh_s:
            return held[0]
        evidence = Evidence.from_hash(await client.hgetall(key) or {}, self.settings.bin_width)
        self._copies.pop(key, None)
        self._copies[key] = (evidence, now)
        while len(self._copies) > _MAX_COPIES:
            self._copies.pop(next(iter(self._copies)))
        return evidence

    async def add(self, client: Any, key: str, similarity: float, same: bool) -> None:
        """Count one check in Redis (every worker's evidence) and in this worker's copy."""
        held = self._copies.get(key)
        evidence = held[0] if held is not None else Evidence(self.settings.bin_width)
        async with client.pipeline(transaction=False) as pipe:  # one key: one slot
            pipe.hincrby(key, Evidence.field(evidence.bin_of(similarity), same), 1)
            pipe.expire(key, EVIDENCE_TTL_S)  # a scope no longer used goes
            await pipe.execute()
        evidence.add(similarity, same)


async def record_check(cache: LLMCache, check: AdaptiveCheck, fresh_payload: str) -> None:
    """Compare the fresh answer with the cached one and count the outcome (background)."""
    store = cache.evidence
    if store is None:
        return
    cached, fresh = comparable_text(check.payload), comparable_text(fresh_payload)
    if cached is None or fresh is None:
        return
    try:
        same: Any = store.settings.comparator(cached, fresh)
        if inspect.isawaitable(same):
            async with asyncio.timeout(store.settings.compare_timeout_s):
                same = await same
    except Exception as exc:  # noqa: BLE001 - a comparator's failure is no evidence
        log.warning("cachekit: the answer comparator failed (%s: %.200s)", type(exc).__name__, exc)
        return
    await store.add(cache.redis, check.key, check.similarity, bool(same))
