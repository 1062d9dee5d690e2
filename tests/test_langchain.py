"""``cachekit.langchain.CachekitCache`` under a real LangChain chat model.

``langchain-openai``'s ``ChatOpenAI`` (the real openai SDK underneath) talks to the local
OpenAI-wire server (tests/llm_server.py), whose call count says when the model ran;
Redis is the session server. Nothing is mocked.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_openai")

import openai
from langchain_core.globals import get_llm_cache, set_llm_cache
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, Generation
from langchain_openai import ChatOpenAI

from cachekit import Budgets, CacheConfigError, CacheResult, LLMCache, use_tenant
from cachekit._langchain_key import model_of, split_prompt
from cachekit._schema import PAYLOAD
from cachekit.langchain import CachekitCache
from cachekit.result import current_tenant
from tests._helpers import GENEROUS, MakeCache, bow_embedder, entry_keys
from tests.llm_server import LocalOpenAIServer

if TYPE_CHECKING:
    from cachekit.embedders import SentenceTransformerEmbedder

ROOT = Path(__file__).resolve().parents[1]
CHAT = "/v1/chat/completions"
#: A follower that waited on a flight would wait this long: a hang the test timeout
#: catches, never a threshold on time.
PATIENT: Budgets = dataclasses.replace(GENEROUS, flight_wait=600.0, flight_lease=600.0)


@pytest.fixture
def srv(upstream: LocalOpenAIServer) -> LocalOpenAIServer:
    upstream.reset()
    return upstream


@pytest.fixture
def cache(make_cache: MakeCache) -> LLMCache:
    return make_cache(budgets=PATIENT)


@pytest.fixture
def semantic(make_cache: MakeCache) -> LLMCache:
    """Bag-of-words vectors: the same prompt text always has cosine 1.0."""
    return make_cache(embedder=bow_embedder(), budgets=PATIENT)


class Results(list[CacheResult]):
    @property
    def statuses(self) -> list[str]:
        return [r.status for r in self]


@pytest.fixture
def results() -> Results:
    return Results()


def chat(srv: LocalOpenAIServer, lc: CachekitCache | None, **options: Any) -> ChatOpenAI:
    params: dict[str, Any] = {"model": "gpt-4o-mini", "temperature": 0, **options}
    return ChatOpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=0, cache=lc, **params)


def global_cache(cache: LLMCache, results: Results, **options: Any) -> CachekitCache:
    return CachekitCache(cache, allow_global=True, on_result=results.append, **options)


# -- hits -----------------------------------------------------------------------------------


def test_a_repeat_is_served_from_the_cache_as_real_messages(
    cache: LLMCache, srv: LocalOpenAIServer, results: Results
) -> None:
    llm = chat(srv, global_cache(cache, results, namespace="lc-repeat"))
    first = llm.invoke([SystemMessage("Be terse."), HumanMessage("What is 2+2?")])
    again = llm.invoke([SystemMessage("Be terse."), HumanMessage("What is 2+2?")])
    assert srv.count(CHAT) == 1
    assert results.statuses == ["miss", "exact"] and results[0].stored
    assert isinstance(again, AIMessage)
    assert again.content == first.content == "echo: What is 2+2?"
    assert results[1].matched_prompt == "What is 2+2?"


def test_set_llm_cache_serves_every_model_and_lookup_returns_chat_generations(
    cache: LLMCache, srv: LocalOpenAIServer, results: Results
) -> None:
    lc = global_cache(cache, results, namespace="lc-global")
    before = get_llm_cache()
    set_llm_cache(lc)
    try:
        llm = ChatOpenAI(base_url=srv.base_url, api_key="sk-test", model="gpt-4o-mini")
        llm.invoke("Name a colour.")
        llm.invoke("Name a colour.")
        assert srv.count(CHAT) == 1 and results.statuses == ["miss", "exact"]
        got = lc.lookup(dumps([HumanMessage("Name a colour.")]), llm._get_llm_string())
    finally:
        set_llm_cache(before)
    assert isinstance(got, list) and len(got) == 1
    assert isinstance(got[0], ChatGeneration) and isinstance(got[0].message, AIMessage)
    assert got[0].message.content == "echo: Name a colour."
    assert got[0].message.usage_metadata is not None


def test_a_paraphrase_is_a_semantic_hit(
    make_cache: MakeCache,
    minilm: SentenceTransformerEmbedder,
    srv: LocalOpenAIServer,
    results: Results,
) -> None:
    cache = make_cache(embedder=minilm, budgets=PATIENT)
    cache.warmup_sync()
    llm = chat(srv, global_cache(cache, results, namespace="lc-sem", threshold=0.8))
    first = llm.invoke("What is the capital of France?")
    para = llm.invoke("Tell me the capital city of France.")
    assert srv.count(CHAT) == 1
    assert results.statuses == ["miss", "semantic"]
    assert para.content == first.content
    assert results[1].matched_prompt == "What is the capital of France?"
    llm.invoke("How do I bake sourdough bread?")
    assert results.statuses[-1] == "miss" and srv.count(CHAT) == 2


# -- what never shares --------------------------------------------------------------------


def test_another_model_or_temperature_never_shares(
    semantic: LLMCache, srv: LocalOpenAIServer, results: Results
) -> None:
    lc = global_cache(semantic, results, namespace="lc-llm", threshold=0.5)
    for llm in (chat(srv, lc), chat(srv, lc, model="gpt-4o"), chat(srv, lc, temperature=0.7)):
        llm.invoke("Summarise the plot of Hamlet.")
    assert results.statuses == ["miss", "miss", "miss"] and srv.count(CHAT) == 3
    chat(srv, lc, temperature=0.7).invoke("Summarise the plot of Hamlet.")
    assert results.statuses[-1] == "exact" and srv.count(CHAT) == 3


def test_other_earlier_turns_or_system_message_never_share(
    semantic: LLMCache, srv: LocalOpenAIServer, results: Results
) -> None:
    llm = chat(srv, global_cache(semantic, results, namespace="lc-turns", threshold=0.5))
    question = HumanMessage("And what about the second one?")
    conversations: list[list[BaseMessage]] = [
        [question],
        [SystemMessage("You are a pirate."), question],
        [SystemMessage("You are a lawyer."), question],
        [HumanMessage("List two fruits."), AIMessage("Apple, pear."), question],
        [HumanMessage("List two cars."), AIMessage("Apple, pear."), question],
        [HumanMessage("List two cars."), AIMessage("Fiat, Audi."), question],
    ]
    for messages in conversations:
        llm.invoke(messages)
    assert results.statuses == ["miss"] * 6 and srv.count(CHAT) == 6
    llm.invoke(conversations[4])
    assert results.statuses[-1] == "exact" and srv.count(CHAT) == 6


def test_two_tenants_never_share(
    semantic: LLMCache, srv: LocalOpenAIServer, results: Results
) -> None:
    lc = CachekitCache(
        semantic, namespace="lc-ten", threshold=0.5, tenant=current_tenant, on_result=results.append
    )
    llm = chat(srv, lc)
    with use_tenant("acme"):
        llm.invoke("What is our refund policy?")
    with use_tenant("globex"):
        llm.invoke("What is our refund policy?")
    with use_tenant("acme"):
        llm.invoke("What is our refund policy?")
    assert results.statuses == ["miss", "miss", "exact"]
    assert [r.tenant for r in results] == ["acme", "globex", "acme"]
    assert srv.count(CHAT) == 2


def test_a_tenant_callable_comes_first_and_no_tenant_bypasses(
    cache: LLMCache, srv: LocalOpenAIServer, results: Results
) -> None:
    org: contextvars.ContextVar[str | None] = contextvars.ContextVar("org", default=None)
    lc = CachekitCache(cache, namespace="lc-fn", tenant=org.get, on_result=results.append)
    llm = chat(srv, lc)
    org.set("initech")
    with use_tenant("ignored"):
        llm.invoke("Hello there")
    llm.invoke("Hello there")
    assert [(r.status, r.tenant) for r in results] == [("miss", "initech"), ("exact", "initech")]
    org.set(None)
    llm.invoke("Hello there")
    llm.invoke("Hello there")
    assert results.statuses[2:] == ["bypass", "bypass"]
    assert results[-1].reason == "no tenant" and srv.count(CHAT) == 3
    assert lc.pending == 0


def test_construction_refuses_a_cache_with_no_tenant_rule(cache: LLMCache) -> None:
    with pytest.raises(CacheConfigError, match="allow_global=True"):
        CachekitCache(cache)
    with pytest.raises(CacheConfigError, match="tenant"):
        CachekitCache(cache, tenant="acme")  # type: ignore[arg-type]
    with pytest.raises(CacheConfigError, match="threshold"):
        CachekitCache(cache, allow_global=True, threshold=2.0)
    with pytest.raises(CacheConfigError, match="max_pending"):
        CachekitCache(cache, allow_global=True, max_pending=0)
    with pytest.raises(CacheConfigError, match="namespace"):
        CachekitCache(cache, allow_global=True, namespace="no spaces")


# -- async, clear ---------------------------------------------------------------------------


async def test_ainvoke_is_cached_on_the_async_path(
    cache: LLMCache, srv: LocalOpenAIServer, results: Results
) -> None:
    lc = global_cache(cache, results, namespace="lc-async")
    llm = chat(srv, lc)
    first = await llm.ainvoke("What is 3+3?")
    again = await llm.ainvoke("What is 3+3?")
    assert results.statuses == ["miss", "exact"] and srv.count(CHAT) == 1
    assert isinstance(again, AIMessage) and again.content == first.content
    await lc.aclear()
    await llm.ainvoke("What is 3+3?")
    assert results.statuses[-1] == "miss" and srv.count(CHAT) == 2


def test_clear_invalidates_the_namespace_or_one_tenant(
    cache: LLMCache, srv: LocalOpenAIServer, results: Results
) -> None:
    lc = CachekitCache(cache, namespace="lc-clear", tenant=current_tenant, on_result=results.append)
    llm = chat(srv, lc)
    for tenant in ("a", "b", "a", "b"):
        with use_tenant(tenant):
            llm.invoke("Tell me a joke.")
    assert results.statuses == ["miss", "miss", "exact", "exact"]
    lc.clear(tenant="a")
    for tenant in ("a", "b"):
        with use_tenant(tenant):
            llm.invoke("Tell me a joke.")
    assert results.statuses[4:] == ["miss", "exact"]
    lc.clear()
    for tenant in ("a", "b"):
        with use_tenant(tenant):
            llm.invoke("Tell me a joke.")
    assert results.statuses[6:] == ["miss", "miss"] and srv.count(CHAT) == 5
    with pytest.raises(CacheConfigError, match="tenant="):
        lc.clear(everything=True)


# -- failure -------------------------------------------------------------------------------


def test_a_model_that_raises_leaves_no_lock_and_the_next_call_runs_at_once(
    cache: LLMCache, srv: LocalOpenAIServer, redis_sync: redis.Redis, results: Results
) -> None:
    lc = global_cache(cache, results, namespace="lc-raise")
    llm = chat(srv, lc)
    srv.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        llm.invoke("Will this fail?")
    # The lookup's miss holds nothing while the model runs, so nothing is left behind.
    assert list(redis_sync.scan_iter(match="ck:*:lk:*")) == []
    assert len(cache.flights) == 0
    # From another thread (another request): with a flight left behind it would wait
    # PATIENT.flight_wait, far past the test's timeout.
    answers: list[Any] = []
    worker = threading.Thread(target=lambda: answers.append(llm.invoke("Will this fail?")))
    worker.start()
    worker.join()
    assert [a.content for a in answers] == ["echo: Will this fail?"]
    assert srv.count(CHAT) == 2 and results.statuses == ["miss"]
    assert lc.pending == 1  # the failed call's miss: it holds nothing, only its slot
    # The same caller asking again forgets its stale miss, on a hit as on a miss.
    llm.invoke("Will this fail?")
    assert results.statuses[-1] == "exact" and lc.pending == 0
    srv.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        llm.invoke("Another one")
    assert lc.pending == 1
    llm.invoke("Another one")
    assert lc.pending == 0 and results.statuses == ["miss", "exact", "miss"]
    assert srv.count(CHAT) == 4


def test_junk_in_redis_is_a_miss_and_never_revives_another_class(
    cache: LLMCache, srv: LocalOpenAIServer, redis_sync: redis.Redis, results: Results
) -> None:
    llm = chat(srv, global_cache(cache, results, namespace="lc-junk"))
    llm.invoke("What is the speed of light?")
    (key,) = entry_keys(redis_sync, "lc-junk")
    redis_sync.hset(key, PAYLOAD, b"\x00 not json {")
    assert llm.invoke("What is the speed of light?").content == "echo: What is the speed of light?"
    assert results.statuses == ["miss", "miss"] and srv.count(CHAT) == 2
    # A payload naming a class outside generations and AI messages (a model pointed at
    # another host) is corrupt too: it is dropped, never built.
    (key,) = entry_keys(redis_sync, "lc-junk")
    hostile = {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "chat_models", "openai", "ChatOpenAI"],
        "kwargs": {"openai_api_base": "http://192.0.2.1/v1", "model_name": "x"},
    }
    redis_sync.hset(key, PAYLOAD, json.dumps([hostile]))
    assert llm.invoke("What is the speed of light?").content == "echo: What is the speed of light?"
    assert results.statuses == ["miss", "miss", "miss"] and srv.count(CHAT) == 3
    llm.invoke("What is the speed of light?")
    assert results.statuses[-1] == "exact"


# -- the protocol, called directly --------------------------------------------------------


def test_an_update_without_a_lookup_seeds_the_cache_and_plain_prompts_work(
    cache: LLMCache, results: Results
) -> None:
    lc = global_cache(cache, results, namespace="lc-seed")
    llm_string = "[('model_name', 'gpt-3.5-turbo-instruct'), ('temperature', 0.0)]"
    lc.update("Translate 'cat' to French.", llm_string, [Generation(text="chat")])
    got = lc.lookup("Translate 'cat' to French.", llm_string)
    assert got is not None and [type(g) for g in got] == [Generation]
    assert got[0].text == "chat" and results.statuses == ["miss", "exact"]
    assert lc.lookup("Translate 'cat' to French.", llm_string + " ") is None
    assert lc.lookup("[1, 2]", llm_string) is None  # JSON, but not messages: plain text


def test_the_last_human_message_is_the_prompt_and_the_model_is_read_from_llm_string() -> None:
    turns = [
        SystemMessage("Be brief."),
        HumanMessage("Hi"),
        AIMessage("Hello"),
        HumanMessage("Bye"),
    ]
    text, scope = split_prompt(dumps(turns))
    assert text == "Bye" and scope is not None and len(scope) == 4
    assert "content" not in scope[3]["kwargs"] and scope[1]["kwargs"]["content"] == "Hi"
    image = HumanMessage(
        content=[
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ]
    )
    assert split_prompt(dumps([image]))[0] is None  # not only text: exact matches only
    assert split_prompt("Plain text prompt") == ("Plain text prompt", None)
    llm = ChatOpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-test", model="gpt-4o")
    assert model_of(llm._get_llm_string()) == "gpt-4o"
    assert model_of("[('model_name', 'gpt-3.5-turbo-instruct'), ('n', 1)]") == (
        "gpt-3.5-turbo-instruct"
    )
    assert model_of("no model here") is None


def test_a_multimodal_prompt_is_cached_exactly_only(semantic: LLMCache, results: Results) -> None:
    lc = global_cache(semantic, results, namespace="lc-image", threshold=0.5)

    def prompt(url: str) -> str:
        parts = [
            {"type": "text", "text": "Describe it"},
            {"type": "image_url", "image_url": {"url": url}},
        ]
        return dumps([HumanMessage(content=parts)])  # type: ignore[arg-type]

    answer = [ChatGeneration(message=AIMessage("A cat."))]
    assert lc.lookup(prompt("data:a"), "llm") is None
    lc.update(prompt("data:a"), "llm", answer)
    got = lc.lookup(prompt("data:a"), "llm")
    assert got is not None and got[0].message.content == "A cat."  # type: ignore[attr-defined]
    assert lc.lookup(prompt("data:b"), "llm") is None  # same text, another image
    assert results.statuses == ["miss", "exact"] and lc.pending == 1  # reported at update


def test_misses_past_max_pending_are_forgotten_and_their_update_still_stores(
    cache: LLMCache, results: Results
) -> None:
    lc = global_cache(cache, results, namespace="lc-bound", max_pending=2)
    for prompt in ("one", "two", "three"):
        assert lc.lookup(prompt, "llm") is None
    assert lc.pending == 2
    lc.update("one", "llm", [Generation(text="1")])  # its miss was the oldest: forgotten
    got = lc.lookup("one", "llm")
    assert got is not None and got[0].text == "1" and lc.pending == 2


# -- packaging ------------------------------------------------------------------------------


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_import_cachekit_does_not_import_langchain() -> None:
    proc = _python("import sys, cachekit; print('langchain_core' in sys.modules)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_without_langchain_core_the_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['langchain_core'] = None\n"
        "from cachekit import CacheConfigError\n"
        "try:\n    import cachekit.langchain\n"
        "except CacheConfigError as exc:\n    print(exc)\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'cachekit[langchain]'" in proc.stdout
