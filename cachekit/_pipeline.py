"""The call policy, once, for every entry point: ``begin``, then ``complete`` or ``abort``.

``begin(ticket)`` passes the breaker, looks up within budget, decodes the entry (dropping
a corrupt one), coalesces identical calls (in this process and across processes): it
returns a :class:`Hit` to serve or a :class:`Miss`. After a miss the caller runs the
function and calls ``complete(miss, value)`` (hand the value to followers, store it,
publish the result) or ``abort(miss)`` (release the followers, store nothing). The cache
never raises into the caller here: a cache failure fails open, named in ``reason``.

A sync caller crosses to the home loop once for ``begin`` and hands the store over
without waiting (unless the entry point waits for stores); ``begin_sync`` only drives
the coroutine :meth:`Pipeline.begin`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from typing import Any

from . import _tracing as tracing
from ._adaptive_state import record_check
from ._flow import drop_flight, flight_key, follow, lead, may_follow
from ._loop import on_a_loop
from ._options import NOT_GIVEN, EntryOptions
from ._reasons import Reason
from ._report import report
from ._storing import encode, store
from ._ticket import Hit, Miss, Ticket
from .cache import CACHE_ERRORS, LLMCache, WouldBlockError
from .errors import CodecError

__all__ = ["Pipeline"]

log = logging.getLogger("cachekit")

_CIRCUIT_OPEN = "circuit open: the cache is skipped after repeated failures"
#: What a sync caller waits beyond the lookup budget for the home loop to report back.
_SLACK = 0.05


class Pipeline:
    """One entry point's view of the cache (options fixed at construction)."""

    __slots__ = ("options",)

    def __init__(self, options: EntryOptions) -> None:
        self.options = options

    @property
    def cache(self) -> LLMCache:
        return self.options.resolve_cache()

    # -- begin ----------------------------------------------------------------------------

    async def begin(self, ticket: Ticket, publish: bool = True) -> Hit | Miss:
        """Look up ``ticket``'s answer. Runs on the caller's loop (async callers) or the
        home loop (``begin_sync``, which publishes a hit itself, in the caller's context:
        ``last_result()`` is a context variable)."""
        with tracing.getting(ticket):  # a no-op unless the application traces
            cache, flights = self.cache, self.options.single_flight
            if flights and may_follow(cache, ticket):
                # An identical call of this process is running, or its store is still on the
                # way: its answer is served from memory, with no lookup (nor a semantic
                # search that could find the leader's fresh entry and call it "semantic").
                local = cache.flights.peek(flight_key(cache, ticket))
                if local is not None and await follow(cache, ticket, local):
                    return self._hit(cache, ticket, publish)
            await self._lookup(cache, ticket)
            if ticket.value is not NOT_GIVEN:
                return self._hit(cache, ticket, publish)
            # No flight, no lock: single-flight is off, or nothing will answer (only-if-cached).
            if not flights or ticket.control.only_if_cached:
                return self._missed(ticket)
            try:
                if await lead(cache, ticket, self.options.goes_to):
                    return self._hit(cache, ticket, publish)
            except BaseException:
                drop_flight(cache, ticket)  # cancelled while leading: free the followers
                raise
            return self._missed(ticket)

    def begin_sync(self, ticket: Ticket) -> Hit | Miss:
        """:meth:`begin` from sync code: one crossing to the home loop.

        The wait is bounded by the lookup budget, extended by the single-flight wait
        only once the call joins a flight (so a stuck loop costs a lookup budget).
        """
        with tracing.getting(ticket):  # here, in the caller's context: its span is the parent
            return self._begin_sync(ticket)

    def _begin_sync(self, ticket: Ticket) -> Hit | Miss:
        cache = self.cache
        ticket.wait = not on_a_loop()
        if cache.breaker_for(ticket.manifest).state == "open":
            ticket.failed = _CIRCUIT_OPEN  # no crossing at all while Redis is known down
            return self._missed(ticket)
        budget = self._lookup_budget(cache, ticket)
        ticket.deadline = time.monotonic() + budget + _SLACK
        try:
            fut = cache.submit(self.begin, ticket, False)
            while True:
                try:
                    got = fut.result(max(0.0, ticket.deadline - time.monotonic()))
                except concurrent.futures.TimeoutError:
                    if time.monotonic() < ticket.deadline or not fut.cancel():
                        continue  # joined a flight meanwhile (its budget applies), or done
                    drop_flight(cache, ticket)
                    raise
                if isinstance(got, Hit):
                    self._hit(cache, ticket, True)
                return got
        except WouldBlockError as exc:
            cache.warn("blocking", "cachekit: %s; skipping the cache for this call", exc)
            ticket.skipped, ticket.reason = True, Reason.WOULD_BLOCK
        except Exception as exc:  # noqa: BLE001 - the cache never raises into a call
            # A stuck home loop, or an error before the lookup's own guard (the cluster
            # client's discovery).
            self._lookup_failed(cache, ticket, exc, budget)
        return self._missed(ticket)

    def _missed(self, ticket: Ticket) -> Miss:
        ticket.spent = time.perf_counter() - ticket.started
        return Miss(ticket)

    def _lookup_budget(self, cache: LLMCache, ticket: Ticket) -> float:
        if ticket.semantic is None:
            threshold = self.options.effective_threshold(cache)
            ticket.semantic = cache.uses_semantic(ticket.manifest, threshold)
        return cache.lookup_budget(ticket.semantic)

    async def _lookup(self, cache: LLMCache, ticket: Ticket) -> None:
        breaker = cache.breaker_for(ticket.manifest)
        if not breaker.allow():
            ticket.failed = _CIRCUIT_OPEN
            return
        budget = self._lookup_budget(cache, ticket)
        try:
            # asyncio.timeout, not wait_for: no extra task on the hit path.
            async with asyncio.timeout(budget):
                await cache.run(self._read, cache, ticket)
        except Exception as exc:  # noqa: BLE001 - the cache never raises into a call
            self._lookup_failed(cache, ticket, exc, budget)
        else:
            breaker.success()

    def _lookup_failed(
        self, cache: LLMCache, ticket: Ticket, exc: Exception, budget: float
    ) -> None:
        """Fail open: Redis trouble counts against the breaker, a bug is logged whole."""
        tracing.failed(ticket, exc)
        if isinstance(exc, CACHE_ERRORS):
            cache.breaker_for(ticket.manifest).failure()
            ticket.failed = cache.failed("lookup", exc, budget, goes_to=self.options.goes_to)
        else:
            log.exception("cachekit: unexpected error in the cache lookup; skipping the cache")
            ticket.failed = f"lookup failed: {type(exc).__name__}: {exc}"

    async def _read(self, cache: LLMCache, ticket: Ticket) -> None:
        """Look up; on a decodable entry set ``ticket.value``. Runs on the home loop."""
        ctl = ticket.control
        if ctl.skip_lookup:
            ticket.outcome = await cache.prepare(ticket.manifest)
            return
        threshold = self.options.effective_threshold(cache) if ticket.semantic else None
        with tracing.current(ticket):  # the stages' spans are children of cache.get
            outcome = await cache.lookup(ticket.manifest, threshold=threshold, max_age=ctl.max_age)
        ticket.outcome = outcome
        if outcome.entry is None:
            if outcome.check is not None:
                ticket.reason = Reason.ADAPTIVE_CHECK
            return
        try:
            ticket.value = ticket.codec.decode(outcome.entry.payload)
        except CodecError as exc:
            cache.warn("decode", "cachekit: dropping a corrupt cache entry: %s", exc)
            entry_id = outcome.entry.entry_id
            outcome.entry = None
            outcome.layer = None
            await cache.delete_entry(ticket.manifest, entry_id)

    def _hit(self, cache: LLMCache, ticket: Ticket, publish: bool) -> Hit:
        if publish:
            outcome = ticket.outcome
            layer = outcome.layer if outcome is not None and outcome.entry is not None else None
            report(self.options, cache, ticket, layer or "exact")  # type: ignore[arg-type]
        return Hit(ticket)

    # -- complete / abort ---------------------------------------------------------------

    async def complete(self, miss: Miss, value: Any, *, publish: bool = True) -> None:
        """The function answered ``value``: share it, store it, publish the result
        (``publish=False``: later, with :meth:`report`, in the caller's own context)."""
        ticket, cache, resumed = miss.ticket, self.cache, time.perf_counter()
        payload = self._handover(cache, ticket, value)
        if payload is not None:  # this entry point waits for its store
            try:
                async with asyncio.timeout(self._store_budget(cache, ticket)):
                    await cache.run(store, cache, self.options, ticket, payload, value)
            except Exception as exc:  # noqa: BLE001 - named in the result, never raised
                self._landed(cache, ticket, exc)
            except BaseException:
                # Cancelled: the store may never land, so the value must not stay in
                # memory as this key's answer (the flight goes, its lock is freed).
                drop_flight(cache, ticket)
                raise
            else:
                self._landed(cache, ticket, None)
        self._completed(cache, ticket, resumed, publish)

    def complete_sync(self, miss: Miss, value: Any) -> None:
        """:meth:`complete` from sync code: the store is handed over, not waited for
        (unless the entry point waits for stores)."""
        ticket, cache, resumed = miss.ticket, self.cache, time.perf_counter()
        payload = self._handover(cache, ticket, value)
        failure: Exception | None = None
        if payload is not None:
            budget = self._store_budget(cache, ticket)
            try:
                cache.run_sync(store, cache, self.options, ticket, payload, value, timeout=budget)
            except Exception as exc:  # noqa: BLE001 - named in the result, never raised
                failure = exc
            except BaseException:
                drop_flight(cache, ticket)  # interrupted: as for a cancelled complete
                raise
            self._landed(cache, ticket, failure)
        self._completed(cache, ticket, resumed, True)

    def _completed(self, cache: LLMCache, ticket: Ticket, resumed: float, publish: bool) -> None:
        ticket.spent += time.perf_counter() - resumed
        if publish:
            self._report_miss(cache, ticket)

    def abort(self, miss: Miss, reason: str | None = None) -> None:
        """No value to store (the function raised, the stream was abandoned, the
        response cannot be recorded): release the followers, free the lock. With a
        ``reason`` (or after a cache failure) the result is published."""
        ticket, cache = miss.ticket, self.cache
        drop_flight(cache, ticket)
        if not ticket.reported and (reason is not None or not miss.used_cache):
            report(
                self.options, cache, ticket, ticket.status(), reason=reason, overhead=ticket.spent
            )

    def report(self, miss: Miss) -> None:
        """Publish the miss now (a stream handed to its reader); ``complete`` won't again."""
        self._report_miss(self.cache, miss.ticket)

    def _handover(self, cache: LLMCache, ticket: Ticket, value: Any) -> str | None:
        """Give followers the value and start its store: the payload when the caller
        waits for the store, else None (stored in the background, or not at all: then
        the flight and lock are released, as later callers must not be served a value
        Redis will not have)."""
        if ticket.flight is not None:
            cache.flights.resolve(ticket.flight, value)
        payload = encode(cache, self.options, ticket, value)
        try:
            return self._start_store(cache, ticket, value, payload)
        finally:
            # After the store is queued: a check never takes a store's place in the queue.
            self._queue_check(cache, ticket, value, payload)

    def _start_store(
        self, cache: LLMCache, ticket: Ticket, value: Any, payload: str | None
    ) -> str | None:
        if payload is None:
            drop_flight(cache, ticket)
            return None
        wait = self.options.wait_for_store
        if wait if wait is not None else not cache.background_stores:
            return payload
        if cache.background(
            store, cache, self.options, ticket, payload, value,
            done=lambda exc: self._landed(cache, ticket, exc),
        ):  # fmt: skip
            ticket.stored = True  # handed to the store (CacheResult.stored says so)
        else:
            cache.warn("dropped", "cachekit: store queue full; a result was not cached")
            drop_flight(cache, ticket)
        return None

    def _queue_check(
        self, cache: LLMCache, ticket: Ticket, value: Any, payload: str | None
    ) -> None:
        """The adaptive thresholds' evidence: was the cached answer this one? Compared off
        the caller's path; a full queue loses one observation, nothing else."""
        check = ticket.outcome.check if ticket.outcome is not None else None
        if check is None:
            return
        if payload is None:
            # Not stored (no-store, too large): the answer can still be compared.
            try:
                payload = ticket.codec.encode(value)
            except Exception:  # noqa: BLE001 - an answer with no codec is no evidence
                return
        cache.background(record_check, cache, check, payload)

    def _store_budget(self, cache: LLMCache, ticket: Ticket) -> float:
        return cache.store_budget(ticket.manifest, ticket.outcome) + cache.budgets.command

    def _landed(self, cache: LLMCache, ticket: Ticket, exc: BaseException | None) -> None:
        """The store is over (or failed with ``exc``): forget the flight (its lock was
        freed by the store)."""
        if exc is not None:
            ticket.stored = False
            if isinstance(exc, CACHE_ERRORS):
                cache.breaker_for(ticket.manifest).failure()
            elif not isinstance(exc, WouldBlockError):
                log.error("cachekit: unexpected error storing a result", exc_info=exc)
            budget = cache.store_budget(ticket.manifest, ticket.outcome)
            ticket.failed = cache.failed("store", exc, budget, goes_to=self.options.goes_to)
        drop_flight(cache, ticket)  # the flight was resolved: it just lands

    def _report_miss(self, cache: LLMCache, ticket: Ticket) -> None:
        if not ticket.reported:
            report(self.options, cache, ticket, ticket.status(), overhead=ticket.spent)
