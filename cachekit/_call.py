"""``CachedCall``: a decorated function's fixed options, and how a call becomes a ticket.

Everything a call does with the cache is :class:`~cachekit._pipeline.Pipeline`'s; this
module only turns bound arguments into a key manifest and says how values are encoded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import _codec
from ._binding import BoundCall, bind
from ._manifest import DEFAULT_IGNORE, KeyManifest, cached_manifest, check_history
from ._options import EntryOptions, blank_to_none, check_callable
from ._pipeline import Pipeline
from ._reasons import Reason
from ._report import report
from ._ticket import NotStoredError, Ticket
from ._tokens import estimate_usage
from ._usage import stream_usage, usage_of
from .errors import CacheConfigError
from .result import current_control, current_tenant

__all__ = ["CachedCall"]

#: Default cap on one stored entry (payload + prompt text), as the middleware's body cap.
DEFAULT_MAX_ENTRY_BYTES = 1 << 20


class _Codec:
    """A decorated function's values: one object (``stream=False``) or the list of a
    stream's items."""

    __slots__ = ("cache_none", "stream")

    def __init__(self, *, stream: bool, cache_none: bool) -> None:
        self.stream = stream
        self.cache_none = cache_none

    def decode(self, payload: bytes) -> Any:
        return _codec.decode_stream(payload) if self.stream else _codec.decode(payload)

    def encode(self, value: Any) -> str:
        if self.stream:
            return _codec.encode_stream(value)
        if value is None and not self.cache_none:
            raise NotStoredError("not stored: the function returned None (cache_none=False)")
        return _codec.encode(value)

    def usage(self, value: Any, manifest: KeyManifest) -> tuple[tuple[int, int] | None, bool]:
        usage = stream_usage(value) if self.stream else usage_of(value)
        if usage is None and manifest.model:
            # No usage reported (a plain str, a stream without include_usage): estimate it
            # so savings still count, flagged so reports can say so.
            return estimate_usage(manifest.prompt, value, manifest.model), True
        return usage, False

    def model(self, value: Any, manifest: KeyManifest) -> str | None:
        return None


@dataclass(frozen=True, slots=True)
class KeyRules:
    """How a decorated function's arguments become its key (checked at decoration)."""

    tenant: Callable[[BoundCall], str | None] | None
    allow_global: bool
    ignore: frozenset[str]
    prompt: str | None
    normalize: Callable[[str], str] | None
    history: str = "exact"

    def __post_init__(self) -> None:
        check_history(self.history)
        check_callable("tenant", self.tenant, "callable(BoundCall) -> str | None")
        if self.prompt is not None and not isinstance(self.prompt, str):
            raise CacheConfigError(f"prompt must be a parameter name, got {self.prompt!r}")
        # Merged once, not per call.
        object.__setattr__(self, "ignore", DEFAULT_IGNORE.union(self.ignore))


class CachedCall:
    """A decorated function: its options (fixed at decoration) and its pipeline."""

    def __init__(
        self, options: EntryOptions, rules: KeyRules, cache_none: bool, generator: bool
    ) -> None:
        self.pipeline = Pipeline(options)
        self.rules = rules
        self.function_id = options.label
        self.generator = generator
        self._plain = _Codec(stream=False, cache_none=cache_none)
        self._stream = _Codec(stream=True, cache_none=cache_none)

    def start(
        self,
        wrapped: Callable[..., Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[Ticket, bool, str | None]:
        """The call's ticket, whether it streams, and why it bypasses the cache (if so).

        Raises CacheKeyError (before the function runs) for arguments with no key.
        """
        started = time.perf_counter()
        arguments = bind(wrapped, args, kwargs)
        rules = self.rules
        tenant = None
        if rules.tenant is not None:
            tenant = rules.tenant(BoundCall(wrapped, arguments, instance))
            if tenant is not None and not isinstance(tenant, str):
                raise CacheConfigError(
                    f"the tenant= callback must return str or None, got {type(tenant).__name__}"
                )
        tenant = blank_to_none(tenant if tenant is not None else current_tenant())
        manifest = cached_manifest(
            self.pipeline.options.namespace,
            tenant,
            arguments,
            function_id=self.function_id,
            prompt_param=rules.prompt,
            ignore=rules.ignore,
            normalize=rules.normalize,
            history=rules.history,
        )
        stream = self.generator or arguments.get("stream") is True
        ctl = current_control()
        ticket = Ticket(manifest, self._stream if stream else self._plain, ctl, started)
        if tenant is None and rules.tenant is not None and not rules.allow_global:
            return ticket, stream, Reason.NO_TENANT
        if ctl is not None and ctl.skip_lookup and ctl.skip_store:
            return ticket, stream, Reason.CACHE_CONTROL
        return ticket, stream, None

    def bypass(self, ticket: Ticket, reason: str, overhead: float) -> None:
        """Publish a call that skipped the cache on purpose (after the function ran)."""
        options = self.pipeline.options
        report(options, options.resolve_cache(), ticket, "bypass", reason=reason, overhead=overhead)
