"""HTTP standards and per-request control, on real Redis: RFC 9211 ``Cache-Status``,
``X-Cache-Key`` (and ``cachekit explain --key``), ``Cache-Control: only-if-cached``,
LiteLLM's ``cache`` body field, and per-call TTLs (``X-Cache-TTL``, the body's ``ttl``,
``cache_control(ttl=)``), through the ASGI middleware (Starlette TestClient / httpx), the
WSGI middleware (Flask's default test client) and the decorator."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import redis
from click.testing import CliRunner
from flask import Flask, jsonify, request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from cachekit import CacheConfigError, CacheResult, LLMCache, cache_control, cached_llm
from cachekit._layout import Space
from cachekit._server import free_port
from cachekit.cli import cli
from cachekit.middleware import CacheMiddleware, WSGICacheMiddleware
from tests._helpers import GENEROUS, MakeCache, bow_embedder, entry_keys

CHAT = "/v1/chat/completions"
NS = "std"


def body(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}], **extra}


def members(value: str) -> list[dict[str, str | bool]]:
    """A Cache-Status field value as its List members: {"name": ..., param: value}."""
    out: list[dict[str, str | bool]] = []
    for raw in value.split(","):
        name, *params = [part.strip() for part in raw.split(";")]
        member: dict[str, str | bool] = {"name": name}
        for param in params:
            key, sep, val = param.partition("=")
            member[key] = val.strip('"') if sep else True
        out.append(member)
    return out


def ours(headers: httpx.Headers) -> dict[str, str | bool]:
    """cachekit's member: the last one (each cache appends its own)."""
    found = members(", ".join(headers.get_list("cache-status")))
    assert found[-1]["name"] == "cachekit", found
    return found[-1]


class Received:
    """What the app behind the middleware was sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.lengths: list[str | None] = []


def asgi_app(seen: Received, extra_headers: dict[str, str] | None = None) -> Starlette:
    async def chat(request: Request) -> Response:
        raw = await request.body()
        if request.headers.get("content-type") != "application/json":
            return JSONResponse({"error": "not JSON"}, status_code=400)
        seen.bodies.append(json.loads(raw))
        seen.lengths.append(request.headers.get("content-length"))
        assert int(request.headers["content-length"]) == len(raw)
        prompt = seen.bodies[-1]["messages"][-1]["content"]
        reply = {
            "id": f"c{len(seen.bodies)}",
            "object": "chat.completion",
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": prompt}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
        }
        return JSONResponse(reply, headers=extra_headers)

    return Starlette(routes=[Route(CHAT, chat, methods=["POST"])])


@pytest.fixture
def cache(make_cache: MakeCache) -> LLMCache:
    # The middleware waits for its stores: the next request reads what the last stored.
    return make_cache(budgets=GENEROUS)


@pytest.fixture
def seen() -> Received:
    return Received()


@pytest.fixture
def results() -> list[CacheResult]:
    return []


@pytest.fixture
def client(cache: LLMCache, seen: Received, results: list[CacheResult]) -> TestClient:
    app = CacheMiddleware(
        asgi_app(seen),
        cache=cache,
        namespace=NS,
        tenant=lambda r: r.headers.get("x-tenant"),
        on_result=results.append,
        ttl=3600,
    )
    return TestClient(app, headers={"x-tenant": "acme"})


# -- Cache-Status ----------------------------------------------------------------------


def test_cache_status_of_a_miss_then_a_hit(client: TestClient, redis_sync: redis.Redis) -> None:
    miss = client.post(CHAT, json=body("What is Redis?"))
    status = ours(miss.headers)
    digest = miss.headers["x-cache-key"]
    assert status == {
        "name": "cachekit",
        "fwd": "uri-miss",
        "fwd-status": "200",
        "key": digest,
    }  # no "stored": it is not known when the header goes out
    hit = client.post(CHAT, json=body("what is  REDIS?"))
    status = ours(hit.headers)
    assert hit.headers["x-cache"] == "HIT" and hit.headers["x-cache-key"] == digest
    assert status["hit"] is True and status["detail"] == "exact" and status["key"] == digest
    assert "fwd" not in status
    # ttl: what the entry has left in Redis (the middleware's ttl=3600).
    assert 0 < int(str(status["ttl"])) <= 3600
    entry = Space.of(NS, "acme").entry_key(digest)
    assert 0 < redis_sync.ttl(entry) <= 3600


def test_cache_status_when_the_client_rules_the_entry_out(client: TestClient) -> None:
    client.post(CHAT, json=body("fresh please"))
    forced = client.post(CHAT, json=body("fresh please"), headers={"cache-control": "no-cache"})
    assert forced.headers["x-cache"] == "MISS" and ours(forced.headers)["fwd"] == "request"
    # An entry older than the request accepts: the request's directive said no.
    old = client.post(CHAT, json=body("fresh please"), headers={"cache-control": "max-age=0"})
    assert old.headers["x-cache"] == "MISS" and ours(old.headers)["fwd"] == "request"
    both = client.post(
        CHAT, json=body("fresh please"), headers={"cache-control": "no-cache, no-store"}
    )
    status = ours(both.headers)
    assert both.headers["x-cache"] == "BYPASS"
    assert (status["fwd"], status["detail"], status["fwd-status"]) == (
        "request",
        "cache_control",
        "200",
    )


def test_cache_status_of_bypasses_names_the_reason(client: TestClient) -> None:
    text = client.post(CHAT, content=b"hello", headers={"content-type": "text/plain"})
    status = ours(text.headers)
    assert text.headers["x-cache"] == "BYPASS"
    assert (status["fwd"], status["detail"]) == ("bypass", "content_type")
    assert "key" not in status and "x-cache-key" not in text.headers  # never keyed
    anonymous = client.post(CHAT, json=body("who am i"), headers={"x-tenant": ""})
    assert ours(anonymous.headers)["detail"] == "no_tenant"


def test_cache_status_when_redis_is_down(seen: Received) -> None:
    dead = LLMCache.from_url(f"redis://127.0.0.1:{free_port()}/0", breaker_threshold=1)
    try:
        app = CacheMiddleware(asgi_app(seen), cache=dead, namespace=NS, allow_global=True)
        with TestClient(app) as client:
            first = client.post(CHAT, json=body("anyone there"))
            second = client.post(CHAT, json=body("anyone there"))
    finally:
        dead.close()
    assert first.status_code == second.status_code == 200
    assert (ours(first.headers)["fwd"], ours(first.headers)["detail"]) == ("bypass", "cache_error")
    assert ours(second.headers)["detail"] == "circuit_open"  # one failure opened it
    assert first.headers["x-cache-key"] == second.headers["x-cache-key"]


def test_an_upstream_cache_status_is_kept_and_ours_appended(
    cache: LLMCache, seen: Received
) -> None:
    app = CacheMiddleware(
        asgi_app(seen, {"cache-status": 'ExampleCDN; fwd=uri-miss; key="abc"'}),
        cache=cache,
        namespace=NS,
        allow_global=True,
    )
    with TestClient(app) as client:
        miss = client.post(CHAT, json=body("chain of caches"))
        hit = client.post(CHAT, json=body("chain of caches"))
    chain = members(", ".join(miss.headers.get_list("cache-status")))
    assert [m["name"] for m in chain] == ["ExampleCDN", "cachekit"]
    # A hit replays the stored response but not the first request's cache chain.
    assert [m["name"] for m in members(hit.headers["cache-status"])] == ["cachekit"]


def test_semantic_hit_says_so(make_cache: MakeCache, seen: Received) -> None:
    cache = make_cache(embedder=bow_embedder(), budgets=GENEROUS)
    app = CacheMiddleware(
        asgi_app(seen), cache=cache, namespace=NS, allow_global=True, threshold=0.6
    )
    with TestClient(app) as client:
        client.post(CHAT, json=body("what is the capital of France"))
        para = client.post(CHAT, json=body("tell me the capital of France"))
    status = ours(para.headers)
    assert para.headers["x-cache-match"] == "semantic"
    assert status["hit"] is True and status["detail"] == "semantic"
    assert status["key"] == para.headers["x-cache-key"]


async def test_requests_served_by_one_in_flight_are_collapsed(cache: LLMCache) -> None:
    calls: list[int] = []

    async def slow(request: Request) -> Response:
        await request.body()
        calls.append(1)
        await asyncio.sleep(0.3)  # an LLM takes a while: the duplicates arrive meanwhile
        return JSONResponse({"answer": "shared"})

    app = Starlette(routes=[Route(CHAT, slow, methods=["POST"])])
    wrapped = CacheMiddleware(app, cache=cache, namespace=NS, allow_global=True)
    transport = httpx.ASGITransport(app=wrapped)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        replies = await asyncio.gather(
            *(http.post(CHAT, json=body("one answer")) for _ in range(6))
        )
    assert calls == [1]
    statuses = [ours(r.headers) for r in replies]
    leaders = [s for s in statuses if "collapsed" not in s and "hit" not in s]
    assert len(leaders) == 1 and leaders[0]["fwd"] == "uri-miss"
    collapsed = [s for s in statuses if "collapsed" in s]
    assert collapsed and all(s["fwd"] == "uri-miss" for s in collapsed)
    assert all(r.headers["x-cache"] == "HIT" for r in replies if "collapsed" in ours(r.headers))


# -- X-Cache-Key and explain --key --------------------------------------------------------


def test_x_cache_key_is_what_explain_takes(
    client: TestClient, results: list[CacheResult], redis_url: str
) -> None:
    miss = client.post(CHAT, json=body("explain me"), headers={"x-cache-ttl": "600"})
    digest = miss.headers["x-cache-key"]
    assert digest == results[-1].key and len(digest) == 32
    assert "acme" not in json.dumps(dict(miss.headers))  # nothing tenant-identifying
    runner = CliRunner(env={"CACHEKIT_REDIS_URL": redis_url})
    found = runner.invoke(cli, ["explain", "--key", digest, "-n", NS, "--json"])
    assert found.exit_code == 0, found.output
    data = json.loads(found.output)
    assert data["verdict"] == "HIT (exact)" and data["searched_every_tenant"] is True
    (match,) = data["matches"]
    assert match["tenant_token"] == Space.of(NS, "acme").tenant_token
    assert match["prompt"] == "explain me" and match["model"] == "gpt-4o-mini"
    assert 0 < match["ttl_s"] <= 600
    # The tenant named: no search; another tenant never sees this entry.
    mine = runner.invoke(cli, ["explain", "--key", digest, "-n", NS, "-t", "acme"])
    assert mine.exit_code == 0 and "Verdict: HIT (exact)" in mine.output
    theirs = runner.invoke(cli, ["explain", "--key", digest, "-n", NS, "-t", "globex"])
    assert theirs.exit_code == 0 and "Verdict: MISS" in theirs.output
    bad = runner.invoke(cli, ["explain", "--key", "not-a-digest"])
    assert bad.exit_code == 2 and "32 hex digits" in bad.output
    both = runner.invoke(cli, ["explain", "--key", digest, "--prompt", "x"])
    assert both.exit_code == 2


def test_explain_key_of_an_invalidated_entry(
    client: TestClient, cache: LLMCache, redis_url: str
) -> None:
    digest = client.post(CHAT, json=body("soon gone")).headers["x-cache-key"]
    cache.run_sync(cache.invalidate, NS, timeout=10)
    runner = CliRunner(env={"CACHEKIT_REDIS_URL": redis_url})
    data = json.loads(runner.invoke(cli, ["explain", "--key", digest, "-n", NS, "--json"]).output)
    assert data["verdict"].startswith("MISS (stored before the namespace's last invalidate()")


# -- only-if-cached ---------------------------------------------------------------------------


def test_only_if_cached_never_reaches_the_app(client: TestClient, seen: Received) -> None:
    offline = {"cache-control": "only-if-cached"}
    miss = client.post(CHAT, json=body("not yet cached"), headers=offline)
    assert miss.status_code == 504 and seen.bodies == []
    error = miss.json()["error"]
    assert error["code"] == "only_if_cached" and "not forwarded" in error["message"]
    assert miss.headers["x-cache"] == "MISS" and len(miss.headers["x-cache-key"]) == 32
    # RFC 9211: a response the cache generated itself carries no Cache-Status member.
    assert "cache-status" not in miss.headers
    assert client.post(CHAT, json=body("not yet cached")).headers["x-cache"] == "MISS"
    hit = client.post(CHAT, json=body("not yet cached"), headers=offline)
    assert hit.status_code == 200 and hit.headers["x-cache"] == "HIT"
    assert len(seen.bodies) == 1
    # What the cache cannot answer does not reach the app either.
    chat_json = {"content-type": "application/json"}
    for headers, content in (
        ({"content-type": "text/plain", **offline}, b"plain text"),
        ({**chat_json, **offline, "x-tenant": ""}, json.dumps(body("no tenant")).encode()),
        ({**chat_json, "cache-control": "no-cache, only-if-cached"}, b'{"model": "m"}'),
    ):
        refused = client.post(CHAT, content=content, headers=headers)
        assert refused.status_code == 504, headers
    assert len(seen.bodies) == 1


def test_only_if_cached_with_redis_down_is_a_504(seen: Received) -> None:
    dead = LLMCache.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        app = CacheMiddleware(asgi_app(seen), cache=dead, namespace=NS, allow_global=True)
        with TestClient(app) as client:
            reply = client.post(CHAT, json=body("x"), headers={"cache-control": "only-if-cached"})
    finally:
        dead.close()
    assert reply.status_code == 504 and "could not be read" in reply.json()["error"]["message"]
    assert seen.bodies == []


def test_the_offline_option_makes_every_request_only_if_cached(
    cache: LLMCache, seen: Received
) -> None:
    online = CacheMiddleware(asgi_app(seen), cache=cache, namespace=NS, allow_global=True)
    offline = CacheMiddleware(
        asgi_app(seen), cache=cache, namespace=NS, allow_global=True, only_if_cached=True
    )
    with TestClient(online) as on, TestClient(offline) as off:
        on.post(CHAT, json=body("recorded"))
        assert off.post(CHAT, json=body("recorded")).headers["x-cache"] == "HIT"
        assert off.post(CHAT, json=body("never recorded")).status_code == 504
    assert len(seen.bodies) == 1


# -- LiteLLM's cache body field ------------------------------------------------------------


def test_cache_field_is_stripped_and_not_in_the_key(
    client: TestClient, seen: Received, cache: LLMCache
) -> None:
    first = client.post(CHAT, json=body("field test", cache={"ttl": 300}))
    assert first.headers["x-cache"] == "MISS"
    assert "cache" not in seen.bodies[-1] and seen.bodies[-1]["model"] == "gpt-4o-mini"
    assert seen.lengths[-1] == str(len(json.dumps(seen.bodies[-1], separators=(",", ":"))))
    # Differing only in the field: the same entry.
    again = client.post(CHAT, json=body("field test"))
    assert again.headers["x-cache"] == "HIT"
    assert again.headers["x-cache-key"] == first.headers["x-cache-key"]
    assert len(seen.bodies) == 1


def test_cache_field_controls(client: TestClient, seen: Received, redis_sync: redis.Redis) -> None:
    no_store = client.post(CHAT, json=body("ns", cache={"no-store": True}))
    assert no_store.headers["x-cache"] == "MISS" and entry_keys(redis_sync, NS) == []
    stored = client.post(CHAT, json=body("nc"))
    assert stored.headers["x-cache"] == "MISS"
    refreshed = client.post(CHAT, json=body("nc", cache={"no-cache": True}))
    assert refreshed.headers["x-cache"] == "MISS" and ours(refreshed.headers)["fwd"] == "request"
    too_old = client.post(CHAT, json=body("nc", cache={"s-maxage": 0}))
    assert too_old.headers["x-cache"] == "MISS" and ours(too_old.headers)["fwd"] == "request"
    young_enough = client.post(CHAT, json=body("nc", cache={"s-maxage": 3600}))
    assert young_enough.headers["x-cache"] == "HIT"
    off = client.post(CHAT, json=body("nc", **{"cache": {"use-cache": False}}))
    assert off.headers["x-cache"] == "BYPASS"
    assert all("cache" not in b for b in seen.bodies)


def test_cache_field_namespace_stays_within_the_tenant(
    client: TestClient, redis_sync: redis.Redis
) -> None:
    team = {"namespace": "team-a"}
    first = client.post(CHAT, json=body("namespaced", cache=team))
    assert first.headers["x-cache"] == "MISS"
    assert len(entry_keys(redis_sync, f"{NS}.team-a")) == 1
    # The same body in the middleware's own namespace is another entry.
    assert client.post(CHAT, json=body("namespaced")).headers["x-cache"] == "MISS"
    assert client.post(CHAT, json=body("namespaced", cache=team)).headers["x-cache"] == "HIT"
    # Another tenant naming the same namespace reads nothing of acme's.
    other = client.post(CHAT, json=body("namespaced", cache=team), headers={"x-tenant": "globex"})
    assert other.headers["x-cache"] == "MISS"


@pytest.mark.parametrize(
    ("field", "param"),
    [
        ("yes", "cache"),
        ({"no-cache": "true"}, "cache.no-cache"),
        ({"ttl": 0}, "cache.ttl"),
        ({"ttl": "60"}, "cache.ttl"),
        ({"s-maxage": -1}, "cache.s-maxage"),
        ({"namespace": "a b"}, "cache.namespace"),
        ({"namespace": "n" * 64}, "cache.namespace"),
        ({"no_cache": True}, "cache.no_cache"),
    ],
)
def test_a_bad_cache_field_is_a_400_naming_it(
    client: TestClient, seen: Received, field: Any, param: str
) -> None:
    reply = client.post(CHAT, json=body("bad field", cache=field))
    assert reply.status_code == 400 and seen.bodies == []
    error = reply.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert param.split(".")[-1] in error["message"]


# -- per-call TTL ---------------------------------------------------------------------------------


def entry_ttl(r: redis.Redis, tenant: str | None, digest: str, ns: str = NS) -> int:
    return int(r.ttl(Space.of(ns, tenant).entry_key(digest)))


def test_x_cache_ttl_and_the_body_ttl_are_what_redis_reports(
    client: TestClient, redis_sync: redis.Redis
) -> None:
    header = client.post(CHAT, json=body("ttl header"), headers={"x-cache-ttl": "120"})
    assert 0 < entry_ttl(redis_sync, "acme", header.headers["x-cache-key"]) <= 120
    field = client.post(CHAT, json=body("ttl field", cache={"ttl": 90}))
    assert 0 < entry_ttl(redis_sync, "acme", field.headers["x-cache-key"]) <= 90
    # Both: the shorter one. Neither: the middleware's ttl=3600.
    both = client.post(
        CHAT, json=body("ttl both", cache={"ttl": 500}), headers={"x-cache-ttl": "45"}
    )
    assert 0 < entry_ttl(redis_sync, "acme", both.headers["x-cache-key"]) <= 45
    plain = client.post(CHAT, json=body("ttl plain"))
    assert 500 < entry_ttl(redis_sync, "acme", plain.headers["x-cache-key"]) <= 3600
    hit = client.post(CHAT, json=body("ttl header"))
    assert 0 < int(str(ours(hit.headers)["ttl"])) <= 120


@pytest.mark.parametrize("value", ["0", "-5", "ten", "1.5", "9" * 20])
def test_a_bad_x_cache_ttl_is_a_400(client: TestClient, seen: Received, value: str) -> None:
    reply = client.post(CHAT, json=body("bad ttl"), headers={"x-cache-ttl": value})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "X-Cache-TTL"
    assert seen.bodies == []


def test_cache_control_ttl_for_the_decorator(
    make_cache: MakeCache, redis_sync: redis.Redis
) -> None:
    cache = make_cache(background_stores=False, default_ttl=3600)
    results: list[CacheResult] = []

    @cached_llm(namespace="deco", cache=cache, on_result=results.append)
    def ask(prompt: str) -> str:
        return f"answer to {prompt}"

    with cache_control(ttl=30) as ctl:
        assert ctl.ttl == 30
        ask("short lived")
    ask("long lived")
    short, long = (entry_ttl(redis_sync, None, r.key or "", "deco") for r in results)
    assert 0 < short <= 30 and 30 < long <= 3600
    for bad in (0, -1, 1.5, True):
        with pytest.raises(CacheConfigError, match="ttl"), cache_control(ttl=bad):  # type: ignore[arg-type]
            pass


# -- WSGI (Flask's default test client) ------------------------------------------------------


class FlaskLLM:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.lengths: list[int | None] = []
        app = Flask("std")

        @app.post(CHAT)
        def chat() -> Any:
            raw = request.get_data()
            self.bodies.append(json.loads(raw))
            self.lengths.append(request.content_length)
            prompt = self.bodies[-1]["messages"][-1]["content"]
            return jsonify(
                {
                    "object": "chat.completion",
                    "model": "gpt-4o-mini",
                    "choices": [{"message": {"role": "assistant", "content": prompt}}],
                }
            )

        self.app = app


@pytest.fixture
def flask_llm(cache: LLMCache) -> FlaskLLM:
    llm = FlaskLLM()
    llm.app.wsgi_app = WSGICacheMiddleware(  # type: ignore[method-assign]
        llm.app.wsgi_app, cache=cache, namespace="wsgi", allow_global=True
    )
    return llm


def test_wsgi_strips_the_field_and_labels_the_outcome(
    flask_llm: FlaskLLM, redis_sync: redis.Redis
) -> None:
    client = flask_llm.app.test_client()
    first = client.post(CHAT, json=body("flask", cache={"ttl": 77}))
    assert first.status_code == 200 and first.headers["x-cache"] == "MISS"
    assert first.json["choices"][0]["message"]["content"] == "flask"  # type: ignore[index]
    status = members(first.headers["cache-status"])[-1]
    assert (status["fwd"], status["fwd-status"]) == ("uri-miss", "200")
    sent = flask_llm.bodies[-1]
    assert "cache" not in sent
    assert flask_llm.lengths[-1] == len(json.dumps(sent, separators=(",", ":")).encode())
    digest = first.headers["x-cache-key"]
    assert 0 < entry_ttl(redis_sync, None, digest, "wsgi") <= 77
    hit = client.post(CHAT, json=body("flask"))
    assert hit.headers["x-cache"] == "HIT" and hit.headers["x-cache-key"] == digest
    assert members(hit.headers["cache-status"])[-1]["hit"] is True
    assert len(flask_llm.bodies) == 1


def test_a_bypass_before_the_body_still_strips_the_field(
    client: TestClient, seen: Received, flask_llm: FlaskLLM
) -> None:
    """No tenant, or ``no-cache, no-store``: decided before the body is keyed, and still
    the app (an upstream that refuses unknown arguments) never gets LiteLLM's field."""
    both = {"cache-control": "no-cache, no-store"}
    for headers in ({"x-tenant": ""}, both):
        reply = client.post(CHAT, json=body("bypass", cache={"ttl": 5}), headers=headers)
        assert reply.headers["x-cache"] == "BYPASS", headers
        assert "cache" not in seen.bodies[-1] and seen.bodies[-1]["model"] == "gpt-4o-mini"
        assert seen.lengths[-1] == str(len(json.dumps(seen.bodies[-1], separators=(",", ":"))))
    wsgi = flask_llm.app.test_client()  # Flask's default client, not buffered
    reply = wsgi.post(CHAT, json=body("wsgi bypass", cache={"ttl": 5}), headers=both)
    assert reply.headers["x-cache"] == "BYPASS"
    assert "cache" not in flask_llm.bodies[-1]
    assert flask_llm.lengths[-1] == len(json.dumps(flask_llm.bodies[-1], separators=(",", ":")))


def test_a_transport_bypass_strips_the_field(cache: LLMCache, upstream: Any) -> None:
    import openai

    from cachekit.transport import CacheTransport

    http = httpx.Client(transport=CacheTransport(cache=cache, namespace="tx"))
    sdk = openai.OpenAI(base_url=upstream.base_url, api_key="sk-tx", http_client=http)
    try:
        raw = sdk.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "tx bypass"}],
            extra_body={"cache": {"ttl": 5}},
            extra_headers={"cache-control": "no-cache, no-store"},
        )
    finally:
        sdk.close()
    assert raw.headers["x-cache"] == "BYPASS"
    assert "cache" not in upstream.calls[-1].body


def test_wsgi_only_if_cached_and_bad_controls(flask_llm: FlaskLLM) -> None:
    client = flask_llm.app.test_client()
    offline = {"Cache-Control": "only-if-cached"}
    miss = client.post(CHAT, json=body("wsgi offline"), headers=offline)
    assert miss.status_code == 504 and miss.json["error"]["code"] == "only_if_cached"  # type: ignore[index]
    assert "cache-status" not in miss.headers
    plain = client.post(CHAT, data=b"hi", headers={**offline, "Content-Type": "text/plain"})
    assert plain.status_code == 504
    assert flask_llm.bodies == []
    assert client.post(CHAT, json=body("wsgi offline")).get_data()  # read to the end: stored
    assert client.post(CHAT, json=body("wsgi offline"), headers=offline).status_code == 200
    bad_ttl = client.post(CHAT, json=body("x"), headers={"X-Cache-TTL": "soon"})
    bad_field = client.post(CHAT, json=body("x", cache={"ttl": -1}))
    assert bad_ttl.status_code == bad_field.status_code == 400
    assert bad_field.json["error"]["param"] == "cache.ttl"  # type: ignore[index]
    assert len(flask_llm.bodies) == 1
