"""The API table's rules on their own: which path is which API, how its requests are keyed,
which of its responses are whole answers (pure functions: no server needed)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from cachekit._reasons import Reason
from cachekit.middleware._answers import Answer
from cachekit.middleware._apis import GENERIC, api_for, request_header
from cachekit.middleware._content import sse_event
from cachekit.middleware._options import Config


def sse(*events: dict[str, Any], done: bool = False, named: bool = True) -> list[str]:
    blocks = [(f"event: {e['type']}\n" if named else "") + f"data: {json.dumps(e)}" for e in events]
    return [*blocks, "data: [DONE]"] if done else blocks


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/chat/completions", "chat"),
        ("/openai/deployments/gpt4/chat/completions", "chat"),
        ("/v1/completions", "completions"),
        ("/v1/responses", "responses"),
        ("/openai/v1/responses/", "responses"),
        ("/openai/responses", "responses"),
        ("/my/responses", "generic"),
        ("/v1/messages", "messages"),
        ("/v1/embeddings", "embeddings"),
        ("/openai/deployments/ada/embeddings", "embeddings"),
        ("/v1/messages/count_tokens", "generic"),
        ("/api/messages", "generic"),
        ("/ask", "generic"),
    ],
)
def test_api_by_path(path: str, name: str) -> None:
    assert api_for(path).name == name


def test_request_headers_of_every_request_kind() -> None:
    scope = {
        "type": "http",
        "headers": [(b"anthropic-beta", b"b, a"), (b"anthropic-beta", b"c")],
    }
    starlette = Request(scope)
    transport = httpx.Request(
        "POST",
        "http://x/v1/messages",
        headers=[("anthropic-beta", "b, a"), ("anthropic-beta", "c")],
    )
    environ = {"HTTP_ANTHROPIC_BETA": "b, a,c"}
    for request in (starlette, transport, environ):
        values = request_header(request, "anthropic-beta")
        assert ",".join(values).replace(" ", "") == "b,a,c"
        assert request_header(request, "anthropic-version") == []
    assert request_header(None, "anthropic-beta") == []


def manifest(path: str, body: dict[str, Any], request: Any = None) -> Any:
    return Config(allow_global=True).manifest(body, request, None, path, "")


def test_responses_keys() -> None:
    items = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": [{"type": "input_text", "text": "What is Redis?"}]},
    ]
    listed = manifest("/v1/responses", {"model": "m", "input": items})
    assert listed.prompt == "What is Redis?" and not listed.exact_only
    plain = manifest("/v1/responses", {"model": "m", "input": "What is Redis?"})
    assert plain.prompt == "What is Redis?" and plain.scope_digest != listed.scope_digest
    image = {"type": "input_image", "image_url": "https://example.com/a.png"}
    pictured = [{"role": "user", "content": [{"type": "input_text", "text": "What?"}, image]}]
    assert manifest("/v1/responses", {"model": "m", "input": pictured}).prompt is None
    reference = [{"type": "item_reference", "id": "msg_1"}]
    for field, state in (
        ("previous_response_id", {"previous_response_id": "resp_1"}),
        ("conversation", {"conversation": {"id": "conv_1"}}),
        ("prompt", {"prompt": {"id": "pmpt_1", "variables": {}}}),
        ("input[].item_reference", {"input": reference}),
    ):
        body = {"model": "m", "input": "x", **state}
        assert api_for("/v1/responses").refuse(body) == field
        assert manifest("/v1/responses", body) is Reason.PROVIDER_STATE
    pinned = {"model": "m", "input": "x", "prompt": {"id": "pmpt_1", "version": "3"}}
    assert manifest("/v1/responses", pinned).prompt == "x"


def test_messages_keys_and_reserved_header_fields() -> None:
    body = {"model": "c", "max_tokens": 9, "messages": [{"role": "user", "content": "Hi"}]}
    base = manifest("/v1/messages", body)
    versioned = manifest("/v1/messages", body, {"HTTP_ANTHROPIC_VERSION": "2023-06-01"})
    assert base.prompt == versioned.prompt == "Hi"
    assert base.scope_digest != versioned.scope_digest
    assert api_for("/v1/messages").refuse({**body, "container": "ctr_1"}) == "container"
    assert manifest("/v1/messages", {**body, "container": "ctr_1"}) is Reason.PROVIDER_STATE
    forged = {**body, "header:anthropic-version": "2023-06-01"}
    assert manifest("/v1/messages", forged) is Reason.RESERVED_FIELD
    # Elsewhere such a field is just a field.
    assert manifest("/v1/chat/completions", forged).prompt == "Hi"


def test_embeddings_keys_are_exact_and_byte_exact() -> None:
    one = manifest("/v1/embeddings", {"model": "e", "input": "Hello  World"})
    other = manifest("/v1/embeddings", {"model": "e", "input": "hello world"})
    assert one.exact_only and not one.has_prompt_text and one.prompt == "Hello  World"
    assert one.exact_digest != other.exact_digest
    chat = {"model": "m", "messages": [{"role": "user", "content": "Hello  World"}]}
    assert manifest("/v1/chat/completions", chat).has_prompt_text


def test_chat_streams_need_done_and_no_error() -> None:
    read = api_for("/v1/chat/completions").read_stream
    chunk = {"model": "m", "choices": [{"delta": {"content": "hi"}}]}
    last = {"model": "m", "choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 1}}
    assert read(sse(chunk, last, done=True, named=False)) == Answer((2, 1), "m")
    assert read(sse(chunk, named=False)) == "stream ended without data: [DONE]"
    error = {"error": {"message": "overloaded"}}
    assert read(sse(chunk, error, done=True, named=False)) == "stream carried an error"
    assert GENERIC.read_stream(sse(chunk, named=False)) == Answer(None, "m")


def test_responses_answers() -> None:
    read_json, read_stream = (
        api_for("/v1/responses").read_json,
        api_for("/v1/responses").read_stream,
    )
    done = {"model": "m", "status": "completed", "usage": {"input_tokens": 3, "output_tokens": 4}}
    assert read_json(done) == Answer((3, 4), "m")
    for status in ("queued", "in_progress", "incomplete", "failed"):
        assert read_json({**done, "status": status}) == f"response status {status}"
    created = {"type": "response.created", "response": {**done, "status": "in_progress"}}
    completed = {"type": "response.completed", "response": done}
    assert read_stream(sse(created, completed)) == Answer((3, 4), "m")
    assert read_stream(sse(created)) == "stream ended before response.completed"
    for kind in ("response.failed", "response.incomplete", "error"):
        assert read_stream(sse(created, {"type": kind})) == f"stream ended with {kind}"
    # Named by its event line alone, or by its data's type alone: either counts.
    assert read_stream([*sse(created), 'event: error\ndata: {"message": "x"}']) == (
        "stream ended with error"
    )
    assert read_stream(sse(created, completed, named=False)) == Answer((3, 4), "m")


def test_messages_answers() -> None:
    read_json, read_stream = api_for("/v1/messages").read_json, api_for("/v1/messages").read_stream
    message = {"type": "message", "model": "c", "usage": {"input_tokens": 5, "output_tokens": 6}}
    assert read_json(message) == Answer((5, 6), "c")
    assert read_json({"type": "error", "error": {}}) == "body is not a message"
    start = {
        "type": "message_start",
        "message": {**message, "usage": {"input_tokens": 5, "output_tokens": 1}},
    }
    delta = {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 0}}
    final = {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 9}}
    stop = {"type": "message_stop"}
    assert read_stream(sse(start, {"type": "ping"}, final, stop)) == Answer((5, 9), "c")
    assert read_stream(sse(start, delta, stop)) == Answer((5, 0), "c")  # 0 is a count
    cumulative = {"type": "message_delta", "usage": {"input_tokens": 7, "output_tokens": 2}}
    assert read_stream(sse(start, cumulative, stop)) == Answer((7, 2), "c")
    assert read_stream(sse(start, final)) == "stream ended before message_stop"
    assert read_stream(sse(start, {"type": "error"}, stop)) == "stream ended with error"


def test_embeddings_answers() -> None:
    read = api_for("/v1/embeddings").read_json
    body = {"model": "e", "data": [], "usage": {"prompt_tokens": 4, "total_tokens": 4}}
    assert read(body) == Answer((4, 0), "e")
    assert read({"model": "e", "data": []}) == Answer(None, "e")


def test_final_events_per_api() -> None:
    done, stop, completed = (
        "data: [DONE]",
        *sse({"type": "message_stop"}, {"type": "response.completed"}),
    )
    finals = {
        path: [api_for(path).is_final(e) for e in (done, stop, completed)]
        for path in ("/v1/chat/completions", "/v1/messages", "/v1/responses", "/ask")
    }
    assert finals == {
        "/v1/chat/completions": [True, False, False],
        "/v1/messages": [False, True, False],
        "/v1/responses": [False, False, True],
        "/ask": [True, True, True],
    }


def test_sse_event_follows_the_spec() -> None:
    event = sse_event('event: x\nid: 3\ndata: {"a":\ndata: 1}\n: comment')
    assert (event.name, event.data, event.value) == ("x", '{"a":\n1}', {"a": 1})
    assert sse_event("data: [DONE]").value is None
    assert sse_event("data:no-space").data == "no-space"
