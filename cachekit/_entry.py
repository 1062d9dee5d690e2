"""What a lookup reads back: the entry and the outcome a later store needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Entry", "LookupOutcome", "int_or_none", "text"]


@dataclass(frozen=True, slots=True)
class Entry:
    """A cached answer as read back from Redis."""

    entry_id: str
    payload: bytes
    created: float
    prompt: str | None


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

    @property
    def storable(self) -> bool:
        """False when the counters could not be read as cachekit's (nothing is stored)."""
        return self.generation >= 0 and self.epoch >= 0


def text(value: Any) -> str:
    # errors="replace": a field written by something else may not be UTF-8; it is text
    # for reports (the matched prompt), never a reason for a call to fail.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def int_or_none(value: Any) -> int | None:
    """An integer field as cachekit writes it, or None for anything else (foreign data)."""
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
