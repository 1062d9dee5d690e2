"""How LangChain's values become entries: ``Sequence[Generation]`` in LangChain's own
serialisation (``dumpd`` / ``loads``), never pickle.

A payload is revived with an explicit allow-list of the generation and AI message
classes and ``secrets_from_env=False``: an entry (or a model's answer carrying
``"lc"`` keys) cannot make ``loads`` build a model, read an environment variable or
import anything else. Anything that does not revive into a non-empty list of
generations is a :class:`~cachekit.errors.CodecError`, so the pipeline drops the
entry and the call goes to the model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.load import dumpd, loads
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, Generation, GenerationChunk

from ._manifest import KeyManifest
from ._ticket import NotStoredError
from ._tokens import estimate_usage
from .errors import CodecError

__all__ = ["GenerationsCodec"]

#: The only classes a payload may name.
_ALLOWED = (
    Generation,
    GenerationChunk,
    ChatGeneration,
    ChatGenerationChunk,
    AIMessage,
    AIMessageChunk,
)


def _message(generation: Generation) -> Any:
    return getattr(generation, "message", None)


class GenerationsCodec:
    """The :class:`~cachekit._ticket.ValueCodec` of :class:`cachekit.langchain.CachekitCache`."""

    __slots__ = ()

    def encode(self, value: Any) -> str:
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise CodecError(f"expected a sequence of Generation, got {type(value).__name__}")
        if not value:
            raise NotStoredError("not stored: the model returned no generations")
        for item in value:
            if not isinstance(item, Generation):
                raise CodecError(f"expected Generation items, got {type(item).__name__}")
        try:
            return json.dumps([dumpd(g) for g in value], ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise CodecError(f"a generation has no JSON form: {exc}") from exc

    def decode(self, payload: bytes) -> list[Generation]:
        try:
            value = loads(payload.decode("utf-8"), allowed_objects=_ALLOWED, secrets_from_env=False)
        except Exception as exc:
            raise CodecError(f"not a LangChain generations payload ({type(exc).__name__})") from exc
        if not isinstance(value, list) or not value:
            raise CodecError("not a LangChain generations payload (no list of generations)")
        for item in value:
            if not isinstance(item, Generation):
                raise CodecError(f"not a LangChain generations payload (a {type(item).__name__})")
        return value

    def usage(self, value: Any, manifest: KeyManifest) -> tuple[tuple[int, int] | None, bool]:
        # n > 1 choices carry the request's total on every message: the first one counts.
        meta = getattr(_message(value[0]), "usage_metadata", None)
        if isinstance(meta, Mapping):
            tin, tout = meta.get("input_tokens"), meta.get("output_tokens")
            if isinstance(tin, int) and isinstance(tout, int):
                return (tin, tout), False
        if manifest.model:
            text = "".join(g.text for g in value)
            return estimate_usage(manifest.prompt, text, manifest.model), True
        return None, False

    def model(self, value: Any, manifest: KeyManifest) -> str | None:
        meta = getattr(_message(value[0]), "response_metadata", None)
        if isinstance(meta, Mapping):
            for name in ("model_name", "model"):
                if isinstance(meta.get(name), str):
                    return str(meta[name])
        return None
