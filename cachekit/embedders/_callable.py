"""Adapt a plain sync or async function to the embedder protocol.

Part of :mod:`cachekit.embedders` (import from there).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from cachekit.errors import CacheConfigError, EmbedderError

from ._protocol import (
    Embedder,
    Vectors,
    _BaseEmbedder,
    _batch,
    _check_positive,
    _empty_rows,
    _SerialWorker,
    unit_rows,
)
from ._registry import register_embedder

__all__ = ["CallableEmbedder"]


def _is_async_callable(fn: object) -> bool:
    # inspect.iscoroutinefunction sees through functools.partial; objects with an async
    # __call__ need the explicit look at the method.
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - we want the method, not callable()
    )


class CallableEmbedder(_BaseEmbedder):
    """Adapt a function ``fn(list[str]) -> array-like (n, dimensions)`` to :class:`Embedder`.

    ``fn`` may be sync or async. A sync ``fn`` runs on one worker thread of this embedder, one
    call at a time (most model objects are not thread-safe), so it never blocks the event loop.
    The result is checked for shape (:class:`EmbedderError` naming expected and actual shape),
    converted to float32 and L2-normalised, so ``fn`` may return unnormalised lists or float64.
    """

    def __init__(
        self,
        fn: Callable[[list[str]], object] | Callable[[list[str]], Awaitable[object]],
        *,
        dimensions: int,
        model_id: str,
        default_threshold: float | None = None,
    ) -> None:
        if not callable(fn):
            raise CacheConfigError(f"CallableEmbedder needs a callable, got {type(fn).__name__}")
        super().__init__(model_id, _check_positive("dimensions", dimensions), default_threshold)
        self._fn = fn
        self._async = _is_async_callable(fn)
        self._worker = _SerialWorker("cachekit-embed-fn")

    def __repr__(self) -> str:
        return f"CallableEmbedder({self._fn!r}, model_id={self._model_id!r})"

    async def embed(self, texts: Sequence[str]) -> Vectors:
        batch = _batch(texts)
        if not batch:
            return _empty_rows(self.dimensions)
        try:
            if self._async:
                result: object = await self._fn(batch)  # type: ignore[misc]
            else:
                result = await self._worker.run(self._fn, batch)
                if inspect.isawaitable(result):
                    # A sync wrapper that returns a coroutine (e.g. a lambda around an async fn).
                    result = await result
        except EmbedderError:
            raise
        except Exception as exc:
            raise EmbedderError(f"embedder {self._model_id!r} failed: {exc!r}") from exc
        return unit_rows(
            result, rows=len(batch), dimensions=self.dimensions, model_id=self.model_id
        )

    def close(self) -> None:
        """Stop the worker thread used for a sync ``fn`` (a later embed starts a new one)."""
        self._worker.close()


def _import_embedder(target: str) -> Any:
    """``py:<module>:<attribute>``: your own Embedder object, or a function with no
    arguments that returns one (checked by ``embedder_from_spec``)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise CacheConfigError(f"py:{target}: expected py:<module>:<attribute>")
    try:
        obj: Any = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise CacheConfigError(f"py:{target}: {exc}") from None
    if callable(obj) and not isinstance(obj, Embedder):
        obj = obj()  # a factory
    return obj


register_embedder("py", _import_embedder)
