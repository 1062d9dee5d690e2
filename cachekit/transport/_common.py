"""What the sync and async transports share: key a request, build a hit, label a response,
and decide whether (and how) a live response is recorded.

Nothing here does I/O: reading the request body and running the inner transport are the
only steps that differ between the two colours, and they stay in the transports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from .._ticket import Ticket
from ..middleware._options import Config
from ..middleware._record import CachedResponse, Recorder
from ..middleware._request import is_json_type, parse_cache_control
from ..middleware._state import RESPONSES, result_headers

__all__ = ["Prepared", "decodable", "hit_response", "label", "matches", "prepare", "recorder_for"]

try:  # the encodings this httpx decodes (brotli/zstd only when their packages are installed)
    from httpx._decoders import SUPPORTED_DECODERS as _DECODERS

    _DECODABLE = frozenset(_DECODERS)
except ImportError:  # pragma: no cover - a future httpx that moved it
    _DECODABLE = frozenset({"identity", "gzip", "deflate"})


def matches(options: Config, request: httpx.Request) -> bool:
    """Is ``request`` one this transport caches?

    An SDK's ``base_url`` may carry a prefix of its own (``https://host/openai/v1``), so an
    exact path also matches as the tail of the request's path.
    """
    method, path = request.method, request.url.path
    if options.matches(method, path):
        return True
    return method.upper() in options.methods and any(path.endswith(p) for p in options.exact_paths)


class Prepared:
    """A request about to meet the cache: its body and headers, read once."""

    __slots__ = ("control", "request", "started")

    def __init__(self, request: httpx.Request) -> None:
        self.request = request
        self.started = time.perf_counter()
        self.control = parse_cache_control(request.headers.get("cache-control"))

    def refusal(self, options: Config) -> str | None:
        """Why the request bypasses the cache before its body or tenant is looked at."""
        content_type = self.request.headers.get("content-type")
        if content_type is not None and not is_json_type(content_type):
            return "content-type"
        if self.control.skip_lookup and self.control.skip_store:
            return "cache-control"
        if not isinstance(self.request.stream, httpx.ByteStream):
            # A generator body could be read only once: reading it here would take it
            # from the inner transport, and its size is unknown until it is read.
            return "streamed body"
        length = self.request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > options.max_body_bytes):
            return "body too large"
        return None


def prepare(options: Config, prepared: Prepared, tenant: str | None) -> Ticket | str:
    """The request's ticket for the pipeline, or the reason it bypasses the cache."""
    request = prepared.request
    raw = request.content  # a ByteStream body: already in memory, nothing is consumed
    if len(raw) > options.max_body_bytes:
        return "body too large"
    url = request.url
    # The upstream's origin is part of the scope: one namespace in front of two APIs (or
    # two deployments of one) never shares answers between them.
    where = f"{url.scheme}://{url.netloc.decode('ascii')}{url.path}"
    query = url.query.decode("ascii")
    manifest = options.key(raw, request, tenant, where, query)
    if isinstance(manifest, str):
        return manifest
    return Ticket(manifest, RESPONSES, prepared.control, prepared.started)


def _str_headers(pairs: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in pairs]


def hit_response(ticket: Ticket, cached: CachedResponse) -> httpx.Response:
    """A cached answer as the HTTP response the SDK would have got."""
    body = cached.body_bytes()
    headers = cached.headers(len(body)) + result_headers(ticket, "HIT")
    return httpx.Response(cached.status, headers=_str_headers(headers), content=body)


def label(response: httpx.Response, ticket: Ticket | None, text: str) -> httpx.Response:
    """Add the ``X-Cache`` family to a response passed through."""
    for name, value in _str_headers(result_headers(ticket, text)):
        response.headers[name] = value
    return response


def decodable(response: httpx.Response) -> bool:
    """Can the body be recorded as text? httpx decodes every encoding it advertised."""
    encoding = response.headers.get("content-encoding", "")
    tokens = [t.strip().lower() for t in encoding.split(",") if t.strip()]
    return all(t in _DECODABLE for t in tokens)


def recorder_for(
    response: httpx.Response, ticket: Ticket, max_bytes: int
) -> tuple[Recorder, list[tuple[str, str]]]:
    """Start recording ``response``: the recorder, and the headers the caller will see.

    A recorded body is handed on decoded (the caller and the cache get the same bytes),
    so its ``Content-Encoding`` and ``Content-Length`` go: httpx recomputes neither for a
    streamed body, and a stale length would truncate or hang a reader.
    """
    recorder = Recorder(max_bytes)
    headers = [(k, v) for k, v in response.headers.multi_items()]
    if ticket.control.skip_store:
        recorder.reason = "no-store requested"
        return recorder, headers
    if not decodable(response):
        recorder.reason = "content-encoding"
        return recorder, headers
    plain = [(k, v) for k, v in headers if k.lower() not in ("content-encoding", "content-length")]
    recorder.start(response.status_code, plain)
    return recorder, plain if recorder.recording else headers


#: ``settle(recorder)``: store the recorded response, or abort with the recorder's reason.
Settle = Callable[[Recorder], Any]
