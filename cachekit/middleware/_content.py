"""What a recorded response body says: its SSE events, token usage and model."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from .._usage import usage_of

__all__ = ["is_final_event", "model_of", "model_of_events", "parse_sse", "usage_of_events"]

_NEWLINES = re.compile(r"\r\n|\r")


def parse_sse(data: bytes) -> list[str] | None:
    """Split a complete SSE body into its events; None when the last event is cut off.

    Per the SSE spec an event ends with a blank line; trailing bytes without one are an
    event the client would drop, so a body ending that way is incomplete. Comment-only
    blocks (keep-alives) are not kept.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = _NEWLINES.sub("\n", text)
    if not text.strip():
        return None
    blocks = text.split("\n\n")
    if blocks[-1].strip("\n"):
        return None
    events = []
    for block in blocks:
        block = block.strip("\n")
        if not block:
            continue
        if all(line.startswith(":") for line in block.split("\n")):
            continue
        events.append(block)
    return events or None


#: ``event:`` types after which a stream says nothing more (Anthropic, OpenAI Responses).
_FINAL_TYPES = frozenset({"message_stop", "response.completed"})


def is_final_event(event: str) -> bool:
    """Is this the event a stream of its API ends with (``data: [DONE]`` for chat)?"""
    for line in event.split("\n"):
        name, _, value = line.partition(":")
        value = value.strip()
        if (name == "data" and value == "[DONE]") or (name == "event" and value in _FINAL_TYPES):
            return True
    return False


def _event_data(events: list[str], marker: str) -> Iterator[Any]:
    """The parsed ``data:`` payloads of the events that mention ``marker``, in order."""
    for event in events:
        if marker not in event:
            continue
        for line in event.split("\n"):
            if line.startswith("data:"):
                try:
                    yield json.loads(line[5:])
                except ValueError:
                    continue


def usage_of_events(events: list[str]) -> tuple[int, int] | None:
    """Token usage of a stream: OpenAI sends it in the last chunk with ``include_usage``."""
    for value in _event_data(events[::-1], '"usage"'):
        usage = usage_of(value)
        if usage is not None:
            return usage
    return None


def model_of(value: Any) -> str | None:
    """The ``model`` an OpenAI-style response (or stream chunk) says answered it."""
    model = value.get("model") if isinstance(value, dict) else None
    return model if isinstance(model, str) and model else None


def model_of_events(events: list[str]) -> str | None:
    """The first ``model`` of a stream's chunks (every OpenAI chunk repeats it)."""
    for value in _event_data(events, '"model"'):
        model = model_of(value)
        if model is not None:
            return model
    return None
