"""The text of a cached answer (see :mod:`cachekit._answer_text`, which the adaptive
thresholds' answer comparison shares)."""

from __future__ import annotations

from .._answer_text import MAX_CHARS, answer_text

__all__ = ["MAX_CHARS", "answer_text"]
