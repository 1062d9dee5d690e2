"""Vector index backends behind one seam, chosen once at start-up.

A backend is one module plus one :func:`register_index` call (see ``_registry``); the
built-ins (``vectorset``, ``search``, ``flat``) register themselves that way.
``resolve_index("auto", client)`` awaits the registered probes once, in order (vector
sets, then the query engine, then plain Redis), and returns a backend name, so a
deployment gets the best index its server offers without configuration;
``make_index(name, client)`` builds it. All backends return cosine similarity in [-1, 1]
(see :class:`Candidate`).
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from ._options import DEFAULT_EF_RUNTIME, QUANTIZATIONS, IndexOptions
from ._registry import (
    build_index,
    index_key_patterns,
    index_names,
    index_spec,
    probe_index,
    register_index,
    unregister_index,
)
from .base import Candidate, VectorIndex
from .flat import FlatIndex
from .search import SearchIndex
from .vectorset import VectorSetIndex

__all__ = [
    "DEFAULT_EF_RUNTIME",
    "QUANTIZATIONS",
    "Candidate",
    "FlatIndex",
    "IndexOptions",
    "SearchIndex",
    "VectorIndex",
    "VectorSetIndex",
    "detect_index",
    "index_key_patterns",
    "index_names",
    "make_index",
    "register_index",
    "resolve_index",
    "unregister_index",
]

log = logging.getLogger("cachekit.index")


def make_index(
    kind: str,
    client: aioredis.Redis,
    *,
    quantization: str = "int8",
    ef_runtime: int = DEFAULT_EF_RUNTIME,
    index_name: str = "cachekit",
) -> VectorIndex:
    """Build the registered backend ``kind``; options that do not apply to it are ignored.

    ``quantization`` ("int8" | "fp32" | "bin") applies to vector sets only (the others
    store float32), ``index_name`` to the search backend only. All are checked whatever
    the backend (:class:`IndexOptions`), so a typo fails even while another backend runs.
    """
    options = IndexOptions(quantization=quantization, ef_runtime=ef_runtime, index_name=index_name)
    return build_index(kind, client, options)


async def detect_index(client: aioredis.Redis) -> str:
    """Probe the server once: the first registered index whose probe accepts it.

    With the built-ins: "vectorset" (Redis >= 8), else "search", else "flat".
    """
    return await probe_index(client)


async def resolve_index(kind: str, client: aioredis.Redis) -> str:
    """Validate ``kind`` and return a backend name; ``"auto"`` probes the server once.

    Returns a name rather than an index so the caller can record which backend runs and
    pass its own options to :func:`make_index`. Probe failures propagate as redis
    errors; ``ensure()`` is where start-up failures become cachekit errors.
    """
    if kind != "auto":
        return index_spec(kind).name
    detected = await detect_index(client)
    log.info("vector index backend: %s (auto-detected)", detected)
    return detected
