"""A finished call's :class:`~cachekit.CacheResult`, made visible once per call."""

from __future__ import annotations

import time

from ._options import EntryOptions
from ._reasons import code_of
from ._ticket import Ticket
from .cache import LLMCache
from .result import CacheResult, Status, publish

__all__ = ["report", "report_bypass"]


def report(
    options: EntryOptions,
    cache: LLMCache,
    ticket: Ticket,
    status: Status,
    *,
    reason: str | None = None,
    overhead: float | None = None,
) -> None:
    """Publish ``ticket``'s result (``last_result()``, the cache's observers, ``on_result``)."""
    ticket.reported = True
    outcome = ticket.outcome
    entry = outcome.entry if outcome is not None else None
    if overhead is None:
        overhead = time.perf_counter() - ticket.started
    layer = outcome.layer if entry is not None and outcome is not None else None
    matched = entry.prompt if entry is not None else None
    if status == "exact" and entry is None:
        # Served by an identical call in flight: the same key, fresh from memory.
        layer, matched = "exact", ticket.manifest.prompt
    served = entry if entry is not None and status in ("exact", "semantic") else None
    reason = reason or ticket.failed or ticket.reason
    reason = None if reason is None else str(reason)  # a Reason member is its plain text
    result = CacheResult(
        status=status,
        namespace=options.namespace,
        key=ticket.manifest.exact_digest,
        layer=layer,  # type: ignore[arg-type]
        similarity=outcome.similarity if outcome is not None else None,
        matched_prompt=matched,
        latency_ms=overhead * 1000.0,
        age_s=(time.time() - entry.created) if entry is not None else None,
        stored=ticket.stored,
        reason=reason,
        tenant=ticket.manifest.tenant,
        verdict=outcome.verdict if outcome is not None else None,  # type: ignore[arg-type]
        verify_reason=outcome.verify_reason if outcome is not None else None,
        reason_code=code_of(reason),
        saved_tokens=served.tokens if served is not None else None,
        model=served.model if served is not None else None,
        saved_estimated=served.estimated if served is not None else False,
    )
    publish(result, cache.observers, options.on_result)


def report_bypass(
    options: EntryOptions,
    cache: LLMCache,
    reason: str,
    started: float,
    ticket: Ticket | None = None,
) -> None:
    """Publish a call that skipped the cache on purpose (no key, no tenant, ...)."""
    if ticket is not None:
        ticket.reported = True
    manifest = ticket.manifest if ticket is not None else None
    result = CacheResult(
        status="bypass",
        namespace=options.namespace,
        key=manifest.exact_digest if manifest is not None else None,
        latency_ms=(time.perf_counter() - started) * 1000.0,
        reason=str(reason),
        tenant=manifest.tenant if manifest is not None else None,
        reason_code=code_of(reason),
    )
    publish(result, cache.observers, options.on_result)
