"""The embedder registry: an embedder spelled as text (``name`` or ``name:<argument>``).

The command line's ``--embedder`` (and anything else that configures from text) reads a
spec through it; the built-ins register themselves at the bottom of their modules:
``local``/``minilm`` (the bundled model), ``st:<model>``, ``openai[:<model>]`` and
``py:<module>:<attribute>`` (your own embedder object, or a function that returns one).

    register_embedder("cohere", lambda arg: CohereEmbedder(arg or "embed-english-v3.0"))
    # now `cachekit tune --embedder cohere:embed-multilingual-v3.0` works

Part of :mod:`cachekit.embedders` (import from there).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from cachekit.errors import CacheConfigError

from ._protocol import Embedder

__all__ = ["EmbedderFactory", "embedder_factory", "embedder_names", "register_embedder"]

#: ``factory(argument) -> Embedder``; ``argument`` is the text after ``name:`` ("" if none).
#: No I/O: embedders load their model or open their client on first use.
EmbedderFactory = Callable[[str], Embedder]

#: The spelling that means "no embedder" (exact layer only); never registered.
NO_EMBEDDER: Final = "none"
_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
_REGISTRY: dict[str, EmbedderFactory] = {}


def register_embedder(name: str, factory: EmbedderFactory, *, replace: bool = False) -> None:
    """Make the spec ``name`` (or ``name:<argument>``) build ``factory(argument)``.

    ``name`` is lower case (``[a-z][a-z0-9_.-]*``); a spec's name is matched case-blind.
    Registering a taken name needs ``replace=True``.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name) or name == NO_EMBEDDER:
        raise CacheConfigError(
            f"bad embedder name {name!r}: lower case letters, digits, '_', '.', '-' "
            f"(not {NO_EMBEDDER!r})"
        )
    if not callable(factory):
        raise CacheConfigError(f"embedder factory for {name!r} is not callable: {factory!r}")
    if name in _REGISTRY and not replace:
        raise CacheConfigError(f"embedder {name!r} is already registered (replace=True)")
    _REGISTRY[name] = factory


def unregister_embedder(name: str) -> None:
    """Forget ``name`` (tests)."""
    _REGISTRY.pop(name, None)


def embedder_names() -> tuple[str, ...]:
    """The registered names, sorted."""
    return tuple(sorted(_REGISTRY))


def embedder_factory(name: str) -> EmbedderFactory:
    """The factory of ``name``, or a CacheConfigError that names the known ones."""
    factory = _REGISTRY.get(name.lower())
    if factory is None:
        known = ", ".join((NO_EMBEDDER, *embedder_names()))
        raise CacheConfigError(
            f"unknown embedder {name!r}; known: {known} (spelled <name> or <name>:<argument>)"
        )
    return factory
