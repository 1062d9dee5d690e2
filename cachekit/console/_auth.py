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
from http.cookies import SimpleCookie
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

__all__ = ["COOKIE", "CSRF_FIELD", "CSRF_HEADER", "TokenGate", "csrf_token", "new_token"]

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
        if not self._authenticated(headers):
            await _deny(send, 401, "This console needs its token: open it as /?token=<token>.")
            return
        if method not in _SAFE_METHODS:
            origin = headers.get("origin")
            # "null": an opaque origin (a strict referrer policy sends it for our own
            # forms too); the CSRF token below still has to match.
            if origin not in (None, "null") and not _same_origin(origin, headers.get("host", "")):
                await _deny(send, 403, "Cross-site request refused.")
                return
            if "authorization" not in headers:
                # Cookie-authenticated: the CSRF token must come along (header or form).
                sent = headers.get(CSRF_HEADER)
                if sent is None:
                    sent, receive = await _form_field(receive, CSRF_FIELD)
                if sent is None or not hmac.compare_digest(sent.encode(), self._csrf.encode()):
                    await _deny(send, 403, "Missing or wrong CSRF token: reload the page.")
                    return
        await self.app(scope, receive, send)

    def _authenticated(self, headers: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return hmac.compare_digest(auth[7:].strip().encode(), self._token.encode())
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed Cookie header is no session
            return False
        morsel = cookie.get(COOKIE)
        return morsel is not None and hmac.compare_digest(
            morsel.value.encode(), self._session.encode()
        )

    async def _login(self, scope: Scope, send: Send, rest: list[tuple[str, str]]) -> None:
        root = scope.get("root_path", "") or ""
        path = root + scope.get("path", "/")
        location = path + ("?" + urlencode(rest) if rest else "")
        cookie = f"{COOKIE}={self._session}; Path={root or '/'}; HttpOnly; SameSite=Strict" + (
            "; Secure" if scope.get("scheme") == "https" else ""
        )
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [
                    (b"location", location.encode()),
                    (b"set-cookie", cookie.encode()),
                    (b"cache-control", b"no-store"),
                    (b"referrer-policy", b"no-referrer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


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

    return bool(host) and urlsplit(origin).netloc.lower() == host.lower()


async def _form_field(receive: Receive, name: str) -> tuple[str | None, Receive]:
    """Read a urlencoded body's field; the returned ``receive`` replays the body."""
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
        if sum(map(len, chunks)) > 1 << 20:
            break  # a form of the console is tiny; the app will refuse the rest
    body = b"".join(chunks)
    value = next(
        (
            v
            for k, v in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
            if k == name
        ),
        None,
    )
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
