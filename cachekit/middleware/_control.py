"""Per-request cache control beyond ``Cache-Control``, and the answers given without the app.

* LiteLLM's body field ``cache: {"no-cache": bool, "no-store": bool, "ttl": int,
  "s-maxage": int, "namespace": str}`` (and its ``use-cache``): honoured, then removed
  from the body before it is keyed or reaches the app, so two requests that differ
  only in it share an entry and an OpenAI upstream never sees an argument it rejects.
* ``X-Cache-TTL: N``: store this answer for N seconds. ``Cache-Control: max-age`` is not
  it: on a request, max-age bounds the age of the answer the client accepts.
* :class:`Refusal`: a request the middleware answers itself, in OpenAI's error shape so
  SDKs raise their usual errors: 400 for a malformed control (naming it), 504 for
  ``only-if-cached`` with nothing cached (RFC 9111 5.2.1.7).

Pure functions of what the client sent: nothing here does I/O or raises for a bad request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from .._layout import NAMESPACE_RE
from ..result import CacheControl

__all__ = [
    "BODY_FIELD",
    "MAX_TTL",
    "TTL_HEADER",
    "Refusal",
    "drop_cache_field",
    "merge_control",
    "not_cached",
    "parse_ttl_header",
    "split_cache_field",
]

#: The body field LiteLLM clients send their per-request cache controls in.
BODY_FIELD: Final = "cache"
#: The request header that sets how long the answer is stored.
TTL_HEADER: Final = "x-cache-ttl"
#: Longest TTL a request may ask for (Redis refuses expiry times that overflow in ms).
MAX_TTL: Final = 2**31 - 1
_FLAGS: Final = ("no-cache", "no-store", "use-cache")
_KNOWN: Final = (*_FLAGS, "ttl", "s-maxage", "namespace")


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer the middleware gives itself; the app (or upstream) is never called."""

    status: int
    message: str
    code: str
    param: str | None = None
    kind: str = "invalid_request_error"

    def body(self) -> bytes:
        error = {"message": self.message, "type": self.kind, "param": self.param}
        return json.dumps({"error": {**error, "code": self.code}}).encode()

    def headers(self, length: int) -> list[tuple[bytes, bytes]]:
        """Framing; the ``X-Cache`` family is added by the caller."""
        return [
            (b"content-type", b"application/json"),
            (b"content-length", str(length).encode()),
            (b"cache-control", b"no-store"),  # an answer about this request alone
        ]


def not_cached(reason: str = "the cache holds no answer for this request") -> Refusal:
    """``only-if-cached`` with nothing to serve: 504, and nothing was forwarded."""
    return Refusal(
        504,
        f"only-if-cached: {reason}; the request was not forwarded",
        code="only_if_cached",
        kind="cache_miss",
    )


def _bad(message: str, param: str) -> Refusal:
    return Refusal(400, message, code="invalid_cache_control", param=param)


def _shown(value: Any) -> str:
    """A short rendering of a client's value for an error message."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):  # not from a JSON body: name its type only
        text = type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _seconds(raw: Any, name: str, *, minimum: int) -> int | Refusal:
    if isinstance(raw, bool) or not isinstance(raw, int) or not minimum <= raw <= MAX_TTL:
        return _bad(
            f"{name} must be an integer of seconds in [{minimum}, {MAX_TTL}], got {_shown(raw)}",
            name,
        )
    return raw


def parse_ttl_header(value: str | None) -> int | Refusal | None:
    """The ``X-Cache-TTL`` header: seconds to store the answer for, or a 400."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or not text.isascii():
        return _bad(
            f"X-Cache-TTL must be a positive integer of seconds, got {value[:40]!r}", "X-Cache-TTL"
        )
    return _seconds(int(text), "X-Cache-TTL", minimum=1)


def split_cache_field(
    body: dict[str, Any], field: str = BODY_FIELD
) -> tuple[dict[str, Any], CacheControl, str | None] | Refusal:
    """``body`` without ``field``, the control it asked for, and its namespace; or a 400.

    ``no-cache`` skips the lookup (the answer is still stored), ``no-store`` the store,
    ``use-cache: false`` both; ``s-maxage`` serves only entries younger than that many
    seconds; ``ttl`` stores the answer for that long; ``namespace`` keys the request in
    a namespace of its own (the caller still reads only its own tenant's entries).
    """
    raw = body.get(field)
    rest = {k: v for k, v in body.items() if k != field}
    if raw is None:
        return rest, CacheControl(), None
    if not isinstance(raw, dict):
        return _bad(
            f'{field} must be an object such as {{"no-cache": true}}, got {_shown(raw)}',
            field,
        )
    unknown = sorted(str(k) for k in raw if k not in _KNOWN)
    if unknown:
        return _bad(
            f"{field} has unknown fields {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(_KNOWN)}",
            f"{field}.{unknown[0]}",
        )
    for flag in _FLAGS:
        if flag in raw and not isinstance(raw[flag], bool):
            name = f"{field}.{flag}"
            return _bad(f"{name} must be true or false, got {_shown(raw[flag])}", name)
    seconds: dict[str, int] = {}
    for name, minimum in (("ttl", 1), ("s-maxage", 0)):
        if raw.get(name) is not None:
            got = _seconds(raw[name], f"{field}.{name}", minimum=minimum)
            if isinstance(got, Refusal):
                return got
            seconds[name] = got
    max_age = seconds.get("s-maxage")
    namespace = raw.get("namespace")
    if namespace is not None and (
        not isinstance(namespace, str) or not NAMESPACE_RE.match(namespace)
    ):
        name = f"{field}.namespace"
        return _bad(f"{name} must be 1-64 of A-Z a-z 0-9 _ . -, got {_shown(namespace)}", name)
    off = raw.get("use-cache") is False
    control = CacheControl(
        skip_lookup=raw.get("no-cache") is True or off,
        skip_store=raw.get("no-store") is True or off,
        max_age=None if max_age is None else float(max_age),
        ttl=seconds.get("ttl"),
    )
    return rest, control, namespace


def _least(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


def merge_control(header: CacheControl, body: CacheControl) -> CacheControl:
    """Both asks at once: any skip wins, the stricter age and the shorter TTL apply."""
    return CacheControl(
        skip_lookup=header.skip_lookup or body.skip_lookup,
        skip_store=header.skip_store or body.skip_store,
        max_age=_least(header.max_age, body.max_age),
        ttl=_least(header.ttl, body.ttl),
        only_if_cached=header.only_if_cached or body.only_if_cached,
    )


def drop_cache_field(raw: bytes, field: str | None) -> bytes | None:
    """``raw`` without ``field`` when it is a JSON object holding it, else None (forward
    ``raw`` as it is).

    For bypasses decided before the body was keyed (no tenant, ``no-cache, no-store``):
    the request still goes on, and an upstream that refuses unknown arguments (OpenAI's
    API) would answer 400 to LiteLLM's ``cache`` field.
    """
    if field is None or f'"{field}"'.encode() not in raw:
        return None  # the common case, without parsing
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict) or field not in body:
        return None
    del body[field]
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
