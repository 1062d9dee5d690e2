"""A LangChain cache call's key manifest: the last human message is the prompt.

LangChain gives a cache ``(prompt, llm_string)``. For a chat model ``prompt`` is
``langchain_core.load.dumps(messages)``, a JSON list of serialised messages; for an LLM
it is the prompt text. ``llm_string`` is the model's own serialisation plus its
invocation parameters (model, temperature, stop, ...).

* prompt: the text of the last human message (what the semantic layer embeds), or the
  whole ``prompt`` string when it is not a serialised message list;
* scope: ``llm_string``, and every message with that one message's text taken out
  (system message, earlier turns, later tool turns, the human message's other fields).

The messages are read as plain JSON: nothing is instantiated from a prompt. A last
human message that is not only text (an image part) leaves no prompt: the whole
conversation is scope, so only an exact repeat can hit (as ``split_messages`` does).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ._manifest import KeyManifest, build_manifest, default_normalize, text_of

__all__ = ["FUNCTION_ID", "langchain_manifest", "model_of", "split_prompt"]

#: The scope's ``fn``: LangChain entries never share a key with a decorated function's.
FUNCTION_ID = "langchain"

_HUMAN_IDS = frozenset({"HumanMessage", "HumanMessageChunk"})
#: ``('model', 'gpt-4o')`` / ``('model_name', ...)`` in the repr of the invocation params.
_MODEL_PARAM = re.compile(r"\('(?:model|model_name|model_id)', '([^'\\]{1,200})'\)")


def _is_message(item: object) -> bool:
    return (
        isinstance(item, Mapping)
        and item.get("lc") == 1
        and item.get("type") == "constructor"
        and isinstance(item.get("id"), list)
        and bool(item["id"])
        and isinstance(item.get("kwargs"), Mapping)
    )


def _is_human(message: Mapping[str, Any]) -> bool:
    return message["kwargs"].get("type") == "human" or message["id"][-1] in _HUMAN_IDS


def split_prompt(prompt: str) -> tuple[str | None, list[Any] | None]:
    """``(prompt text, turns)``: the last human message's text and every message with
    that text taken out; ``(prompt, None)`` when ``prompt`` is not a serialised message
    list (an LLM's prompt, or text that only looks like JSON)."""
    try:
        messages = json.loads(prompt)
    except (ValueError, RecursionError):
        return prompt, None
    if not isinstance(messages, list) or not messages or not all(map(_is_message, messages)):
        return prompt, None
    for i in range(len(messages) - 1, -1, -1):
        if _is_human(messages[i]):
            break
    else:
        return None, messages
    human = messages[i]
    text = text_of(human["kwargs"].get("content"))
    if text is None:
        return None, messages
    rest = {k: v for k, v in human["kwargs"].items() if k != "content"}
    return text, [*messages[:i], {**human, "kwargs": rest}, *messages[i + 1 :]]


def model_of(llm_string: str) -> str | None:
    """The model named in ``llm_string`` (for pricing and the verifier's scope), if any.

    Serialisable models write ``<json>---<params>``; others only the repr of their
    invocation params.
    """
    head = llm_string.partition("---")[0]
    try:
        data = json.loads(head)
    except (ValueError, RecursionError):
        data = None
    kwargs = data.get("kwargs") if isinstance(data, dict) else None
    if isinstance(kwargs, dict):
        for name in ("model_name", "model", "model_id"):
            if isinstance(kwargs.get(name), str):
                return str(kwargs[name])
    found = _MODEL_PARAM.search(llm_string)
    return found.group(1) if found else None


def langchain_manifest(
    namespace: str, tenant: str | None, prompt: str, llm_string: str
) -> KeyManifest:
    """The manifest of one ``lookup``/``update``; raises CacheKeyError for a prompt with
    no key (nested deeper than the canonical form allows)."""
    text, turns = split_prompt(prompt)
    arguments: dict[str, Any] = {"llm_string": llm_string}
    if text is not None:
        arguments["prompt"] = text
    if turns is not None:
        # Already plain JSON data (parsed from JSON): one C-speed dump is a stable form.
        # canonical() would walk a long conversation in Python: the key of an 18 KB
        # conversation took 1.3 ms that way, 0.6 ms this way (measured here).
        arguments["turns"] = json.dumps(
            turns, sort_keys=True, ensure_ascii=False, separators=(",", ":")
        )
    model = model_of(llm_string)
    if model is not None:
        arguments["model"] = model
    return build_manifest(
        namespace, tenant, arguments, FUNCTION_ID, prompt_param="prompt",
        normalize=default_normalize,
    )  # fmt: skip
