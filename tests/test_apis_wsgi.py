"""OpenAI Responses, Anthropic Messages and embeddings through ``WSGICacheMiddleware``.

A real Flask app answers in the APIs' wire formats (``tests/llm_wire.py``, the builders
of the test server) and Flask's default ``test_client()`` sends the requests; what comes
back is read with the SDKs' own types (``openai`` ``Response`` and stream events,
``anthropic`` ``Message`` and ``RawMessageStreamEvent``), so a hit must round-trip.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest
import redis
from anthropic.types import Message, RawMessageStreamEvent
from flask import Flask, Response, request
from flask.testing import FlaskClient
from openai.types.responses import Response as OpenAIResponse
from openai.types.responses import ResponseStreamEvent
from werkzeug.test import TestResponse

from cachekit import LLMCache
from cachekit.middleware import WSGICacheMiddleware, api_key_tenant
from tests import llm_wire as wire
from tests._helpers import GENEROUS, MakeCache, bow_embedder
from tests.llm_server import _split_words, word_count

RESPONSE_EVENT: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseStreamEvent)
MESSAGE_EVENT: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RawMessageStreamEvent)
OPENAI = {"authorization": "Bearer sk-alpha"}
ANTHROPIC = {"x-api-key": "ak-alpha", "anthropic-version": "2023-06-01"}


class FlaskAPIs:
    """A Flask app speaking OpenAI Responses, Anthropic Messages and embeddings."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail_stream = False
        self.ids = itertools.count(1)
        app = Flask("apis")
        app.add_url_rule("/v1/responses", view_func=self.responses, methods=["POST"])
        app.add_url_rule("/v1/messages", view_func=self.messages, methods=["POST"])
        app.add_url_rule("/v1/embeddings", view_func=self.embeddings, methods=["POST"])
        self.app = app

    def _events(self, events: list[dict[str, Any]], failure: Any) -> Response:
        if self.fail_stream:
            self.fail_stream = False
            events = [*events[:-1], failure(events)]

        def frames() -> Iterator[str]:
            for number, event in enumerate(events):
                if event["type"].startswith("response"):
                    event = {**event, "sequence_number": number}
                yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"

        return Response(frames(), mimetype="text/event-stream")

    def responses(self) -> Any:
        body = request.get_json()
        self.calls.append(request.path)
        text, reason = _truncate(f"echo: {wire.input_text(body['input'])}", body)
        fields = {
            "response_id": f"resp_{next(self.ids)}",
            "text": text,
            "truncated": reason,
            "usage": (wire.responses_prompt_tokens(body, word_count), word_count(text)),
        }
        if body.get("stream"):
            events = wire.response_events(body, **fields, split=_split_words)
            return self._events(events, wire.response_failed_event)
        return wire.response_body(body, **fields)

    def messages(self) -> Any:
        body = request.get_json()
        self.calls.append(request.path)
        last = body["messages"][-1]["content"]
        text = "echo: " + (last if isinstance(last, str) else last[0]["text"])
        fields = {
            "message_id": f"msg_{next(self.ids):024d}",
            "text": text,
            "truncated": False,
            "usage": (wire.messages_prompt_tokens(body, word_count), word_count(text)),
        }
        if body.get("stream"):
            events = wire.messages_events(body, **fields, split=_split_words)
            return self._events(events, wire.anthropic_error_event)
        return wire.messages_body(body, **fields)

    def embeddings(self) -> Any:
        body = request.get_json()
        self.calls.append(request.path)
        digest = hashlib.sha256(body["input"].encode()).digest()
        vector = [b / 255 for b in digest[:8]]
        usage = {"prompt_tokens": word_count(body["input"]), "total_tokens": 0}
        data = [{"object": "embedding", "index": 0, "embedding": vector}]
        return {"object": "list", "model": body["model"], "data": data, "usage": usage}


def _truncate(text: str, body: dict[str, Any]) -> tuple[str, bool]:
    limit = body.get("max_output_tokens")
    pieces = _split_words(text)
    if isinstance(limit, int) and len(pieces) > limit:
        return "".join(pieces[:limit]), True
    return text, False


@pytest.fixture
def apis() -> FlaskAPIs:
    return FlaskAPIs()


def client_for(apis: FlaskAPIs, cache: LLMCache, **options: Any) -> FlaskClient:
    apis.app.wsgi_app = WSGICacheMiddleware(  # type: ignore[method-assign]
        apis.app.wsgi_app, cache=cache, namespace="wsgi", tenant=api_key_tenant, **options
    )
    return apis.app.test_client()


@pytest.fixture
def http(apis: FlaskAPIs, make_cache: MakeCache) -> FlaskClient:
    return client_for(apis, make_cache(budgets=GENEROUS))


def post(http: FlaskClient, path: str, body: Any, headers: dict[str, str]) -> TestResponse:
    """POST and read the whole body, as a client does: the response (and its store) is
    settled before the next request (an identical one would wait for it in flight)."""
    reply = http.post(path, json=body, headers=headers)
    reply.get_data()
    return reply


def events_of(data: bytes, adapter: pydantic.TypeAdapter[Any]) -> list[Any]:
    """The events of a stream as the SDK types them (the SDKs skip Anthropic's pings)."""
    values = [json.loads(b.split("data: ", 1)[1]) for b in data.decode().split("\n\n") if b]
    return [adapter.validate_python(v) for v in values if v["type"] != "ping"]


def test_responses_hit_round_trips(http: FlaskClient, apis: FlaskAPIs) -> None:
    body = {"model": "gpt-4o-mini", "instructions": "Be terse.", "input": "What is Redis?"}
    first, again = (post(http, "/v1/responses", body, OPENAI) for _ in "ab")
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("MISS", "HIT")
    replies = [OpenAIResponse.model_validate(r.get_json()) for r in (first, again)]
    assert replies[0].output_text == "echo: What is Redis?"
    assert replies[0].model_dump() == replies[1].model_dump()
    other = post(http, "/v1/responses", {**body, "instructions": "Be verbose."}, OPENAI)
    assert other.headers["x-cache"] == "MISS"
    ahead = {**body, "previous_response_id": replies[0].id}
    labels = [post(http, "/v1/responses", ahead, OPENAI).headers["x-cache"] for _ in "ab"]
    assert labels == ["BYPASS", "BYPASS"]
    assert len(apis.calls) == 4


def test_responses_stream_stored_only_when_completed(http: FlaskClient, apis: FlaskAPIs) -> None:
    body = {"model": "gpt-4o-mini", "input": "stream me", "stream": True}
    apis.fail_stream = True
    failed = post(http, "/v1/responses", body, OPENAI)
    assert events_of(failed.data, RESPONSE_EVENT)[-1].type == "response.failed"
    labels, streams = [], []
    for _ in range(2):
        reply = post(http, "/v1/responses", body, OPENAI)
        labels.append(reply.headers["x-cache"])
        streams.append(events_of(reply.data, RESPONSE_EVENT))
    assert labels == ["MISS", "HIT"]
    assert [e.model_dump() for e in streams[0]] == [e.model_dump() for e in streams[1]]
    assert streams[1][-1].response.output_text == "echo: stream me"
    cut = {**body, "max_output_tokens": 1}
    for _ in range(2):
        reply = post(http, "/v1/responses", cut, OPENAI)
        assert reply.headers["x-cache"] == "MISS"
        assert events_of(reply.data, RESPONSE_EVENT)[-1].type == "response.incomplete"
    assert len(apis.calls) == 4


def test_messages_hit_round_trips_and_versions_key(http: FlaskClient, apis: FlaskAPIs) -> None:
    body = {
        "model": "claude-sonnet-4",
        "max_tokens": 64,
        "system": "Be terse.",
        "messages": [{"role": "user", "content": "Hi Claude"}],
    }
    replies = [post(http, "/v1/messages", body, ANTHROPIC) for _ in "ab"]
    assert [r.headers["x-cache"] for r in replies] == ["MISS", "HIT"]
    messages = [Message.model_validate(r.get_json()) for r in replies]
    assert messages[0].model_dump() == messages[1].model_dump()
    for changed, headers in (
        ({**body, "system": "Be verbose."}, ANTHROPIC),
        (body, {**ANTHROPIC, "anthropic-version": "2024-01-01"}),
        (body, {**ANTHROPIC, "anthropic-beta": "feature-a"}),
        (body, {**ANTHROPIC, "x-api-key": "ak-beta"}),
    ):
        assert post(http, "/v1/messages", changed, headers).headers["x-cache"] == "MISS"
    assert len(apis.calls) == 5


def test_message_stream_stored_only_at_message_stop(http: FlaskClient, apis: FlaskAPIs) -> None:
    body = {
        "model": "claude-sonnet-4",
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "stream it"}]}],
    }
    apis.fail_stream = True
    failed = post(http, "/v1/messages", body, ANTHROPIC)
    # The SDK raises on an error event (no type of its own): read the last one raw.
    assert failed.get_data(as_text=True).split("\n\n")[-2].startswith("event: error\n")
    replies = [post(http, "/v1/messages", body, ANTHROPIC) for _ in "ab"]
    assert [r.headers["x-cache"] for r in replies] == ["MISS", "HIT"]
    streams = [events_of(r.data, MESSAGE_EVENT) for r in replies]
    assert [e.model_dump() for e in streams[0]] == [e.model_dump() for e in streams[1]]
    assert streams[1][-1].type == "message_stop"
    assert len(apis.calls) == 2


def test_embeddings_exact_only(
    apis: FlaskAPIs, make_cache: MakeCache, redis_sync: redis.Redis
) -> None:
    cache = make_cache(embedder=bow_embedder(), budgets=GENEROUS)
    http = client_for(apis, cache, threshold=0.5)
    labels = [
        post(
            http, "/v1/embeddings", {"model": "text-embedding-3-small", "input": text}, OPENAI
        ).headers["x-cache"]
        for text in (
            "What is the capital of France?",
            "What is the capital of France?",
            "Tell me the capital of France?",
            "what is the capital of france?",
        )
    ]
    assert labels == ["MISS", "HIT", "MISS", "MISS"] and len(apis.calls) == 3
    assert [*redis_sync.scan_iter("ck:*:vs:*"), *redis_sync.scan_iter("ck:*:fl:*")] == []
    row = cache.run_sync(cache.stats, "wsgi", timeout=10).totals
    assert row.tokens == {"text-embedding-3-small": [6, 0]}
