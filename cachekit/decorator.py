"""``@cached_llm``: cache any LLM-calling function, sync or async, plain or method.

Built on wrapt so ``self``/``cls`` are handled by the descriptor protocol and never enter
the key; the sync or async wrapper is chosen once, at decoration time.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from . import _codec
from ._binding import BoundCall
from ._call import DEFAULT_MAX_ENTRY_BYTES, CachedCall, KeyRules
from ._manifest import default_normalize
from ._options import NOT_GIVEN, EntryOptions, NotGiven, check_names
from ._wrappers import (
    make_async_gen_wrapper,
    make_async_wrapper,
    make_sync_gen_wrapper,
    make_sync_wrapper,
)
from .cache import LLMCache
from .errors import CacheConfigError, CodecError
from .result import CacheResult

__all__ = ["BoundCall", "cached_llm"]

F = TypeVar("F", bound=Callable[..., Any])


def _register_return_type(func: Callable[..., Any]) -> None:
    """Let other workers decode this function's results before they produce one."""
    try:
        hint = typing.get_type_hints(func).get("return")
    except Exception:  # noqa: BLE001 - unresolvable annotations only cost the pre-registration
        return
    for candidate in (hint, *typing.get_args(hint)):
        if isinstance(candidate, type):
            try:
                _codec.register_type(candidate)
            except CodecError:
                continue


def _check_entry_options(max_entry_bytes: Any, cache_none: Any) -> None:
    if max_entry_bytes is not None and (
        isinstance(max_entry_bytes, bool)
        or not isinstance(max_entry_bytes, int)
        or max_entry_bytes <= 0
    ):
        raise CacheConfigError(
            "max_entry_bytes must be a positive int (bytes of payload + prompt per entry) "
            f"or None for no cap, got {max_entry_bytes!r}"
        )
    if not isinstance(cache_none, bool):
        raise CacheConfigError(f"cache_none must be True or False, got {cache_none!r}")


def cached_llm(
    namespace: str = "default",
    *,
    cache: LLMCache | None = None,
    ttl: int | None = None,
    threshold: float | NotGiven | None = NOT_GIVEN,
    tenant: Callable[[BoundCall], str | None] | None = None,
    ignore: Iterable[str] = (),
    prompt: str | None = None,
    normalize: Callable[[str], str] | None = default_normalize,
    on_result: Callable[[CacheResult], None] | None = None,
    allow_global: bool = False,
    max_entry_bytes: int | None = DEFAULT_MAX_ENTRY_BYTES,
    cache_none: bool = True,
    history: str = "exact",
) -> Callable[[F], F]:
    """Cache the results of an LLM-calling function in Redis.

    Args:
        namespace: groups entries for stats, ``invalidate`` and ``clear``.
        cache: the :class:`LLMCache`; defaults to :func:`cachekit.get_default_cache`.
        ttl: seconds an entry lives (None: the cache's ``default_ttl``, else forever).
        threshold: cosine similarity in [-1, 1] a paraphrase needs to be served from the
            semantic layer. Omitted: the embedder's calibrated default. ``None``: exact
            matches only.
        tenant: ``callable(BoundCall) -> str | None``; entries of one tenant are never
            served to another. When it returns None the tenant set with
            :func:`cachekit.use_tenant` applies; if there is none either, the call bypasses
            the cache unless ``allow_global=True``.
        ignore: parameter names that do not take part in the key.
        prompt: the parameter holding the prompt (default: the first of
            ``prompt, question, query, input, text`` that is a string, else the last
            user message of ``messages``).
        normalize: applied to the prompt for the exact key (default: collapse whitespace,
            lower-case); None keeps prompts byte-exact.
        on_result: called with every :class:`CacheResult` (metrics hooks).
        allow_global: with a ``tenant=`` callback, let calls that have no tenant share
            one global space instead of bypassing the cache.
        max_entry_bytes: the largest entry stored, counting the encoded result *and* the
            prompt text the entry keeps (UTF-8 bytes); default 1 MiB, as the
            middleware's body cap. A larger result is returned to the caller, not
            stored: ``last_result().stored`` is False, its ``reason`` names the cap, and a
            rate-limited warning says so. ``None``: no cap.
        cache_none: whether a ``None`` result is stored and served like any other value
            (default True: ``None`` is a value, as with :func:`functools.cache`). False
            when your function returns None for "no answer": then a None result is
            returned, not stored (``reason`` says so), and the next call runs the function
            again. Identical calls already waiting on this one still share its result.
        history: ``"exact"`` (default): the earlier turns of ``messages`` are part of the
            scope, so only a conversation with the very same history is a candidate.
            ``"similar"``: a conversation whose earlier user/assistant turns differ only
            in wording may be served too: each earlier turn must be identical, or have a
            cosine of at least 0.95 to its counterpart and pass the hit verifier.
    """
    # Checks namespace, cache, threshold, ttl and on_result (one set of rules and
    # messages for every entry point).
    shared = EntryOptions(
        namespace, cache, threshold, ttl, on_result, max_entry_bytes=max_entry_bytes
    )
    names = check_names("ignore", ignore, "parameter names")
    rules = KeyRules(tenant, allow_global or tenant is None, names, prompt, normalize, history)
    _check_entry_options(max_entry_bytes, cache_none)

    def decorate(func: F) -> F:
        target = getattr(func, "__func__", func)
        if not callable(target):
            raise CacheConfigError(f"cached_llm can only decorate callables, got {func!r}")
        name = getattr(target, "__qualname__", repr(target))
        _check_prompt_param(target, prompt, ignore)
        _register_return_type(target)
        function_id = f"{getattr(target, '__module__', '?')}.{name}"
        # SDK methods are often wrapped by sync decorators around an async def (openai's
        # required_args): look through __wrapped__ to see what the call really returns.
        unwrapped = inspect.unwrap(target)
        generator = inspect.isasyncgenfunction(unwrapped) or inspect.isgeneratorfunction(unwrapped)
        options = dataclasses.replace(shared, label=function_id)  # its own oversize count
        call = CachedCall(options, rules, cache_none, generator)
        if inspect.isasyncgenfunction(unwrapped):
            wrapper = make_async_gen_wrapper(call)
        elif inspect.isgeneratorfunction(unwrapped):
            wrapper = make_sync_gen_wrapper(call)
        elif inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(unwrapped):
            wrapper = make_async_wrapper(call)
        else:
            wrapper = make_sync_wrapper(call)
        wrapped = wrapper(func)
        return typing.cast(F, wrapped)

    return decorate


def _check_prompt_param(
    func: Callable[..., Any], prompt: str | None, ignore: Iterable[str]
) -> None:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return
    names = set(sig.parameters)
    has_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    if prompt is not None and prompt not in names and not has_var_kw:
        raise CacheConfigError(
            f"prompt={prompt!r} is not a parameter of {getattr(func, '__qualname__', func)!r} "
            f"(parameters: {', '.join(sorted(names)) or 'none'})"
        )
    if prompt is not None and prompt in set(ignore):
        raise CacheConfigError(f"prompt={prompt!r} cannot also be in ignore=")
