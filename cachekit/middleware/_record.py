"""The response side of the HTTP middlewares: capture a response, store it, replay it.

A response is recorded while it is forwarded (never delaying a byte to the client) and
becomes a cache entry only when it is worth reusing: status 200, a JSON or
``text/event-stream`` body, not compressed, no ``Cache-Control: no-store``/``private``
from the app, under the size cap, and complete: the app sent its last body message, for
a stream the last event was terminated, and the request's API (:mod:`._answers`) calls
it a whole answer (a chat stream's ``[DONE]``, ``response.completed``,
``message_stop``). Anything else is forwarded and forgotten.

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
replay is the same stream, ending with the same ``data: [DONE]`` (or ``message_stop``...).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .. import _codec
from ..errors import CodecError
from ._answers import Answer
from ._apis import GENERIC, Api
from ._content import parse_sse
from ._headers import Kind, cache_directives, replayable, response_kind

__all__ = ["CachedResponse", "Recorder", "cache_directives", "parse_sse"]


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


class Recorder:
    """Collects one response while it is forwarded; ``result()`` says what to store."""

    __slots__ = (
        "_chunks",
        "_events",
        "_size",
        "api",
        "complete",
        "content_type",
        "kind",
        "max_bytes",
        "reason",
        "replay",
    )

    def __init__(self, max_bytes: int, api: Api = GENERIC) -> None:
        self.max_bytes = max_bytes
        #: The request's API (``api_for(path)``): what a whole answer looks like.
        self.api = api
        self.kind: Kind | None = None
        self.content_type = ""
        self.replay: tuple[tuple[str, str], ...] = ()
        self.reason: str | None = "no response"
        self.complete = False
        self._chunks: list[bytes] = []
        self._size = 0
        #: (size, events) of the last parse: a stream closed after its final event is
        #: parsed once, for ``stream_finished`` and ``result`` alike.
        self._events: tuple[int, list[str] | None] | None = None

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
            self.replay = replayable(pairs, directives)

    def add(self, chunk: bytes) -> None:
        if self.reason is not None or not chunk:
            return
        self._size += len(chunk)
        if self._size > self.max_bytes:
            self.reason = "response too large"
            self._chunks = []
            return
        self._chunks.append(bytes(chunk))

    def stream_finished(self) -> bool:
        """Has an event stream sent its API's final event? A reader (the openai SDK) may
        stop and close at ``data: [DONE]`` before it reads the end of the body."""
        if self.reason is not None or self.kind != "sse":
            return False
        events = self._parsed()
        return bool(events) and self.api.is_final(events[-1])  # type: ignore[index]

    def _parsed(self) -> list[str] | None:
        if self._events is None or self._events[0] != self._size:
            self._events = (self._size, parse_sse(b"".join(self._chunks)))
        return self._events[1]

    def result(self) -> CachedResponse | None:
        """The response to store, or None (``reason`` says why)."""
        if self.reason is not None:
            return None
        if not self.complete:
            self.reason = "incomplete response"
            return None
        if self.kind != "json":
            events = self._parsed()
            self._chunks, self._events = [], None
            if events is None:
                self.reason = "incomplete event stream"
                return None
            return self._answer(self.api.read_stream(events), events=tuple(events))
        data = b"".join(self._chunks)
        self._chunks = []
        try:
            text = data.decode("utf-8")
            value = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            self.reason = "response body is not JSON"
            return None
        return self._answer(self.api.read_json(value), body=text)

    def _answer(
        self,
        answer: Answer | str,
        *,
        body: str | None = None,
        events: tuple[str, ...] | None = None,
    ) -> CachedResponse | None:
        if isinstance(answer, str):
            self.reason = answer
            return None
        kind: Kind = "json" if body is not None else "sse"
        return CachedResponse(
            kind,
            200,
            self.content_type,
            body=body,
            events=events,
            usage=answer.usage,
            model=answer.model,
            replay=self.replay,
        )
