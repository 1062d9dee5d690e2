"""Single-flight for the pipeline: follow an identical call in flight, or lead one.

In this process, followers wait on the leader's future (:mod:`cachekit._flight`); across
processes the leader takes the key's Redis lock (:mod:`cachekit._xflight`) and the
others poll the exact layer for its answer. Everything here runs on the cache's home
loop, for sync and async callers alike.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from typing import Any

from . import _tracing as tracing
from ._flight import IN_FLIGHT, LeaderFailedError, observe
from ._schema import EXACT_HITS
from ._ticket import Ticket
from ._xflight import OTHER_PROCESS, Claim, claim, release
from .cache import CACHE_ERRORS, LLMCache
from .errors import CodecError

__all__ = ["drop_flight", "flight_key", "follow", "lead", "may_follow"]

log = logging.getLogger("cachekit")


def flight_key(cache: LLMCache, ticket: Ticket) -> str:
    return f"{cache.space(ticket.manifest).tag}:{ticket.manifest.exact_digest}"


def may_follow(cache: LLMCache, ticket: Ticket) -> bool:
    """May this call be served by an identical one in flight, before any lookup?"""
    # A forced refresh (no-cache) or max-age=0 wants a new answer, not a shared one.
    ctl = ticket.control
    return cache.single_flight and ticket.wait and not ctl.skip_lookup and ctl.max_age != 0


async def follow(cache: LLMCache, ticket: Ticket, fut: concurrent.futures.Future[Any]) -> bool:
    """Wait for the leader's value; True when ``ticket.value`` is it."""
    budget = cache.budgets.flight_wait
    ticket.deadline = max(ticket.deadline, time.monotonic() + budget + 0.05)
    try:
        async with asyncio.timeout(budget):
            ticket.value = await observe(fut)
    except (LeaderFailedError, TimeoutError):
        return False
    ticket.reason = IN_FLIGHT
    # Served from memory: counted like a Redis hit so shared stats stay true.
    cache.background(cache.count, ticket.manifest, EXACT_HITS)
    return True


async def lead(cache: LLMCache, ticket: Ticket, goes_to: str) -> bool:
    """After a miss that will be stored: lead this key's flight, or follow its leader.

    True when ``ticket.value`` was served (by a leader in this process or by another
    process's stored answer). False: this call runs the function, holding the flight
    (and the cross-process lock, when it got it) until ``complete`` or ``abort``.
    """
    if not cache.single_flight or not ticket.storing:
        return False
    key = flight_key(cache, ticket)
    if ticket.control.skip_lookup:
        # A forced refresh leads without waiting; later callers share its fresh answer.
        ticket.flight, ticket.flight_key = cache.flights.lead(key), key
        return False
    if not ticket.wait:
        return False
    leader, fut = cache.flights.join(key)
    if not leader:
        return await follow(cache, ticket, fut)
    ticket.flight, ticket.flight_key = fut, key
    with tracing.stage("cache.lock"):  # the lock, and a last look for another's answer
        got = await cache.run(_claim, cache, ticket, goes_to)  # the lock lives on the home loop
    ticket.lock = got.lock
    if got.found is None:
        return False
    (ticket.value,) = got.found
    cache.flights.resolve(fut, ticket.value)
    cache.flights.land(key, fut)
    ticket.flight = None
    ticket.reason = OTHER_PROCESS
    return True


def drop_flight(cache: LLMCache, ticket: Ticket) -> None:
    """Fail the flight ``ticket`` leads (its followers call for themselves), or forget it
    once resolved, and free the lock."""
    flight, ticket.flight = ticket.flight, None
    if flight is not None:
        if flight.done():
            cache.flights.land(ticket.flight_key, flight)
        else:
            cache.flights.fail(ticket.flight_key, flight)
    lock, ticket.lock = ticket.lock, None
    release(cache, lock)


async def _claim(cache: LLMCache, ticket: Ticket, goes_to: str) -> Claim[tuple[Any]]:
    """The key's cross-process lock, or another process's stored answer.

    A failure here is a cache failure: the call fails open and stores nothing.
    """

    async def poll() -> tuple[Any] | None:
        outcome = await cache.lookup(
            ticket.manifest, threshold=None, max_age=ticket.control.max_age
        )
        if outcome.entry is None:
            return None
        try:
            value = ticket.codec.decode(outcome.entry.payload)
        except CodecError:
            return None  # the leader's corrupt entry: this call runs the function
        ticket.outcome = outcome
        return (value,)  # boxed: None is a value a function may return

    assert ticket.outcome is not None
    b = cache.budgets
    ticket.deadline = max(
        ticket.deadline, time.monotonic() + b.flight_wait + b.command + b.lookup + 1.0
    )
    try:
        got = await claim(cache, ticket.manifest, ticket.outcome.generation, poll)
    except Exception as exc:
        # Redis misbehaves (or a bug): the call fails open and stores nothing.
        if not isinstance(exc, CACHE_ERRORS):
            log.exception("cachekit: unexpected error in single-flight; skipping the cache")
        tracing.failed(ticket, exc)
        ticket.failed = cache.failed("single-flight", exc, b.command, goes_to=goes_to)
        return Claim()
    # Held by the ticket from here, on the home loop: a caller cancelled before this
    # result reaches it still frees the lock (begin's clean-up).
    ticket.lock = got.lock
    return got
