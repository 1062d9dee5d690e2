"""The core: decorator on every kind of callable, keys, tenants, TTL, invalidation, codec."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import threading
import time
from typing import Any

import pytest
import redis

from cachekit import (
    Budgets,
    CacheConfigError,
    CacheKeyError,
    LLMCache,
    cache_control,
    cached_llm,
    last_result,
    register_type,
    use_tenant,
)
from cachekit._codec import decode, encode
from cachekit._layout import encode_tenant
from tests._helpers import body_key, put_payload

# -- decoration targets ----------------------------------------------------------------


def test_sync_function_miss_then_exact(cache: LLMCache) -> None:
    calls: list[str] = []

    @cached_llm(namespace="t", cache=cache)
    def ask(prompt: str, model: str = "m1") -> str:
        calls.append(prompt)
        return f"answer:{prompt}"

    assert ask("Hello there") == "answer:Hello there"
    r = last_result()
    assert r is not None and r.status == "miss" and r.stored
    assert ask("Hello there") == "answer:Hello there"
    r = last_result()
    assert r is not None and r.status == "exact" and r.layer == "exact"
    assert r.matched_prompt == "Hello there"
    assert calls == ["Hello there"]


async def test_async_function_and_normalisation(cache: LLMCache) -> None:
    calls: list[str] = []

    @cached_llm(namespace="t", cache=cache)
    async def ask(prompt: str) -> str:
        calls.append(prompt)
        return "A"

    await ask("What is  the capital\nof France?")
    await ask("what is the capital of france?")
    assert last_result().status == "exact"  # type: ignore[union-attr]
    assert len(calls) == 1


async def test_normalize_none_keeps_prompts_byte_exact(cache: LLMCache) -> None:
    @cached_llm(namespace="t", cache=cache, normalize=None)
    async def ask(prompt: str) -> str:
        return prompt

    await ask("Hello")
    await ask("hello")
    assert last_result().status == "miss"  # type: ignore[union-attr]


def test_methods_classmethods_staticmethods_share_no_self(cache: LLMCache) -> None:
    calls: list[str] = []

    class Bot:
        def __init__(self, name: str) -> None:
            self.name = name

        @cached_llm(namespace="t", cache=cache)
        def ask(self, prompt: str) -> str:
            calls.append("m")
            return "method"

        @classmethod
        @cached_llm(namespace="t", cache=cache)
        def cask(cls, prompt: str) -> str:
            calls.append("c")
            return "class"

        @staticmethod
        @cached_llm(namespace="t", cache=cache)
        def sask(prompt: str) -> str:
            calls.append("s")
            return "static"

    a, b = Bot("a"), Bot("b")
    assert a.ask("q") == "method" and b.ask("q") == "method"  # self is not in the key
    assert last_result().status == "exact"  # type: ignore[union-attr]
    assert Bot.cask("q") == "class" and a.cask("q") == "class"
    assert last_result().status == "exact"  # type: ignore[union-attr]
    assert Bot.sask("q") == "static" and a.sask("q") == "static"
    assert last_result().status == "exact"  # type: ignore[union-attr]
    assert calls == ["m", "c", "s"]


async def test_async_method(cache: LLMCache) -> None:
    class Bot:
        @cached_llm(namespace="t", cache=cache)
        async def ask(self, prompt: str) -> dict[str, Any]:
            return {"answer": prompt, "n": [1, 2]}

    assert await Bot().ask("x") == {"answer": "x", "n": [1, 2]}
    assert await Bot().ask("x") == {"answer": "x", "n": [1, 2]}
    assert last_result().status == "exact"  # type: ignore[union-attr]


async def test_positional_and_keyword_calls_share_a_key(cache: LLMCache) -> None:
    @cached_llm(namespace="t", cache=cache)
    async def ask(prompt: str, system: str = "S", temperature: float = 0.0) -> str:
        return "x"

    await ask("p", "S", 0.0)
    k1 = last_result().key  # type: ignore[union-attr]
    await ask(prompt="p", temperature=0.0)
    r = last_result()
    assert r is not None and r.status == "exact" and r.key == k1


async def test_system_prompt_model_and_params_are_in_the_key(cache: LLMCache) -> None:
    calls = 0

    @cached_llm(namespace="t", cache=cache)
    async def ask(prompt: str, system: str = "S", model: str = "m1", temperature: float = 0) -> str:
        nonlocal calls
        calls += 1
        return "x"

    await ask("p")
    await ask("p", system="Other")
    await ask("p", model="m2")
    await ask("p", temperature=0.7)
    assert calls == 4
    await ask("p", system="Other")
    assert calls == 4


async def test_ignore_drops_a_parameter_from_the_key(cache: LLMCache) -> None:
    @cached_llm(namespace="t", cache=cache, ignore=["request_id", "conn"])
    async def ask(prompt: str, request_id: str, conn: Any = None) -> str:
        return "x"

    sock = socket.socket()
    try:
        await ask("p", "r1", conn=sock)
        await ask("p", "r2", conn=sock)
    finally:
        sock.close()
    assert last_result().status == "exact"  # type: ignore[union-attr]


async def test_uncanonicalisable_argument_raises_before_the_call(cache: LLMCache) -> None:
    called = False

    @cached_llm(namespace="t", cache=cache)
    async def ask(prompt: str, callback: Any = None) -> str:
        nonlocal called
        called = True
        return "x"

    with pytest.raises(CacheKeyError, match="callback") as info:
        await ask("p", callback=lambda: 1)
    assert "function" in str(info.value) and info.value.parameter == "callback"
    sock = socket.socket()
    try:
        with pytest.raises(CacheKeyError, match="socket"):
            await ask("p", callback=sock)
    finally:
        sock.close()
    assert not called


# -- messages, OpenAI / Anthropic shapes --------------------------------------------------


async def test_messages_prompt_and_scope(cache: LLMCache) -> None:
    calls = 0

    @cached_llm(namespace="chat", cache=cache)
    async def create(*, messages: list[dict[str, Any]], model: str) -> str:
        nonlocal calls
        calls += 1
        return "ok"

    base = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
    await create(messages=base, model="m")
    await create(messages=[dict(m) for m in base], model="m")
    assert calls == 1 and last_result().matched_prompt == "Hi there"  # type: ignore[union-attr]
    other_system = [{"role": "system", "content": "Be long."}, base[1]]
    await create(messages=other_system, model="m")
    earlier = [
        base[0],
        {"role": "user", "content": "Earlier"},
        {"role": "assistant", "content": "Sure"},
        base[1],
    ]
    await create(messages=earlier, model="m")
    assert calls == 3


async def test_tenant_isolation_with_hostile_ids(cache: LLMCache) -> None:
    calls: list[str] = []

    @cached_llm(namespace="t", cache=cache, tenant=lambda call: call.arguments["org"])
    async def ask(prompt: str, org: str) -> str:
        calls.append(org)
        return f"secret of {org}"

    hostile = [
        "acme",
        "acme}",
        "acme:",
        "*",
        "acme\n",
        "{acme}",
        "x" * 10_000,
        "x" * 10_001,
        "ünïcødé🙂",
        "",
        "b",
        "_",
    ]
    for org in hostile:
        assert await ask("the prompt", org) == f"secret of {org}"
    for org in hostile:
        assert await ask("the prompt", org) == f"secret of {org}"
        # "" is no tenant (a bypass), never one tenant shared by everyone without one.
        expected = "exact" if org else "bypass"
        assert last_result().status == expected  # type: ignore[union-attr]
    assert calls == [*hostile, ""]
    tokens = {encode_tenant(t) for t in hostile}
    assert len(tokens) == len(hostile)
    for token in tokens:
        assert not set(token) & set("{}:*?[] \n\r")


async def test_tenant_callback_none_bypasses_unless_context(cache: LLMCache) -> None:
    @cached_llm(namespace="t", cache=cache, tenant=lambda call: None)
    async def ask(prompt: str) -> str:
        return "x"

    await ask("p")
    r = last_result()
    assert r is not None and r.status == "bypass" and r.reason == "no tenant"
    with use_tenant("acme"):
        await ask("p")
        await ask("p")
        assert last_result().status == "exact"  # type: ignore[union-attr]
    with use_tenant("other"):
        await ask("p")
        assert last_result().status == "miss"  # type: ignore[union-attr]


# -- TTL, invalidate, clear ----------------------------------------------------------------


async def test_ttl_expiry(cache: LLMCache, redis_sync: redis.Redis) -> None:
    @cached_llm(namespace="t", cache=cache, ttl=1)
    async def ask(prompt: str) -> str:
        return "x"

    await ask("p")
    await cache.drain()  # stores run in the background
    keys = redis_sync.keys("ck:*:e:*")
    assert keys and 0 < redis_sync.ttl(keys[0]) <= 1
    assert 0 < redis_sync.ttl(body_key(keys[0])) <= 1  # the body goes with its hash
    await asyncio.sleep(2.1)
    await ask("p")
    assert last_result().status == "miss"  # type: ignore[union-attr]


async def test_pointer_to_missing_entry_is_a_miss(cache: LLMCache, redis_sync: redis.Redis) -> None:
    @cached_llm(namespace="t", cache=cache)
    async def ask(prompt: str) -> str:
        return "x"

    await ask("p")
    await cache.drain()
    for key in redis_sync.keys("ck:*:e:*"):
        redis_sync.delete(key)
    await ask("p")
    assert last_result().status == "miss"  # type: ignore[union-attr]
    await ask("p")
    assert last_result().status == "exact"  # type: ignore[union-attr]


async def test_invalidate_one_tenant_and_all_tenants(redis_url: str) -> None:
    a = LLMCache.from_url(redis_url)
    b = LLMCache.from_url(redis_url)  # a second "worker"

    def make(cache: LLMCache) -> Any:
        @cached_llm(namespace="inv", cache=cache, tenant=lambda c: c.arguments["org"])
        async def ask(prompt: str, org: str) -> str:
            return "x"

        return ask

    ask_a, ask_b = make(a), make(b)
    for org in ("acme", "globex"):
        await ask_a("p", org)
        await ask_b("p", org)
        assert last_result().status == "exact"  # type: ignore[union-attr]
    await a.invalidate("inv", tenant="acme")
    await ask_b("p", "acme")
    assert last_result().status == "miss"  # type: ignore[union-attr]
    await ask_b("p", "globex")
    assert last_result().status == "exact"  # type: ignore[union-attr]
    await b.drain()  # b's last miss is stored in the background
    await a.invalidate("inv")  # every tenant, seen by worker b at once
    for org in ("acme", "globex"):
        await ask_b("p", org)
        assert last_result().status == "miss"  # type: ignore[union-attr]
        await ask_a("p", org)
        assert last_result().status == "exact"  # type: ignore[union-attr]
    await a.aclose()
    await b.aclose()


async def test_clear_deletes_only_that_namespace(cache: LLMCache, redis_sync: redis.Redis) -> None:
    @cached_llm(namespace="one", cache=cache, tenant=lambda c: c.arguments["org"])
    async def one(prompt: str, org: str) -> str:
        return "x"

    @cached_llm(namespace="two", cache=cache)
    async def two(prompt: str) -> str:
        return "y"

    await one("p", "acme")
    await one("p", "globex")
    await two("p")
    await cache.drain()
    assert await cache.clear("one", tenant="acme") >= 2
    await one("p", "globex")
    assert last_result().status == "exact"  # type: ignore[union-attr]
    await one("p", "acme")
    assert last_result().status == "miss"  # type: ignore[union-attr]
    await cache.drain()
    assert await cache.clear("one") >= 4
    assert not redis_sync.keys("ck:{one:*")
    await two("p")
    assert last_result().status == "exact"  # type: ignore[union-attr]


# -- codec ----------------------------------------------------------------------------------

CHAT_COMPLETION_JSON = {
    "id": "chatcmpl-abc123",
    "object": "chat.completion",
    "created": 1732700000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris.", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 14, "completion_tokens": 2, "total_tokens": 16},
    "system_fingerprint": "fp_0ba0d124f1",
}


def test_codec_round_trips_chat_completion_and_anthropic_message() -> None:
    from anthropic.types import Message
    from openai.types.chat import ChatCompletion

    cc = ChatCompletion.model_validate(CHAT_COMPLETION_JSON)
    back = decode(encode(cc))
    assert isinstance(back, ChatCompletion) and back == cc
    msg = Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-3-5-haiku-latest",
            "content": [{"type": "text", "text": "Paris."}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 3},
        }
    )
    back_msg = decode(encode(msg))
    assert isinstance(back_msg, Message) and back_msg == msg


@register_type
@dataclasses.dataclass
class Answer:
    text: str
    score: float
    tags: list[str]


def test_codec_dataclass_json_and_str() -> None:
    a = Answer("x", 0.5, ["a"])
    assert decode(encode(a)) == a
    assert decode(encode({"a": [1, 2.5, None, True]})) == {"a": [1, 2.5, None, True]}
    assert decode(encode("plain")) == "plain"


def test_codec_never_imports_names_from_cached_data() -> None:
    from cachekit import CodecError

    evil = json.dumps({"t": "pydantic", "c": "os:system", "v": {}})
    with pytest.raises(CodecError, match="not registered"):
        decode(evil)
    with pytest.raises(CodecError):
        decode(b"\x80garbage")
    with pytest.raises(CodecError):
        decode(json.dumps({"t": "pickle", "v": "..."}))


async def test_uncacheable_value_returns_and_warns_once(
    cache: LLMCache, caplog: pytest.LogCaptureFixture
) -> None:
    class Opaque:
        pass

    @cached_llm(namespace="t", cache=cache)
    async def ask(prompt: str) -> Any:
        return Opaque()

    with caplog.at_level("WARNING", logger="cachekit"):
        v1 = await ask("p")
        v2 = await ask("p")
    assert isinstance(v1, Opaque) and isinstance(v2, Opaque)
    assert last_result().status == "miss" and not last_result().stored  # type: ignore[union-attr]
    assert sum("Opaque" in r.message for r in caplog.records) == 1


async def test_corrupt_entry_is_a_miss_and_deleted(
    cache: LLMCache, redis_sync: redis.Redis
) -> None:
    @cached_llm(namespace="t", cache=cache)
    async def ask(prompt: str) -> str:
        return "good"

    await ask("p")
    await cache.drain()
    (key,) = redis_sync.keys("ck:*:e:*")
    put_payload(redis_sync, key, '{"t":"pydantic","c":"builtins:eval","v":"1"}')
    assert await ask("p") == "good"
    assert last_result().status == "miss"  # type: ignore[union-attr]
    assert await ask("p") == "good"
    assert last_result().status == "exact"  # type: ignore[union-attr]


# -- exceptions, bypass ------------------------------------------------------------------


async def test_exceptions_propagate_and_are_not_stored(cache: LLMCache) -> None:
    calls = 0

    class RateLimited(Exception):
        pass

    @cached_llm(namespace="t", cache=cache)
    async def ask(prompt: str) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RateLimited("429")
        return "ok"

    with pytest.raises(RateLimited, match="429"):
        await ask("p")
    assert await ask("p") == "ok"
    assert calls == 2


async def test_cache_control_skip_lookup_skip_store_max_age(cache: LLMCache) -> None:
    calls = 0

    @cached_llm(namespace="t", cache=cache)
    async def ask(prompt: str) -> int:
        nonlocal calls
        calls += 1
        return calls

    assert await ask("p") == 1
    with cache_control(skip_lookup=True):
        assert await ask("p") == 2  # fresh answer, stored
    assert await ask("p") == 2
    with cache_control(skip_store=True):
        assert await ask("q") == 3
    assert await ask("q") == 4
    with cache_control(skip_lookup=True, skip_store=True):
        assert await ask("q") == 5
        assert last_result().status == "bypass"  # type: ignore[union-attr]
    await asyncio.sleep(1.1)
    with cache_control(max_age=0.5):
        assert await ask("q") == 6
    with cache_control(max_age=60):
        assert await ask("q") == 6


def test_on_result_callback(cache: LLMCache) -> None:
    seen: list[str] = []

    @cached_llm(namespace="t", cache=cache, on_result=lambda r: seen.append(r.status))
    def ask(prompt: str) -> str:
        return "x"

    ask("p")
    ask("p")
    assert seen == ["miss", "exact"]


# -- options validated at decoration time ------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ttl": -1}, "ttl"),
        ({"ttl": 0}, "ttl"),
        ({"threshold": 1.5}, r"\[-1, 1\]"),
        ({"threshold": -2}, r"\[-1, 1\]"),
        ({"namespace": "has space"}, "namespace"),
        ({"namespace": "a{b}"}, "namespace"),
        ({"namespace": ""}, "namespace"),
        ({"tenant": "acme"}, "tenant"),
        ({"prompt": "nope"}, "nope"),
    ],
)
def test_bad_options_fail_at_decoration(
    kwargs: dict[str, Any], match: str, cache: LLMCache
) -> None:
    with pytest.raises(CacheConfigError, match=match):

        @cached_llm(cache=cache, **kwargs)
        def ask(prompt: str) -> str:
            return "x"


# -- one pool, many threads ----------------------------------------------------------------


def test_pool_shared_by_sync_callers_from_threads_and_async(redis_url: str) -> None:
    # This is about sharing one pool, not about time budgets: with the default 0.5 s
    # ones, a loaded CI box once made five lookups in a row miss their budget, the
    # breaker opened and all 180 calls went to the function (fail-open, as designed).
    roomy = Budgets(connect=30, command=30, lookup=30, search=30, store=30, pool_wait=30)
    cache = LLMCache.from_url(redis_url, max_connections=4, budgets=roomy)
    calls = 0
    lock = threading.Lock()

    @cached_llm(namespace="t", cache=cache)
    def sync_ask(prompt: str) -> str:
        nonlocal calls
        with lock:
            calls += 1
        return prompt[::-1]

    @cached_llm(namespace="t", cache=cache)
    async def async_ask(prompt: str) -> str:
        return prompt[::-1]

    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(30):
                assert sync_ask(f"q{i % 10}") == f"q{i % 10}"[::-1]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    pool = cache.redis.connection_pool
    assert pool is not None and pool.max_connections == 4

    async def from_async() -> None:
        # a different loop than the cache's home (background) loop: hops, same pool
        for i in range(10):
            assert await async_ask(f"q{i}") == f"q{i}"[::-1]
        assert cache.redis.connection_pool is pool

    asyncio.run(from_async())
    # Only the first pass can miss (each thread may race the others on each of the 10
    # prompts); the second and third passes are all hits.
    assert calls <= 6 * 10
    assert sync_ask("q3") == "3q" and last_result().status == "exact"  # type: ignore[union-attr]
    cache.close()


async def test_sync_call_on_the_home_loop_bypasses_instead_of_deadlocking(cache: LLMCache) -> None:
    @cached_llm(namespace="t", cache=cache)
    async def warm(prompt: str) -> str:
        return "x"

    @cached_llm(namespace="t", cache=cache)
    def blocking(prompt: str) -> str:
        return "y"

    await warm("p")  # this loop is now the cache's home
    started = time.monotonic()
    assert blocking("p") == "y"
    assert time.monotonic() - started < 5
    r = last_result()
    assert r is not None and r.status == "bypass"


async def test_real_openai_client_method_returns_chat_completion(redis_url: str) -> None:
    from openai import AsyncOpenAI
    from openai.types.chat import ChatCompletion

    from tests.llm_server import LocalOpenAIServer

    with LocalOpenAIServer() as srv:
        client = AsyncOpenAI(base_url=srv.base_url, api_key="sk-test")
        async with LLMCache.from_url(redis_url) as cache:
            create = cached_llm(namespace="n", cache=cache)(client.chat.completions.create)
            msgs = [{"role": "user", "content": "What is the capital of France?"}]
            first = await create(model="gpt-4o-mini", messages=msgs)
            second = await create(model="gpt-4o-mini", messages=msgs)
            assert isinstance(second, ChatCompletion) and second == first
            assert last_result().status == "exact"  # type: ignore[union-attr]
            assert srv.count("/v1/chat/completions") == 1
        await client.close()
