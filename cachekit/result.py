"""What happened to the last cached call, without changing return types.

``last_result()`` reads a context variable set by the decorator (and by the middleware
per request), so concurrent tasks and threads each see their own call.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Literal

from .errors import CacheConfigError

__all__ = [
    "NO_CONTROL",
    "CacheControl",
    "CacheResult",
    "Status",
    "cache_control",
    "check_control_ttl",
    "current_control",
    "current_tenant",
    "last_result",
    "use_tenant",
]

Status = Literal["miss", "exact", "semantic", "bypass", "error"]
log = logging.getLogger("cachekit")


@dataclass(frozen=True, slots=True)
class CacheResult:
    """The outcome of one cached call.

    ``status``: ``miss`` (the function ran), ``exact``/``semantic`` (served from the
    cache), ``bypass`` (cache skipped on purpose), ``error`` (the cache failed and the
    function ran anyway). ``latency_ms`` is the time cachekit itself spent (lookup and,
    on a miss, the store), not the wrapped function's time. ``stored`` means the value
    was handed to the store: written, or queued for the background writer (a failure
    there is logged and counted, see ``LLMCache.dropped_stores``). ``reason`` explains
    bypasses, errors and single-flight hits.
    """

    status: Status
    namespace: str
    key: str | None = None
    layer: Literal["exact", "semantic"] | None = None
    similarity: float | None = None
    matched_prompt: str | None = None
    latency_ms: float = 0.0
    age_s: float | None = None
    stored: bool = False
    reason: str | None = None
    #: The call's tenant (None: no tenant), so observers can attribute it.
    tenant: str | None = None
    #: The hit verifier's decision on the nearest semantic candidate above the threshold:
    #: ``"accepted"`` (served, ``status="semantic"``), ``"rejected"`` (not served: the call
    #: missed and ``verify_reason`` names the signal, e.g. ``"number"``), None when no
    #: semantic candidate reached the verifier.
    verdict: Literal["accepted", "rejected"] | None = None
    verify_reason: str | None = None
    #: ``reason`` as a stable snake_case code (``no_tenant``, ``only_if_cached``, ...; see
    #: ``cachekit._reasons.Reason``) for metrics; None for free text (an error message).
    reason_code: str | None = None
    #: On a hit served from an entry: the (input, output) tokens it saved, the model that
    #: answered and whether the tokens were estimated (no usage in the response).
    saved_tokens: tuple[int, int] | None = None
    model: str | None = None
    saved_estimated: bool = False

    @property
    def hit(self) -> bool:
        return self.status in ("exact", "semantic")


_last: contextvars.ContextVar[CacheResult | None] = contextvars.ContextVar(
    "cachekit_last_result", default=None
)


def last_result() -> CacheResult | None:
    """The result of the most recent cached call in this context (task or thread)."""
    return _last.get()


def _set_last(result: CacheResult) -> None:
    _last.set(result)


def publish(
    result: CacheResult,
    observers: Iterable[Callable[[CacheResult], None]],
    on_result: Callable[[CacheResult], None] | None,
) -> None:
    """Make a result visible: ``last_result()``, the cache's observers, ``on_result``.

    Shared by the decorator and the middlewares. A failing hook is logged, never raised:
    metrics must not break a user's call.
    """
    _last.set(result)
    for hook in (*observers, *((on_result,) if on_result is not None else ())):
        try:
            hook(result)
        except Exception:
            log.exception("cachekit: result hook %r failed", hook)


@dataclass(frozen=True, slots=True)
class CacheControl:
    """Per-call overrides: skip the lookup, skip the store, reject old entries, store for
    ``ttl`` seconds, or answer only from the cache (HTTP's ``only-if-cached``)."""

    skip_lookup: bool = False
    skip_store: bool = False
    max_age: float | None = None
    #: Seconds this call's answer lives (None: the entry point's ``ttl``).
    ttl: int | None = None
    #: Never run the function/app: a miss is answered by the entry point (HTTP: 504).
    only_if_cached: bool = False


#: No overrides: what a call without :func:`cache_control` (or ``Cache-Control``) gets.
NO_CONTROL: Final = CacheControl()

_control: contextvars.ContextVar[CacheControl | None] = contextvars.ContextVar(
    "cachekit_control", default=None
)
_tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "cachekit_tenant", default=None
)


def current_control() -> CacheControl | None:
    return _control.get()


def check_control_ttl(ttl: object, name: str = "ttl") -> int | None:
    """A per-call TTL: a positive int of seconds, or None."""
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0):
        raise CacheConfigError(f"{name} must be a positive int (seconds) or None, got {ttl!r}")
    return ttl


@contextlib.contextmanager
def cache_control(
    *,
    skip_lookup: bool = False,
    skip_store: bool = False,
    max_age: float | None = None,
    ttl: int | None = None,
) -> Iterator[CacheControl]:
    """Apply per-call cache policy to the calls made inside the ``with`` block.

    ``skip_lookup`` always calls the function (fresh answer) and still stores it unless
    ``skip_store``; ``skip_store`` never writes; ``max_age`` (seconds) treats older
    entries as misses; ``ttl`` (seconds) is how long the answers stored here live,
    instead of the decorator's ``ttl``. Like HTTP's ``Cache-Control: no-cache /
    no-store / max-age`` and cachekit's ``X-Cache-TTL`` request header.
    """
    if max_age is not None and max_age < 0:
        raise CacheConfigError(f"max_age must be >= 0 seconds, got {max_age}")
    ctl = CacheControl(
        skip_lookup=skip_lookup, skip_store=skip_store, max_age=max_age, ttl=check_control_ttl(ttl)
    )
    token = _control.set(ctl)
    try:
        yield ctl
    finally:
        _control.reset(token)


def current_tenant() -> str | None:
    return _tenant.get()


@contextlib.contextmanager
def use_tenant(tenant: str | None) -> Iterator[None]:
    """Set the tenant for cached calls inside the block (for code paths with no argument).

    A ``tenant=`` callback on the decorator takes precedence when it returns a value.
    """
    if tenant is not None and not isinstance(tenant, str):
        raise TypeError(f"tenant must be str or None, not {type(tenant).__name__}")
    token = _tenant.set(tenant)
    try:
        yield
    finally:
        _tenant.reset(token)
