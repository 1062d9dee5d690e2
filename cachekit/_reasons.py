"""Why a call skipped (or could not use) the cache: one enum, defined once.

A member's value is the human text the logs and ``CacheResult.reason`` have always
carried ("no tenant"); its :attr:`~Reason.code` is the stable snake_case label that
metrics and dashboards use (``no_tenant``). Members are ``str``, so an adapter passes
them wherever a reason string goes, and :func:`code_of` turns any reason text back into
its code (None for free text such as an exception message).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = ["Reason", "code_of"]


class Reason(StrEnum):
    """The fixed reasons of bypasses, unstored misses and refused requests."""

    # -- the caller's policy ------------------------------------------------------------
    NO_TENANT = "no tenant"
    BAD_TENANT = "bad tenant"
    TENANT_FAILED = "tenant failed"
    CACHE_CONTROL = "cache-control"
    NO_STORE = "no-store requested"
    ONLY_IF_CACHED = "only-if-cached: not in the cache"
    BAD_CACHE_CONTROL = "bad cache control"
    # -- the request cannot be keyed ----------------------------------------------------
    CONTENT_TYPE = "content-type"
    BODY_TOO_LARGE = "body too large"
    BAD_CONTENT_LENGTH = "bad content-length"
    CLIENT_DISCONNECTED = "client disconnected"
    EMPTY_BODY = "empty body"
    INVALID_JSON = "invalid JSON"
    JSON_TOO_DEEP = "JSON nested too deeply"
    JSON_NOT_OBJECT = "JSON body is not an object"
    EXTRACTOR_FAILED = "extractor failed"
    EXTRACTOR_DECLINED = "extractor declined"
    NO_KEY = "no key"
    #: ``previous_response_id``, a conversation, a stored prompt...: the answer depends
    #: on more than the request (cachekit/middleware/_apis.py names the fields).
    PROVIDER_STATE = "the answer depends on state the provider keeps"
    RESERVED_FIELD = "a body field has a name the key reserves"
    # -- the runtime ----------------------------------------------------------------------
    WOULD_BLOCK = "would block the event loop"
    # -- adaptive thresholds ------------------------------------------------------------
    #: A semantic candidate was checked, not served: the call ran and its answer is
    #: compared with the cached one (``cachekit.adaptive``).
    ADAPTIVE_CHECK = "adaptive check: the answer is compared with a cached one"

    @property
    def code(self) -> str:
        """The snake_case label: the member's name, lower-cased."""
        return self.name.lower()


_BY_TEXT: Final = {member.value: member for member in Reason}


def code_of(reason: str | None) -> str | None:
    """The snake_case code of a reason text, or None when it is not one of :class:`Reason`."""
    if reason is None:
        return None
    member = _BY_TEXT.get(reason)
    return member.code if member is not None else None
