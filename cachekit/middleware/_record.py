"""The response side of the HTTP middlewares: capture a response, store it, replay it.

A response is recorded while it is forwarded (never delaying a byte to the client) and
becomes a cache entry only when it is worth reusing: status 200, a JSON or
``text/event-stream`` body, not compressed, no ``Cache-Control: no-store``/``private``
from the app, under the size cap, and complete: the app sent its last body message and,
for a stream, the last event was terminated. Anything else is forwarded and forgotten.

The stored payload is JSON data through :mod:`cachekit._codec` (never pickle)::

    {"kind": "json", "status": 200, "headers": {"content-type": ...}, "body": "<JSON text>",
     "replay": [["x-request-model", "..."], ...]}
    {"kind": "sse",  "status": 200, "headers": {"content-type": ...}, "events": ["data: ...", ...]}

``replay`` holds the app's own response headers that a hit sends again: everything but
hop-by-hop headers, ``Set-Cookie``, ``Date``, ``Server``, the framing headers
(``Content-Length``/``-Encoding``, recomputed) and the fields the app marked
``private="..."`` or ``no-cache="..."``. Entries written before it existed have none and
still decode; older readers ignore it.

JSON bodies are kept as the exact text the app sent, so a hit is byte-identical to the
original answer. SSE events are kept verbatim (``event:``/``id:`` lines included), so a
replay is the same stream, ending with the same ``data: [DONE]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from .. import _codec
from ..decorator import _usage_of
from ..errors import CodecError

__all__ = ["CachedResponse", "Recorder", "cache_directives", "parse_sse"]

Kind = Literal["json", "sse"]

_NEWLINES = re.compile(r"\r\n|\r")

#: Response headers a hit never replays. Hop-by-hop headers belong to one connection
#: (RFC 9110 7.6.1); a cookie or the date belong to one response, never to everyone
#: served from the cache; framing is recomputed for the replayed body; the server adds
#: its own Server; X-Cache and Age are ours.
_NOT_REPLAYED = frozenset(
    {
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "set-cookie",
        "set-cookie2",
        "date",
        "server",
        "content-type",
        "content-length",
        "content-encoding",
        "age",
        "x-cache",
        "x-cache-match",
        "x-cache-similarity",
    }
)
_DIRECTIVE = re.compile(r'\s*([^\s=,]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,]*))?\s*(?:,|$)')


def _mime(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def response_kind(content_type: str | None) -> Kind | None:
    """Which kind of cache entry a response of this content type can become."""
    if not content_type:
        return None
    mime = _mime(content_type)
    if mime == "text/event-stream":
        return "sse"
    if mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json")):
        return "json"
    return None


def cache_directives(value: str) -> list[tuple[str, str | None]]:
    """``Cache-Control`` directives (names lower-cased) with their unquoted arguments.

    Quoted arguments may contain commas (``private="X-A, X-B"``), so this is not a split.
    Repeated directives are all kept, in order.
    """
    out: list[tuple[str, str | None]] = []
    for match in _DIRECTIVE.finditer(value):
        name, arg = match.group(1).lower(), match.group(2)
        if arg is not None:
            arg = arg.strip()
            if arg.startswith('"') and arg.endswith('"') and len(arg) >= 2:
                arg = re.sub(r"\\(.)", r"\1", arg[1:-1])
        out.append((name, arg))
    return out


def _field_names(arg: str | None) -> set[str]:
    return {n.strip().lower() for n in (arg or "").split(",") if n.strip()}


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


def _usage_of_events(events: list[str]) -> tuple[int, int] | None:
    """Token usage of a stream: OpenAI sends it in the last chunk with ``include_usage``."""
    for event in reversed(events):
        if '"usage"' not in event:
            continue
        for line in event.split("\n"):
            if not line.startswith("data:"):
                continue
            try:
                value = json.loads(line[5:])
            except ValueError:
                continue
            usage = _usage_of(value)
            if usage is not None:
                return usage
    return None


def _model_of(value: Any) -> str | None:
    """The ``model`` an OpenAI-style response (or stream chunk) says answered it."""
    model = value.get("model") if isinstance(value, dict) else None
    return model if isinstance(model, str) and model else None


def _model_of_events(events: list[str]) -> str | None:
    """The first ``model`` of a stream's chunks (every OpenAI chunk repeats it)."""
    for event in events:
        if '"model"' not in event:
            continue
        for line in event.split("\n"):
            if not line.startswith("data:"):
                continue
            try:
                value = json.loads(line[5:])
            except ValueError:
                continue
            model = _model_of(value)
            if model is not None:
                return model
    return None


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """A response as stored in, and replayed from, the cache."""

    kind: Kind
    status: int
    content_type: str
    body: str | None = None
    events: tuple[str, ...] | None = None
    #: Token usage reported by the response (counted at store time, not stored here).
    usage: tuple[int, int] | None = None
    #: The model the response names: prices ``usage`` when the request named none.
    model: str | None = None
    #: The app's own headers a hit replays (lower-case names, in the app's order).
    replay: tuple[tuple[str, str], ...] = ()

    def encode(self) -> str:
        data: dict[str, Any] = {
            "kind": self.kind,
            "status": self.status,
            "headers": {"content-type": self.content_type},
        }
        if self.replay:
            data["replay"] = [list(pair) for pair in self.replay]
        if self.kind == "json":
            data["body"] = self.body
        else:
            data["events"] = list(self.events or ())
        return _codec.encode(data)

    @classmethod
    def decode(cls, payload: bytes | str) -> CachedResponse:
        """Read a stored payload back; CodecError for anything that is not one of ours."""
        data = _codec.decode(payload)
        if not isinstance(data, dict):
            raise CodecError("cached HTTP response is not an object")
        kind, status, headers = data.get("kind"), data.get("status"), data.get("headers")
        if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status < 600:
            raise CodecError("cached HTTP response has no valid status")
        if not isinstance(headers, dict) or not isinstance(headers.get("content-type"), str):
            raise CodecError("cached HTTP response has no content-type")
        content_type = headers["content-type"]
        raw_replay = data.get("replay", [])  # absent in entries written before it existed
        if not isinstance(raw_replay, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
            for p in raw_replay
        ):
            raise CodecError("cached HTTP response has malformed replay headers")
        replay = tuple((name, value) for name, value in raw_replay)
        if kind == "json":
            body = data.get("body")
            if not isinstance(body, str):
                raise CodecError("cached JSON response has no body text")
            return cls("json", status, content_type, body=body, replay=replay)
        if kind == "sse":
            events = data.get("events")
            if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
                raise CodecError("cached SSE response has no event list")
            return cls("sse", status, content_type, events=tuple(events), replay=replay)
        raise CodecError(f"cached HTTP response has unknown kind {kind!r}")

    def body_bytes(self) -> bytes:
        if self.kind == "json":
            return (self.body or "").encode("utf-8")
        return "".join(f"{event}\n\n" for event in self.events or ()).encode("utf-8")

    def headers(self, body_length: int) -> list[tuple[bytes, bytes]]:
        """Replay headers (the ``X-Cache`` family is added by the caller)."""
        headers = [(b"content-type", self.content_type.encode("latin-1"))]
        headers.extend((n.encode("latin-1"), v.encode("latin-1")) for n, v in self.replay)
        if self.kind == "json":
            headers.append((b"content-length", str(body_length).encode()))
        elif not any(name == "cache-control" for name, _ in self.replay):
            # What SSE servers send: intermediaries must not buffer or store the stream.
            headers.append((b"cache-control", b"no-cache"))
        return headers


def _replayable(
    headers: list[tuple[str, str]], directives: list[tuple[str, str | None]]
) -> tuple[tuple[str, str], ...]:
    """The headers of a stored response that a hit sends again."""
    # private="X-A" / no-cache="X-A": those fields are the first client's alone (RFC 9111
    # 5.2.2.4, 5.2.2.7), the rest of the response may be shared.
    drop: set[str] = set()
    for directive, arg in directives:
        if directive in ("private", "no-cache"):
            drop |= _field_names(arg)
    for name, value in headers:
        if name == "connection":  # headers it names are hop-by-hop too
            drop |= _field_names(value)
    return tuple(
        (name, value)
        for name, value in headers
        if name not in _NOT_REPLAYED and name not in drop and not name.startswith("proxy-")
    )


class Recorder:
    """Collects one response while it is forwarded; ``result()`` says what to store."""

    __slots__ = (
        "_chunks",
        "_size",
        "complete",
        "content_type",
        "kind",
        "max_bytes",
        "reason",
        "replay",
    )

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.kind: Kind | None = None
        self.content_type = ""
        self.replay: tuple[tuple[str, str], ...] = ()
        self.reason: str | None = "no response"
        self.complete = False
        self._chunks: list[bytes] = []
        self._size = 0

    @property
    def recording(self) -> bool:
        return self.reason is None

    def start(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        """The response's status line and headers (names in any case)."""
        self.reason = None
        content_type = encoding = control = ""
        pairs: list[tuple[str, str]] = []
        for name, value in headers:
            lname = name.lower()
            pairs.append((lname, value))
            if lname == "content-type":
                content_type = value
            elif lname == "content-encoding":
                encoding = value.strip().lower()
            elif lname == "cache-control":
                control += "," + value
        directives = cache_directives(control)
        names = {name for name, _ in directives}
        if status != 200:
            self.reason = f"status {status}"
        elif (kind := response_kind(content_type)) is None:
            self.reason = "content-type not cacheable"
        elif encoding and encoding != "identity":
            # A compressed body cannot be stored as JSON text or events.
            self.reason = "content-encoding"
        elif "no-store" in names or ("private", None) in directives:
            # Bare private: the whole response is for this client alone.
            self.reason = "response cache-control"
        else:
            self.kind = kind
            self.content_type = content_type
            self.replay = _replayable(pairs, directives)

    def add(self, chunk: bytes) -> None:
        if self.reason is not None or not chunk:
            return
        self._size += len(chunk)
        if self._size > self.max_bytes:
            self.reason = "response too large"
            self._chunks = []
            return
        self._chunks.append(bytes(chunk))

    def result(self) -> CachedResponse | None:
        """The response to store, or None (``reason`` says why)."""
        if self.reason is not None:
            return None
        if not self.complete:
            self.reason = "incomplete response"
            return None
        data = b"".join(self._chunks)
        self._chunks = []
        if self.kind == "json":
            try:
                text = data.decode("utf-8")
                value = json.loads(text)
            except (UnicodeDecodeError, ValueError):
                self.reason = "response body is not JSON"
                return None
            return CachedResponse(
                "json",
                200,
                self.content_type,
                body=text,
                usage=_usage_of(value),
                model=_model_of(value),
                replay=self.replay,
            )
        events = parse_sse(data)
        if events is None:
            self.reason = "incomplete event stream"
            return None
        return CachedResponse(
            "sse",
            200,
            self.content_type,
            events=tuple(events),
            usage=_usage_of_events(events),
            model=_model_of_events(events),
            replay=self.replay,
        )
