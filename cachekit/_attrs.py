"""Records as JSON-ready dicts: one helper for the ``to_dict``/``explain`` of small records."""

from __future__ import annotations

from typing import Any

__all__ = ["pick_attrs"]


def pick_attrs(obj: object, *names: str) -> dict[str, Any]:
    """``{name: obj.<name>}`` for each of ``names``, in that order (fields or properties)."""
    return {name: getattr(obj, name) for name in names}
