"""``CachekitCache``: cachekit as LangChain's LLM cache (``langchain_core.caches.BaseCache``).

::

    from langchain_core.globals import set_llm_cache
    from cachekit.langchain import CachekitCache

    set_llm_cache(CachekitCache(cache, namespace="support", tenant=lambda: org.get()))
    # or for one model: ChatOpenAI(model="gpt-4o-mini", cache=CachekitCache(...))

Needs ``pip install 'cachekit[langchain]'``; ``import cachekit`` never imports LangChain.

An adapter over :class:`~cachekit._pipeline.Pipeline`, as the decorator is: ``lookup``
builds a :class:`~cachekit._ticket.Ticket` (the key from :mod:`cachekit._langchain_key`:
the last human message is the prompt, ``llm_string`` and the other messages are the
scope; values in LangChain's own serialisation, :mod:`cachekit._langchain_codec`) and
calls ``begin``. A hit is returned as real ``ChatGeneration``/``AIMessage`` objects; a
miss waits (:mod:`cachekit._langchain_pending`) for the ``update`` that completes it.

**No single-flight, on purpose.** LangChain calls ``lookup``, runs the model, then
``update``; when the model raises it calls nothing at all. A miss that led a flight and
held the Redis lock would stay held until something noticed: identical calls in this
process would wait on it for ``Budgets.flight_wait`` (30 s by default) and other
processes until the lock's lease (``Budgets.flight_lease``, 60 s), right after a rate
limit or an outage, when models fail most. So this entry point's pipeline has
``single_flight=False``: ``lookup`` only looks up, a miss holds nothing while the model
runs, and after a model raised the next call runs the model at once. The cost:
identical calls that miss at the same moment each run the model (each stores; the last
store owns the exact key). With no flight to serve the moment between the model's
answer and its store landing, ``update`` waits for the store (bounded by the store
budget), so a repeat right after it is a hit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any

from ._call import DEFAULT_MAX_ENTRY_BYTES
from ._langchain_key import langchain_manifest
from ._langchain_pending import PendingMisses, caller
from ._options import (
    NOT_GIVEN,
    EntryOptions,
    NotGiven,
    blank_to_none,
    check_callable,
    check_positive_int,
)
from ._pipeline import Pipeline
from ._policy import describe_failure
from ._report import report_bypass
from ._ticket import Hit, Miss, Ticket
from .cache import LLMCache, WouldBlockError
from .errors import CacheBackendError, CacheConfigError, CacheKeyError
from .result import CacheControl, CacheResult, current_control, current_tenant

try:
    from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
    from langchain_core.outputs import Generation

    from ._langchain_codec import GenerationsCodec
except ImportError as exc:  # pragma: no cover - depends on the install
    raise CacheConfigError(
        "cachekit.langchain needs langchain-core: pip install 'cachekit[langchain]'"
    ) from exc

__all__ = ["CachekitCache"]

_CODEC = GenerationsCodec()
#: An ``update`` with no lookup before it: store without looking up.
_STORE_ONLY = CacheControl(skip_lookup=True)


class CachekitCache(BaseCache):
    """A LangChain cache in Redis: exact and semantic, per tenant, shared by every worker.

    Args:
        cache: the :class:`~cachekit.LLMCache` (None: :func:`cachekit.get_default_cache`).
        namespace: groups the entries for stats, ``invalidate`` and :meth:`clear`.
        threshold: cosine similarity a paraphrase of the last human message needs to be
            served (omitted: the embedder's default; None: exact matches only).
        ttl: seconds an entry lives (None: the cache's ``default_ttl``).
        tenant: ``callable() -> str | None``, called on every lookup and update (read
            your request's context); entries of one tenant are never served to another.
            When it returns None the tenant set with :func:`cachekit.use_tenant` applies;
            with neither the call bypasses the cache unless ``allow_global``.
            ``tenant=cachekit.result.current_tenant`` uses ``use_tenant`` alone.
        allow_global: share answers between callers that have no tenant. Without a
            ``tenant`` callable this must be True (it is refused otherwise).
        on_result: called with each call's :class:`~cachekit.CacheResult`.
        max_entry_bytes: the largest entry stored (payload + prompt, UTF-8 bytes).
        max_pending: lookups that missed and wait for their update; past it the oldest
            are forgotten (their update then stores without them).
    """

    def __init__(
        self,
        cache: LLMCache | None = None,
        *,
        namespace: str = "langchain",
        threshold: float | NotGiven | None = NOT_GIVEN,
        ttl: int | None = None,
        tenant: Callable[[], str | None] | None = None,
        allow_global: bool = False,
        on_result: Callable[[CacheResult], None] | None = None,
        max_entry_bytes: int | None = DEFAULT_MAX_ENTRY_BYTES,
        max_pending: int = 1000,
    ) -> None:
        check_callable("tenant", tenant, "callable() -> str | None")
        if not isinstance(allow_global, bool):
            raise CacheConfigError(f"allow_global must be True or False, got {allow_global!r}")
        if tenant is None and not allow_global:
            raise CacheConfigError(
                "a LangChain cache needs to know whose answers it may share: pass "
                "tenant=callable() -> str | None (tenant=cachekit.result.current_tenant "
                "takes the one set with cachekit.use_tenant()), or allow_global=True to "
                "share answers between all callers"
            )
        if max_entry_bytes is not None:
            check_positive_int("max_entry_bytes", max_entry_bytes, " (bytes) or None")
        check_positive_int("max_pending", max_pending)
        self._pipeline = Pipeline(
            EntryOptions(
                namespace, cache, threshold, ttl, on_result,
                goes_to="the model", wait_for_store=True, single_flight=False,
                max_entry_bytes=max_entry_bytes, label="langchain",
            )
        )  # fmt: skip
        self._tenant_fn = tenant
        self._allow_global = allow_global
        self._pending = PendingMisses(max_pending)

    @property
    def namespace(self) -> str:
        return self._pipeline.options.namespace

    @property
    def pending(self) -> int:
        """Lookups that missed and wait for their update (a model still running, or one
        that raised)."""
        return len(self._pending)

    # -- lookup ---------------------------------------------------------------------------

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        ticket, key = self._start(prompt, llm_string)
        if ticket is None:
            return None
        return self._looked_up(self._pipeline.begin_sync(ticket), key)

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        ticket, key = self._start(prompt, llm_string)
        if ticket is None:
            return None
        return self._looked_up(await self._pipeline.begin(ticket), key)

    def _start(self, prompt: str, llm_string: str) -> tuple[Ticket | None, Hashable]:
        """The lookup's ticket and the key its miss waits under; no ticket when the call
        bypasses the cache (reported here)."""
        started = time.perf_counter()
        tenant, bypass = self._tenant()
        ctl = current_control()
        if bypass is None and ctl is not None and ctl.skip_lookup and ctl.skip_store:
            bypass = "cache_control"
        if bypass is not None:
            self._bypass(bypass, started)
            return None, None
        ticket = self._ticket(prompt, llm_string, tenant, ctl, started, quiet=False)
        return ticket, (caller(), tenant, prompt, llm_string)

    def _looked_up(self, got: Hit | Miss, key: Hashable) -> list[Generation] | None:
        if isinstance(got, Hit):
            # The same caller asking again: a miss it left waiting had its model raise.
            self._pending.take(key)
            return list(got.value)
        self._pending.put(key, got)
        return None

    # -- update ---------------------------------------------------------------------------

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        target: Hit | Miss | Ticket | None = self._target(prompt, llm_string)
        if isinstance(target, Ticket):
            target = self._pipeline.begin_sync(target)
        if isinstance(target, Miss):
            self._pipeline.complete_sync(target, list(return_val))

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        target: Hit | Miss | Ticket | None = self._target(prompt, llm_string)
        if isinstance(target, Ticket):
            target = await self._pipeline.begin(target)
        if isinstance(target, Miss):
            await self._pipeline.complete(target, list(return_val))

    def _target(self, prompt: str, llm_string: str) -> Miss | Ticket | None:
        """What ``update`` completes: its lookup's miss; else (an update with no lookup
        before it: a cache seeded by hand, or a miss past ``max_pending``) a ticket that
        stores without looking up; None: nothing is stored."""
        tenant, bypass = self._tenant()
        if bypass is not None:
            return None  # the lookup reported the bypass
        miss = self._pending.take((caller(), tenant, prompt, llm_string))
        if miss is not None:
            return miss
        ctl = current_control()
        if ctl is not None and ctl.skip_store:
            return None
        # Quiet: a prompt with no key was reported as a bypass by its lookup.
        return self._ticket(
            prompt, llm_string, tenant, _STORE_ONLY, time.perf_counter(), quiet=True
        )

    # -- clear ----------------------------------------------------------------------------

    def clear(self, **kwargs: Any) -> None:
        """Invalidate the namespace: every worker misses its entries at once (they age
        out by TTL/LRU). ``clear(tenant="acme")``: that tenant's entries only."""
        tenant = _clear_tenant(kwargs)
        cache = self._pipeline.cache
        budget = cache.budgets.connect + cache.budgets.command
        try:
            cache.run_sync(cache.invalidate, self.namespace, tenant, timeout=budget)
        except (TimeoutError, WouldBlockError) as exc:
            raise CacheBackendError(
                f"clear() of namespace {self.namespace!r} failed: "
                f"{describe_failure('invalidation', exc, budget)}"
            ) from exc

    async def aclear(self, **kwargs: Any) -> None:
        """:meth:`clear` for async code."""
        cache = self._pipeline.cache
        await cache.invalidate(self.namespace, _clear_tenant(kwargs))

    # -- shared ---------------------------------------------------------------------------

    def _tenant(self) -> tuple[str | None, str | None]:
        """(tenant, bypass reason), as the decorator decides: the callable, else
        ``use_tenant``, else the global space when allowed."""
        tenant = None
        if self._tenant_fn is not None:
            tenant = self._tenant_fn()
            if tenant is not None and not isinstance(tenant, str):
                raise CacheConfigError(
                    f"the tenant= callable must return str or None, got {type(tenant).__name__}"
                )
        tenant = blank_to_none(tenant if tenant is not None else current_tenant())
        if tenant is None and not self._allow_global:
            return None, "no tenant"
        return tenant, None

    def _ticket(
        self,
        prompt: str,
        llm_string: str,
        tenant: str | None,
        control: CacheControl | None,
        started: float,
        *,
        quiet: bool,
    ) -> Ticket | None:
        """The call's ticket; None for a prompt with no key (a bypass, reported unless
        ``quiet``)."""
        if not isinstance(prompt, str) or not isinstance(llm_string, str):
            raise CacheKeyError(
                "a LangChain cache takes (prompt: str, llm_string: str), got "
                f"({type(prompt).__name__}, {type(llm_string).__name__})"
            )
        try:
            manifest = langchain_manifest(self.namespace, tenant, prompt, llm_string)
        except CacheKeyError as exc:
            if not quiet:
                self._bypass(str(exc), started)
            return None
        return Ticket(manifest, _CODEC, control, started)

    def _bypass(self, reason: str, started: float) -> None:
        options = self._pipeline.options
        report_bypass(options, options.resolve_cache(), reason, started)


def _clear_tenant(kwargs: dict[str, Any]) -> str | None:
    tenant = kwargs.pop("tenant", None)
    if kwargs:
        raise CacheConfigError(f"clear() takes only tenant=, got {sorted(kwargs)}")
    if tenant is not None and not isinstance(tenant, str):
        raise CacheConfigError(f"tenant must be a str or None, got {type(tenant).__name__}")
    return tenant
