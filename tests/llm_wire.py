"""The wire formats of OpenAI Responses and Anthropic Messages, for ``tests/llm_server.py``.

Pure functions: a request body and the answer text in, the JSON body or the list of
typed stream events (``{"type": ...}`` dicts, sent as ``event: <type>`` + ``data:``)
out, shaped as the real APIs send them, so the real SDKs parse them (the ``openai``
``Response`` / ``ResponseStreamEvent`` types, ``anthropic``'s ``Message`` and the
``messages.stream()`` accumulator).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "anthropic_error",
    "anthropic_error_event",
    "input_text",
    "messages_body",
    "messages_events",
    "messages_prompt_tokens",
    "response_body",
    "response_events",
    "response_failed_event",
    "responses_prompt_tokens",
]

#: ``text -> number of tokens``, ``text -> word pieces``: the server's own helpers.
Count = Callable[[str], int]
Split = Callable[[str], list[str]]


def _parts_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        )
    return ""


def input_text(items: Any) -> str:
    """The last user text of a Responses ``input`` (a string, or a list of items)."""
    if isinstance(items, str):
        return items
    if isinstance(items, list):
        for item in reversed(items):
            if isinstance(item, dict) and item.get("role") == "user":
                return _parts_text(item.get("content"))
    return ""


# -- OpenAI Responses -----------------------------------------------------------------------


def responses_prompt_tokens(body: dict[str, Any], count: Count) -> int:
    items = body.get("input")
    texts = [items] if isinstance(items, str) else []
    if isinstance(items, list):
        texts = [_parts_text(i.get("content")) for i in items if isinstance(i, dict)]
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        texts.append(instructions)
    return sum(count(t) for t in texts)


def response_body(
    body: dict[str, Any],
    *,
    response_id: str,
    text: str,
    truncated: bool,
    usage: tuple[int, int],
    done: bool = True,
) -> dict[str, Any]:
    """A ``response`` object: completed (or incomplete when ``truncated``), or still in
    progress with no output when not ``done`` (the first events of a stream)."""
    status = ("incomplete" if truncated else "completed") if done else "in_progress"
    message = _message_item(response_id, text, "completed")
    tin, tout = usage
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if truncated and done else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body.get("model"),
        "output": [message] if done else [],
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": {
            "input_tokens": tin,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": tout,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": tin + tout,
        }
        if done
        else None,
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def _message_item(response_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "type": "message",
        "id": "msg_" + response_id.removeprefix("resp_"),
        "status": status,
        "role": "assistant",
        "content": content if status == "completed" else [],
    }


def response_events(
    body: dict[str, Any],
    *,
    response_id: str,
    text: str,
    truncated: bool,
    usage: tuple[int, int],
    split: Split,
) -> list[dict[str, Any]]:
    """The typed events of a streamed response, ending with ``response.completed`` (or
    ``response.incomplete``); ``sequence_number`` is added by the sender."""
    start = response_body(
        body, response_id=response_id, text="", truncated=False, usage=usage, done=False
    )
    final = response_body(
        body, response_id=response_id, text=text, truncated=truncated, usage=usage
    )
    item = _message_item(response_id, text, "completed")
    where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
    empty_part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": start},
        {"type": "response.in_progress", "response": start},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": _message_item(response_id, "", "in_progress"),
        },
        {"type": "response.content_part.added", **where, "part": empty_part},
    ]
    events += [
        {"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
        for piece in split(text)
    ]
    events += [
        {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": item["content"][0]},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {
            "type": "response.incomplete" if truncated else "response.completed",
            "response": final,
        },
    ]
    return events


def response_failed_event(events: list[dict[str, Any]]) -> dict[str, Any]:
    """What ends a stream the model failed: ``response.failed`` instead of completed."""
    response = dict(events[-1]["response"])
    response.update(
        status="failed",
        output=[],
        usage=None,
        error={"code": "server_error", "message": "Injected stream failure"},
    )
    return {"type": "response.failed", "response": response}


# -- Anthropic Messages ---------------------------------------------------------------------


def messages_prompt_tokens(body: dict[str, Any], count: Count) -> int:
    texts = [_parts_text(m.get("content")) for m in body["messages"] if isinstance(m, dict)]
    texts.append(_parts_text(body.get("system")))
    return sum(count(t) for t in texts)


def messages_body(
    body: dict[str, Any], *, message_id: str, text: str, truncated: bool, usage: tuple[int, int]
) -> dict[str, Any]:
    tin, tout = usage
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [{"type": "text", "text": text}],
        "stop_reason": "max_tokens" if truncated else "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": tin,
            "output_tokens": tout,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def messages_events(
    body: dict[str, Any],
    *,
    message_id: str,
    text: str,
    truncated: bool,
    usage: tuple[int, int],
    split: Split,
) -> list[dict[str, Any]]:
    """``message_start`` ... ``message_stop``, with a ``ping`` as the API sends one."""
    stop = "max_tokens" if truncated else "end_turn"
    start = messages_body(body, message_id=message_id, text="", truncated=False, usage=usage)
    start.update(content=[], stop_reason=None)
    start["usage"] = {**start["usage"], "output_tokens": 1}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
        for p in split(text)
    ]
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": usage[1]},
        },
        {"type": "message_stop"},
    ]
    return events


def anthropic_error(kind: str, message: str) -> dict[str, Any]:
    """Anthropic's error body (``kind``: ``invalid_request_error``, ``api_error``, ...)."""
    return {"type": "error", "error": {"type": kind, "message": message}}


def anthropic_error_event(events: list[dict[str, Any]]) -> dict[str, Any]:
    """What ends a stream the API gave up on (``overloaded_error`` mid-stream)."""
    return anthropic_error("overloaded_error", "Injected stream failure")
