"""Adapt a plain sync or async function to the embedder protocol.

Part of :mod:`cachekit.embedders` (import from there).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence

import numpy as np

from cachekit.errors import CacheConfigError, EmbedderError

from ._protocol import Vectors, _check_positive, _check_threshold, _SerialWorker, unit_rows

__all__ = ["CallableEmbedder"]


def _is_async_callable(fn: object) -> bool:
    # inspect.iscoroutinefunction sees through functools.partial; objects with an async
    # __call__ need the explicit look at the method.
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - we want the method, not callable()
    )


class CallableEmbedder:
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
        if not isinstance(model_id, str) or not model_id:
            raise CacheConfigError("model_id must be a non-empty string naming the model")
        self._fn = fn
        self._async = _is_async_callable(fn)
        self._dimensions = _check_positive("dimensions", dimensions)
        self._model_id = model_id
        self._threshold = _check_threshold(default_threshold)
        self._worker = _SerialWorker("cachekit-embed-fn")

    def __repr__(self) -> str:
        return f"CallableEmbedder({self._fn!r}, model_id={self._model_id!r})"

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def default_threshold(self) -> float | None:
        return self._threshold

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of strings, not a single string")
        batch = list(texts)
        if not batch:
            return np.zeros((0, self._dimensions), dtype=np.float32)
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
            result, rows=len(batch), dimensions=self._dimensions, model_id=self._model_id
        )

    def close(self) -> None:
        """Stop the worker thread used for a sync ``fn`` (a later embed starts a new one)."""
        self._worker.close()
