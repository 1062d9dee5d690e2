"""After a miss: whether and how a value is stored, and the store itself."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from . import _tracing as tracing
from ._options import EntryOptions
from ._ticket import NotStoredError, Ticket
from ._xflight import unlock
from .cache import LLMCache
from .errors import CodecError

__all__ = ["encode", "store"]

log = logging.getLogger("cachekit")
_warned_types: set[str] = set()
_warned_lock = threading.Lock()


def _warn_uncacheable(exc: CodecError, value: Any) -> None:
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    with _warned_lock:
        if name in _warned_types:
            return
        _warned_types.add(name)
    log.warning("cachekit: not caching a %s result: %s", name, exc)


def encode(cache: LLMCache, options: EntryOptions, ticket: Ticket, value: Any) -> str | None:
    """The payload to store, or None when nothing is stored (``ticket.reason`` says why
    when the caller could not tell otherwise)."""
    if not ticket.storing:
        return None
    try:
        payload = ticket.codec.encode(value)
    except NotStoredError as exc:
        ticket.reason = str(exc)
        return None
    except CodecError as exc:
        last = value[-1] if isinstance(value, list) and value else value
        _warn_uncacheable(exc, last)
        return None
    manifest = ticket.manifest
    size = _oversize(options.max_entry_bytes, payload, manifest.prompt or "", manifest.history)
    if size is not None:
        options.oversize += 1
        ticket.reason = (
            f"not stored: entry of {size} bytes (payload + prompt) exceeds "
            f"max_entry_bytes={options.max_entry_bytes}"
        )
        cache.warn(
            "oversize",
            "cachekit: %s: %s (%d such results so far)",
            options.label or options.namespace,
            ticket.reason,
            options.oversize,
        )
        return None
    return payload


def _oversize(
    cap: int | None, payload: str, prompt: str, history: tuple[str, ...] = ()
) -> int | None:
    """The entry's size in bytes when it is over the cap, else None.

    The entry's body keeps the payload, the prompt text and, with ``history="similar"``,
    the earlier turns, so all count.
    UTF-8 takes 1-4 bytes a character, so values of at most a quarter of the cap in
    characters skip the exact count (a copy of the text): the common case stays cheap.
    """
    chars = len(payload) + len(prompt) + sum(len(t) for t in history)
    if cap is None or chars * 4 <= cap:
        return None
    size = len(payload.encode("utf-8", "surrogatepass"))
    size += len(prompt.encode("utf-8", "surrogatepass"))
    size += sum(len(t.encode("utf-8", "surrogatepass")) for t in history)
    return size if size > cap else None


async def store(
    cache: LLMCache, options: EntryOptions, ticket: Ticket, payload: str, value: Any
) -> None:
    """Store the entry (within the store budget), then free the cross-process lock.
    Runs on the home loop.

    The lock is released only after the entry landed, so processes polling for it find
    it before they could take the lock and call the function again.
    """
    try:
        assert ticket.outcome is not None
        usage, estimated = ticket.codec.usage(value, ticket.manifest)
        # A per-call TTL (cache_control(ttl=), X-Cache-TTL, the body's cache.ttl) wins
        # over the entry point's: the caller knows how long this answer stays true.
        ttl = ticket.control.ttl if ticket.control.ttl is not None else options.ttl
        with tracing.putting(ticket):
            async with asyncio.timeout(cache.store_budget(ticket.manifest, ticket.outcome)):
                ticket.stored = await cache.store(
                    ticket.manifest,
                    ticket.outcome,
                    payload,
                    ttl=ttl,
                    usage=usage,
                    usage_estimated=estimated,
                    model=ticket.manifest.model or ticket.codec.model(value, ticket.manifest),
                )
    finally:
        # Here, within its own command budget (errors logged, the lease as the backstop):
        # not queued behind other stores, where a full queue would drop it.
        lock, ticket.lock = ticket.lock, None
        if lock is not None:
            await unlock(cache, lock)
