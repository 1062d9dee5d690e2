"""Redis client helpers: redacted URLs for logs, closing a client of either kind."""

from __future__ import annotations

import urllib.parse
from typing import Any

import redis.asyncio as aredis

__all__ = ["close_client", "redact"]


_SECRET_PARAMS = frozenset({"password", "username", "user", "pass"})


def redact(url: str) -> str:
    """A URL safe for logs, reprs and errors: no user name, no password, anywhere.

    Covers ``user:password@`` in the netloc and redis-py's ``?password=``/``?username=``
    query parameters; anything unparsable is replaced whole.
    """
    if "://" not in url:
        return "<redacted URL>" if "@" in url or "password" in url.lower() else url
    try:
        parts = urllib.parse.urlsplit(url)
        params = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if "@" not in parts.netloc and not any(k.lower() in _SECRET_PARAMS for k, _ in params):
            return url
        host = parts.netloc.rsplit("@", 1)[-1]
        netloc = f"***@{host}" if "@" in parts.netloc else host
        query = urllib.parse.urlencode(
            [(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in params]
        )
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return "<unparsable redis URL>"


async def close_client(client: Any) -> None:
    if isinstance(client, aredis.Redis):
        await client.connection_pool.disconnect()
    else:
        await client.aclose()
