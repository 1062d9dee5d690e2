"""Token usage a response reports (for the savings a hit counts)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def usage_of(value: Any) -> tuple[int, int] | None:
    """Input/output tokens the response reports (OpenAI or Anthropic shapes)."""
    usage = value.get("usage") if isinstance(value, Mapping) else getattr(value, "usage", None)
    if usage is None:
        return None

    def get(name: str) -> Any:
        return usage.get(name) if isinstance(usage, Mapping) else getattr(usage, name, None)

    tin = get("prompt_tokens")
    tout = get("completion_tokens")
    if tin is None:
        tin, tout = get("input_tokens"), get("output_tokens")
    if isinstance(tin, int) and isinstance(tout, int):
        return tin, tout
    return None


def stream_usage(items: list[Any]) -> tuple[int, int] | None:
    """Usage from the last chunk that carries one (OpenAI ``include_usage``)."""
    for item in reversed(items):
        usage = usage_of(item)
        if usage is not None:
            return usage
    return None
