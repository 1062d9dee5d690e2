"""Response headers of the HTTP middlewares: what is cacheable, and what a hit replays.

A hit replays the app's own response headers except hop-by-hop headers, ``Set-Cookie``,
``Date``, ``Server``, the framing headers (recomputed) and the fields the app marked
``private="..."`` or ``no-cache="..."`` in its ``Cache-Control``.
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["Kind", "cache_directives", "replayable", "response_kind"]

Kind = Literal["json", "sse"]

#: Response headers a hit never replays. Hop-by-hop headers belong to one connection
#: (RFC 9110 7.6.1); a cookie or the date belong to one response, never to everyone
#: served from the cache; framing is recomputed for the replayed body; the server adds
#: its own Server; X-Cache, X-Cache-Key and Age are ours.
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
        "x-cache-key",
        # The chain of caches that handled the first request, not this hit's (RFC 9211).
        "cache-status",
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


def replayable(
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
