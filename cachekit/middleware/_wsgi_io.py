"""The WSGI plumbing: read a request body and give it back, label and record the response.

Kept apart from :mod:`._wsgi` (which decides what a request does with the cache): the
app must get an identical ``wsgi.input``, and the response is forwarded chunk by chunk
while it is recorded.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, NamedTuple

from .._reasons import Reason
from .._ticket import Ticket
from ._control import Refusal, drop_cache_field
from ._keyed import sync_tenant
from ._options import Config
from ._record import CachedResponse, Recorder
from ._request import is_json_type
from ._state import RESPONSES, refusal_headers, result_headers

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = [
    "Bypass",
    "RecordingIterable",
    "labelled",
    "read_body",
    "read_request",
    "recording_start",
    "refuse",
    "serve",
    "str_headers",
]

log = logging.getLogger("cachekit.middleware")


def str_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]


_REASONS = {200: "OK"}


class Bypass(NamedTuple):
    """Why a request bypasses the cache, and whether it may still reach the app."""

    reason: str
    #: ``only-if-cached``: the app must not answer; the client gets a 504.
    only_if_cached: bool = False


def read_request(
    options: Config, environ: WSGIEnvironment, path: str, started: float
) -> Ticket | Bypass | Refusal:
    """The request's ticket for the pipeline, why it bypasses the cache, or a 400.

    Cheap refusals first, before a byte of the body is read; the app still gets an
    identical ``wsgi.input`` whatever happens here (without the body's cache field).
    """
    control = options.control(environ.get("HTTP_CACHE_CONTROL"), environ.get("HTTP_X_CACHE_TTL"))
    if isinstance(control, Refusal):
        return control
    offline = control.only_if_cached
    content_type = environ.get("CONTENT_TYPE") or None
    if content_type is not None and not is_json_type(content_type):
        return Bypass(Reason.CONTENT_TYPE, offline)
    if control.skip_lookup and control.skip_store:
        _without_cache_field(options, environ)
        return Bypass(Reason.CACHE_CONTROL, offline)
    tenant, reason = sync_tenant(options, environ, "WSGI")
    if reason is not None:
        _without_cache_field(options, environ)
        return Bypass(reason, offline)
    raw, reason = read_body(environ, options.max_body_bytes)
    if reason is not None:
        return Bypass(reason, offline)
    keyed = options.keyed(raw, environ, tenant, path, environ.get("QUERY_STRING", ""), control)
    if isinstance(keyed, Refusal):
        return keyed
    if keyed.body is not None:
        environ["wsgi.input"] = io.BytesIO(keyed.body)
        environ["CONTENT_LENGTH"] = str(len(keyed.body))
    control = keyed.control
    if isinstance(keyed.key, str):
        return Bypass(keyed.key, offline)
    if control.skip_lookup and (control.skip_store or control.only_if_cached):
        return Bypass(Reason.CACHE_CONTROL, offline)
    return Ticket(keyed.key, RESPONSES, control, started)


def _without_cache_field(options: Config, environ: WSGIEnvironment) -> None:
    """Before a bypass decided ahead of the body: the app still must not get the body's
    cache field (see ``drop_cache_field``); an unreadable body goes on as it is."""
    if options.cache_field is None:
        return
    raw, reason = read_body(environ, options.max_body_bytes)
    body = None if reason is not None else drop_cache_field(raw, options.cache_field)
    if body is not None:
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))


def serve(start_response: StartResponse, ticket: Ticket, cached: CachedResponse) -> list[bytes]:
    """Answer with a cached response."""
    data = cached.body_bytes()
    headers = cached.headers(len(data)) + result_headers(ticket, "HIT", cached.status)
    start_response(f"{cached.status} {_REASONS.get(cached.status, 'Cached')}", str_headers(headers))
    return [data]


def refuse(
    start_response: StartResponse, refusal: Refusal, ticket: Ticket | None, label: str
) -> list[bytes]:
    """Answer without the app: a malformed control (400) or ``only-if-cached`` (504)."""
    data = refusal.body()
    headers = refusal.headers(len(data)) + refusal_headers(ticket, label)
    start_response(f"{refusal.status} {HTTPStatus(refusal.status).phrase}", str_headers(headers))
    return [data]


def _code(status: str) -> int:
    try:
        return int(status.split(" ", 1)[0])
    except ValueError:
        return 0


def labelled(
    start_response: StartResponse, ticket: Ticket | None, label: str, reason: str | None = None
) -> StartResponse:
    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        extra = str_headers(result_headers(ticket, label, _code(status), reason))
        return start_response(status, [*headers, *extra], exc_info)

    return start


def _read_exactly(stream: Any, size: int) -> bytes:
    """Read ``size`` bytes (servers may return fewer per read), or what there is."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


class _PrefixedInput(io.RawIOBase):
    """``wsgi.input`` for an oversized chunked body: the bytes we read, then the rest."""

    def __init__(self, prefix: bytes, rest: Any) -> None:
        self._prefix = io.BytesIO(prefix)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = self._prefix.readinto(view)
        if n:
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def read_body(environ: WSGIEnvironment, limit: int) -> tuple[bytes, str | None]:
    """Read the body and put an identical ``wsgi.input`` back for the app."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b"", Reason.EMPTY_BODY
    length = environ.get("CONTENT_LENGTH") or ""
    if length:
        if not length.isdigit():
            return b"", Reason.BAD_CONTENT_LENGTH
        if int(length) > limit:
            return b"", Reason.BODY_TOO_LARGE  # not read at all: the app gets the stream
        raw = _read_exactly(stream, int(length))
    elif environ.get("wsgi.input_terminated"):
        # Chunked upload: the server marks the end, so reading past the cap is safe.
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            environ["wsgi.input"] = io.BufferedReader(_PrefixedInput(raw, stream))
            return b"", Reason.BODY_TOO_LARGE
    else:
        return b"", Reason.EMPTY_BODY  # no length and no terminator: reading could block
    environ["wsgi.input"] = io.BytesIO(raw)
    environ["CONTENT_LENGTH"] = str(len(raw))
    return raw, None


class RecordingIterable:
    """Forwards the app's chunks as they come, recording them; stores at the end.

    Only a response iterated to the end is complete: a client that went away, or an app
    that raised mid-stream, leaves it incomplete and nothing is stored. The store runs
    when the app's iterator is exhausted, not in ``close()``: a client that does not
    buffer (werkzeug's test client, a proxy reading lazily) may never close the
    response, and the entry must land anyway. ``close()`` settles whatever is left
    (an incomplete response is reported, never stored).

    Servers and clients may call ``iter()`` more than once (werkzeug reads the first
    chunk, then chains the rest): this object is its own iterator and the app's
    iterable is iterated exactly once, so a list body is never sent twice.
    """

    def __init__(
        self, settle: Callable[[Recorder], None], app_iter: Iterable[bytes], recorder: Recorder
    ) -> None:
        self._store = settle
        self._app_iter = app_iter
        self._iter: Iterator[bytes] | None = None
        self._recorder = recorder
        self._exhausted = False
        self._settled = False
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._exhausted:
            raise StopIteration
        if self._iter is None:
            self._iter = iter(self._app_iter)
        try:
            chunk = next(self._iter)
        except StopIteration:
            self._exhausted = True
            self._recorder.complete = True
            self._settle()
            raise
        except BaseException:
            self._exhausted = True
            self._recorder.reason = self._recorder.reason or "app raised"
            raise
        self._recorder.add(chunk)
        return chunk

    def __del__(self) -> None:
        # A server that drops the response without close() (PEP 3333 says it must call
        # it): settle anyway, or identical requests would wait for this flight until
        # flight_wait and other processes for its lock until the lease.
        if not self._settled:
            self._recorder.reason = self._recorder.reason or "response dropped without close()"
            self._settle()

    def _settle(self) -> None:
        if not self._settled:
            self._settled = True
            self._store(self._recorder)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._app_iter, "close", None)
            if close is not None:
                close()
        finally:
            self._settle()


def recording_start(
    start_response: StartResponse, recorder: Recorder, ticket: Ticket
) -> StartResponse:
    """The app's ``start_response`` on a miss: label the response, start recording it."""

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        code = _code(status)
        if exc_info is not None:
            recorder.reason = "app error"
        elif not ticket.control.skip_store:
            recorder.start(code, headers)
        extra = str_headers(result_headers(ticket, "MISS", code))
        write = start_response(status, [*headers, *extra], exc_info)

        def write_unrecorded(data: bytes) -> object:
            # The legacy write() path bypasses the iterable: we cannot see it all.
            recorder.reason = recorder.reason or "write() used"
            return write(data)

        return write_unrecorded

    return start
