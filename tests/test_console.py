"""The review console, in process: real Redis, real MiniLM traffic, the ASGI app over httpx.

The browser tests (tests/test_console_browser.py) drive the same pages in Chromium; these
check the data each page reads, the token and CSRF gates, tenant pinning and escaping.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis

from cachekit import LLMCache, cached_llm, last_result
from cachekit._layout import encode_tenant
from cachekit._tune_pairs import load_pairs
from cachekit.console import create_app
from cachekit.console._answer import answer_text
from cachekit.console._auth import COOKIE, csrf_token
from cachekit.console._history import Snapshot, intervals
from cachekit.console._quality import calibrate, histogram
from cachekit.console._review import Label
from cachekit.embedders import SentenceTransformerEmbedder
from cachekit.errors import CacheConfigError
from cachekit.stats import stats
from tests._helpers import MakeCache

TOKEN = "test-console-token-0123456789"
H = {"authorization": f"Bearer {TOKEN}"}
XSS = "<script>alert('pwned')</script> what is the refund policy?"
XSS_PARAPHRASE = "<script>alert('pwned')</script> what's the refund policy?"
# (cached prompt, a later prompt): paraphrases MiniLM puts above 0.92 (served), and traps
# the verifier rejects (a different order id, a swapped route).
PAIRS = [
    ("How do I reset my password?", "How can I reset my password?"),
    ("What is the status of order 12345?", "What is the status of order 12346?"),
    ("Show me flights from Paris to London", "Show me flights from London to Paris"),
    (XSS, XSS_PARAPHRASE),
]


@pytest.fixture
def traffic_cache(make_cache: MakeCache, minilm: SentenceTransformerEmbedder) -> LLMCache:
    from cachekit.verify import default_verifier

    return make_cache(
        embedder=minilm,
        verifier=default_verifier(),
        background_stores=False,
        near_miss_sample=1.0,
        review_sample=1.0,
    )


def _answerer(cache: LLMCache) -> Any:
    """The app's function (one qualname, so every call shares its scope)."""

    @cached_llm("support", cache=cache, tenant=lambda call: call.arguments["user"])
    async def answer(prompt: str, user: str) -> str:
        return f"{user} answer to: {prompt}"

    return answer


async def _traffic(cache: LLMCache, users: tuple[str, ...] = ("acme", "globex")) -> None:
    answer = _answerer(cache)
    for user in users:
        for cached, later in PAIRS:
            await answer(cached, user=user)
            await answer(later, user=user)


@pytest.fixture
async def seeded(traffic_cache: LLMCache) -> LLMCache:
    await _traffic(traffic_cache)
    return traffic_cache


@pytest.fixture
async def client(seeded: LLMCache) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(seeded, token=TOKEN, history_interval=3600)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as c:
        yield c


def _pinned(cache: LLMCache, **options: Any) -> httpx.AsyncClient:
    app = create_app(cache, token=TOKEN, history_interval=3600, **options)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test")


def _item_ids(html: str) -> list[str]:
    return re.findall(r'data-id="([^"]+)"', html)


# -- the gate -------------------------------------------------------------------------------


async def test_every_page_refuses_a_request_without_the_token(client: httpx.AsyncClient) -> None:
    for path in ("/", "/quality", "/review", "/explain", "/actions", "/labels.jsonl"):
        response = await client.get(path)
        assert response.status_code == 401, path
        assert "acme" not in response.text and "password" not in response.text
    wrong = await client.get("/review", headers={"authorization": "Bearer not-the-token-at-all"})
    assert wrong.status_code == 401
    assert (await client.get("/?token=wrong-token-wrong-token")).status_code == 401
    posted = await client.post("/review/label", json={"id": "x", "label": "same"})
    assert posted.status_code == 401


async def test_the_token_link_sets_a_session_cookie_and_drops_the_token(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"/review?token={TOKEN}&kind=hit")
    assert response.status_code == 303
    assert response.headers["location"] == "/review?kind=hit"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert TOKEN not in cookie  # the cookie is a derived value, never the token
    page = await client.get("/review?kind=hit")  # the client keeps the cookie
    assert page.status_code == 200
    assert "How can I reset my password?" in page.text


async def test_actions_need_the_csrf_token_and_refuse_other_origins(
    client: httpx.AsyncClient, redis_sync: redis.Redis
) -> None:
    await client.get(f"/?token={TOKEN}")  # a browser session (cookie), no bearer header
    item = _item_ids((await client.get("/review")).text)[0]
    missing = await client.post("/review/label", json={"id": item, "label": "same"})
    assert missing.status_code == 403
    assert "CSRF" in missing.text
    csrf = {"x-csrf-token": csrf_token(TOKEN)}
    foreign = await client.post(
        "/review/label",
        json={"id": item, "label": "same"},
        headers={**csrf, "origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    assert not list(redis_sync.scan_iter(match="ckl:*"))
    ok = await client.post("/review/label", json={"id": item, "label": "same"}, headers=csrf)
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"ok": True, "id": item, "label": "same"}
    # A form post carries it as a field (the page's buttons without script).
    form = await client.post(
        "/review/label", data={"id": item, "label": "different", "csrf": csrf_token(TOKEN)}
    )
    assert form.status_code == 303


async def test_a_proxys_basic_credentials_do_not_stand_in_for_the_csrf_token(
    client: httpx.AsyncClient,
) -> None:
    await client.get(f"/?token={TOKEN}")
    item = _item_ids((await client.get("/review")).text)[0]
    basic = {"authorization": "Basic dXNlcjpwYXNz"}  # what a proxy's basic auth adds
    r = await client.post("/review/label", json={"id": item, "label": "same"}, headers=basic)
    assert r.status_code == 403 and "CSRF" in r.text


async def test_login_redirect_stays_on_the_site(client: httpx.AsyncClient) -> None:
    for path in ("//evil.example/", "/%2F%2Fevil.example/", "/%5Cevil.example", "/\\evil.example"):
        r = await client.get(f"{path}?token={TOKEN}")
        assert r.status_code == 303, path
        location = r.headers["location"]
        assert location.startswith("/") and not location.startswith(("//", "/\\")), location
    crlf = await client.get(f"/%0d%0aSet-Cookie:%20x=1?token={TOKEN}")
    assert crlf.status_code == 303 and "\n" not in crlf.headers["location"]


async def test_a_foreign_malformed_cookie_does_not_end_the_session(
    client: httpx.AsyncClient,
) -> None:
    from cachekit.console._auth import cookie_name

    login = await client.get(f"/?token={TOKEN}")
    name = cookie_name(TOKEN)
    value = login.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    assert "Max-Age=" in login.headers["set-cookie"]
    client.cookies.clear()
    header = {"cookie": f'other={{"a":1}}; {name}={value}'}  # another app's cookie first
    assert (await client.get("/review", headers=header)).status_code == 200


async def test_a_malformed_origin_or_a_huge_form_is_refused_not_a_500(
    client: httpx.AsyncClient,
) -> None:
    await client.get(f"/?token={TOKEN}")
    bad = await client.post("/explain", data={"body": "{}"}, headers={"origin": "http://[::1"})
    assert bad.status_code == 403
    huge = await client.post("/explain", data={"body": "x" * (3 << 20)})
    assert huge.status_code == 413


async def test_a_mounted_console_logs_in_and_links_under_its_prefix(seeded: LLMCache) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    host = Starlette(routes=[Mount("/ops/cache", create_app(seeded, token=TOKEN))])
    transport = httpx.ASGITransport(app=host)
    async with httpx.AsyncClient(transport=transport, base_url="http://host.test") as c:
        login = await c.get(f"/ops/cache/review?token={TOKEN}&kind=hit")
        assert login.status_code == 303
        assert login.headers["location"] == "/ops/cache/review?kind=hit"
        assert "Path=/ops/cache;" in login.headers["set-cookie"]
        page = await c.get("/ops/cache/review?kind=hit")
        assert page.status_code == 200
        assert 'href="/ops/cache/static/console.css"' in page.text
        assert 'action="/ops/cache/review/label"' in page.text
        item = _item_ids(page.text)[0]
        form = await c.post(
            "/ops/cache/review/label",
            data={"id": item, "label": "same", "csrf": csrf_token(TOKEN)},
        )
        assert form.status_code == 303 and form.headers["location"] == "/ops/cache/review"
        assert (await c.get("/ops/cache/static/console.js")).status_code == 200


async def test_pages_carry_a_strict_content_security_policy(client: httpx.AsyncClient) -> None:
    page = await client.get("/review", headers=H)
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"


# -- what the pages show ---------------------------------------------------------------------


async def test_prompts_and_answers_are_escaped(client: httpx.AsyncClient) -> None:
    page = await client.get("/review?kind=hit", headers=H)
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; what&#39;s the refund" in page.text
    # The cached answer (which repeats the prompt) is escaped too.
    assert "answer to: &lt;script&gt;" in page.text


async def test_review_queue_shows_hits_rejections_and_the_cached_answer(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/review", headers=H)).text
    assert page.count('class="kind kind-hit"') == 4  # 2 paraphrases x 2 tenants
    assert page.count('class="kind kind-rejected"') == 4  # 2 traps x 2 tenants
    assert "verifier: identifier" in page and "verifier: order" in page
    assert "acme answer to: What is the status of order 12345?" in page
    rejected = (await client.get("/review?kind=rejected", headers=H)).text
    assert 'kind-hit"' not in rejected
    bad = await client.get("/review?kind=bogus", headers=H)
    assert bad.status_code == 400


async def test_overview_counts_layers_tenants_and_reasons(seeded: LLMCache) -> None:
    @cached_llm("support", cache=seeded, tenant=lambda call: call.arguments.get("user"))
    async def anon(prompt: str, user: str | None = None) -> str:
        return "x"

    await anon("no tenant, so a bypass")
    assert last_result().reason_code == "no_tenant"  # type: ignore[union-attr]
    async with _pinned(seeded) as c:
        page = (await c.get("/", headers=H)).text
    rows = re.findall(r"<tr>\s*<td>support</td>\s*<td[^>]*>([^<]+)</td>", page)
    assert sorted(rows) == ["(none)", "acme", "globex"]
    assert "bypass.no_tenant 1" in page
    assert "breaker node" in page
    assert re.search(r"\d[\d.,]* KiB", page)  # memory of the tenants' keys
    report = await stats(seeded, "support", tenant_token="_")
    assert report.totals.reasons == {"bypass.no_tenant": 1}


async def test_quality_histogram_counts_kinds_and_draws_the_threshold(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/quality", headers=H)).text
    assert "8 sampled records: 4 semantic hits, 0 near misses, 4 verifier rejections" in page
    assert "threshold 0.92" in page
    assert 'class="marker"' in page


# -- labels ----------------------------------------------------------------------------------


async def test_labels_are_stored_in_redis_and_exported_as_tune_pairs(
    client: httpx.AsyncClient, redis_sync: redis.Redis, tmp_path: Any
) -> None:
    page = (await client.get("/review?kind=rejected&tenant=acme", headers=H)).text
    ids = _item_ids(page)
    assert len(ids) == 2 and all(i.startswith(f"support/{encode_tenant('acme')}/") for i in ids)
    for item in ids:
        r = await client.post("/review/label", json={"id": item, "label": "different"}, headers=H)
        assert r.status_code == 200
    key = f"ckl:{{support:{encode_tenant('acme')}}}:labels"
    stored = redis_sync.hgetall(key)
    assert len(stored) == 2
    assert {json.loads(v)["label"] for v in stored.values()} == {"different"}
    # Labelled items leave the default (unlabelled) queue, and come back with all=1.
    assert not _item_ids((await client.get("/review?kind=rejected&tenant=acme", headers=H)).text)
    shown = (await client.get("/review?kind=rejected&tenant=acme&all=1", headers=H)).text
    assert shown.count("label-different") >= 2
    export = await client.get("/labels.jsonl?tenant=acme", headers=H)
    lines = [json.loads(x) for x in export.text.splitlines()]
    assert {x["label"] for x in lines} == {0}
    assert {x["text_a"] for x in lines} == {
        "What is the status of order 12346?",
        "Show me flights from London to Paris",
    }
    path = tmp_path / "labels.jsonl"
    path.write_text(export.text)
    pairs = load_pairs(str(path))  # what `cachekit tune --pairs` reads
    assert len(pairs) == 2 and all(p.label == 0 and p.similarity for p in pairs)
    # A clear deletes cache data, never the operator's labels.
    await client.post(
        "/actions/run",
        data={"action": "clear", "namespace": "support", "tenant_token": encode_tenant("acme"),
              "confirm": "support"},
        headers=H,
    )  # fmt: skip
    assert len(redis_sync.hgetall(key)) == 2


async def test_a_label_must_be_one_of_two_and_name_a_real_item(client: httpx.AsyncClient) -> None:
    item = _item_ids((await client.get("/review", headers=H)).text)[0]
    bad = await client.post("/review/label", json={"id": item, "label": "maybe"}, headers=H)
    assert bad.status_code == 400 and "same, different" in bad.json()["error"]
    ns, tok, _ = item.split("/")
    gone = await client.post(
        "/review/label", json={"id": f"{ns}/{tok}/n:1-0", "label": "same"}, headers=H
    )
    assert gone.status_code == 404
    huge = await client.post(
        "/review/label", json={"id": f"{ns}/{tok}/n:{'9' * 20}-0", "label": "same"}, headers=H
    )
    assert huge.status_code == 400  # not a stream id Redis takes: named, not a 503
    junk = await client.post("/review/label", json={"id": "../../etc", "label": "same"}, headers=H)
    assert junk.status_code == 400
    not_json = await client.post(
        "/review/label", content=b"{", headers={**H, "content-type": "application/json"}
    )
    assert not_json.status_code == 400


def test_calibration_from_labels_suggests_a_threshold_and_accept_at() -> None:
    from cachekit.verify import default_verifier

    def lab(a: str, b: str, sim: float, same: bool, kind: str = "hit") -> Label:
        return Label("ns", "_", "1-0", "same" if same else "different", a, b, sim, 0.9, kind,
                     "", "m", 0.0)  # fmt: skip

    # fmt: off
    labels = [
        lab("how do i reset my password", "How do I reset my password?", 0.99, True),
        lab("How can I reset my password?", "How do I reset my password?", 0.95, True),
        lab("What is the status of order 12346?", "What is the status of order 12345?",
            0.955, False, "rejected"),
        lab("Is the shop open on Sunday?", "Is the shop closed on Sunday?", 0.93, False),
    ]
    # fmt: on
    cal = calibrate(labels, default_verifier(), target_precision=0.95)
    assert cal.labels == 4 and cal.same == 2 and cal.served == 3 and cal.served_same == 2
    assert cal.threshold is not None and cal.threshold.precision == 1.0
    assert cal.accept_at is not None and 0.0 < cal.accept_at < 1.0
    assert not cal.reliable and any("fewer than" in n for n in cal.notes)
    assert any("own rates" in n for n in cal.notes)  # hits and rejections pooled


def test_accept_at_never_cuts_a_group_of_equal_scores() -> None:
    from cachekit._tune_pairs import Pair
    from cachekit.console._quality import _accept_at

    pairs = [Pair("a", "b", 1, 0.95), Pair("c", "d", 0, 0.95), Pair("e", "f", 1, 0.97)]
    scores = {"a": 0.9, "c": 0.9, "e": 0.99}
    cut = _accept_at(pairs, lambda a, b, s: scores[a], target=0.95)
    assert cut == 0.99  # 0.9 would accept "c" too: precision 2/3


# -- tenant pinning --------------------------------------------------------------------------


async def test_a_non_canonical_tenant_token_is_refused(seeded: LLMCache) -> None:
    acme = encode_tenant("acme")
    twin = acme[:-1] + chr(ord(acme[-1]) + 1)  # decodes to "acme" too: not acme's keys
    from cachekit._stats_report import decode_tenant_token

    assert decode_tenant_token(twin) == "acme"
    with pytest.raises(ValueError, match="as cachekit writes them"):
        create_app(seeded, token=TOKEN, tenant_token=twin)
    async with _pinned(seeded) as c:
        assert (await c.get(f"/review?tenant_token={twin}", headers=H)).status_code == 400


async def test_a_console_pinned_to_a_tenant_never_shows_another(
    seeded: LLMCache, redis_sync: redis.Redis
) -> None:
    async with _pinned(seeded, tenant="acme") as c:
        for path in ("/", "/review?all=1", "/quality", "/actions", "/labels.jsonl"):
            page = await c.get(path, headers=H)
            assert page.status_code == 200, path
            assert "globex" not in page.text, path
        review = (await c.get("/review?all=1", headers=H)).text
        assert "acme answer to" in review
        for path in ("/?tenant=globex", f"/review?tenant_token={encode_tenant('globex')}"):
            refused = await c.get(path, headers=H)
            assert refused.status_code == 403, path
            assert "globex answer" not in refused.text
    async with _pinned(seeded) as everyone:
        other = _item_ids((await everyone.get("/review?tenant=globex", headers=H)).text)[0]
    async with _pinned(seeded, tenant="acme") as c:
        r = await c.post("/review/label", json={"id": other, "label": "same"}, headers=H)
        assert r.status_code == 403
        gone = await c.post(
            "/actions/run",
            data={"action": "clear", "namespace": "support",
                  "tenant_token": encode_tenant("globex"), "confirm": "support"},
            headers=H,
        )  # fmt: skip
        assert gone.status_code == 403
        every = await c.post(
            "/actions/confirm", data={"action": "clear", "namespace": "support"}, headers=H
        )
        assert every.status_code == 403
    assert not list(redis_sync.scan_iter(match="ckl:*"))
    assert list(redis_sync.scan_iter(match=f"ck:{{support:{encode_tenant('globex')}}}:e:*"))


async def test_read_only_refuses_labels_and_actions(seeded: LLMCache) -> None:
    async with _pinned(seeded, read_only=True) as c:
        page = (await c.get("/review", headers=H)).text
        assert "label-form" not in page and "read-only" in page
        item = _item_ids(page)[0]
        r = await c.post("/review/label", json={"id": item, "label": "same"}, headers=H)
        assert r.status_code == 403
        a = await c.post(
            "/actions/run",
            data={"action": "invalidate", "namespace": "support", "confirm": "support"},
            headers=H,
        )
        assert a.status_code == 403


# -- actions ---------------------------------------------------------------------------------


async def test_invalidate_asks_for_confirmation_then_every_worker_misses(
    seeded: LLMCache, client: httpx.AsyncClient
) -> None:
    acme = encode_tenant("acme")
    form = {"action": "invalidate", "namespace": "support", "tenant_token": acme}
    confirm = await client.post("/actions/confirm", data=form, headers=H)
    assert confirm.status_code == 200
    assert "Type the namespace" in confirm.text
    unconfirmed = await client.post("/actions/run", data={**form, "confirm": "nope"}, headers=H)
    assert unconfirmed.status_code == 400
    answer = _answerer(seeded)
    await answer(PAIRS[0][0], user="acme")
    assert last_result().status == "exact"  # type: ignore[union-attr]
    done = await client.post("/actions/run", data={**form, "confirm": "support"}, headers=H)
    assert done.status_code == 200 and "Invalidated" in done.text
    await answer(PAIRS[0][0], user="acme")
    assert last_result().status == "miss"  # type: ignore[union-attr]
    await answer(PAIRS[0][0], user="globex")
    assert last_result().status == "exact"  # type: ignore[union-attr]


async def test_clear_of_the_no_tenant_space_leaves_the_tenants(
    seeded: LLMCache, redis_sync: redis.Redis
) -> None:
    @cached_llm("support", cache=seeded, allow_global=True)
    async def shared(prompt: str) -> str:
        return "shared"

    await shared("a question without a tenant")
    assert list(redis_sync.scan_iter(match="ck:{support:_}:e:*"))
    deleted = await seeded.clear("support", tenant_token="_")
    assert deleted > 0
    assert not list(redis_sync.scan_iter(match="ck:{support:_}:e:*"))
    assert list(redis_sync.scan_iter(match=f"ck:{{support:{encode_tenant('acme')}}}:e:*"))
    with pytest.raises(CacheConfigError, match="tenant_token"):
        await seeded.clear("support", tenant_token="*")
    with pytest.raises(CacheConfigError, match="not both"):
        await seeded.invalidate("support", "acme", tenant_token="_")


# -- explain ---------------------------------------------------------------------------------


async def test_explain_a_pasted_chat_body_and_a_key(
    make_cache: MakeCache, minilm: SentenceTransformerEmbedder, upstream: Any
) -> None:
    from openai import AsyncOpenAI

    from cachekit.proxy import create_proxy_app

    cache = make_cache(embedder=minilm, background_stores=False)
    proxy = create_proxy_app(cache, upstream.base_url, namespace="proxy")
    sdk = AsyncOpenAI(
        base_url="http://proxy.test/v1",
        api_key="sk-console-test",
        http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=proxy)),
    )
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    create = sdk.chat.completions.with_raw_response.create
    raw = await create(model="gpt-4o-mini", messages=messages)  # type: ignore[call-overload]
    key = raw.headers["x-cache-key"]
    await sdk.close()
    body = json.dumps({"model": "gpt-4o-mini", "messages": messages})
    from cachekit.middleware import api_key_tenant

    tenant = api_key_tenant({"HTTP_AUTHORIZATION": "Bearer sk-console-test"})
    assert tenant is not None
    async with _pinned(cache) as c:
        page = await c.post(
            "/explain",
            data={"mode": "body", "namespace": "proxy", "path": "/v1/chat/completions",
                  "body": body, "tenant_token": encode_tenant(tenant)},
            headers=H,
        )  # fmt: skip
        assert page.status_code == 200, page.text
        assert "HIT (exact)" in page.text
        near = body.replace("What is", "Tell me")
        close = await c.post(
            "/explain",
            data={"mode": "body", "namespace": "proxy", "body": near,
                  "tenant_token": encode_tenant(tenant)},
            headers=H,
        )  # fmt: skip
        assert "What is the capital of France?" in close.text  # its nearest cached prompt
        by_key = await c.post(
            "/explain", data={"mode": "key", "namespace": "proxy", "key": key}, headers=H
        )
        assert "HIT" in by_key.text and "What is the capital of France?" in by_key.text
        bad = await c.post("/explain", data={"mode": "body", "body": "{not json"}, headers=H)
        assert bad.status_code == 400 and "not JSON" in bad.text


# -- pure parts ------------------------------------------------------------------------------


def test_answer_text_reads_every_stored_shape() -> None:
    from cachekit import _codec
    from cachekit.middleware._record import CachedResponse

    chat = {"choices": [{"message": {"role": "assistant", "content": "Paris."}}]}
    assert answer_text(_codec.encode(chat)) == "Paris."
    http = CachedResponse("json", 200, "application/json", body=json.dumps(chat))
    assert answer_text(http.encode()) == "Paris."
    events = (
        'data: {"choices":[{"delta":{"content":"Pa"}}]}\n\n',
        'data: {"choices":[{"delta":{"content":"ris."}}]}\n\n',
        "data: [DONE]\n\n",
    )
    sse = CachedResponse("sse", 200, "text/event-stream", events=events)
    assert answer_text(sse.encode()) == "Paris."
    anthropic = {"content": [{"type": "text", "text": "Paris."}], "role": "assistant"}
    assert answer_text(_codec.encode(anthropic)) == "Paris."
    chunks = _codec.encode_stream(
        [{"choices": [{"delta": {"content": "Pa"}}]}, {"choices": [{"delta": {"content": "ris."}}]}]
    )
    assert answer_text(chunks) == "Paris."
    assert answer_text(_codec.encode("plain")) == "plain"
    assert answer_text(None) is None
    assert len(answer_text(_codec.encode("x" * 10_000)) or "") < 4100


def test_intervals_add_growth_and_restart_after_a_clear() -> None:
    def snap(at: float, exact: int, miss: int) -> Snapshot:
        return Snapshot(at, exact, 0, miss, 0, 0, 0.0)

    history = {
        ("ns", "a"): [snap(0, 0, 0), snap(60, 5, 5), snap(120, 10, 6)],
        ("ns", "b"): [snap(30, 100, 100), snap(90, 2, 1)],  # cleared in between
    }
    out = intervals(history, 0, 120, 2)
    assert [(i.exact, i.miss) for i in out] == [(5, 5), (5 + 2, 1 + 1)]
    assert out[0].rate("exact") == 0.5


def test_histogram_bins_include_the_threshold() -> None:
    from cachekit._tune_near_misses import NearMiss

    records = [
        NearMiss("ns", "_", "1-0", "a", "b", 0.985, 0.92, "m", kind="hit"),
        NearMiss("ns", "_", "2-0", "a", "b", 0.9, 0.92, "m", kind="near"),
    ]
    hist = histogram(records)
    assert hist.threshold == 0.92 and hist.low <= 0.9
    assert sum(hist.counts["hit"]) == 1 and sum(hist.counts["near"]) == 1


def test_review_sample_is_checked(redis_url: str) -> None:
    with pytest.raises(CacheConfigError, match="review_sample"):
        LLMCache.from_url(redis_url, review_sample=1.5)


def test_create_app_refuses_a_short_token(cache: LLMCache) -> None:
    with pytest.raises(ValueError, match="at least 16"):
        create_app(cache, token="short")
    assert COOKIE == "cachekit_console"


# -- sampling on the hit path ------------------------------------------------------------


async def test_sampled_hits_have_their_own_stream(
    seeded: LLMCache, redis_sync: redis.Redis
) -> None:
    acme = encode_tenant("acme")
    hits = redis_sync.xrange(f"ck:{{support:{acme}}}:hitsample")
    misses = redis_sync.xrange(f"ck:{{support:{acme}}}:nearmiss")
    assert {f[b"kind"] for _, f in hits} == {b"hit"} and len(hits) == 2
    assert {f[b"kind"] for _, f in misses} == {b"rejected"} and len(misses) == 2
    assert all(f[b"entry"] for _, f in hits + misses)  # the review shows their answers


async def test_a_failed_hit_sample_does_not_cost_the_hit(
    traffic_cache: LLMCache, redis_sync: redis.Redis
) -> None:
    answer = _answerer(traffic_cache)
    await answer(PAIRS[0][0], user="acme")
    # Something else holds the stream's key: the sample's XADD fails (WRONGTYPE).
    redis_sync.set(f"ck:{{support:{encode_tenant('acme')}}}:hitsample", "not a stream")
    await answer(PAIRS[0][1], user="acme")
    result = last_result()
    assert result is not None and result.status == "semantic", result


async def test_labels_count_as_adaptive_evidence(
    seeded: LLMCache, make_cache: MakeCache, minilm: SentenceTransformerEmbedder,
    redis_sync: redis.Redis,
) -> None:  # fmt: skip
    from cachekit.adaptive import AdaptiveThreshold

    adaptive = make_cache(embedder=minilm, adaptive=AdaptiveThreshold(bin_width=0.005))
    async with _pinned(adaptive) as c:
        page = (await c.get("/review?kind=rejected&tenant=acme", headers=H)).text
        item = _item_ids(page)[0]
        r = await c.post("/review/label", json={"id": item, "label": "different"}, headers=H)
        assert r.status_code == 200
        (key,) = redis_sync.scan_iter(match="ck:{support}:adapt:w5:*")
        counts = {k.decode(): int(v) for k, v in redis_sync.hgetall(key).items()}
        assert sum(counts.values()) == 1 and next(iter(counts)).startswith("d:")
        # The same label again counts once; a relabel moves the count.
        await c.post("/review/label", json={"id": item, "label": "different"}, headers=H)
        await c.post("/review/label", json={"id": item, "label": "same"}, headers=H)
        counts = {k.decode(): int(v) for k, v in redis_sync.hgetall(key).items()}
        assert sorted(v for v in counts.values()) == [0, 1]
        assert next(k for k, v in counts.items() if v == 1).startswith("s:")
