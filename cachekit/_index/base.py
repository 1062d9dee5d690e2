"""The vector-index seam: one small protocol, plain types, interchangeable backends.

Everything above this seam speaks *cosine similarity* in [-1, 1] and float32 unit vectors;
each backend converts from its server's own score scale (VSIM's ``(1+cos)/2``, RediSearch's
cosine *distance* ``1-cos``) so the semantic threshold means the same thing everywhere.

What the backends share besides: ``_wire`` (raw commands, RESP2/RESP3 reply parsing,
probes, shared-key TTLs), ``_meta`` (the global meta hash), ``_options``
(:class:`IndexOptions`) and ``_registry`` (:func:`register_index`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from .._layout import VectorScope
from ._options import IndexOptions
from ._wire import Vector, check_pipeline, to_blob

__all__ = ["Candidate", "IndexBase", "Vector", "VectorIndex", "clip_similarity"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One nearest-neighbour hit.

    ``similarity`` is cosine similarity in [-1, 1] whatever the backend, so callers compare
    it against the user's threshold without knowing which index answered.
    """

    entry_id: str
    similarity: float


@runtime_checkable
class VectorIndex(Protocol):
    """What the cache core needs from a vector index, and nothing more.

    Vectors are float32 unit vectors (1-D). ``search``/``remove`` let redis-py errors
    propagate: the caller owns the time budget and the fail-open policy. Only ``ensure``
    translates failures into cachekit errors, because it runs once at start-up where a
    clear message is worth more than fail-open.
    """

    name: str

    async def ensure(self, dims: int, model: str) -> None:
        """Create or validate what the backend needs; raise IndexMismatchError on conflict."""
        ...

    def add(
        self, pipe: Pipeline, scope: VectorScope, entry_id: str, vector: Vector, ttl: int | None
    ) -> None:
        """Queue (never await) the commands that index ``vector`` on the caller's pipeline."""
        ...

    async def search(self, scope: VectorScope, vector: Vector, k: int) -> list[Candidate]:
        """Up to ``k`` candidates of exactly this scope, best first."""
        ...

    async def remove(self, scope: VectorScope, entry_ids: Sequence[str]) -> None:
        """Drop vectors whose entry is gone (expired, evicted, flushed)."""
        ...


class IndexBase(ABC):
    """What the built-in backends share; a new backend may start from it (or not).

    The class itself is a registry factory: ``Cls(client, options)``. :meth:`add` refuses
    an immediate-mode pipeline and converts the vector to the FP32 wire format once, then
    hands the blob to :meth:`queue_add`; :meth:`search` answers ``k < 1`` without a round
    trip, else asks :meth:`knn`. A subclass sets ``name`` and implements ``ensure``,
    ``queue_add``, ``knn`` and ``remove``.
    """

    name: str

    def __init__(self, client: aioredis.Redis, options: IndexOptions | None = None) -> None:
        self._client = client
        self.options = options if options is not None else IndexOptions()

    @abstractmethod
    async def ensure(self, dims: int, model: str) -> None:
        """Create or validate what the backend needs; raise IndexMismatchError on conflict."""

    def add(
        self, pipe: Pipeline, scope: VectorScope, entry_id: str, vector: Vector, ttl: int | None
    ) -> None:
        check_pipeline(pipe)
        self.queue_add(pipe, scope, entry_id, to_blob(vector), ttl)

    @abstractmethod
    def queue_add(
        self, pipe: Pipeline, scope: VectorScope, entry_id: str, blob: bytes, ttl: int | None
    ) -> None:
        """Queue the commands that store ``blob`` (FP32 little-endian) for ``entry_id``."""

    async def search(self, scope: VectorScope, vector: Vector, k: int) -> list[Candidate]:
        return [] if k < 1 else await self.knn(scope, vector, k)

    @abstractmethod
    async def knn(self, scope: VectorScope, vector: Vector, k: int) -> list[Candidate]:
        """Up to ``k`` (>= 1) candidates of exactly this scope, best first."""

    @abstractmethod
    async def remove(self, scope: VectorScope, entry_ids: Sequence[str]) -> None:
        """Drop vectors whose entry is gone (expired, evicted, flushed)."""


def clip_similarity(value: float) -> float:
    """Keep float rounding (1.0000001) and quantization noise inside the documented scale."""
    return min(1.0, max(-1.0, value))
