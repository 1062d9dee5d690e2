"""The LLM APIs the HTTP cache tells apart, by request path, and what each one means.

Every HTTP entry point (the ASGI and WSGI middlewares, the proxy, any adapter built on
:meth:`Config.key <cachekit.middleware._options.Config.key>` and
:class:`~cachekit.middleware._record.Recorder`) asks :func:`api_for` once per request,
so what an API's requests and responses mean is written here alone:

========================  ===============  ============================================
path ends with            API              key
========================  ===============  ============================================
``/chat/completions``     OpenAI chat      last ``user`` message = prompt
``/completions``          legacy           ``prompt``
``/v1/responses``         OpenAI Responses last ``user`` item of ``input`` = prompt;
                                           ``instructions``, earlier items = scope
``/v1/messages``          Anthropic        last ``user`` message = prompt; ``system``,
                                           ``anthropic-version``/``-beta`` = scope
``/embeddings``           embeddings       exact only, byte-exact ``input``
anything else             generic          the body as :func:`default_extractor` has it
========================  ===============  ============================================

A request that refers to state the provider keeps and the cache cannot see
(``previous_response_id``, ``conversation``, an ``item_reference``, a stored prompt of
no fixed version, an Anthropic ``container``) bypasses the cache: its answer depends on
more than the request. The response side (which streams are complete, where usage is)
is in :mod:`._answers`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ._answers import (
    FinalEvent,
    JsonReader,
    StreamReader,
    chat_final,
    chat_stream,
    embeddings_json,
    generic_final,
    generic_json,
    generic_stream,
    messages_final,
    messages_json,
    messages_stream,
    responses_final,
    responses_json,
    responses_stream,
)

__all__ = ["API_PATHS", "GENERIC", "Api", "api_for", "request_header"]

#: The name under which a request header enters the key arguments.
_HEADER_PREFIX: Final = "header:"


def _no_refusal(body: Mapping[str, Any]) -> str | None:
    return None


def _as_is(arguments: dict[str, Any]) -> dict[str, Any]:
    return arguments


@dataclass(frozen=True, slots=True)
class Api:
    """One API's rules: how a request is keyed, when a response is worth storing."""

    name: str
    #: ``refuse(body) -> field | None``: the field naming state the provider keeps (the
    #: request bypasses the cache), or None.
    refuse: Callable[[Mapping[str, Any]], str | None] = _no_refusal
    #: The extractor's arguments in the shape :func:`~cachekit._manifest.build_manifest`
    #: splits into prompt and scope.
    shape: Callable[[dict[str, Any]], dict[str, Any]] = _as_is
    #: Request headers that change the answer: part of the key (values as given, a
    #: comma-separated list read as a set).
    key_headers: tuple[str, ...] = ()
    #: Answers belong to the byte-exact request: no normalisation, no semantic layer.
    exact_only: bool = False
    read_json: JsonReader = generic_json
    read_stream: StreamReader = generic_stream
    is_final: FinalEvent = generic_final

    def key_arguments(self, arguments: Mapping[str, Any], request: Any) -> dict[str, Any] | None:
        """The extractor's ``arguments`` as this API keys them; None when a body field
        takes a name the key reserves for a request header."""
        shaped = self.shape(dict(arguments))
        for name in self.key_headers:
            slot = _HEADER_PREFIX + name
            if slot in shaped:
                # A body field of that name could stand for another request's header.
                return None
            value = _token_set(request_header(request, name))
            if value is not None:
                shaped[slot] = value
        return shaped


def _token_set(values: list[str]) -> str | None:
    tokens = sorted({t.strip() for v in values for t in v.split(",") if t.strip()})
    return ",".join(tokens) if tokens else None


def request_header(request: Any, name: str) -> list[str]:
    """Every value of header ``name`` (lower-case) of a Starlette or httpx request, or a
    WSGI ``environ``; ``[]`` when absent (or without a request)."""
    if isinstance(request, dict):  # WSGI environ: the server joined repeats with ","
        value = request.get("HTTP_" + name.upper().replace("-", "_"))
        return [value] if isinstance(value, str) else []
    headers = getattr(request, "headers", None)
    if headers is None:
        return []
    many = getattr(headers, "getlist", None) or getattr(headers, "get_list", None)
    if callable(many):
        return [str(v) for v in many(name)]
    value = headers.get(name)
    return [str(value)] if value is not None else []


# -- OpenAI Responses -----------------------------------------------------------------------


def _responses_refusal(body: Mapping[str, Any]) -> str | None:
    for name in ("previous_response_id", "conversation"):
        if body.get(name) is not None:
            return name
    prompt = body.get("prompt")
    if isinstance(prompt, Mapping) and prompt.get("version") is None:
        return "prompt"  # a stored prompt's latest version: the provider may change it
    items = body.get("input")
    if isinstance(items, list) and any(
        isinstance(item, Mapping) and item.get("type") == "item_reference" for item in items
    ):
        return "input[].item_reference"
    return None


def _responses_shape(arguments: dict[str, Any]) -> dict[str, Any]:
    # A list of input items is a conversation: split as messages are (last user item =
    # prompt, the rest scope). A string input is the prompt as it is.
    items = arguments.get("input")
    if isinstance(items, list) and "messages" not in arguments:
        del arguments["input"]
        arguments["messages"] = items
    return arguments


# -- Anthropic Messages ---------------------------------------------------------------------


def _messages_refusal(body: Mapping[str, Any]) -> str | None:
    if body.get("container") is not None:
        return "container"
    return None


# -- the table ------------------------------------------------------------------------------

GENERIC: Final = Api("generic")
_CHAT: Final = Api("chat", read_stream=chat_stream, is_final=chat_final)
_COMPLETIONS: Final = Api("completions", read_stream=chat_stream, is_final=chat_final)
_RESPONSES: Final = Api(
    "responses",
    refuse=_responses_refusal,
    shape=_responses_shape,
    read_json=responses_json,
    read_stream=responses_stream,
    is_final=responses_final,
)
_MESSAGES: Final = Api(
    "messages",
    refuse=_messages_refusal,
    key_headers=("anthropic-version", "anthropic-beta"),
    read_json=messages_json,
    read_stream=messages_stream,
    is_final=messages_final,
)
_EMBEDDINGS: Final = Api("embeddings", exact_only=True, read_json=embeddings_json)

#: Path endings, most specific first (``/chat/completions`` before ``/completions``).
_BY_SUFFIX: Final[tuple[tuple[str, Api], ...]] = (
    ("/chat/completions", _CHAT),
    ("/completions", _COMPLETIONS),
    ("/v1/responses", _RESPONSES),
    ("/openai/responses", _RESPONSES),  # Azure's preview path (?api-version=...)
    ("/v1/messages", _MESSAGES),
    ("/embeddings", _EMBEDDINGS),
)
#: The cached endpoints of the middlewares and the proxy by default.
API_PATHS: Final[tuple[str, ...]] = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/responses",
    "/v1/messages",
    "/v1/embeddings",
)


def api_for(path: str) -> Api:
    """The API a request to ``path`` speaks (Azure's ``/openai/deployments/<d>/...``
    included); :data:`GENERIC` for a path of the app's own."""
    path = path.rstrip("/")
    for suffix, api in _BY_SUFFIX:
        if path.endswith(suffix):
            return api
    return GENERIC
