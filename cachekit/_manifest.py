"""The key manifest: which parts of a request are the prompt and which are the scope.

* prompt: the last user turn (or the named prompt argument). Normalised for the exact
  key, embedded raw for the semantic layer.
* scope: everything that must match exactly for an answer to be reusable: the function,
  model, system prompt, tools, sampling params, earlier turns, every other argument not
  in ``ignore``. Semantic search only ever happens inside one scope.

The decorator builds a manifest from bound call arguments; the HTTP middleware from a
request body. Both end in :func:`build_manifest`, so the two agree on what a key is.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ._attrs import pick_attrs
from ._canonical import canonical, dumps_canonical, is_missing
from .errors import CacheConfigError, CacheKeyError

__all__ = [
    "DEFAULT_IGNORE",
    "DEFAULT_PROMPT_PARAMS",
    "KeyManifest",
    "build_manifest",
    "default_normalize",
    "split_messages",
    "text_of",
]

#: Transport-level arguments that never change an answer (and must never enter a key:
#: ``api_key`` is a secret). Extend per call site with ``ignore=``.
DEFAULT_IGNORE: frozenset[str] = frozenset(
    {"timeout", "extra_headers", "extra_query", "api_key", "request_timeout", "user"}
)
#: Argument names tried, in order, as the prompt when ``prompt=`` is not given.
DEFAULT_PROMPT_PARAMS: tuple[str, ...] = ("prompt", "question", "query", "input", "text")


def default_normalize(text: str) -> str:
    """Collapse runs of whitespace, strip, lower-case: "  What IS\\n2+2? " -> "what is 2+2?".

    Applied to the exact key only. Pass ``normalize=None`` for byte-exact prompts, or any
    ``str -> str`` callable.
    """
    return " ".join(text.split()).lower()


@dataclass(frozen=True, slots=True)
class KeyManifest:
    """Everything a cache key is made of, kept for ``explain`` and diagnostics."""

    namespace: str
    tenant: str | None
    prompt: str | None
    normalized_prompt: str | None
    model: str | None
    scope: Mapping[str, Any] = field(repr=False)
    scope_digest: str
    exact_digest: str
    #: The answer belongs to this exact request alone (an embedding is the vector of one
    #: text): no semantic lookup, no vector stored, whatever the entry point's threshold.
    exact_only: bool = False
    #: ``history="similar"``: the texts of the earlier user/assistant turns, which the
    #: scope then leaves out (a semantic candidate must match them turn by turn); empty
    #: when earlier turns are part of the scope (the default) or there are none.
    history: tuple[str, ...] = ()

    @property
    def has_prompt_text(self) -> bool:
        """Is there prompt text for the semantic layer? The one gate of every embedding,
        search and vector store: False for an :attr:`exact_only` key."""
        return not self.exact_only and bool(self.prompt and self.prompt.strip())

    def explain(self) -> dict[str, Any]:
        return {
            **pick_attrs(self, "namespace", "tenant", "prompt", "normalized_prompt", "model"),
            "scope": dict(self.scope),
            **pick_attrs(self, "scope_digest", "exact_digest", "exact_only", "history"),
        }


def text_of(content: Any) -> str | None:
    """Text of a message content: a string, or a list made only of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") in ("text", "input_text"):
                text = part.get("text")
                if not isinstance(text, str):
                    return None
                texts.append(text)
            else:
                return None  # an image, audio or tool part: the prompt is not just text
        return "\n".join(texts)
    return None


def _as_plain(message: Any) -> Any:
    dump = getattr(message, "model_dump", None)
    return dump(mode="json", exclude_unset=True) if callable(dump) else message


def split_messages(messages: Iterable[Any]) -> tuple[str | None, dict[str, Any]]:
    """Split an OpenAI/Anthropic-style ``messages`` list into (prompt, scope parts).

    The prompt is the text of the last ``user`` message; system/developer messages,
    earlier turns and anything after the last user turn go to the scope. When the last
    user message is not plain text (images, tool results) there is no prompt and the
    whole conversation is scope, so only an exact match can hit.
    """
    items = [_as_plain(m) for m in messages]
    last_user = None
    for i in range(len(items) - 1, -1, -1):
        msg = items[i]
        if isinstance(msg, Mapping) and msg.get("role") == "user":
            last_user = i
            break
    system = [
        m for m in items if isinstance(m, Mapping) and m.get("role") in ("system", "developer")
    ]
    rest = [m for m in items if not (isinstance(m, Mapping) and m in system)]
    if last_user is None:
        return None, {"system": system, "messages": rest}
    prompt = text_of(items[last_user].get("content"))
    if prompt is None:
        return None, {"system": system, "messages": rest}
    before = [m for m in items[:last_user] if m not in system]
    after = [m for m in items[last_user + 1 :] if m not in system]
    parts: dict[str, Any] = {"system": system, "history": before}
    if after:
        parts["after"] = after
    # The role/other fields of the last user message (name, cache_control) still matter.
    extra = {k: v for k, v in items[last_user].items() if k not in ("content", "role")}
    if extra:
        parts["last_user_fields"] = extra
    return prompt, parts


_SCALARS = (str, int, float, bool, type(None), bytes)


def cached_manifest(
    namespace: str,
    tenant: str | None,
    arguments: Mapping[str, Any],
    *,
    function_id: str,
    prompt_param: str | None,
    ignore: frozenset[str],
    normalize: Callable[[str], str] | None,
    history: str = "exact",
) -> KeyManifest:
    """:func:`build_manifest`, memoised for calls whose arguments are all plain scalars.

    Repeated identical calls are what a cache serves; their key does not need to be
    re-serialised and re-hashed each time. Only str/int/float/bool/None/bytes values
    qualify (immutable, so a memoised key can never go stale); anything else is built
    fresh. Type names are part of the memo key so ``1`` and ``True`` stay apart.
    """
    try:
        items = tuple((k, type(v).__name__, v) for k, v in arguments.items())
    except TypeError:
        items = None
    if items is not None and all(type(v) in _SCALARS for _, _, v in items):
        # Scalars hold no conversation: the history mode changes nothing there.
        return _memo(namespace, tenant, items, function_id, prompt_param, ignore, normalize)
    return build_manifest(
        namespace, tenant, arguments, function_id, prompt_param, ignore, normalize,
        history=history,
    )  # fmt: skip


@functools.lru_cache(maxsize=2048)
def _memo(
    namespace: str,
    tenant: str | None,
    items: tuple[tuple[str, str, Any], ...],
    function_id: str,
    prompt_param: str | None,
    ignore: frozenset[str],
    normalize: Callable[[str], str] | None,
) -> KeyManifest:
    arguments = {k: v for k, _, v in items}
    return build_manifest(
        namespace, tenant, arguments, function_id, prompt_param, ignore, normalize
    )


def build_manifest(
    namespace: str,
    tenant: str | None,
    arguments: Mapping[str, Any],
    function_id: str,
    prompt_param: str | None = None,
    ignore: Iterable[str] = (),
    normalize: Callable[[str], str] | None = default_normalize,
    exact_only: bool = False,
    history: str = "exact",
) -> KeyManifest:
    """Build the manifest of one call from its bound arguments (defaults applied).

    ``exact_only``: the prompt is keyed but never embedded (see
    :attr:`KeyManifest.exact_only`). ``history="similar"``: the earlier user/assistant
    turns' texts leave the scope (their roles and order stay) for
    :attr:`KeyManifest.history`; the exact key still holds them. Raises CacheKeyError for
    arguments with no stable key, including values nested deeper than
    :data:`~cachekit._canonical.MAX_DEPTH`.
    """
    check_history(history)
    try:
        prompt, scope_args, turns = _split(arguments, prompt_param, ignore, history == "similar")
        scope = {"fn": function_id, "args": dict(sorted(scope_args.items()))}
        if turns:
            scope["history"] = "similar"  # never the scope of an exact-history call
        # One serialisation: the exact digest continues the scope's hash with the prompt.
        h = hashlib.blake2b(dumps_canonical(scope), digest_size=16)
    except RecursionError as exc:
        # canonical() stops at MAX_DEPTH; this is the net for what runs before it
        # (comparing deeply nested messages in split_messages, a deep model_dump).
        raise CacheKeyError(
            "cannot build a cache key: the arguments are nested too deeply"
        ) from exc
    model = arguments.get("model")
    scope_digest = h.hexdigest()
    if turns:
        # The exact key holds the whole conversation, as in the default mode: the turns as
        # one canonical JSON list, so no turn text (NULs and all) can shift a boundary.
        h.update(b"\x00t" + dumps_canonical(list(turns)))
    normalized = None
    if prompt is not None:
        normalized = normalize(prompt) if normalize is not None else prompt
        h.update(b"\x00p" + normalized.encode("utf-8", "surrogatepass"))
    else:
        h.update(b"\x00n")
    exact_digest = h.hexdigest()
    return KeyManifest(
        namespace=namespace,
        tenant=tenant,
        prompt=prompt,
        normalized_prompt=normalized,
        model=model if isinstance(model, str) else None,
        scope=scope,
        scope_digest=scope_digest,
        exact_digest=exact_digest,
        exact_only=exact_only,
        history=turns,
    )


HISTORY_MODES = ("exact", "similar")


def check_history(history: object) -> None:
    if history not in HISTORY_MODES:
        raise CacheConfigError(f"history must be 'exact' or 'similar', got {history!r}")


def _split(
    arguments: Mapping[str, Any],
    prompt_param: str | None,
    ignore: Iterable[str],
    similar_history: bool = False,
) -> tuple[str | None, dict[str, Any], tuple[str, ...]]:
    """The prompt, every other argument in canonical form (the scope's arguments), and,
    with ``similar_history``, the earlier turns' texts taken out of the scope."""
    skip = (
        ignore
        if isinstance(ignore, frozenset) and ignore >= DEFAULT_IGNORE
        else (DEFAULT_IGNORE.union(ignore))
    )
    args = {k: v for k, v in arguments.items() if k not in skip and not is_missing(v)}
    prompt: str | None = None
    candidates = (prompt_param,) if prompt_param else DEFAULT_PROMPT_PARAMS
    for name in candidates:
        value = args.get(name)
        if isinstance(value, str):
            prompt = value
            del args[name]
            break
    scope_args: dict[str, Any] = {}
    turns: tuple[str, ...] = ()
    if prompt is None and "messages" in args and isinstance(args["messages"], list | tuple):
        msg_prompt, parts = split_messages(args["messages"])
        if msg_prompt is not None:
            prompt = msg_prompt
            del args["messages"]
            if similar_history:
                parts["history"], turns = _turn_texts(parts.get("history") or [])
            scope_args["messages"] = canonical(parts, "messages")
    for name, value in args.items():
        scope_args[name] = canonical(value, name)
    return prompt, scope_args, turns


_TURN: Final = "\x00turn"


def _turn_texts(history: list[Any]) -> tuple[list[Any], tuple[str, ...]]:
    """Earlier turns with their plain texts replaced by a placeholder, and the texts.

    Only a user or assistant message that is text and nothing else (no tool calls, no
    name, no images) is matched by wording; any other message stays in the scope whole.
    """
    shape: list[Any] = []
    texts: list[str] = []
    for message in history:
        if (
            isinstance(message, Mapping)
            and message.get("role") in ("user", "assistant")
            and set(message) <= {"role", "content"}
        ):
            content = text_of(message.get("content"))
            if content is not None:
                shape.append({"role": message["role"], "content": _TURN})
                texts.append(content)
                continue
        shape.append(message)
    return shape, tuple(texts)
