"""The RFC 9211 ``Cache-Status`` member of one handled response.

One List member named ``cachekit``, appended after any the app (an upstream cache) sent:

* served from an entry: ``cachekit; hit; ttl=<s left>; key="<digest>"; detail=exact``
  (``detail=semantic`` for a paraphrase);
* served by an identical request in flight (this process, or another process's stored
  answer after waiting on its lock): ``fwd=uri-miss; collapsed``;
* a miss: ``fwd=uri-miss``; the client's ``no-cache``, or an entry older than its
  ``max-age``/``s-maxage``: ``fwd=request`` (there may be an entry; the request's own
  directives ruled it out);
* not handled by the cache: ``fwd=bypass; detail=<reason code>`` (a failure of the cache
  itself too: ``circuit_open``, ``cache_error``), except the client's ``no-cache`` with
  ``no-store``: ``fwd=request``.

Forwarded responses carry ``fwd-status`` (the app's status). ``stored`` is never sent:
the header goes out before the body that decides whether the answer is stored. Responses
the middleware makes itself (400 for a bad control, 504 for ``only-if-cached``) carry no
member: RFC 9211 section 2 says an intermediary should not add one to what it generates.
"""

from __future__ import annotations

from typing import Final

from .._flight import IN_FLIGHT
from .._reasons import Reason, code_of
from .._ticket import Ticket
from .._xflight import OTHER_PROCESS

__all__ = ["CACHE_NAME", "cache_status"]

#: The cache's identifier in the List (a Token).
CACHE_NAME: Final = "cachekit"
_COLLAPSED: Final = (IN_FLIGHT, OTHER_PROCESS)
#: The lookup script's word for an entry older than the request's max-age.
_TOO_OLD: Final = "stale"


def cache_status(
    ticket: Ticket | None, label: str, status: int | None, reason: str | None = None
) -> bytes:
    """The member for a response labelled ``label`` (``X-Cache``), ``status`` its code."""
    params: list[str] = []
    if label == "HIT" and ticket is not None and ticket.reason not in _COLLAPSED:
        params.append("hit")
        entry = ticket.outcome.entry if ticket.outcome is not None else None
        if entry is not None and entry.pttl is not None:
            params.append(f"ttl={entry.pttl // 1000}")
    else:
        params.append(f"fwd={_forwarded(ticket, label, reason)}")
        if status is not None:
            params.append(f"fwd-status={status}")
        if label == "HIT":
            params.append("collapsed")
    if ticket is not None:
        params.append(f'key="{ticket.manifest.exact_digest}"')  # a hex digest: nothing to escape
        detail = _detail(ticket, label, reason)
        if detail is not None:
            params.append(f"detail={detail}")
    elif reason is not None and (code := code_of(reason)) is not None:
        params.append(f"detail={code}")
    return "; ".join([CACHE_NAME, *params]).encode()


def _forwarded(ticket: Ticket | None, label: str, reason: str | None) -> str:
    """Why the request went on to the app (RFC 9211 2.2)."""
    if label == "BYPASS":
        skipped_by_client = reason == Reason.CACHE_CONTROL
        return "request" if skipped_by_client else "bypass"
    if ticket is None:
        return "uri-miss"
    if ticket.control.skip_lookup:
        return "request"
    outcome = ticket.outcome
    if label == "MISS" and outcome is not None and outcome.reason == _TOO_OLD:
        return "request"
    return "uri-miss"


def _detail(ticket: Ticket, label: str, reason: str | None) -> str | None:
    """A Token naming the layer of a hit, or why the cache stood aside."""
    if label == "HIT":
        outcome = ticket.outcome
        if outcome is not None and outcome.entry is not None and outcome.layer:
            return outcome.layer
        return None
    if label != "BYPASS":
        return None
    if ticket.failed is not None:
        return "circuit_open" if ticket.failed.startswith("circuit open") else "cache_error"
    return code_of(reason or ticket.reason)
