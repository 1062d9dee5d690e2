"""Merge concurrent single-prompt embeddings into shared batches.

A cache sees many requests at once, each with one prompt. Encoding them one by one wastes the
model (a batch of 64 costs about as much as a few single calls on CPU) and, for a remote API,
a round trip each. :class:`BatchingEmbedder` lets every request ``await embed_one(text)``: the
first caller starts a batch at once (no added wait for a lone caller), and everyone who arrives
while a batch is in flight joins the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from cachekit.embedders._protocol import Embedder, PerLoop, Vectors, unit_rows
from cachekit.errors import CacheConfigError

__all__ = ["BatchingEmbedder"]

logger = logging.getLogger(__name__)

#: One embedding row, shape ``(dimensions,)``, float32, unit length.
Vector = npt.NDArray[np.float32]


@dataclass(slots=True)
class _LoopQueue:
    """The waiters and the draining task of one event loop (both are bound to it)."""

    pending: deque[tuple[str, asyncio.Future[Vector]]] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class BatchingEmbedder:
    """Wrap any :class:`~cachekit.embedders.Embedder` so concurrent callers share batches.

    ``await embed_one(text)`` returns that text's row. While one batch is being embedded,
    new callers queue up; when it finishes, up to ``max_batch`` of them go in the next call of
    ``inner.embed`` (identical texts in a batch are embedded once). A lone caller's batch starts
    on the next turn of the event loop, so batching adds no timer and no measurable latency.

    An exception from ``inner.embed`` is raised in every caller of that batch; later batches
    are unaffected. A caller that is cancelled (e.g. by its time budget) is dropped from its
    batch if the batch has not started yet; a batch in flight always finishes for the others.

    The object satisfies the Embedder protocol itself: ``model_id``, ``dimensions`` and
    ``default_threshold`` are the inner embedder's, and ``embed(texts)`` passes straight through.

    Nothing is bound to an event loop at construction: the queue and its task are created per
    running loop on first use, so one instance can serve pytest's loop-per-test, successive
    ``asyncio.run`` calls, or a background loop thread.
    """

    def __init__(self, inner: Embedder, *, max_batch: int = 64) -> None:
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise CacheConfigError(f"max_batch must be a positive integer, got {max_batch!r}")
        self._inner = inner
        self._max_batch = max_batch
        self._queues: PerLoop[_LoopQueue] = PerLoop(_LoopQueue)
        #: How many ``inner.embed`` calls ``embed_one`` has made so far (all loops).
        self.batches = 0
        #: How many distinct texts those calls embedded.
        self.texts = 0

    def __repr__(self) -> str:
        return f"BatchingEmbedder({self._inner!r}, max_batch={self._max_batch})"

    @property
    def inner(self) -> Embedder:
        return self._inner

    @property
    def max_batch(self) -> int:
        return self._max_batch

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def dimensions(self) -> int:
        return self._inner.dimensions

    @property
    def default_threshold(self) -> float | None:
        return self._inner.default_threshold

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed a whole batch directly with the inner embedder (no queueing)."""
        return await self._inner.embed(texts)

    async def embed_one(self, text: str) -> Vector:
        """The unit vector of ``text``, shape ``(dimensions,)``, embedded in a shared batch."""
        if not isinstance(text, str):
            raise TypeError(f"embed_one() takes a str, got {type(text).__name__}")
        queue = self._queues.get()
        future: asyncio.Future[Vector] = asyncio.get_running_loop().create_future()
        queue.pending.append((text, future))
        if queue.task is None:
            # The task, not the first caller, runs the batches: cancelling one caller must
            # not cancel the work the others are waiting for.
            queue.task = asyncio.get_running_loop().create_task(
                self._drain(queue), name="cachekit-embed-batches"
            )
        # Cancelling this await cancels ``future``; _drain skips cancelled waiters.
        return await future

    def _take_batch(self, queue: _LoopQueue) -> list[tuple[str, asyncio.Future[Vector]]]:
        batch: list[tuple[str, asyncio.Future[Vector]]] = []
        while queue.pending and len(batch) < self._max_batch:
            text, future = queue.pending.popleft()
            if not future.done():
                batch.append((text, future))
        return batch

    async def _drain(self, queue: _LoopQueue) -> None:
        batch: list[tuple[str, asyncio.Future[Vector]]] = []
        try:
            while queue.pending:
                batch = self._take_batch(queue)
                if batch:
                    await self._run_batch(batch)
                batch = []
        except BaseException:
            # Only cancellation (loop shutdown) or an interpreter-level error gets here:
            # nobody may wait forever, so release every waiter before re-raising.
            for _, future in [*batch, *queue.pending]:
                future.cancel()
            queue.pending.clear()
            raise
        finally:
            # No await between the last ``while`` check and here, so no caller can have
            # queued in between: the next caller sees None and starts a fresh task.
            queue.task = None

    async def _run_batch(self, batch: list[tuple[str, asyncio.Future[Vector]]]) -> None:
        # Identical prompts arriving together (a thundering herd) are embedded once.
        rows: dict[str, int] = {}
        for text, _ in batch:
            rows.setdefault(text, len(rows))
        unique = list(rows)
        self.batches += 1
        self.texts += len(unique)
        try:
            raw = await self._inner.embed(unique)
            vectors = unit_rows(
                raw, rows=len(unique), dimensions=self.dimensions, model_id=self.model_id
            )
        except Exception as exc:  # noqa: BLE001 - not swallowed: every waiter re-raises it
            logger.debug("embedding batch of %d texts failed: %r", len(unique), exc)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for text, future in batch:
            if not future.done():
                # A copy per caller: callers may keep or modify their row independently.
                future.set_result(vectors[rows[text]].copy())
