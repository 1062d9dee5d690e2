"""Every console page and action needs the token; every action also needs the CSRF token.

How a browser gets in: open ``/?token=<token>`` once. The gate checks it, sets an
HttpOnly, SameSite=Strict session cookie (an HMAC of the token, never the token itself)
and redirects to the same URL without the token, so it does not stay in the address bar
or the history. Scripts send ``Authorization: Bearer <token>`` instead. Anything else gets
401 and no data.

Actions (POST) also carry the CSRF token, derived from the token by HMAC, in an
``X-CSRF-Token`` header or a ``csrf`` form field; and a request whose ``Origin`` names
another site is refused. The cookie's SameSite=Strict already keeps it off cross-site
requests: the CSRF token is the second lock, for browsers or proxies that do not honour it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlencode

__all__ = [
    "COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "TokenGate",
    "cookie_name",
    "csrf_token",
    "new_token",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE: Final = "cachekit_console"
CSRF_HEADER: Final = "x-csrf-token"
CSRF_FIELD: Final = "csrf"
#: Shortest token accepted: a console shows prompts and answers.
MIN_TOKEN_CHARS: Final = 16
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
#: A browser session lasts this long; then the token link is needed again.
SESSION_SECONDS: Final = 12 * 3600
#: Largest form body a browser session may post (the explain form with a big request).
MAX_FORM_BYTES: Final = 2 << 20
_TOO_LARGE: Final = object()


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _derive(token: str, purpose: str) -> str:
    return hmac.new(token.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def csrf_token(token: str) -> str:
    """The CSRF token of a console token (the pages embed it in forms and a meta tag)."""
    return _derive(token, "cachekit-console-csrf")


class TokenGate:
    """Pure ASGI: let a request through only with the token (see the module docstring)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        if len(token) < MIN_TOKEN_CHARS:
            raise ValueError(f"the console token must be at least {MIN_TOKEN_CHARS} characters")
        self.app = app
        self._token = token
        self._session = _derive(token, "cachekit-console-session")
        self._csrf = csrf_token(token)
        self.cookie = cookie_name(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [v for k, v in query if k == "token"]
        method = scope.get("method", "GET")
        if given and method in _SAFE_METHODS:
            if hmac.compare_digest(given[0].encode(), self._token.encode()):
                await self._login(scope, send, [(k, v) for k, v in query if k != "token"])
            else:
                await _deny(send, 401, "That console token is not valid.")
            return
        how = self._authenticated(headers)
        if how is None:
            await _deny(send, 401, "This console needs its token: open it as /?token=<token>.")
            return
        if method not in _SAFE_METHODS:
            origin = headers.get("origin")
            # "null": an opaque origin (a strict referrer policy sends it for our own
            # forms too); the CSRF token below still has to match.
            if origin not in (None, "null") and not _same_origin(origin, headers.get("host", "")):
                await _deny(send, 403, "Cross-site request refused.")
                return
            if how == "cookie":
                # A browser session: the CSRF token must come along (header or form). Only
                # a request that proved the token itself (Bearer) is exempt: a browser
                # adds cookies (and a proxy's Basic credentials) to forged requests too.
                sent = headers.get(CSRF_HEADER)
                if sent is None:
                    sent, receive = await _form_field(receive, CSRF_FIELD)
                    if sent is _TOO_LARGE:
                        await _deny(send, 413, "The request body is too large for the console.")
                        return
                if sent is None or not hmac.compare_digest(sent.encode(), self._csrf.encode()):
                    await _deny(send, 403, "Missing or wrong CSRF token: reload the page.")
                    return
        await self.app(scope, receive, send)

    def _authenticated(self, headers: dict[str, str]) -> str | None:
        """``"bearer"`` (the token itself), ``"cookie"`` (a session) or None."""
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            ok = hmac.compare_digest(auth[7:].strip().encode(), self._token.encode())
            return "bearer" if ok else None
        value = _cookie(headers.get("cookie", ""), self.cookie)
        if value is not None and hmac.compare_digest(value.encode(), self._session.encode()):
            return "cookie"
        return None

    async def _login(self, scope: Scope, send: Send, rest: list[tuple[str, str]]) -> None:
        root = scope.get("root_path", "") or ""
        # The path as sent (percent-encoded): no decoded CR/LF reaches a header. Starlette
        # puts a Mount's prefix in both root_path and path; the redirect keeps the path.
        raw = scope.get("raw_path") or quote(scope.get("path", "/"), safe="/%").encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        # Never off-site: "//evil.example" or "/\evil.example" would be another host.
        path = "/" + path.lstrip("/\\")
        location = path + ("?" + urlencode(rest) if rest else "")
        cookie = (
            f"{self.cookie}={self._session}; Path={quote(root, safe='/') or '/'}; "
            f"Max-Age={SESSION_SECONDS}; HttpOnly; SameSite=Strict"
            + ("; Secure" if scope.get("scheme") == "https" else "")
        )
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [
                    (b"location", location.encode("latin-1")),
                    (b"set-cookie", cookie.encode("latin-1")),
                    (b"cache-control", b"no-store"),
                    (b"referrer-policy", b"no-referrer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


def cookie_name(token: str) -> str:
    """The session cookie's name: one per token, so two consoles on one host (cookies
    ignore ports) keep their own sessions."""
    return f"{COOKIE}_{_derive(token, 'cachekit-console-cookie')[:12]}"


def _cookie(header: str, name: str) -> str | None:
    """One cookie's value, read leniently: ``SimpleCookie`` drops every cookie after one
    it cannot parse, and any app on the same host can set such a cookie."""
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        key = name.decode("latin-1").lower()
        out[key] = (
            value.decode("latin-1") if key not in out else out[key] + "; " + value.decode("latin-1")
        )
    return out


def _same_origin(origin: str, host: str) -> bool:
    from urllib.parse import urlsplit

    try:
        netloc = urlsplit(origin).netloc
    except ValueError:  # "http://[::1": not an origin at all
        return False
    return bool(host) and netloc.lower() == host.lower()


async def _form_field(receive: Receive, name: str) -> tuple[Any, Receive]:
    """Read a urlencoded body's field; the returned ``receive`` replays the body.
    :data:`_TOO_LARGE` past :data:`MAX_FORM_BYTES` (a console form is small)."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return _TOO_LARGE, receive
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    value = next((v for k, v in fields if k == name), None)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return value, replay


async def _deny(send: Send, status: int, message: str) -> None:
    from html import escape

    body = (
        "<!doctype html><meta charset=utf-8><title>cachekit console</title>"
        f"<h1>{status}</h1><p>{escape(message)}</p>"
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
