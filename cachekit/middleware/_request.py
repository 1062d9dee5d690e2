"""The request side shared by ASGI and WSGI: body parsing, ``Cache-Control``, tenants.

Pure functions of what the client sent; nothing here does I/O or raises for a bad request.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from .._reasons import Reason
from ..result import NO_CONTROL, CacheControl

__all__ = [
    "EXTRACT_IGNORE",
    "api_key_tenant",
    "default_extractor",
    "is_json_type",
    "parse_body",
    "parse_cache_control",
]

#: Body fields of the OpenAI API that never change the answer (bookkeeping, billing,
#: OpenAI's own prompt-cache routing); everything else in the body is part of the key.
EXTRACT_IGNORE: Final[frozenset[str]] = frozenset(
    {
        "user",
        "metadata",
        "store",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
    }
)


def default_extractor(body: dict[str, Any], request: Any) -> dict[str, Any]:
    """The key arguments of an OpenAI-style request body.

    The whole body takes part: ``model``, ``messages`` (the last user turn becomes the
    prompt; system prompt and earlier turns the exact scope), ``tools``, sampling
    parameters, ``response_format``, ``n``, ``stream`` and ``stream_options`` (a stream
    is only ever answered with a stream), and any field this code does not know yet, so
    a new API parameter can never make two different requests share an answer. Legacy
    ``{"prompt": "..."}`` bodies use ``prompt`` as the prompt. Fields in
    :data:`EXTRACT_IGNORE` are left out.
    """
    return {k: v for k, v in body.items() if k not in EXTRACT_IGNORE}


def _credential(headers: Mapping[str, str]) -> str | None:
    """Every credential the request carries, as one string (None: no credential)."""
    found: list[tuple[str, str]] = []
    auth = (headers.get("authorization") or "").strip()
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer":
            # A non-bearer scheme (Basic, ...) is still a credential: key on all of it.
            found.append(("authorization", auth))
        elif token.strip():  # "Bearer " with no token is no credential
            found.append(("authorization", token.strip()))
    for name in ("api-key", "x-api-key"):
        value = (headers.get(name) or "").strip()
        if value:
            found.append((name, value))
    if len(found) == 1:
        return found[0][1]
    # Several: the upstream may read any one of them (Anthropic reads x-api-key, OpenAI
    # the bearer), so all of them make the tenant; header values hold no newline.
    return "\n".join(f"{name}={value}" for name, value in found) or None


def api_key_tenant(request: Any) -> str | None:
    """Tenant = a SHA-256 digest of the caller's API key; None without a key.

    Reads ``Authorization: Bearer <key>`` (OpenAI), ``api-key`` (Azure) and ``x-api-key``
    (Anthropic); a request carrying several is keyed on all of them. Two keys never
    share entries and the key itself never reaches Redis.
    Works with a Starlette ``Request`` and with a WSGI ``environ``.
    """
    if isinstance(request, dict):  # WSGI environ
        headers = {
            "authorization": request.get("HTTP_AUTHORIZATION", ""),
            "api-key": request.get("HTTP_API_KEY", ""),
            "x-api-key": request.get("HTTP_X_API_KEY", ""),
        }
    else:
        headers = request.headers
    key = _credential(headers)
    if key is None:
        return None
    return "key:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def parse_cache_control(value: str | None) -> CacheControl:
    """The request's ``Cache-Control`` as :class:`~cachekit.CacheControl`: ``no-cache``
    skips the lookup, ``no-store`` the store, ``max-age=N`` rejects older entries,
    ``only-if-cached`` answers from the cache alone (RFC 9111 5.2.1.7)."""
    if not value:
        return NO_CONTROL
    no_cache = no_store = only_if_cached = False
    max_age: float | None = None
    for raw in value.split(","):
        name, _, arg = raw.strip().partition("=")
        name = name.strip().lower()
        if name == "no-cache":
            no_cache = True
        elif name == "no-store":
            no_store = True
        elif name == "only-if-cached":
            only_if_cached = True
        elif name == "max-age":
            try:
                seconds = int(arg.strip().strip('"'))
            except ValueError:
                continue  # RFC 9111: an invalid max-age is ignored, not an error
            max_age = float(max(seconds, 0))
    return CacheControl(
        skip_lookup=no_cache, skip_store=no_store, max_age=max_age, only_if_cached=only_if_cached
    )


def is_json_type(content_type: str | None) -> bool:
    """``application/json`` and ``application/<anything>+json``."""
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


def parse_body(raw: bytes) -> dict[str, Any] | str:
    """The JSON object of a request body, or the reason it cannot be keyed."""
    if not raw.strip():
        return Reason.EMPTY_BODY
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return Reason.INVALID_JSON
    except RecursionError:
        # json.loads recurses in C per level of nesting: a hostile body thousands of
        # levels deep must be passed to the app, not turned into a 500.
        return Reason.JSON_TOO_DEEP
    if not isinstance(body, dict):
        return Reason.JSON_NOT_OBJECT
    return body
