"""The OpenAI embeddings API, or any server that speaks it.

Part of :mod:`cachekit.embedders` (import from there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

import numpy as np

from cachekit.errors import CacheConfigError, EmbedderError

from ._protocol import (
    PerLoop,
    Vectors,
    _BaseEmbedder,
    _check_positive,
    _empty_rows,
    _truncate,
    unit_rows,
)
from ._registry import register_embedder

if TYPE_CHECKING:
    import openai

__all__ = ["OPENAI_DEFAULT_THRESHOLDS", "OPENAI_NATIVE_DIMENSIONS", "OpenAIEmbedder"]

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


class OpenAIEmbedder(_BaseEmbedder):
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
        model_id = f"openai/{model}@{size}"
        super().__init__(
            model_id,
            size,
            default_threshold
            if default_threshold is not None
            else OPENAI_DEFAULT_THRESHOLDS.get(model_id),
        )
        # ada-002 answers 400 to any ``dimensions`` field, even its native size.
        self._send_dimensions = (
            dimensions is not None and model not in _OPENAI_FIXED_DIMENSION_MODELS
        )
        #: Inputs per request (at most 2048, OpenAI's cap).
        self.batch_size = min(_check_positive("batch_size", batch_size), _OPENAI_MAX_REQUEST_INPUTS)
        self._max_chars = _check_positive("max_chars", max_chars)
        if not timeout > 0:
            raise CacheConfigError(f"timeout must be positive seconds, got {timeout!r}")
        self._timeout = float(timeout)
        self._client = client
        # Lazily created clients, one per event loop: an httpx pool must not outlive its loop.
        self._own_clients: PerLoop[openai.AsyncOpenAI] = PerLoop(self._new_client)

    def __repr__(self) -> str:
        return f"OpenAIEmbedder({self._model!r}, dimensions={self.dimensions})"

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
                len(current) >= self.batch_size or size + len(text) > _OPENAI_MAX_REQUEST_CHARS
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
                    dimensions=self.dimensions,
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
            dimensions=self.dimensions,
            model_id=self._model_id,
        )

    async def embed(self, texts: Sequence[str]) -> Vectors:
        batch = [text or " " for text in _truncate(texts, self._max_chars)]
        if not batch:
            return _empty_rows(self.dimensions)
        # Sequential on purpose: large batches are rare for a cache (bulk warm-up), and
        # parallel requests would only run into the account's rate limit sooner.
        parts = [await self._request(chunk) for chunk in self._requests(batch)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _from_spec(argument: str) -> OpenAIEmbedder:
    """``openai[:<model>]``; the model defaults to text-embedding-3-small."""
    return OpenAIEmbedder(argument or "text-embedding-3-small")


register_embedder("openai", _from_spec)
