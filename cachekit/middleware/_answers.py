"""Per API: is a recorded 200 response a whole, successful answer, and what did it cost?

The recorder (:mod:`._record`) has a body that is valid JSON or a stream whose last
event was terminated; whether that is worth storing depends on the API. Each reader
returns an :class:`Answer` (usage and model, so a hit's savings are priced) or the
reason the response is not stored; a final-event test says when a stream has said all
it will (a reader such as the openai SDK may close right after it):

* Chat and legacy completions: a stream is complete only with its ``data: [DONE]``; an
  ``{"error": ...}`` chunk is never stored.
* OpenAI Responses: a body whose ``status`` is not ``completed`` is not stored; a stream
  is complete only once ``response.completed`` arrived (there is no ``[DONE]``), and
  never with ``response.failed``, ``response.incomplete`` or ``error``. Usage and model
  come from the completed response.
* Anthropic Messages: a body must be a ``message``; a stream is complete at
  ``message_stop``, never with ``error``. Input tokens come from ``message_start``,
  output tokens from the last ``message_delta``.
* Embeddings: the usage is the input's ``prompt_tokens`` (no output tokens).
* Any other path: the body as it is, usage and model wherever an OpenAI or Anthropic
  shape puts them (the behaviour before APIs were told apart).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._usage import usage_of
from ._content import event_kind, model_of, model_of_events, sse_event, usage_of_events

__all__ = [
    "Answer",
    "FinalEvent",
    "JsonReader",
    "StreamReader",
    "chat_final",
    "chat_stream",
    "embeddings_json",
    "generic_final",
    "generic_json",
    "generic_stream",
    "messages_final",
    "messages_json",
    "messages_stream",
    "responses_final",
    "responses_json",
    "responses_stream",
]


@dataclass(frozen=True, slots=True)
class Answer:
    """A response worth storing: the tokens it reports and the model that answered."""

    usage: tuple[int, int] | None = None
    model: str | None = None


#: ``reader(parsed JSON body) -> Answer | reason not stored``
JsonReader = Callable[[Any], "Answer | str"]
#: ``reader(event blocks of parse_sse) -> Answer | reason not stored``
StreamReader = Callable[[list[str]], "Answer | str"]
#: ``final(event block) -> is it the event the API's streams end with?``
FinalEvent = Callable[[str], bool]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _first(value: int | None, otherwise: int | None) -> int | None:
    return value if value is not None else otherwise


def _get(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, Mapping) else None


# -- any API, and OpenAI chat / legacy completions ------------------------------------------


def generic_json(value: Any) -> Answer:
    return Answer(usage_of(value), model_of(value))


def generic_stream(events: list[str]) -> Answer:
    return Answer(usage_of_events(events), model_of_events(events))


def chat_final(block: str) -> bool:
    return sse_event(block).data.strip() == "[DONE]"


def generic_final(block: str) -> bool:
    """Any API's last event: a path of the app's own may speak any of them."""
    return chat_final(block) or responses_final(block) or messages_final(block)


def chat_stream(events: list[str]) -> Answer | str:
    if not chat_final(events[-1]):
        # A stream cut between two whole chunks looks well formed: only the marker
        # says the model finished.
        return "stream ended without data: [DONE]"
    for block in events:
        # Only a chunk that mentions an error is parsed: a long stream stores fast.
        if '"error"' in block and _get(sse_event(block).value, "error") is not None:
            return "stream carried an error"
    return generic_stream(events)


# -- OpenAI Responses -----------------------------------------------------------------------

#: Events after which a Responses stream is not an answer to replay.
_RESPONSE_FAILURES = frozenset({"response.failed", "response.incomplete", "error"})


def responses_final(block: str) -> bool:
    return event_kind(block) == "response.completed"


def responses_json(value: Any) -> Answer | str:
    status = _get(value, "status")
    if status is not None and status != "completed":
        # queued/in_progress (background), incomplete (cut at max_output_tokens), failed
        return f"response status {status}"
    if _get(value, "error") is not None:
        return "response has an error"
    return generic_json(value)


def responses_stream(events: list[str]) -> Answer | str:
    completed: str | None = None
    for block in events:
        kind = event_kind(block)
        if kind in _RESPONSE_FAILURES:
            return f"stream ended with {kind}"
        if kind == "response.completed":
            completed = block
    if completed is None:
        return "stream ended before response.completed"
    response = _get(sse_event(completed).value, "response")
    return Answer(usage_of(response), model_of(response))


# -- Anthropic Messages ---------------------------------------------------------------------


def messages_final(block: str) -> bool:
    return event_kind(block) == "message_stop"


def messages_json(value: Any) -> Answer | str:
    if _get(value, "type") != "message":
        return "body is not a message"
    return generic_json(value)


def messages_stream(events: list[str]) -> Answer | str:
    model: str | None = None
    tin = tout = None
    stopped = False
    for block in events:
        kind = event_kind(block)
        if kind == "error":
            return "stream ended with error"
        if kind == "message_start":
            message = _get(sse_event(block).value, "message")
            model = model_of(message)
            usage = _get(message, "usage")
            tin, tout = _int(_get(usage, "input_tokens")), _int(_get(usage, "output_tokens"))
        elif kind == "message_delta":
            # Counts in message_delta are cumulative: the last one is the total.
            usage = _get(sse_event(block).value, "usage")
            tout = _first(_int(_get(usage, "output_tokens")), tout)
            tin = _first(_int(_get(usage, "input_tokens")), tin)
        elif kind == "message_stop":
            stopped = True
    if not stopped:
        return "stream ended before message_stop"
    usage_pair = (tin, tout) if tin is not None and tout is not None else None
    return Answer(usage_pair, model)


# -- Embeddings -----------------------------------------------------------------------------


def embeddings_json(value: Any) -> Answer:
    tokens = _int(_get(_get(value, "usage"), "prompt_tokens"))
    return Answer((tokens, 0) if tokens is not None else None, model_of(value))
