"""What a lookup returns: the entry and the outcome a later store needs.

The fields of the hash an entry is read from are declared in ``_schema``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Entry", "LookupOutcome"]


@dataclass(frozen=True, slots=True)
class Entry:
    """A cached answer as read back from Redis."""

    entry_id: str
    payload: bytes
    created: float
    prompt: str | None
    #: The model that answered, the (input, output) tokens it cost and whether those are
    #: estimates: what serving it saved.
    model: str | None = None
    tokens: tuple[int, int] | None = None
    estimated: bool = False
    #: Milliseconds the entry has left in Redis (None: no expiry, or not read).
    pttl: int | None = None


@dataclass(slots=True)
class LookupOutcome:
    """What a lookup found, plus what the store after a miss needs (no second embed)."""

    generation: int
    epoch: int
    entry: Entry | None = None
    layer: str | None = None
    similarity: float | None = None
    vector: np.ndarray | None = None
    reason: str | None = None
    #: The hit verifier's decision on the best candidate it was asked about: "accepted"
    #: (served) or "rejected" (a miss), with the signal it named and its score.
    verdict: str | None = None
    verify_reason: str | None = None
    verify_score: float | None = None
    #: A candidate the adaptive thresholds chose to check instead of serving
    #: (``cachekit._adaptive_state.AdaptiveCheck``): the call runs, then is compared.
    check: Any = None

    @property
    def storable(self) -> bool:
        """False when the counters could not be read as cachekit's (nothing is stored)."""
        return self.generation >= 0 and self.epoch >= 0
