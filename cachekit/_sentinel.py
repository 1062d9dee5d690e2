"""The library's one "not given" sentinel (a module of its own: everything imports it)."""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["NOT_GIVEN", "NotGiven"]


class NotGiven(enum.Enum):
    """Sentinel type: "not given" where ``None`` is a meaningful value (``threshold=None``
    means exact matches only; omitted means the embedder's calibrated default)."""

    token = 0

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven.token
