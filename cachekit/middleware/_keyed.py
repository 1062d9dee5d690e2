"""A request read for the cache: its controls (headers, then the body's ``cache`` field)
and its key, shared by the ASGI and WSGI adapters through :class:`._options.Config`."""

from __future__ import annotations

import inspect
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._layout import NAMESPACE_RE
from .._manifest import KeyManifest
from .._reasons import Reason
from ..result import CacheControl
from ._control import Refusal, merge_control, parse_ttl_header, split_cache_field
from ._request import parse_body, parse_cache_control

if TYPE_CHECKING:
    from ._options import Config

__all__ = ["Keyed", "async_tenant", "key_body", "read_control", "sync_tenant"]

log = logging.getLogger("cachekit.middleware")


@dataclass(frozen=True, slots=True)
class Keyed:
    """A request body read for the cache: its key (or why it bypasses), the control it
    gets (headers and body field), and the body the app must get instead of the
    client's when the cache field was removed from it (else None)."""

    key: KeyManifest | str
    control: CacheControl
    body: bytes | None = None


def read_control(
    config: Config, cache_control: str | None, ttl: str | None
) -> CacheControl | Refusal:
    """The request's ``Cache-Control`` and ``X-Cache-TTL`` headers as one control (plus
    ``only-if-cached`` for every request in the offline mode), or a 400."""
    control = parse_cache_control(cache_control)
    seconds = parse_ttl_header(ttl)
    if isinstance(seconds, Refusal):
        return seconds
    if seconds is None and (control.only_if_cached or not config.only_if_cached):
        return control
    return merge_control(control, CacheControl(ttl=seconds, only_if_cached=config.only_if_cached))


def key_body(
    config: Config,
    raw: bytes,
    request: Any,
    tenant: str | None,
    path: str,
    query: str,
    control: CacheControl,
) -> Keyed | Refusal:
    """Parse and key a request body, with the body's own cache controls applied.

    Nothing a client sends may turn into an error here: whatever fails is a bypass (the
    app still gets the request) and one short log line, never a traceback per request (a
    hostile body would otherwise flood the log). A malformed ``cache`` field is the
    client's mistake, named in a 400 (:class:`~._control.Refusal`).
    """
    try:
        body = parse_body(raw)
        if isinstance(body, str):
            return Keyed(body, control)
        field, namespace, stripped = config.cache_field, config.namespace, None
        if field is not None and field in body:
            split = split_cache_field(body, field)
            if isinstance(split, Refusal):
                return split
            body, asked, sub = split
            control = merge_control(control, asked)
            if sub is not None:
                # Under the middleware's own namespace: a client names a corner of it,
                # never another entry point's namespace (and reads only its own tenant).
                namespace = f"{config.namespace}.{sub}"
                if not NAMESPACE_RE.match(namespace):
                    return Refusal(
                        400,
                        f"{field}.namespace {sub!r} makes the namespace {namespace!r} "
                        "longer than 64 characters",
                        code="invalid_cache_control",
                        param=f"{field}.namespace",
                    )
            # The app (an upstream) gets the body without the field: OpenAI's API rejects
            # arguments it does not know.
            stripped = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        key = config.manifest(body, request, tenant, path, query, namespace)
        return Keyed(key, control, stripped)
    except Exception as exc:  # noqa: BLE001 - a request that cannot be keyed bypasses
        log.warning(
            "cachekit: cannot key the request to %s (%s: %.200s); bypassing the cache",
            path,
            type(exc).__name__,
            exc,
        )
        return Keyed(Reason.NO_KEY, control)


def sync_tenant(config: Config, request: Any, who: str) -> tuple[str | None, str | None]:
    """(tenant, bypass reason) from a sync adapter's tenant callback (WSGI, the sync
    transport); ``who`` names the adapter in the error for an async callback."""
    fn = config.tenant
    if fn is None:
        return None, None
    try:
        value = fn(request)
    except Exception:
        log.exception("cachekit: the tenant callback raised; bypassing the cache")
        return None, Reason.TENANT_FAILED
    if inspect.isawaitable(value):
        if inspect.iscoroutine(value):
            value.close()
        log.error("cachekit: %s tenant callbacks must be sync; bypassing the cache", who)
        return None, Reason.TENANT_FAILED
    return config.check_tenant(value)


async def async_tenant(config: Config, request: Any) -> tuple[str | None, str | None]:
    """(tenant, bypass reason) from an async adapter's tenant callback (sync or async)."""
    fn = config.tenant
    if fn is None:
        return None, None  # allow_global was checked at construction
    try:
        value = fn(request)
        if inspect.isawaitable(value):
            value = await value
    except Exception:
        log.exception("cachekit: the tenant callback raised; bypassing the cache")
        return None, Reason.TENANT_FAILED
    return config.check_tenant(value)
