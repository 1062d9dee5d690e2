"""The text of a cached answer, for a human to judge (the console) or an answer comparator
(the adaptive thresholds): read from the stored JSON, never by instantiating the classes
it names (looking at cached data must not run it)."""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = ["MAX_CHARS", "answer_text", "comparable_text"]

#: A review shows this much of an answer; the rest is cut with a marker.
MAX_CHARS: Final = 4000


def answer_text(raw: str | bytes | None) -> str | None:
    """What the cached payload says, as text (None when there is no payload)."""
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        data = _unwrap(text)
    except ValueError:
        return _cut(text)
    if isinstance(data, dict) and "status" in data and "headers" in data and "kind" in data:
        data = _http_body(data)
    if isinstance(data, list) and data and all(isinstance(d, dict) for d in data):
        # A recorded stream of the SDK's chunks (the decorator's streams).
        joined = "".join(_delta(d) for d in data)
        if joined:
            return _cut(joined)
    found = _text_of(data)
    if found is not None:
        return _cut(found)
    return _cut(json.dumps(data, ensure_ascii=False, indent=1, default=str))


def _unwrap(text: str) -> Any:
    """The stored JSON without the codec's envelopes (a stream's inner ones too);
    ValueError when it is not JSON."""
    envelope = json.loads(text)
    data = envelope.get("v") if isinstance(envelope, dict) and "t" in envelope else envelope
    if isinstance(envelope, dict) and envelope.get("t") == "stream" and isinstance(data, list):
        data = [d.get("v") if isinstance(d, dict) else d for d in data]  # inner envelopes
    return data


def _http_body(data: dict[str, Any]) -> Any:
    """A middleware/proxy/transport response: its JSON body, or its SSE events' deltas."""
    body = data.get("body")
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return body
    events = data.get("events")
    if isinstance(events, list):
        parts: list[str] = []
        for event in events:
            for line in str(event).splitlines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                try:
                    parsed = json.loads(payload)
                except ValueError:
                    continue
                if isinstance(parsed, dict):
                    parts.append(_delta(parsed))
        return "".join(parts)
    return data


def _delta(chunk: dict[str, Any]) -> str:
    """The text one streamed event adds (OpenAI chat/completions, Responses, Anthropic)."""
    for choice in chunk.get("choices") or ():
        if isinstance(choice, dict):
            delta = choice.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                return str(delta["content"])
            if isinstance(choice.get("text"), str):
                return str(choice["text"])
    if chunk.get("type") == "response.output_text.delta" and isinstance(chunk.get("delta"), str):
        return str(chunk["delta"])
    delta = chunk.get("delta")
    if isinstance(delta, dict) and isinstance(delta.get("text"), str):
        return str(delta["text"])  # anthropic content_block_delta
    return ""


def _text_of(data: Any) -> str | None:
    """The answer text of a whole response object (chat, completion, Responses, Messages)."""
    if isinstance(data, str):
        return data
    if not isinstance(data, dict):
        return None
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        first = choices[0]
        message = first.get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            return str(message["content"])
        if isinstance(first.get("text"), str):
            return str(first["text"])
    if isinstance(data.get("output_text"), str):
        return str(data["output_text"])
    texts: list[str] = []
    for block in (data.get("content") or []) if isinstance(data.get("content"), list) else []:
        if isinstance(block, dict) and isinstance(block.get("text"), str):
            texts.append(block["text"])  # anthropic Message
    for item in data.get("output") or [] if isinstance(data.get("output"), list) else []:
        for part in (item.get("content") or []) if isinstance(item, dict) else []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])  # OpenAI Responses
    return "".join(texts) if texts else None


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + " [... cut]"


def comparable_text(raw: str | bytes | None) -> str | None:
    """The whole answer, for comparing two answers: its text and any tool calls, never
    cut. None when the payload holds nothing readable as an answer: no evidence is better
    than evidence from a JSON dump (ids, timestamps) or an empty string (a tool call read
    as no text)."""
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        data = _unwrap(text)
    except ValueError:
        return None
    parts: list[str] = []
    _collect(data, parts)
    found = "".join(parts)
    return found if found.strip() else None


def _collect(data: Any, parts: list[str]) -> None:
    """Append the answer text and tool calls in ``data`` (any stored shape) to ``parts``."""
    if isinstance(data, str):
        parts.append(data)
    elif isinstance(data, list):
        for item in data:  # stream chunks, LangChain generations
            _collect(item, parts)
    elif isinstance(data, dict):
        _collect_dict(data, parts)


def _collect_dict(data: dict[str, Any], parts: list[str]) -> None:
    if "status" in data and "headers" in data and "kind" in data:  # an HTTP response
        body = data.get("body")
        if isinstance(body, str):
            try:
                _collect(json.loads(body), parts)
            except ValueError:
                parts.append(body)
        for event in data.get("events") or ():
            for line in str(event).splitlines():
                if line.startswith("data:"):
                    try:
                        parsed = json.loads(line[5:].strip())
                    except ValueError:
                        continue
                    if isinstance(parsed, dict):
                        _collect_dict(parsed, parts)
        return
    if data.get("lc") == 1 and isinstance(data.get("kwargs"), dict):  # LangChain dumpd
        kwargs = data["kwargs"]
        message = kwargs.get("message")
        if isinstance(message, dict) and isinstance(message.get("kwargs"), dict):
            inner = message["kwargs"]
            _collect(inner.get("content"), parts)
            for call in inner.get("tool_calls") or ():
                if isinstance(call, dict):
                    parts.append(_tool(call.get("name"), call.get("args")))
        elif isinstance(kwargs.get("text"), str):
            parts.append(kwargs["text"])
        return
    for choice in data.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        for key in ("message", "delta"):
            message = choice.get(key)
            if isinstance(message, dict):
                if isinstance(message.get("content"), str):
                    parts.append(message["content"])
                for call in message.get("tool_calls") or ():
                    fn = call.get("function") if isinstance(call, dict) else None
                    if isinstance(fn, dict):
                        parts.append(_tool(fn.get("name"), fn.get("arguments")))
        if isinstance(choice.get("text"), str):
            parts.append(choice["text"])
    kind = data.get("type")
    if kind == "response.output_text.delta" and isinstance(data.get("delta"), str):
        parts.append(data["delta"])
    delta = data.get("delta")
    if isinstance(delta, dict):  # anthropic stream: text and tool-input deltas
        for key in ("text", "partial_json"):
            if isinstance(delta.get(key), str):
                parts.append(delta[key])
    block = data.get("content_block")
    if isinstance(block, dict) and block.get("type") == "tool_use":
        parts.append(_tool(block.get("name"), None))
    if isinstance(data.get("output_text"), str):
        parts.append(data["output_text"])
    elif isinstance(data.get("output"), list):  # OpenAI Responses (non-stream)
        for item in data["output"]:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "function_call":
                parts.append(_tool(item.get("name"), item.get("arguments")))
            for part in item.get("content") or ():
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    parts.append(part["text"])
    if isinstance(data.get("content"), list):  # anthropic Message
        for block in data["content"]:
            if not isinstance(block, dict):
                continue
            if isinstance(block.get("text"), str):
                parts.append(block["text"])
            if block.get("type") == "tool_use":
                parts.append(_tool(block.get("name"), block.get("input")))


def _tool(name: Any, arguments: Any) -> str:
    if not isinstance(arguments, str) and arguments is not None:
        arguments = json.dumps(arguments, sort_keys=True, ensure_ascii=False)
    return f"\n[tool {name or ''}({arguments or ''})]"
