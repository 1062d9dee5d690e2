"""Vector index backends behind one seam, chosen once at start-up.

``resolve_index("auto", client)`` probes the server once (vector sets, then the query
engine, then plain Redis) and returns a backend name, so a deployment gets the best index
its server offers without configuration; ``make_index(name, client)`` builds it. All backends
return cosine similarity in [-1, 1] (see :class:`Candidate`).
"""

from __future__ import annotations

import logging
from typing import Final

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from ..errors import CacheConfigError
from .base import Candidate, VectorIndex, any_node, has_command, run
from .flat import FlatIndex
from .search import SearchIndex
from .vectorset import QUANTIZATIONS, VectorSetIndex

__all__ = [
    "DEFAULT_EF_RUNTIME",
    "INDEX_KINDS",
    "Candidate",
    "FlatIndex",
    "SearchIndex",
    "VectorIndex",
    "VectorSetIndex",
    "detect_index",
    "make_index",
    "resolve_index",
]

log = logging.getLogger("cachekit.index")

#: Backend names accepted by :func:`make_index` (``resolve_index`` also takes ``"auto"``).
INDEX_KINDS: Final = ("vectorset", "search", "flat")
#: Default search-time exploration factor (VSIM EF / FT EF_RUNTIME). RediSearch's own
#: default (10) drops true neighbours on large scopes; 200 keeps recall high for ~1 ms.
DEFAULT_EF_RUNTIME: Final = 200


def make_index(
    kind: str,
    client: aioredis.Redis,
    *,
    quantization: str = "int8",
    ef_runtime: int = DEFAULT_EF_RUNTIME,
    index_name: str = "cachekit",
) -> VectorIndex:
    """Build the backend ``kind``; options that do not apply to it are ignored.

    ``quantization`` ("int8" | "fp32" | "bin") applies to vector sets only (the others
    store float32), ``index_name`` to the search backend only.
    """
    if quantization not in QUANTIZATIONS:
        raise CacheConfigError(
            f"unknown quantization {quantization!r}; valid: {', '.join(QUANTIZATIONS)}"
        )
    if kind == "vectorset":
        return VectorSetIndex(client, quantization=quantization, ef_runtime=ef_runtime)
    if kind == "search":
        return SearchIndex(client, ef_runtime=ef_runtime, index_name=index_name)
    if kind == "flat":
        return FlatIndex(client)
    hint = " (call resolve_index() for 'auto')" if kind == "auto" else ""
    raise CacheConfigError(
        f"unknown vector index {kind!r}{hint}; valid: 'auto', {', '.join(map(repr, INDEX_KINDS))}"
    )


async def detect_index(client: aioredis.Redis) -> str:
    """Probe the server once: "vectorset" (Redis >= 8), else "search", else "flat"."""
    if await has_command(client, "vadd"):
        return "vectorset"
    try:
        await run(client, "FT._LIST", **any_node(client))
    except ResponseError:
        return "flat"
    return "search"


async def resolve_index(kind: str, client: aioredis.Redis) -> str:
    """Validate ``kind`` and return a backend name; ``"auto"`` probes the server once.

    Returns a name rather than an index so the caller can record which backend runs and
    pass its own options to :func:`make_index`. Probe failures propagate as redis
    errors; ``ensure()`` is where start-up failures become cachekit errors.
    """
    if kind in INDEX_KINDS:
        return kind
    if kind != "auto":
        raise CacheConfigError(
            f"unknown vector index {kind!r}; valid: 'auto', {', '.join(map(repr, INDEX_KINDS))}"
        )
    detected = await detect_index(client)
    log.info("vector index backend: %s (auto-detected)", detected)
    return detected
