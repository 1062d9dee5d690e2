"""Check and accept an embedder: the known classes, or any object that fits the protocol.

Part of :mod:`cachekit.embedders` (import from there).
"""

from __future__ import annotations

import inspect

from cachekit.errors import CacheConfigError

from ._callable import CallableEmbedder
from ._local import SentenceTransformerEmbedder
from ._openai import OpenAIEmbedder
from ._protocol import Embedder, _check_positive, _check_threshold
from ._registry import NO_EMBEDDER, embedder_factory

__all__ = ["as_embedder", "embedder_from_spec"]


def embedder_from_spec(spec: str) -> Embedder | None:
    """The embedder a text spec names (``<name>`` or ``<name>:<argument>``, see
    :func:`~cachekit.embedders.register_embedder`), checked; None for ``none``.

    Raises :class:`CacheConfigError` for an unknown name (naming the known ones) or an
    argument its factory refuses.
    """
    name, _, argument = spec.strip().partition(":")
    if name.lower() in (NO_EMBEDDER, ""):
        return None
    return as_embedder(embedder_factory(name)(argument))


def as_embedder(obj: object) -> Embedder:
    """Return ``obj`` if it is a usable :class:`Embedder`, else raise :class:`CacheConfigError`.

    A plain function is refused: the cache must know the vector length and a model name
    before the first call, so wrap it as ``CallableEmbedder(fn, dimensions=..., model_id=...)``.
    """
    from cachekit._batching import BatchingEmbedder

    known = (SentenceTransformerEmbedder, OpenAIEmbedder, CallableEmbedder, BatchingEmbedder)
    # The known classes are checked first: the protocol check reads every attribute, and
    # ``dimensions`` of a custom sentence-transformers model may load it.
    if not isinstance(obj, known) and not isinstance(obj, Embedder):
        if callable(obj):
            raise CacheConfigError(
                f"{obj!r} is a plain callable, not an Embedder: the cache needs its vector "
                "length and a model name up front. Wrap it: "
                "CallableEmbedder(fn, dimensions=<int>, model_id='<name>')"
            )
        raise CacheConfigError(
            f"expected an Embedder (model_id, dimensions, default_threshold, async embed()), "
            f"got {type(obj).__name__}"
        )
    if isinstance(obj, BatchingEmbedder):
        as_embedder(obj.inner)
        return obj
    if isinstance(obj, known):
        # Validated by their constructors; reading ``dimensions`` of a custom
        # sentence-transformers model without ``dimensions=`` would load it right here.
        return obj
    if not inspect.iscoroutinefunction(obj.embed):
        raise CacheConfigError(f"{type(obj).__name__}.embed must be an async method")
    model_id = obj.model_id
    if not isinstance(model_id, str) or not model_id:
        raise CacheConfigError(f"{type(obj).__name__}.model_id must be a non-empty string")
    dimensions = obj.dimensions
    _check_positive(f"{type(obj).__name__}.dimensions", dimensions)
    # Rejects NaN too: NaN fails the range comparison.
    _check_threshold(obj.default_threshold)
    return obj
