"""Binding a decorated call's arguments to its signature, and what ``tenant=`` sees."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class BoundCall:
    """What a ``tenant=`` callback receives: the call's arguments, bound with defaults."""

    function: Callable[..., Any]
    arguments: Mapping[str, Any]
    instance: Any = None


class _Binder:
    """Binds calls of one signature, as ``inspect.Signature.bind`` + ``apply_defaults``.

    Plain signatures (no ``*args``/``**kwargs``/positional-only) take a fast path: a
    dict built from precomputed names and defaults (a few µs instead of ~30 µs on the
    hit path). Anything unusual, including every call that would be a TypeError, goes
    through ``inspect`` so errors and edge cases are exactly Python's.
    """

    __slots__ = ("defaults", "fast", "names", "sig")

    def __init__(self, sig: inspect.Signature) -> None:
        self.sig = sig
        params = list(sig.parameters.values())
        kinds = {p.kind for p in params}
        self.fast = kinds <= {
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.KEYWORD_ONLY,
        }
        self.names = tuple(
            p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
        self.defaults = {p.name: p.default for p in params if p.default is not p.empty}

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.fast and len(args) <= len(self.names):
            out = dict(self.defaults)
            out.update(zip(self.names, args, strict=False))
            params = self.sig.parameters
            for name, value in kwargs.items():
                if name not in params or name in self.names[: len(args)]:
                    return self._slow(args, kwargs)  # Python's TypeError, word for word
                out[name] = value
            if len(out) == len(params):
                return out
        return self._slow(args, kwargs)

    def _slow(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = self.sig.bind(*args, **kwargs)
        bound.apply_defaults()
        out: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            kind = self.sig.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                out.update(value)
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                if value:
                    out[name] = list(value)
            else:
                out[name] = value
        return out


@functools.lru_cache(maxsize=4096)
def _binder(func: Callable[..., Any], drop_first: bool) -> _Binder:
    sig = inspect.signature(func)
    if drop_first:
        params = list(sig.parameters.values())[1:]
        sig = sig.replace(parameters=params)
    return _Binder(sig)


def bind(
    wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Bind a call to its signature with defaults: positional and keyword agree."""
    if inspect.ismethod(wrapped):
        return _binder(wrapped.__func__, True).bind(args, kwargs)
    return _binder(wrapped, False).bind(args, kwargs)
