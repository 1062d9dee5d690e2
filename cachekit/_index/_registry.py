"""The index registry: a new vector index is one module plus one ``register_index`` call.

Each entry says how to build the index (``factory(client, options)``: an index class
itself, see ``IndexBase``), whether a server can run it (``probe(client) -> bool``,
awaited by ``index="auto"`` by priority, then in registration order), and which keys it
writes (``key_patterns``, SCAN globs in which ``{tag}`` stands for the hash tag of one
namespace+tenant, so ``clear()`` deletes them with the cache's own keys).
The built-ins register themselves at the bottom of their modules, probed in this order:
``vectorset`` (priority 300), ``search`` (200), then ``flat`` (-100: its probe accepts any
Redis, so it is the fallback); an index registered with the default priority 0 is probed
after the built-in HNSW backends and before ``flat``.

    class MyIndex(IndexBase):  # or any VectorIndex: name, ensure, add, search, remove
        name = "mine"
        ...  # ensure, queue_add, knn, remove

    register_index(
        "mine",
        MyIndex,                         # factory(client, options)
        probe=my_server_has_it,          # optional: lets index="auto" pick it
        key_patterns=("ckm:{tag}:*",),   # keys outside ck:{tag}: that clear() must delete
    )
    LLMCache.from_url(url, embedder=..., index="mine")
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

import redis.asyncio as aioredis

from ..errors import CacheConfigError
from ._options import IndexOptions
from .base import VectorIndex

__all__ = [
    "TAG",
    "IndexFactory",
    "IndexProbe",
    "IndexSpec",
    "build_index",
    "index_key_patterns",
    "index_names",
    "index_spec",
    "probe_index",
    "register_index",
    "unregister_index",
]

#: Placeholder of a key pattern for the escaped hash tag of one namespace+tenant.
TAG: Final = "{tag}"


#: ``factory(client, options) -> VectorIndex``; must do no I/O (``ensure`` does that).
IndexFactory = Callable[[aioredis.Redis, IndexOptions], VectorIndex]
#: ``await probe(client)``: whether this server can run the index (for ``index="auto"``).
IndexProbe = Callable[[aioredis.Redis], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """One registered index."""

    name: str
    factory: IndexFactory
    probe: IndexProbe | None
    key_patterns: tuple[str, ...]
    priority: int = 0


# Kept in probe order: priority, highest first; ties in registration order.
_REGISTRY: dict[str, IndexSpec] = {}


def register_index(
    name: str,
    factory: IndexFactory,
    *,
    probe: IndexProbe | None = None,
    key_patterns: Sequence[str] = (),
    priority: int = 0,
    replace: bool = False,
) -> None:
    """Make ``index=name`` build ``factory(client, options)``.

    Args:
        name: what ``LLMCache(index=...)`` names; not ``"auto"``.
        factory: builds the index (no I/O).
        probe: awaited by ``index="auto"`` until one says True; without one, the index is
            used only when named.
        key_patterns: SCAN globs of the keys the index writes, each containing ``{tag}``
            (the namespace+tenant hash tag, so one tenant's keys never match another's).
            Keys under ``ck:{tag}:`` are the cache's own and cleared anyway.
        priority: probe order, highest first (ties: registration order). The built-ins:
            vectorset 300, search 200, flat -100 (the any-Redis fallback).
        replace: allow replacing an index of the same name (e.g. a built-in).
    """
    if not isinstance(name, str) or not name or name == "auto" or any(c.isspace() for c in name):
        raise CacheConfigError(f"bad vector index name {name!r}")
    if not callable(factory):
        raise CacheConfigError(f"index factory for {name!r} is not callable: {factory!r}")
    if probe is not None and not callable(probe):
        raise CacheConfigError(f"index probe for {name!r} is not callable: {probe!r}")
    patterns = (key_patterns,) if isinstance(key_patterns, str) else tuple(key_patterns)
    for pattern in patterns:
        if not isinstance(pattern, str) or TAG not in pattern:
            raise CacheConfigError(
                f"index {name!r}: key pattern {pattern!r} must contain {TAG} (the hash tag "
                "of one namespace+tenant), or clear() would delete other tenants' keys"
            )
    if name in _REGISTRY and not replace:
        raise CacheConfigError(f"vector index {name!r} is already registered (replace=True)")
    _REGISTRY.pop(name, None)
    _REGISTRY[name] = IndexSpec(name, factory, probe, patterns, int(priority))
    ordered = sorted(_REGISTRY.values(), key=lambda s: -s.priority)  # stable: ties keep order
    _REGISTRY.clear()
    _REGISTRY.update((s.name, s) for s in ordered)


def unregister_index(name: str) -> None:
    """Forget ``name`` (tests; a process that swaps an index out)."""
    _REGISTRY.pop(name, None)


def index_names() -> tuple[str, ...]:
    """The registered names, in probe order."""
    return tuple(_REGISTRY)


def _known() -> str:
    return ", ".join(map(repr, _REGISTRY))


def index_spec(name: str) -> IndexSpec:
    """The entry of ``name``, or a CacheConfigError naming the valid ones."""
    spec = _REGISTRY.get(name)
    if spec is None:
        hint = " (call resolve_index() for 'auto')" if name == "auto" else ""
        raise CacheConfigError(f"unknown vector index {name!r}{hint}; valid: 'auto', {_known()}")
    return spec


def build_index(name: str, client: aioredis.Redis, options: IndexOptions) -> VectorIndex:
    """Build the registered index ``name``; a factory's CacheConfigError passes through."""
    return index_spec(name).factory(client, options)


async def probe_index(client: aioredis.Redis) -> str:
    """The first registered index whose probe accepts this server.

    Probe failures other than "no" propagate as redis errors.
    """
    for spec in list(_REGISTRY.values()):
        if spec.probe is not None and await spec.probe(client):
            return spec.name
    raise CacheConfigError(f"no registered vector index accepts this server; known: {_known()}")


def index_key_patterns(tag_glob: str) -> tuple[str, ...]:
    """Every registered index's key patterns for one hash tag (a SCAN glob), deduplicated."""
    out: dict[str, None] = {}
    for spec in _REGISTRY.values():
        for pattern in spec.key_patterns:
            out.setdefault(pattern.replace(TAG, tag_glob), None)
    return tuple(out)
