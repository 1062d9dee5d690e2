"""What the sync and async transports share: key a request, build a hit, label a response,
and decide whether (and how) a live response is recorded.

Nothing here does I/O: reading the request body and running the inner transport are the
only steps that differ between the two colours, and they stay in the transports.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from .._pipeline import Pipeline
from .._reasons import Reason
from .._report import report_bypass
from .._ticket import Miss, Ticket
from ..middleware._apis import api_for
from ..middleware._control import TTL_HEADER, Refusal, drop_cache_field, not_cached
from ..middleware._options import Config
from ..middleware._record import CachedResponse, Recorder
from ..middleware._request import is_json_type
from ..middleware._state import RESPONSES, refusal_headers, result_headers
from ..result import NO_CONTROL, CacheControl

__all__ = [
    "Prepared",
    "decodable",
    "hit_response",
    "label",
    "matches",
    "not_in_cache",
    "recorder_for",
]

log = logging.getLogger("cachekit.transport")


class Wire:
    """The HTTP library a transport speaks: ``httpx``, or ``httpx2`` (the Anthropic SDK's).

    The two share one API, but their objects do not mix: a response, a request or a byte
    stream must be of the caller's library.
    """

    __slots__ = ("decodable", "hx")

    def __init__(self, hx: Any) -> None:
        self.hx = hx
        try:  # what this library decodes (brotli/zstd only with their packages installed)
            decoders = importlib.import_module(f"{hx.__name__}._decoders").SUPPORTED_DECODERS
            self.decodable = frozenset(decoders)
        except (ImportError, AttributeError):  # pragma: no cover - moved in a future release
            self.decodable = frozenset({"identity", "gzip", "deflate"})

    def response(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> Any:
        return self.hx.Response(status, headers=_str_headers(headers), content=body)


HTTPX = Wire(httpx)


def matches(options: Config, request: Any) -> bool:
    """Is ``request`` one this transport caches?

    An SDK's ``base_url`` may carry a prefix of its own (``https://host/openai/v1``), so an
    exact path also matches as the tail of the request's path.
    """
    method, path = request.method, request.url.path
    if options.matches(method, path):
        return True
    return method.upper() in options.methods and any(path.endswith(p) for p in options.exact_paths)


class Prepared:
    """A request about to meet the cache: its controls and body, read once.

    The steps both transports share, free of I/O: what is refused or bypassed before the
    tenant is known, the ticket (with the body's own ``cache`` field applied and taken out
    of the request that goes upstream), and the responses the transport makes itself.
    """

    __slots__ = ("control", "request", "started", "wire")

    def __init__(self, request: Any, wire: Wire = HTTPX) -> None:
        self.wire = wire
        self.request = request
        self.started = time.perf_counter()
        self.control: CacheControl = NO_CONTROL

    def check(self, options: Config) -> Refusal | str | None:
        """A refusal (bad control) or the reason the request bypasses, before the tenant
        and the body are looked at; None to go on."""
        headers = self.request.headers
        control = options.control(headers.get("cache-control"), headers.get(TTL_HEADER))
        if isinstance(control, Refusal):
            return control
        self.control = control
        content_type = headers.get("content-type")
        if content_type is not None and not is_json_type(content_type):
            return Reason.CONTENT_TYPE
        if not isinstance(self.request.stream, self.wire.hx.ByteStream):
            # A generator body could be read only once: reading it here would take it
            # from the inner transport, and its size is unknown until it is read.
            return "streamed body"
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > options.max_body_bytes):
            return Reason.BODY_TOO_LARGE
        if control.skip_lookup and control.skip_store:
            return Reason.CACHE_CONTROL
        return None

    def ticket(self, options: Config, tenant: str | None) -> Ticket | Refusal | str:
        """The request's ticket, a refusal, or the reason it bypasses the cache."""
        request = self.request
        raw = request.content  # a ByteStream body: already in memory, nothing is consumed
        if len(raw) > options.max_body_bytes:
            return Reason.BODY_TOO_LARGE
        url = request.url
        # The upstream's origin is part of the scope: one namespace in front of two APIs
        # (or two deployments of one) never shares answers between them.
        where = f"{url.scheme}://{url.netloc.decode('ascii')}{url.path}"
        query = url.query.decode("ascii")
        keyed = options.keyed(raw, request, tenant, where, query, self.control)
        if isinstance(keyed, Refusal):
            return keyed
        if keyed.body is not None:
            self.request = _with_body(self.wire, request, keyed.body)
        self.control = control = keyed.control
        if isinstance(keyed.key, str):
            return keyed.key
        if control.skip_lookup and control.skip_store:
            return Reason.CACHE_CONTROL
        if control.only_if_cached and control.skip_lookup:
            return Reason.CACHE_CONTROL
        return Ticket(keyed.key, RESPONSES, control, self.started)

    def bypass(self, options: Config, reason: str, ticket: Ticket | None = None) -> Made:
        """Count the bypass; a 504 when only the cache may answer, else None (forward)."""
        log.debug("cachekit: bypass %s: %s", self.request.url.path, reason)
        report_bypass(options.pipeline.options, options.cache, reason, self.started, ticket)
        request = self.request
        if isinstance(request.stream, self.wire.hx.ByteStream):
            # Bypassed before the body was keyed (no tenant, no-cache + no-store): the
            # upstream still must not get LiteLLM's field (see drop_cache_field).
            raw = request.content
            body = None
            if len(raw) <= options.max_body_bytes:
                body = drop_cache_field(raw, options.cache_field)
            if body is not None:
                self.request = _with_body(self.wire, request, body)
        if self.control.only_if_cached:
            why = f"the request cannot be answered from the cache ({reason})"
            return refusal_response(self.wire, not_cached(why), ticket, "BYPASS")
        return None

    def refuse(self, options: Config, refusal: Refusal) -> Any:
        """A malformed cache control: the client's error, answered without the upstream."""
        opts = options.pipeline.options
        report_bypass(opts, options.cache, Reason.BAD_CACHE_CONTROL, self.started)
        return refusal_response(self.wire, refusal, None, "BYPASS")


#: A response the transport made itself, or None: the request goes upstream.
Made = Any


def not_in_cache(wire: Wire, pipeline: Pipeline, miss: Miss) -> Any:
    """``only-if-cached`` and nothing to serve: 504, never the upstream (RFC 9111)."""
    if miss.used_cache:
        pipeline.abort(miss, Reason.ONLY_IF_CACHED)
        refusal = not_cached()
    else:  # the cache failed: the result says how
        pipeline.abort(miss)
        refusal = not_cached("the cache could not be read")
    return refusal_response(wire, refusal, miss.ticket, "MISS")


def refusal_response(wire: Wire, refusal: Refusal, ticket: Ticket | None, label: str) -> Any:
    body = refusal.body()
    return wire.response(
        refusal.status, refusal.headers(len(body)) + refusal_headers(ticket, label), body
    )


def _with_body(wire: Wire, request: Any, body: bytes) -> Any:
    """``request`` with another body (the client's without the cache field)."""
    headers = [
        (k, v)
        for k, v in request.headers.multi_items()
        if k.lower() not in ("content-length", "transfer-encoding")
    ]
    return wire.hx.Request(
        request.method, request.url, headers=headers, content=body, extensions=request.extensions
    )


def _str_headers(pairs: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in pairs]


def hit_response(wire: Wire, ticket: Ticket, cached: CachedResponse) -> Any:
    """A cached answer as the HTTP response the SDK would have got."""
    body = cached.body_bytes()
    headers = cached.headers(len(body)) + result_headers(ticket, "HIT", cached.status)
    return wire.response(cached.status, headers, body)


def label(response: Any, ticket: Ticket | None, text: str, reason: str | None = None) -> Any:
    """Add the ``X-Cache`` family to a response passed through."""
    extra = result_headers(ticket, text, response.status_code, reason)
    for name, value in _str_headers(extra):
        if name == "cache-status" and "cache-status" in response.headers:
            # RFC 9211: each cache appends its member; the upstream's come first.
            value = f"{response.headers['cache-status']}, {value}"
        response.headers[name] = value
    return response


def decodable(wire: Wire, response: Any) -> bool:
    """Can the body be recorded as text? httpx decodes every encoding it advertised."""
    encoding = response.headers.get("content-encoding", "")
    tokens = [t.strip().lower() for t in encoding.split(",") if t.strip()]
    return all(t in wire.decodable for t in tokens)


def recorder_for(
    wire: Wire, request: Any, response: Any, ticket: Ticket, max_bytes: int
) -> tuple[Recorder, list[tuple[str, str]]]:
    """Start recording ``response`` to ``request`` (whose path says the API: what a whole
    answer is): the recorder, and the headers the caller will see.

    A recorded body is handed on decoded (the caller and the cache get the same bytes),
    so its ``Content-Encoding`` and ``Content-Length`` go: httpx recomputes neither for a
    streamed body, and a stale length would truncate or hang a reader.
    """
    recorder = Recorder(max_bytes, api_for(request.url.path))
    headers = [(k, v) for k, v in response.headers.multi_items()]
    if ticket.control.skip_store:
        recorder.reason = Reason.NO_STORE
        return recorder, headers
    if not decodable(wire, response):
        recorder.reason = "content-encoding"
        return recorder, headers
    plain = [(k, v) for k, v in headers if k.lower() not in ("content-encoding", "content-length")]
    recorder.start(response.status_code, plain)
    return recorder, plain if recorder.recording else headers


#: ``settle(recorder)``: store the recorded response, or abort with the recorder's reason.
Settle = Callable[[Recorder], Any]
