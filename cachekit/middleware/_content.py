"""What a recorded response body says: its SSE events, token usage and model.

These readers know no API: :mod:`._answers` says, per API, which events make a stream
complete and where its usage is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from .._usage import usage_of

__all__ = [
    "SseEvent",
    "event_kind",
    "model_of",
    "model_of_events",
    "parse_sse",
    "sse_event",
    "usage_of_events",
]

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


class SseEvent:
    """One event of a recorded stream: its ``event:`` name and ``data:`` text; ``value``
    is that text as JSON (None when it is not JSON: ``[DONE]``, or no data), parsed on
    first use: a reader looks at the few events it needs, not at every delta."""

    __slots__ = ("_value", "data", "name")

    def __init__(self, name: str | None, data: str) -> None:
        self.name = name
        self.data = data
        self._value: Any = _UNPARSED

    @property
    def value(self) -> Any:
        if self._value is _UNPARSED:
            try:
                self._value = json.loads(self.data) if self.data else None
            except (ValueError, RecursionError):
                self._value = None
        return self._value

    @property
    def kind(self) -> str | None:
        """What the event says it is: its ``event:`` name, else its data's ``"type"``."""
        if self.name:
            return self.name
        kind = self.value.get("type") if isinstance(self.value, dict) else None
        return kind if isinstance(kind, str) else None


_UNPARSED: Any = object()


def event_kind(block: str) -> str | None:
    """:attr:`SseEvent.kind` of an event block, without reading its data when its first
    line names it (as typed APIs send them): deltas, the bulk of a stream, cost a slice."""
    if block.startswith("event:"):
        end = block.find("\n")
        name = (block[6:] if end < 0 else block[6:end]).strip()
        if name:
            return name
    return sse_event(block).kind


def sse_event(block: str) -> SseEvent:
    """Read one event block of :func:`parse_sse` as the SSE spec does: the last
    ``event:`` line names it, its ``data:`` lines are joined by newlines."""
    name: str | None = None
    lines: list[str] = []
    for line in block.split("\n"):
        field, _, rest = line.partition(":")
        rest = rest.removeprefix(" ")
        if field == "event":
            name = rest
        elif field == "data":
            lines.append(rest)
    return SseEvent(name, "\n".join(lines))
