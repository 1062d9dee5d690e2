"""Token estimates for responses that reported no usage: tiktoken when loaded, else 4 chars/token.

Part of :mod:`cachekit.stats` (import from there).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "CHARS_PER_TOKEN",
    "TIKTOKEN",
    "estimate_methods",
    "estimate_tokens",
    "estimate_usage",
    "response_text",
]

log = logging.getLogger("cachekit.stats")


def response_text(value: Any) -> str:
    """The text an LLM response carries (OpenAI, Anthropic, plain str, stream chunks).

    Used only to *estimate* output tokens when the response reported no usage.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        value = dump(mode="json")
    if isinstance(value, list | tuple):
        return "".join(response_text(item) for item in value)
    if isinstance(value, Mapping):
        texts: list[str] = []
        for choice in value.get("choices") or ():
            if not isinstance(choice, Mapping):
                continue
            for part in (choice.get("message"), choice.get("delta")):
                if isinstance(part, Mapping) and isinstance(part.get("content"), str):
                    texts.append(part["content"])
            if isinstance(choice.get("text"), str):
                texts.append(choice["text"])
        content = value.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                p["text"]
                for p in content
                if isinstance(p, Mapping) and isinstance(p.get("text"), str)
            )
        delta = value.get("delta")  # Anthropic stream event
        if isinstance(delta, Mapping) and isinstance(delta.get("text"), str):
            texts.append(delta["text"])
        if texts:
            return "".join(texts)
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


class _Encodings:
    """tiktoken encodings, loaded once each on a daemon thread, never on the caller's.

    tiktoken fetches its BPE files over the network on first use (and may hang where
    there is none); a store must never wait for that, so until an encoding is loaded (or
    when it cannot be) the estimate is the 4-characters-per-token rule of thumb.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        with self._lock:
            if name in self._state:
                return self._state[name]
            self._state[name] = None
        threading.Thread(
            target=self._load, args=(name,), name="cachekit-tiktoken", daemon=True
        ).start()
        return None

    def _load(self, name: str) -> None:
        try:
            import tiktoken

            encoding: Any = tiktoken.get_encoding(name)
        except Exception as exc:  # noqa: BLE001 - any failure means "use the heuristic"
            log.debug("tiktoken encoding %s unavailable (%s); estimating 4 chars/token", name, exc)
            encoding = False
        with self._lock:
            self._state[name] = encoding


_encodings = _Encodings()
_O200K_PREFIXES: Final = ("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4", "chatgpt-4o")
#: Names of the two ways :func:`estimate_tokens` counts, as :func:`estimate_methods` reports.
TIKTOKEN: Final = "tiktoken"
CHARS_PER_TOKEN: Final = "4 chars/token"
_methods: Counter[str] = Counter()
_methods_lock = threading.Lock()


def estimate_methods() -> dict[str, int]:
    """How many token estimates this process made each way (``TIKTOKEN``, ``CHARS_PER_TOKEN``).

    Cumulative; take a copy before and after to learn what some piece of work used (the
    demo does, so it never claims tiktoken counted what the rule of thumb did).
    """
    with _methods_lock:
        return dict(_methods)


def _count_method(method: str) -> None:
    with _methods_lock:
        _methods[method] += 1


def estimate_tokens(text: str, model: str | None = None) -> int:
    """Tokens in ``text``: tiktoken when its encoding is available, else ``ceil(chars/4)``.

    Always an estimate (other vendors' tokenizers differ); never blocks on a download.
    """
    if not text:
        return 0
    name = "cl100k_base"
    if model and model.lower().split("/")[-1].startswith(_O200K_PREFIXES):
        name = "o200k_base"
    encoding = _encodings.get(name)
    if encoding:
        try:
            tokens = len(encoding.encode(text, disallowed_special=()))
        except Exception:  # an estimate must never fail the store
            log.debug("tiktoken failed; estimating 4 chars/token", exc_info=True)
        else:
            _count_method(TIKTOKEN)
            return tokens
    _count_method(CHARS_PER_TOKEN)
    return math.ceil(len(text) / 4)


def estimate_usage(prompt: str | None, value: Any, model: str | None) -> tuple[int, int]:
    """Estimated ``(input, output)`` tokens of a call whose response reported no usage.

    The input side counts the prompt only (system prompt and history are in the scope and
    are not kept as text), so it under-estimates multi-turn calls: savings stay on the
    conservative side.
    """
    return estimate_tokens(prompt or "", model), estimate_tokens(response_text(value), model)
