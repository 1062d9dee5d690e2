"""The transports' options: the middleware's, with the API key as the default tenant."""

from __future__ import annotations

from ..middleware._options import Config, MiddlewareOptions
from ..middleware._request import api_key_tenant

__all__ = ["transport_config"]


def transport_config(options: MiddlewareOptions) -> Config:
    """Validated options; an SDK always sends its API key, so that is whose answers these
    are unless ``tenant`` (or ``allow_global=True`` with ``tenant=None``) says otherwise."""
    given = dict(options)
    if "tenant" not in given and not given.get("allow_global", False):
        given["tenant"] = api_key_tenant
    return Config(**given)  # type: ignore[arg-type]
