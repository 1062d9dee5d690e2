"""``CachedCall``: everything the sync and async wrappers share (keys, lookup, store)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ._binding import BoundCall, bind
from ._call_base import CallState
from ._manifest import cached_manifest
from ._store import StoreSteps
from .cache import LLMCache
from .errors import CacheConfigError, CodecError
from .result import current_control, current_tenant


class CachedCall(StoreSteps):
    """Everything the sync and async wrappers share: options, keys, lookup and store.

    ``before`` and ``after`` are coroutines run on the cache's home loop, awaited
    directly by async callers and submitted from sync callers, so the logic exists once.
    """

    # -- before the call --------------------------------------------------------------

    def start(
        self,
        wrapped: Callable[..., Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[CallState | None, str | None]:
        """Build the call's state, or say why it bypasses the cache.

        Raises CacheKeyError (before the function runs) for arguments with no key.
        """
        started = time.perf_counter()
        arguments = bind(wrapped, args, kwargs)
        tenant = None
        if self.tenant is not None:
            tenant = self.tenant(BoundCall(wrapped, arguments, instance))
            if tenant is not None and not isinstance(tenant, str):
                raise CacheConfigError(
                    f"the tenant= callback must return str or None, got {type(tenant).__name__}"
                )
        if tenant is None:
            tenant = current_tenant()
        if tenant is not None and not tenant.strip():
            # An empty id would be one tenant shared by every caller that has none.
            tenant = None
        manifest = cached_manifest(
            self.namespace,
            tenant,
            arguments,
            function_id=self.function_id,
            prompt_param=self.prompt,
            ignore=self.ignore,
            normalize=self.normalize,
        )
        ctl = current_control()
        state = CallState(manifest, ctl)
        state.started = started
        if tenant is None and self.tenant is not None and not self.allow_global:
            return state, "no tenant"
        state.stream = self.generator or arguments.get("stream") is True
        if ctl is not None and ctl.skip_lookup and ctl.skip_store:
            return state, "cache_control"
        return state, None

    def lookup_budget(self, cache: LLMCache, state: CallState) -> float:
        if state.semantic is None:
            state.semantic = cache.uses_semantic(state.manifest, self.effective_threshold(cache))
        return cache.lookup_budget(state.semantic)

    async def before(self, cache: LLMCache, state: CallState) -> None:
        """Look up; on a decodable hit set ``state.value``. Runs on the home loop."""
        ctl = state.ctl
        if ctl is not None and ctl.skip_lookup:
            state.outcome = await cache.prepare(state.manifest)
            return
        outcome = await cache.lookup(
            state.manifest,
            threshold=self.effective_threshold(cache) if state.semantic is not False else None,
            max_age=ctl.max_age if ctl else None,
        )
        state.outcome = outcome
        if outcome.entry is None:
            return
        try:
            state.value = self.decode(state, outcome.entry.payload)
        except CodecError as exc:
            cache.warn("decode", "cachekit: dropping a corrupt cache entry: %s", exc)
            entry_id = outcome.entry.entry_id
            outcome.entry = None
            outcome.layer = None
            await cache.delete_entry(state.manifest, entry_id)
