"""The embedder protocol and what every implementation shares.

:class:`Embedder`, :data:`Vectors`, :func:`unit_rows` (shape check and L2 normalisation),
argument checks, :class:`PerLoop` and the one-thread :class:`_SerialWorker`.
Part of :mod:`cachekit.embedders` (import from there).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from cachekit.errors import CacheConfigError, EmbedderError

__all__ = ["Embedder", "PerLoop", "Vectors", "unit_rows"]

#: What ``embed`` returns: shape ``(n, dimensions)``, float32, every row of L2 norm 1.
Vectors = npt.NDArray[np.float32]

_T = TypeVar("_T")


@runtime_checkable
class Embedder(Protocol):
    """What the cache needs from an embedding model.

    The three attributes are read-only properties here so that implementations may use plain
    attributes or properties. They must be available without I/O (the cache reads them when
    it sets up its vector index); ``embed`` must not block the event loop.
    """

    @property
    def model_id(self) -> str:
        """Stable name of the model and its output size, e.g. "openai/text-embedding-3-small@256".

        Part of the vector index identity: change it and old vectors are no longer searched.
        """
        ...

    @property
    def dimensions(self) -> int:
        """Length of every vector ``embed`` returns."""
        ...

    @property
    def default_threshold(self) -> float | None:
        """Calibrated cosine similarity threshold for this model; None when uncalibrated."""
        ...

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts``: shape ``(len(texts), dimensions)``, float32, unit-length rows."""
        ...


def unit_rows(data: object, *, rows: int, dimensions: int, model_id: str) -> Vectors:
    """Check that ``data`` is ``(rows, dimensions)`` finite numbers; return it L2-normalised.

    The result is a fresh C-contiguous float32 array. Raises :class:`EmbedderError` naming the
    expected and actual shape, or the first row that is non-finite or all zeros (such a row
    has no direction, so no cosine similarity can be computed for it).
    """
    try:
        array = np.array(data, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise EmbedderError(
            f"embedder {model_id!r} returned {type(data).__name__}, not an array of numbers "
            f"of shape ({rows}, {dimensions})"
        ) from exc
    if array.shape != (rows, dimensions):
        raise EmbedderError(
            f"embedder {model_id!r} returned shape {array.shape}, expected ({rows}, {dimensions})"
        )
    if rows == 0:
        return array
    # Norms in float64: float32 squares of many small components lose precision.
    norms = np.linalg.norm(array.astype(np.float64), axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0.0))
    if bad.size:
        raise EmbedderError(
            f"embedder {model_id!r} returned a zero or non-finite vector at row {int(bad[0])}"
        )
    array /= norms[:, None].astype(np.float32)
    return array


def _empty_rows(dimensions: int) -> Vectors:
    """The answer to an empty batch: shape ``(0, dimensions)``."""
    return np.zeros((0, dimensions), dtype=np.float32)


def _check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CacheConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_threshold(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not -1.0 <= value <= 1.0:
        raise CacheConfigError(
            f"default_threshold must be a cosine similarity in [-1, 1] or None, got {value!r}"
        )
    return float(value)


def _batch(texts: Sequence[str]) -> list[str]:
    """``embed()``'s argument as a list; a bare string is refused."""
    if isinstance(texts, str):
        # A bare string is a Sequence[str] of characters: almost surely a caller's mistake.
        raise TypeError("embed() takes a sequence of strings, not a single string")
    return list(texts)


def _truncate(texts: Sequence[str], max_chars: int) -> list[str]:
    """Cut every text to ``max_chars`` characters (the semantic layer never errors on length)."""
    return [text[:max_chars] for text in _batch(texts)]


class _BaseEmbedder:
    """The protocol's three attributes, checked once and read-only, for the built-ins.

    ``dimensions=None`` means "not known before the model loads": the first read of
    :attr:`dimensions` then calls :meth:`_learn_dimensions` (only the local embedder,
    for a custom model built without ``dimensions=``).
    """

    def __init__(
        self, model_id: str, dimensions: int | None, default_threshold: float | None
    ) -> None:
        if not isinstance(model_id, str) or not model_id:
            raise CacheConfigError("model_id must be a non-empty string naming the model")
        self._model_id = model_id
        self._dimensions = None if dimensions is None else _check_positive("dimensions", dimensions)
        self._threshold = _check_threshold(default_threshold)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimensions(self) -> int:
        if self._dimensions is None:
            self._dimensions = self._learn_dimensions()
        return self._dimensions

    @property
    def default_threshold(self) -> float | None:
        return self._threshold

    def _learn_dimensions(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must know its dimensions")


class PerLoop(Generic[_T]):
    """One value per running event loop, made by ``factory`` on first use in that loop.

    For objects bound to a loop (futures, tasks, asyncio locks, httpx connection pools): a
    process may run several loops one after another (pytest, ``asyncio.run`` per script step)
    or side by side in threads, and reusing such an object on another loop fails. Entries of
    closed loops are dropped whenever a new loop is seen. Plain dict, not weak keys, because
    not every loop implementation supports weak references.
    """

    def __init__(self, factory: Callable[[], _T]) -> None:
        self._factory = factory
        self._values: dict[asyncio.AbstractEventLoop, _T] = {}

    def get(self) -> _T:
        loop = asyncio.get_running_loop()
        value = self._values.get(loop)
        if value is None:
            for old in list(self._values):
                if old.is_closed():
                    self._values.pop(old, None)
            value = self._values[loop] = self._factory()
        return value

    def pop(self) -> _T | None:
        """Forget and return the running loop's value, if it has one."""
        return self._values.pop(asyncio.get_running_loop(), None)


class _SerialWorker:
    """One lazily started worker thread that runs blocking calls one at a time.

    Used for models that are unsafe to call from several threads at once (a torch module with
    a shared tokenizer). A ``concurrent.futures`` executor is not bound to an event loop, so
    one worker serves any loop, including pytest's new loop per test.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
            return self._executor

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        # If the awaiting task is cancelled the call still finishes in the thread (threads
        # cannot be interrupted); later calls queue behind it.
        return await asyncio.get_running_loop().run_in_executor(self._get(), fn, *args)

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
