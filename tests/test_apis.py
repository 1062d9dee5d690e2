"""OpenAI Responses, Anthropic Messages and embeddings, cached end to end.

The real ``openai`` and ``anthropic`` SDKs talk to a caching front on a real Redis: the
proxy (``create_proxy_app``) or ``CacheMiddleware`` in front of the test server's own
Starlette app, both served by uvicorn, or the httpx ``CacheTransport`` inside the
client. The upstream is ``tests/llm_server.py``, whose ids count up: a hit is told by
the same id coming back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from cachekit import LLMCache
from cachekit.middleware import CacheMiddleware, api_key_tenant
from cachekit.proxy import create_proxy_app
from cachekit.transport import CacheTransport
from cachekit.transport.httpx2 import CacheTransport as Httpx2CacheTransport
from tests._helpers import GENEROUS, MakeCache, bow_embedder
from tests.llm_server import LocalOpenAIServer
from tests.test_proxy import Served

MODEL, CLAUDE, EMBED = "gpt-4o-mini", "claude-sonnet-4", "text-embedding-3-small"
NS = "apis"


class Front:
    """A caching front over the test server, and clients that go through it."""

    def __init__(
        self,
        kind: str,
        url: str,
        transport: Callable[[], CacheTransport] | None,
        transport2: Callable[[], Httpx2CacheTransport] | None = None,
    ):
        self.kind, self.url, self._transport = kind, url, transport
        self._transport2 = transport2

    def http(self) -> httpx.Client:
        return httpx.Client(transport=self._transport() if self._transport else None)

    def gpt(self, key: str = "sk-alpha", **options: Any) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.url}/v1",
            api_key=key,
            max_retries=0,
            http_client=self.http(),
            **options,
        )

    def claude(self, key: str = "ak-alpha", **options: Any) -> anthropic.Anthropic:
        if self._transport2 is not None:
            # anthropic 2.x takes only httpx2 clients: cachekit.transport.httpx2's flavour.
            options["http_client"] = httpx2.Client(transport=self._transport2())
        return anthropic.Anthropic(base_url=self.url, api_key=key, max_retries=0, **options)

    def post(self, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
        with self.http() as client:
            return client.post(f"{self.url}{path}", json=body, headers=headers)


#: ``make_front(cache, **options) -> Front`` over the test server.
MakeFront = Callable[..., Front]


@pytest.fixture
def llm(upstream: LocalOpenAIServer) -> Iterator[LocalOpenAIServer]:
    upstream.reset()
    yield upstream
    upstream.reset()


@pytest.fixture(params=["proxy", "asgi", "transport"])
def make_front(request: pytest.FixtureRequest, llm: LocalOpenAIServer) -> Iterator[MakeFront]:
    served: list[Served] = []

    def make(cache: LLMCache, **options: Any) -> Front:
        options.setdefault("namespace", NS)
        if request.param == "transport":
            return Front(
                "transport",
                llm.url,
                lambda: CacheTransport(cache=cache, **options),
                lambda: Httpx2CacheTransport(cache=cache, **options),
            )
        if request.param == "proxy":
            app: Any = create_proxy_app(cache, llm.base_url, **options)
        else:
            app = CacheMiddleware(llm.app, cache=cache, tenant=api_key_tenant, **options)
        served.append(Served(app))
        return Front(request.param, served[-1].url, None)

    yield make
    for one in served:
        one.stop()


@pytest.fixture
def cache(make_cache: MakeCache) -> LLMCache:
    return make_cache(budgets=GENEROUS)


@pytest.fixture
def front(make_front: MakeFront, cache: LLMCache) -> Front:
    return make_front(cache)


def respond(client: openai.OpenAI, **params: Any) -> tuple[Any, str]:
    params.setdefault("model", MODEL)
    raw = client.responses.with_raw_response.create(**params)
    return raw.parse(), raw.headers["x-cache"]


def respond_stream(client: openai.OpenAI, **params: Any) -> tuple[list[Any], str]:
    params.setdefault("model", MODEL)
    raw = client.responses.with_raw_response.create(stream=True, **params)
    return list(raw.parse()), raw.headers["x-cache"]


def message(client: anthropic.Anthropic, prompt: Any = "Hi Claude", **params: Any) -> Any:
    params = {"model": CLAUDE, "max_tokens": 64, **params}
    raw = client.messages.with_raw_response.create(
        messages=[{"role": "user", "content": prompt}], **params
    )
    return raw.parse(), raw.headers["x-cache"], raw.headers.get("request-id")


# -- OpenAI Responses ---------------------------------------------------------------------------


def test_responses_repeat_is_a_hit_with_the_same_response(
    front: Front, llm: LocalOpenAIServer
) -> None:
    client = front.gpt()
    first, label = respond(client, instructions="Be terse.", input="What is Redis?")
    assert label == "MISS" and first.output_text == "echo: What is Redis?"
    again, label = respond(client, instructions="Be terse.", input="what is  redis?")
    assert label == "HIT"
    assert (again.id, again.output_text, again.usage) == (first.id, first.output_text, first.usage)
    # A list of input items: the last user item's input_text parts are the prompt.
    items = [
        {"role": "developer", "content": "Answer in English."},
        {"role": "user", "content": [{"type": "input_text", "text": "Hello there"}]},
    ]
    listed = [respond(client, input=items) for _ in range(2)]
    assert [label for _, label in listed] == ["MISS", "HIT"]
    assert listed[0][0].model_dump() == listed[1][0].model_dump()
    assert llm.count("/v1/responses") == 2


def test_responses_stream_replays_the_same_events(front: Front, llm: LocalOpenAIServer) -> None:
    client = front.gpt()
    first, label = respond_stream(client, input="stream me")
    assert label == "MISS" and first[-1].type == "response.completed"
    again, label = respond_stream(client, input="stream me")
    assert label == "HIT"
    assert [e.model_dump() for e in again] == [e.model_dump() for e in first]
    assert again[-1].response.output_text == "echo: stream me"
    with client.responses.stream(model=MODEL, input="stream me") as stream:
        final = stream.get_final_response()  # the SDK's accumulator, fed from the cache
    assert final.id == first[-1].response.id and final.usage == first[-1].response.usage
    # A stream is never served for a request that is not one, nor the other way round.
    assert respond(client, input="stream me")[1] == "MISS"
    assert llm.count("/v1/responses") == 2


def test_responses_scope_is_exact(front: Front, llm: LocalOpenAIServer) -> None:
    client = front.gpt()
    turn = [{"role": "user", "content": "What is 2+2?"}]
    earlier = [
        {"role": "user", "content": "Count in base 3."},
        {"role": "assistant", "content": "OK."},
    ]
    variants: list[dict[str, Any]] = [
        {"input": "What is 2+2?"},
        {"input": "What is 2+2?", "instructions": "Be terse."},
        {"input": "What is 2+2?", "instructions": "Be verbose."},
        {"input": turn},
        {"input": earlier + turn},
        {"input": "What is 2+2?", "model": "gpt-4o"},
        {"input": "What is 2+2?", "temperature": 0},
        {"input": "What is 2+2?", "tools": [{"type": "function", "name": "add", "parameters": {}}]},
    ]
    assert [respond(client, **v)[1] for v in variants] == ["MISS"] * len(variants)
    assert [respond(client, **v)[1] for v in variants] == ["HIT"] * len(variants)
    assert llm.count("/v1/responses") == len(variants)


def test_server_side_state_bypasses(front: Front, llm: LocalOpenAIServer) -> None:
    client = front.gpt()
    first, _ = respond(client, input="Go on.")
    for previous in (first.id, first.id, "resp_other"):
        reply, label = respond(client, input="Go on.", previous_response_id=previous)
        assert label == "BYPASS" and reply.output_text == f"echo: Go on. (after {previous})"
    for state in (
        {"conversation": "conv_1"},
        {"prompt": {"id": "pmpt_1"}},  # a stored prompt of no fixed version
    ):
        assert respond(client, input="Go on.", **state)[1] == "BYPASS"
    reference = [{"type": "item_reference", "id": "msg_1"}, {"role": "user", "content": "Go on."}]
    assert respond(client, input=reference)[1] == "BYPASS"
    assert respond(client, input="Go on.")[1] == "HIT"
    assert llm.count("/v1/responses") == 7


def test_failed_or_incomplete_responses_are_not_stored(
    front: Front, llm: LocalOpenAIServer
) -> None:
    client = front.gpt()
    llm.fail_stream_next()
    events, label = respond_stream(client, input="fail once")
    assert label == "MISS" and events[-1].type == "response.failed"
    events, label = respond_stream(client, input="fail once")
    assert label == "MISS" and events[-1].type == "response.completed"
    assert respond_stream(client, input="fail once")[1] == "HIT"
    # Cut at max_output_tokens: incomplete, streamed or not, is never an answer to replay.
    for _ in range(2):
        events, label = respond_stream(client, input="one two three", max_output_tokens=1)
        assert label == "MISS" and events[-1].type == "response.incomplete"
        reply, label = respond(client, input="one two three", max_output_tokens=1)
        assert label == "MISS" and reply.status == "incomplete"
    # The connection dropped mid-stream: nothing stored either.
    llm.break_stream_after(3)
    with pytest.raises(openai.APIConnectionError):
        respond_stream(client, input="cut the line")
    assert respond_stream(client, input="cut the line")[1] == "MISS"
    assert llm.count("/v1/responses") == 8


# -- Anthropic Messages -------------------------------------------------------------------------


def test_messages_repeat_is_a_hit_with_the_same_message(
    front: Front, llm: LocalOpenAIServer
) -> None:
    client = front.claude()
    first, label, request_id = message(client, system="Be terse.")
    assert label == "MISS" and first.content[0].text == "echo: Hi Claude"
    again, label, again_id = message(client, "hi   claude", system="Be terse.")
    assert label == "HIT" and again_id == request_id
    assert again.model_dump() == first.model_dump()
    blocks = [{"type": "text", "text": "Hello"}, {"type": "text", "text": "again"}]
    assert [message(client, blocks)[1] for _ in range(2)] == ["MISS", "HIT"]
    assert llm.count("/v1/messages") == 2


def test_messages_stream_replays(front: Front, llm: LocalOpenAIServer) -> None:
    client = front.claude()
    finals, labels = [], []
    for _ in range(2):
        with client.messages.stream(
            model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": "stream it"}]
        ) as stream:
            text = "".join(stream.text_stream)
            finals.append(stream.get_final_message())
            labels.append(stream.response.headers["x-cache"])
        assert text == "echo: stream it"
    assert labels == ["MISS", "HIT"]
    assert finals[0].model_dump() == finals[1].model_dump()
    assert (finals[1].usage.input_tokens, finals[1].usage.output_tokens) == (2, 3)
    raw = client.messages.with_raw_response.create(
        model=CLAUDE,
        max_tokens=64,
        messages=[{"role": "user", "content": "stream it"}],
        stream=True,
    )
    events = list(raw.parse())
    assert raw.headers["x-cache"] == "HIT" and events[-1].type == "message_stop"
    assert llm.count("/v1/messages") == 1


def test_messages_scope_and_version_headers(front: Front, llm: LocalOpenAIServer) -> None:
    client = front.claude()
    beta = front.claude(default_headers={"anthropic-beta": "feature-a,feature-b"})
    other_beta = front.claude(default_headers={"anthropic-beta": "feature-a"})
    old = front.claude(default_headers={"anthropic-version": "2023-06-01"})
    asks: list[tuple[anthropic.Anthropic, dict[str, Any]]] = [
        (client, {}),
        (client, {"system": "Be terse."}),
        (client, {"system": "Be verbose."}),
        (client, {"system": [{"type": "text", "text": "Be terse."}]}),
        (client, {"stop_sequences": ["END"]}),
        (beta, {}),
        (other_beta, {}),
        (old, {}),
    ]
    assert [message(c, **p)[1] for c, p in asks] == ["MISS"] * len(asks)
    assert [message(c, **p)[1] for c, p in asks] == ["HIT"] * len(asks)
    # The same betas in another order are the same request.
    swapped = front.claude(default_headers={"anthropic-beta": "feature-b, feature-a"})
    assert message(swapped)[1] == "HIT"
    # An image in the last turn: no prompt text, so the whole turn is exact scope.
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    with_image = [{"type": "text", "text": "Hi Claude"}, image]
    assert [message(client, with_image)[1] for _ in range(2)] == ["MISS", "HIT"]
    assert llm.count("/v1/messages") == len(asks) + 1


def test_errored_message_stream_is_not_stored(front: Front, llm: LocalOpenAIServer) -> None:
    client = front.claude()
    ask = {"model": CLAUDE, "max_tokens": 64, "messages": [{"role": "user", "content": "x y"}]}
    llm.fail_stream_next()
    with (
        pytest.raises(anthropic.APIStatusError, match="overloaded_error"),
        client.messages.stream(**ask) as stream,  # type: ignore[arg-type]
    ):
        "".join(stream.text_stream)
    for expected in ("MISS", "HIT"):
        with client.messages.stream(**ask) as stream:  # type: ignore[arg-type]
            assert "".join(stream.text_stream) == "echo: x y"
            assert stream.response.headers["x-cache"] == expected


# -- chat completions: the stream must end with its [DONE] ---------------------------------------


def test_chat_stream_with_an_error_chunk_is_not_stored(
    front: Front, llm: LocalOpenAIServer
) -> None:
    """The upstream's 200 stream ends cleanly but with an error chunk and no [DONE]."""
    client = front.gpt()
    ask = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}], "stream": True}
    llm.fail_stream_next()
    with pytest.raises(openai.APIError, match="Injected stream failure"):
        list(client.chat.completions.create(**ask))
    raw = client.chat.completions.with_raw_response.create(**ask)
    assert raw.headers["x-cache"] == "MISS"
    assert "".join(c.choices[0].delta.content or "" for c in raw.parse()) == "echo: hello"
    assert client.chat.completions.with_raw_response.create(**ask).headers["x-cache"] == "HIT"


def test_chat_stream_without_done_is_not_stored(cache: LLMCache) -> None:
    calls: list[int] = []

    async def view(request: Request) -> Response:
        calls.append(1)

        async def events() -> Any:
            chunk = {"id": f"c{len(calls)}", "choices": [{"index": 0, "delta": {"content": "hi"}}]}
            yield f"data: {json.dumps(chunk)}\n\n"  # and then the model server stopped

        return StreamingResponse(events(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/v1/chat/completions", view, methods=["POST"])])
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with TestClient(CacheMiddleware(app, cache=cache, allow_global=True)) as http:
        labels = [http.post("/v1/chat/completions", json=body).headers["x-cache"] for _ in "ab"]
    assert labels == ["MISS", "MISS"] and len(calls) == 2


# -- embeddings: exact only ---------------------------------------------------------------------


def test_embeddings_are_exact_only(
    make_front: MakeFront, make_cache: MakeCache, llm: LocalOpenAIServer, redis_sync: redis.Redis
) -> None:
    semantic = make_cache(embedder=bow_embedder(), budgets=GENEROUS)
    client = make_front(semantic, threshold=0.5).gpt()

    def embed(text: str) -> tuple[list[float], str]:
        raw = client.embeddings.with_raw_response.create(model=EMBED, input=text, dimensions=8)
        return raw.parse().data[0].embedding, raw.headers["x-cache"]

    vector, label = embed("What is the capital of France?")
    assert label == "MISS"
    assert embed("What is the capital of France?") == (vector, "HIT")
    # Another text's vector is never an answer: not a paraphrase, not another casing.
    for text in ("Tell me the capital of France?", "what is the capital of france?"):
        other, label = embed(text)
        assert label == "MISS" and other != vector
    assert llm.count("/v1/embeddings") == 3
    semantic.drain_sync()  # the transport stores in the background: let every store land
    vectors = [*redis_sync.scan_iter("ck:*:vs:*"), *redis_sync.scan_iter("ck:*:fl:*")]
    assert vectors == [] and list(redis_sync.scan_iter("ckv:*")) == []
    # The same cache and threshold do serve a paraphrase of a chat prompt (the control).
    chat = []
    for prompt in ("What is the capital of France?", "Tell me the capital of France?"):
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}]
        )
        chat.append(raw.headers.get("x-cache-match"))
        semantic.drain_sync()
    assert chat == [None, "semantic"]


# -- tenants and savings ------------------------------------------------------------------------


ANTHROPIC_VERSION = {"anthropic-version": "2023-06-01"}
ANTHROPIC_VERSION_KEY = {**ANTHROPIC_VERSION, "x-api-key": "ak-alpha"}


def test_two_api_keys_never_share(front: Front, llm: LocalOpenAIServer) -> None:
    for key, label in (("sk-one", "MISS"), ("sk-one", "HIT"), ("sk-two", "MISS")):
        assert respond(front.gpt(key), input="tenant test")[1] == label
    body = {"model": CLAUDE, "max_tokens": 9, "messages": [{"role": "user", "content": "mix"}]}

    def ask(**credentials: str) -> str:
        return front.post("/v1/messages", body, {**ANTHROPIC_VERSION, **credentials}).headers[
            "x-cache"
        ]

    labels = [ask(**{"x-api-key": key}) for key in ("ak-one", "ak-one", "ak-two")]
    assert labels == ["MISS", "HIT", "MISS"]
    # One shared Authorization header does not join two x-api-keys (Anthropic reads the
    # x-api-key), nor does either combination share with the header alone.
    shared = {"authorization": "Bearer shared"}
    labels = [
        ask(**shared, **extra)
        for extra in ({"x-api-key": "ak-victim"}, {"x-api-key": "ak-attacker"}, {})
    ]
    assert labels == ["MISS", "MISS", "MISS"]
    assert llm.count("/v1/responses") == 2 and llm.count("/v1/messages") == 5


def message_usage(reply: httpx.Response) -> tuple[int, int]:
    """(input, output) tokens of a Messages reply, JSON or stream, as the API sent it."""
    if not reply.headers["content-type"].startswith("text/event-stream"):
        usage = reply.json()["usage"]
        return usage["input_tokens"], usage["output_tokens"]
    data = [json.loads(line[6:]) for line in reply.text.splitlines() if line.startswith("data: ")]
    start = next(d for d in data if d["type"] == "message_start")
    delta = [d for d in data if d["type"] == "message_delta"][-1]
    return start["message"]["usage"]["input_tokens"], delta["usage"]["output_tokens"]


def test_hits_count_the_tokens_the_responses_report(front: Front, cache: LLMCache) -> None:
    client = front.gpt()
    ask = {
        "model": CLAUDE,
        "max_tokens": 64,
        "system": "Be terse.",
        "messages": [{"role": "user", "content": "price me too"}],
    }
    claude_asks = [ask, {**ask, "stream": True}]  # sent raw: any front, the transport too
    totals = {MODEL: [0, 0], CLAUDE: [0, 0], EMBED: [0, 0]}
    for repeat in (False, True):
        reply = respond(client, input="price me", instructions="Be terse.")[0]
        streamed = respond_stream(client, input="price my stream")[0][-1].response
        vector = client.embeddings.create(model=EMBED, input="price a vector", dimensions=8)
        claude = [front.post("/v1/messages", one, ANTHROPIC_VERSION_KEY) for one in claude_asks]
        if repeat:  # what the hits saved: the usage their first answers reported
            assert {r.headers["x-cache"] for r in claude} == {"HIT"}
            for done in (reply, streamed):
                totals[MODEL][0] += done.usage.input_tokens
                totals[MODEL][1] += done.usage.output_tokens
            for answer in claude:
                tin, tout = message_usage(answer)
                totals[CLAUDE][0] += tin
                totals[CLAUDE][1] += tout
            totals[EMBED][0] += vector.usage.prompt_tokens
        cache.drain_sync()  # the transport's stores land in the background

    row = cache.run_sync(cache.stats, NS, timeout=10).totals
    assert (row.exact, row.miss) == (5, 5)
    assert row.tokens == totals and not row.estimated_tokens
    assert all(tin > 0 for tin, _ in totals.values())
    assert row.usd_saved > 0 and not row.unpriced_models
