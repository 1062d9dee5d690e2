"""The local OpenAI-compatible server, driven over HTTP by the real openai SDK."""

from __future__ import annotations

import asyncio
import base64
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import numpy as np
import openai
import pytest
from anthropic.types import Message
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response

from tests.llm_server import LocalOpenAIServer, hash_embedding

MESSAGES: list[Any] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the capital of France?"},
]
ANSWER = "echo: What is the capital of France?"


@pytest.fixture
def srv(upstream: LocalOpenAIServer) -> LocalOpenAIServer:
    """The module's server with no recorded calls, pending faults or latency."""
    upstream.reset()
    upstream.delay = upstream.stream_delay = 0.0
    upstream.require_api_key = False
    return upstream


@pytest.fixture(scope="module")
def client(upstream: LocalOpenAIServer) -> Iterator[openai.OpenAI]:
    # Building an SDK client costs ~0.1 s (TLS context), so the module shares one.
    with openai.OpenAI(base_url=upstream.base_url, api_key="sk-test", max_retries=0) as c:
        yield c


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """Raw HTTP, for what the SDK would not send."""
    with httpx.Client() as c:
        yield c


def _reassemble(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# --------------------------------------------------------------------------- lifecycle


def test_addresses_and_lifecycle(http: httpx.Client) -> None:
    server = LocalOpenAIServer()
    with pytest.raises(RuntimeError):
        _ = server.base_url
    server.start()
    try:
        assert server.running
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.base_url == f"{server.url}/v1"
        assert http.get(f"{server.url}/health").json() == {"status": "ok"}
    finally:
        server.stop()
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        http.get(f"{server.url}/health")


def test_restart_keeps_port_and_outage_is_a_connection_error() -> None:
    with LocalOpenAIServer() as server:
        port = server.port
        with openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as c:
            server.stop()
            with pytest.raises(openai.APIConnectionError):
                c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            server.start()
            assert server.port == port
            reply = c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            assert reply.choices[0].message.content == ANSWER


def test_two_servers_get_distinct_ports() -> None:
    with LocalOpenAIServer() as a, LocalOpenAIServer() as b:
        assert a.port != b.port
        with pytest.raises(OSError):
            LocalOpenAIServer(port=a.port).start()


# --------------------------------------------------------------------------- chat


def test_sync_chat_non_stream(srv: LocalOpenAIServer, client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert isinstance(reply, ChatCompletion)
    assert reply.id.startswith("chatcmpl-")
    assert reply.object == "chat.completion"
    assert reply.model == "gpt-4o-mini"
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == ANSWER
    assert choice.finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == 3 + 6
    assert reply.usage.completion_tokens == 7
    assert reply.usage.total_tokens == 16

    call = srv.calls[-1]
    assert (call.method, call.path) == ("POST", "/v1/chat/completions")
    assert call.body["messages"] == MESSAGES
    assert call.json is call.body
    assert call.headers["authorization"] == "Bearer sk-test"
    assert call.headers["user-agent"].startswith("OpenAI/Python")
    assert call.api_key == "sk-test"
    assert not call.stream


def test_sync_chat_stream(srv: LocalOpenAIServer, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) == 7  # one per word
    assert _reassemble(chunks) == ANSWER
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7
    assert srv.calls[-1].stream


def test_chat_stream_without_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(model="m", messages=MESSAGES, stream=True),
    )
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_chat_options(client: openai.OpenAI) -> None:
    parts: Any = [{"type": "text", "text": "multi"}, {"type": "text", "text": "part"}]
    reply = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": parts}], n=2, max_tokens=2
    )
    assert [c.message.content for c in reply.choices] == ["echo: multi", "echo: multi"]
    assert [c.finish_reason for c in reply.choices] == ["length", "length"]


def test_custom_responder() -> None:
    def responder(body: dict[str, Any]) -> str:
        return f"{body['model']} says {len(body.get('messages', []))}"

    with (
        LocalOpenAIServer(responder=responder) as server,
        openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as c,
    ):
        reply = c.chat.completions.create(model="x", messages=MESSAGES)
        assert reply.choices[0].message.content == "x says 2"
        chunks = list(c.chat.completions.create(model="x", messages=MESSAGES, stream=True))
        assert _reassemble(chunks) == "x says 2"


async def test_async_chat_non_stream_and_stream(srv: LocalOpenAIServer) -> None:
    async with openai.AsyncOpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=0) as c:
        reply = await c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert reply.choices[0].message.content == ANSWER

        stream = await c.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        chunks = [chunk async for chunk in stream]
        assert all(isinstance(chunk, ChatCompletionChunk) for chunk in chunks)
        assert _reassemble(chunks) == ANSWER
    assert srv.calls[-1].headers["x-stainless-async"] != "false"
    assert srv.count("/v1/chat/completions") == 2


async def test_async_concurrent_requests_are_all_counted(srv: LocalOpenAIServer) -> None:
    async with openai.AsyncOpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=0) as c:
        replies = await asyncio.gather(
            *(
                c.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": f"q{i}"}]
                )
                for i in range(20)
            )
        )
    assert sorted(r.choices[0].message.content or "" for r in replies) == sorted(
        f"echo: q{i}" for i in range(20)
    )
    assert srv.count() == 20
    assert len({r.id for r in replies}) == 20


# --------------------------------------------------------------------------- completions


def test_legacy_completions(srv: LocalOpenAIServer, client: openai.OpenAI) -> None:
    reply = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi")
    assert isinstance(reply, Completion)
    assert reply.id.startswith("cmpl-")
    assert reply.object == "text_completion"
    assert reply.choices[0].text == "echo: Say hi"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.total_tokens == 2 + 3

    chunks = list(
        client.completions.create(
            model="gpt-3.5-turbo-instruct",
            prompt="Say hi",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(isinstance(c, Completion) for c in chunks)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "echo: Say hi"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    assert srv.count("/completions") == 2


# --------------------------------------------------------------------------- embeddings


def test_embeddings_float(srv: LocalOpenAIServer, client: openai.OpenAI) -> None:
    texts = ["hello world", "goodbye", "hello world"]
    reply = client.embeddings.create(
        model="text-embedding-3-small", input=texts, dimensions=384, encoding_format="float"
    )
    vectors = np.array([d.embedding for d in reply.data])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[2])  # deterministic
    assert abs(float(vectors[0] @ vectors[1])) < 0.3  # unrelated texts: near-orthogonal
    assert [d.index for d in reply.data] == [0, 1, 2]
    assert reply.usage.prompt_tokens == 2 + 1 + 2
    assert np.allclose(vectors[0], hash_embedding("hello world", 384), atol=1e-6)
    assert srv.calls[-1].body["encoding_format"] == "float"


def test_embeddings_sdk_default_is_base64(srv: LocalOpenAIServer, client: openai.OpenAI) -> None:
    reply = client.embeddings.create(model="text-embedding-3-small", input="hi", dimensions=384)
    assert srv.calls[-1].body["encoding_format"] == "base64"  # the SDK's default request
    vector = np.array(reply.data[0].embedding)  # ... decoded by the SDK
    assert vector.shape == (384,)
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)
    float_reply = client.embeddings.create(
        model="text-embedding-3-small", input="hi", dimensions=384, encoding_format="float"
    )
    assert np.array_equal(vector, np.array(float_reply.data[0].embedding))


def test_embeddings_explicit_base64_and_default_dimensions(client: openai.OpenAI) -> None:
    reply = client.embeddings.create(model="e", input=["x"], encoding_format="base64")
    raw = reply.data[0].embedding
    assert isinstance(raw, str)  # an explicit format is handed back untouched
    vector = np.frombuffer(base64.b64decode(raw), dtype="<f4")
    assert vector.shape == (1536,)
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)


async def test_async_embeddings(srv: LocalOpenAIServer) -> None:
    async with openai.AsyncOpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=0) as c:
        reply = await c.embeddings.create(model="e", input=["a", "b"], dimensions=384)
    assert [len(d.embedding) for d in reply.data] == [384, 384]


def test_custom_embedder_is_normalised() -> None:
    with (
        LocalOpenAIServer(embedder=lambda text, dim: [float(len(text))] * dim) as server,
        openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as c,
    ):
        reply = c.embeddings.create(model="e", input="abc", dimensions=4)
    assert np.allclose(reply.data[0].embedding, [0.5] * 4)


# --------------------------------------------------------------------------- other routes


def test_models_and_unknown_routes(
    srv: LocalOpenAIServer, client: openai.OpenAI, http: httpx.Client
) -> None:
    assert "gpt-4o-mini" in [m.id for m in client.models.list()]
    assert client.models.retrieve("anything").id == "anything"

    response = http.post(f"{srv.base_url}/nope", json={})
    assert response.status_code == 404
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert http.get(f"{srv.base_url}/chat/completions").status_code == 405
    bad = http.post(f"{srv.base_url}/chat/completions", content=b"{not json")
    assert bad.status_code == 400
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="m", messages=[])
    assert srv.count() == 6


# --------------------------------------------------------------------------- observability


def test_count_and_reset(srv: LocalOpenAIServer, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="m", messages=MESSAGES)
    client.chat.completions.create(model="m", messages=MESSAGES)
    client.embeddings.create(model="e", input="x")
    assert srv.count() == 3
    assert srv.count("/v1/chat/completions") == 2
    assert srv.count("/chat/completions") == 2
    assert srv.count("/v1/embeddings") == 1
    assert srv.count("/v1/completions") == 0
    snapshot = srv.calls
    srv.reset()
    assert srv.count() == 0
    assert srv.calls == []
    assert len(snapshot) == 3  # snapshots are copies
    assert srv.last_call is None


# --------------------------------------------------------------------------- faults


def test_fail_next(srv: LocalOpenAIServer, client: openai.OpenAI) -> None:
    srv.fail_next()
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == 500
    assert isinstance(info.value.body, dict) and "Injected" in info.value.body["message"]
    # One shot: the next call succeeds.
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content

    srv.fail_next(429, times=2, message="slow down")
    for _ in range(2):
        with pytest.raises(openai.RateLimitError, match="slow down"):
            client.embeddings.create(model="e", input="x")
    client.embeddings.create(model="e", input="x")
    assert srv.count() == 5


def test_fail_next_path_filter(srv: LocalOpenAIServer, client: openai.OpenAI) -> None:
    srv.fail_next(503, path="/embeddings")
    client.chat.completions.create(model="m", messages=MESSAGES)  # not affected
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="e", input="x")


def test_sdk_retries_through_failures(srv: LocalOpenAIServer, client: openai.OpenAI) -> None:
    srv.fail_next(503, times=2, retry_after=0.01)
    reply = client.with_options(max_retries=2).chat.completions.create(model="m", messages=MESSAGES)
    assert reply.choices[0].message.content == ANSWER
    assert [call.headers["x-stainless-retry-count"] for call in srv.calls] == ["0", "1", "2"]


def test_break_stream_after(srv: LocalOpenAIServer, client: openai.OpenAI) -> None:
    srv.break_stream_after(3)
    received: list[ChatCompletionChunk] = []
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIConnectionError) as info:
        for chunk in stream:
            received.append(chunk)
    # What the SDK really raises: APIConnectionError from the HTTP client's protocol error.
    assert type(info.value.__cause__).__name__ == "RemoteProtocolError"
    assert len(received) == 3
    assert all(c.choices[0].finish_reason is None for c in received)

    # Only the next stream is broken.
    assert (
        _reassemble(list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True)))
        == ANSWER
    )


async def test_break_stream_async(srv: LocalOpenAIServer) -> None:
    srv.break_stream_after(0)
    async with openai.AsyncOpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=0) as c:
        stream = await c.completions.create(model="m", prompt="a b c", stream=True)
        with pytest.raises(openai.APIConnectionError):
            async for _ in stream:
                pass


def test_delay_and_stream_delay(srv: LocalOpenAIServer, client: openai.OpenAI) -> None:
    srv.delay = 0.2
    start = time.perf_counter()
    client.embeddings.create(model="e", input="x")
    assert time.perf_counter() - start >= 0.2

    srv.delay = 0.0
    srv.stream_delay = 0.05
    start = time.perf_counter()
    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    # 9 chunks (role, 7 words, finish): 8 gaps.
    assert len(chunks) == 9
    assert time.perf_counter() - start >= 8 * 0.05


def test_require_api_key(srv: LocalOpenAIServer, client: openai.OpenAI, http: httpx.Client) -> None:
    srv.require_api_key = True
    response = http.post(f"{srv.base_url}/embeddings", json={"model": "e", "input": "x"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert srv.calls[-1].api_key is None

    client.with_options(api_key="sk-any").embeddings.create(model="e", input="x")
    assert srv.calls[-1].api_key == "sk-any"

    srv.require_api_key = "sk-right"
    with pytest.raises(openai.AuthenticationError):
        client.with_options(api_key="sk-any").embeddings.create(model="e", input="x")
    client.with_options(api_key="sk-right").embeddings.create(model="e", input="x")
    assert [call.api_key for call in srv.calls] == [None, "sk-any", "sk-any", "sk-right"]


# --------------------------------------------------------------------------- Responses, Messages


@pytest.fixture(scope="module")
def claude(upstream: LocalOpenAIServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=upstream.url, api_key="ak-test", max_retries=0) as c:
        yield c


def test_responses_non_stream_and_stream(
    srv: LocalOpenAIServer, client: openai.OpenAI, http: httpx.Client
) -> None:
    reply = client.responses.create(model="m", instructions="Be terse.", input="Hi there")
    assert isinstance(reply, Response) and reply.status == "completed"
    assert reply.output_text == "echo: Hi there" and reply.id.startswith("resp_")
    assert reply.usage is not None
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (4, 3)
    items = [{"role": "user", "content": [{"type": "input_text", "text": "stream it"}]}]
    events = list(client.responses.create(model="m", input=items, stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == "echo: stream it" and final.id != reply.id
    with client.responses.stream(model="m", input="helper") as stream:
        assert stream.get_final_response().output_text == "echo: helper"
    raw = http.post(f"{srv.base_url}/responses", json={"model": "m", "input": "x", "stream": True})
    assert raw.text.startswith("event: response.created\ndata: {") and "[DONE]" not in raw.text


def test_responses_state_and_truncation(client: openai.OpenAI) -> None:
    after = client.responses.create(model="m", input="next", previous_response_id="resp_9")
    assert after.output_text == "echo: next (after resp_9)"
    cut = client.responses.create(model="m", input="one two three", max_output_tokens=2)
    assert cut.status == "incomplete" and cut.output_text == "echo: one"
    assert cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"
    events = list(
        client.responses.create(model="m", input="a b c", max_output_tokens=1, stream=True)
    )
    assert events[-1].type == "response.incomplete"


def test_messages_create_and_stream(
    srv: LocalOpenAIServer, claude: anthropic.Anthropic, http: httpx.Client
) -> None:
    raw = claude.messages.with_raw_response.create(
        model="claude-sonnet-4",
        max_tokens=50,
        system="Be terse.",
        messages=[{"role": "user", "content": "Hi Claude"}],
    )
    message = raw.parse()
    assert isinstance(message, Message) and message.content[0].type == "text"
    assert message.content[0].text == "echo: Hi Claude" and message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 3)
    assert raw.headers["request-id"].startswith("req_")
    call = srv.last_call
    assert call is not None and call.api_key == "ak-test" and call.headers["anthropic-version"]
    blocks = [{"type": "text", "text": "stream please"}]
    with claude.messages.stream(
        model="claude-sonnet-4", max_tokens=50, messages=[{"role": "user", "content": blocks}]
    ) as stream:
        assert "".join(stream.text_stream) == "echo: stream please"
        final = stream.get_final_message()
    assert final.id != message.id and final.usage.output_tokens == 3
    body = {
        "model": "c",
        "max_tokens": 5,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    text = http.post(f"{srv.url}/v1/messages", json=body, headers={"anthropic-version": "v"}).text
    assert text.startswith("event: message_start\n") and text.endswith(
        'event: message_stop\ndata: {"type": "message_stop"}\n\n'
    )
    short = claude.messages.create(
        model="c", max_tokens=1, messages=[{"role": "user", "content": "a b"}]
    )
    assert short.stop_reason == "max_tokens" and short.content[0].text == "echo:"  # type: ignore[union-attr]


def test_messages_errors_are_anthropic_shaped(
    srv: LocalOpenAIServer, claude: anthropic.Anthropic, http: httpx.Client
) -> None:
    body = {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    reply = http.post(f"{srv.url}/v1/messages", json=body)
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "invalid_request_error"
    srv.require_api_key = "ak-right"
    with pytest.raises(anthropic.AuthenticationError):
        claude.messages.create(**body)  # type: ignore[arg-type]
    claude.with_options(api_key="ak-right").messages.create(**body)  # type: ignore[arg-type]
    srv.require_api_key = False
    srv.fail_next(529, path="/v1/messages")
    with pytest.raises(anthropic.APIStatusError) as info:
        claude.messages.create(**body)  # type: ignore[arg-type]
    assert info.value.status_code == 529
    assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_fail_stream_next(
    srv: LocalOpenAIServer, client: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    srv.fail_stream_next(3)
    with pytest.raises(openai.APIError, match="Injected stream failure"):
        list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    events = list(client.responses.create(model="m", input="x", stream=True))
    assert events[-1].type == "response.failed"
    assert [e.type for e in events].count("response.completed") == 0
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        list(
            claude.messages.create(
                model="c", max_tokens=5, messages=[{"role": "user", "content": "x"}], stream=True
            )
        )
    # One-shot: the next stream completes again.
    assert (
        _reassemble(list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True)))
        == ANSWER
    )


# --------------------------------------------------------------------------- CLI


def test_cli_serves_in_the_foreground() -> None:
    script = Path(__file__).with_name("llm_server.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        base_url = line.strip().rsplit(" ", 1)[-1]
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        with openai.OpenAI(base_url=base_url, api_key="k", max_retries=3) as c:
            reply = c.chat.completions.create(model="m", messages=MESSAGES)
        assert reply.choices[0].message.content == ANSWER
    finally:
        proc.send_signal(signal.SIGINT)  # graceful shutdown; SIGTERM would exit with -15
        assert proc.wait(timeout=10) == 0
