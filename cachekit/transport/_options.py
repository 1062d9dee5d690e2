"""The transports' options: the middleware's, with the API key as the default tenant."""

from __future__ import annotations

from ..middleware._options import Config, MiddlewareOptions
from ..middleware._request import api_key_tenant

__all__ = ["transport_config"]


def transport_config(options: MiddlewareOptions) -> Config:
    """Validated options; an SDK always sends its API key, so that is whose answers these
    are unless ``tenant`` says otherwise. ``allow_global=True`` means what it means for the
    middleware: requests *without* a key (a local model) may share; keys still never do.
    Only ``tenant=None`` with ``allow_global=True`` shares everything."""
    given = dict(options)
    if "tenant" not in given:
        given["tenant"] = api_key_tenant
    # Unlike a server's middleware, a transport does not wait for its store at the end
    # of the body: the reader's own deadlines run there (the openai SDK drains a stream
    # after ``[DONE]`` under a 0.1 s cancel scope, which would cancel the store). The
    # store is handed to the cache's queue, as the decorator's are.
    return Config(**given, goes_to="upstream", wait_for_store=None)  # type: ignore[arg-type]
