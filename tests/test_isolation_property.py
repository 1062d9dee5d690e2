"""Tenant isolation as a property: whatever the interleaving, a hit is always one's own.

Hypothesis draws tenants (hostile ids included: ``}``, ``:``, ``*``, newlines, unicode,
10 KB, empty, another tenant's encoded token), and a sequence of calls through the
decorator and through the ASGI middleware (tenant from a header), paraphrases, repeats
with one thing changed, and invalidations. Every answer the function or the app produces
names the tenant, namespace, scope, entry point, topic and generation it was made for;
every call checks that what it got back was made for exactly its own request. Vectors
come from a deterministic embedder under which paraphrases of a topic are near-identical,
so the semantic layer is exercised (and would leak, if scoping were wrong).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import redis
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from cachekit import LLMCache, cached_llm, last_result
from cachekit.embedders import CallableEmbedder
from cachekit.middleware import CacheMiddleware
from tests._helpers import GENEROUS

CHAT = "/v1/chat/completions"
DIMS = 32
NAMESPACES = ("iso-a", "iso-b")
SCOPES = ("You are terse.", "You are a pirate.")
TOPICS = ("lighthouses", "sourdough", "glaciers")
TEMPLATES = ("Tell me about {t}.", "{t}: explain, please", "What do you know about {t}?")
HOSTILE = [
    "}",
    "{",
    ":",
    "*",
    "a\nb",
    "\r\n",
    "ünïcødé ✓ 日本",
    "x" * 10240,
    "",
    " ",
    "_",
    "b",
    "h" + "0" * 64,
    "bYWxpY2U",  # the key token of "alice"
    "alice",
    "{iso-a:bYWxpY2U}",
    "ck:{iso-a:_}:gen",
    "\x00",
]


def topic_vector(topic: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(topic.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(DIMS)
    return v / np.linalg.norm(v)


def topic_of(text: str) -> str:
    found = [t for t in TOPICS if t in text]
    assert len(found) == 1, text
    return found[0]


def embed(texts: list[str]) -> np.ndarray:
    """Paraphrases of one topic: cosine > 0.99. Different topics: independent directions."""
    out = np.empty((len(texts), DIMS), dtype=np.float32)
    for i, text in enumerate(texts):
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        wobble = np.random.default_rng(seed).standard_normal(DIMS) * 0.005
        out[i] = topic_vector(topic_of(text)) + wobble
    return out


def test_topics_are_far_apart() -> None:
    """The premise: a cross-topic semantic hit would be an embedder accident, not a leak."""
    vectors = [topic_vector(t) for t in TOPICS]
    for i in range(len(vectors)):
        for j in range(i + 1, len(vectors)):
            assert abs(float(vectors[i] @ vectors[j])) < 0.6


@dataclass(frozen=True)
class Ask:
    via: str  # "deco" | "http"
    tenant: int
    namespace: int
    scope: int
    topic: int
    template: int


@dataclass
class World:
    """What the test knows: generations per (namespace, tenant), epochs per namespace."""

    generations: dict[tuple[str, str], int] = field(default_factory=dict)
    epochs: dict[str, int] = field(default_factory=dict)

    def made_for(self, via: str, tenant: str, ns: str, scope: str, prompt: str) -> dict[str, Any]:
        return {
            "via": via,
            "tenant": tenant,
            "ns": ns,
            "scope": scope,
            "topic": topic_of(prompt),
            "gen": self.generations.get((ns, tenant), 0),
            "epoch": self.epochs.get(ns, 0),
        }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode("utf-8")


class Harness:
    """One cache, a decorated function per namespace, an ASGI app per namespace."""

    def __init__(self, url: str, index: str, stack: ExitStack) -> None:
        self.world = World()
        self.calls = 0
        emb = CallableEmbedder(embed, dimensions=DIMS, model_id="test/topics")
        self.cache = LLMCache.from_url(url, embedder=emb, index=index, budgets=GENEROUS)
        stack.callback(self.cache.close)
        self.deco = {ns: self._function(ns) for ns in NAMESPACES}
        inner = Starlette(routes=[Route(CHAT, self._chat, methods=["POST"])])
        self.http: dict[str, TestClient] = {}
        for ns in NAMESPACES:
            app = CacheMiddleware(
                inner,
                cache=self.cache,
                namespace=ns,
                threshold=0.9,
                tenant=lambda request: _unb64(request.headers["x-tenant"]),
            )
            self.http[ns] = stack.enter_context(TestClient(app))

    def _function(self, ns: str) -> Callable[..., str]:
        world = self.world

        # The same function identity for every namespace: only the namespace differs.
        def ask(prompt: str, system: str, tenant_id: str) -> str:
            self.calls += 1
            return json.dumps(world.made_for("deco", tenant_id, ns, system, prompt))

        ask.__qualname__ = "ask"
        return cached_llm(  # type: ignore[no-any-return]
            namespace=ns,
            cache=self.cache,
            threshold=0.9,
            tenant=lambda call: call.arguments["tenant_id"],
            ignore=("tenant_id",),
        )(ask)

    async def _chat(self, request: Request) -> JSONResponse:
        self.calls += 1
        body = await request.json()
        made = self.world.made_for(
            "http",
            _unb64(request.headers["x-tenant"]),
            request.headers["x-ns"],
            body["messages"][0]["content"],
            body["messages"][-1]["content"],
        )
        return JSONResponse(made)

    def call(
        self, tenant: str, ns: str, via: str, scope: str, prompt: str
    ) -> tuple[dict[str, Any], bool]:
        """(what came back, whether it was a hit)."""
        if via == "deco":
            value = json.loads(self.deco[ns](prompt, system=scope, tenant_id=tenant))
            r = last_result()
            assert r is not None
            assert r.status != "error", r
            if not tenant.strip():
                # Blank is no tenant for the decorator too: a bypass, never shared.
                assert r.status == "bypass", r
            return value, r.hit
        body = {
            "model": "m",
            "messages": [
                {"role": "system", "content": scope},
                {"role": "user", "content": prompt},
            ],
        }
        resp = self.http[ns].post(CHAT, json=body, headers={"x-tenant": _b64(tenant), "x-ns": ns})
        assert resp.status_code == 200, resp.text
        if not tenant.strip():
            # An empty/blank tenant header is no tenant: the middleware bypasses (no
            # allow_global here), it never becomes a tenant "" shared by every sender.
            assert resp.headers["x-cache"] == "BYPASS", resp.headers
            return resp.json(), False
        assert resp.headers["x-cache"] in ("HIT", "MISS"), resp.headers
        return resp.json(), resp.headers["x-cache"] == "HIT"

    def invalidate(self, ns: str, tenant: str | None) -> None:
        asyncio.run(self.cache.invalidate(ns, tenant=tenant))
        if tenant is None:
            self.world.epochs[ns] = self.world.epochs.get(ns, 0) + 1
        else:
            key = (ns, tenant)
            self.world.generations[key] = self.world.generations.get(key, 0) + 1


tenant_ids = st.one_of(
    st.sampled_from(range(len(HOSTILE))).map(HOSTILE.__getitem__),
    st.text(max_size=24),
    st.text(alphabet=st.sampled_from("{}:*[]?\\ \n\t_b"), max_size=8),
)

asks = st.builds(
    Ask,
    via=st.sampled_from(("deco", "http")),
    tenant=st.integers(0, 3),
    namespace=st.integers(0, len(NAMESPACES) - 1),
    scope=st.integers(0, len(SCOPES) - 1),
    topic=st.integers(0, len(TOPICS) - 1),
    template=st.integers(0, len(TEMPLATES) - 1),
)
#: The same request again with exactly one thing changed (or nothing): the risky neighbour.
agains = st.tuples(
    st.just("again"),
    st.integers(0, 100),
    st.sampled_from(
        (
            *("nothing", "nothing", "template", "template"),  # hits: exact, semantic
            *("via", "tenant", "namespace", "scope", "topic"),  # must all miss
        )
    ),
    st.integers(0, 3),
)
invalidations = st.tuples(
    st.just("invalidate"), st.integers(0, len(NAMESPACES) - 1), st.none() | st.integers(0, 3)
)
operations = st.lists(
    st.one_of(asks, agains, agains, agains, invalidations, st.just(("drain",))),
    min_size=6,
    max_size=30,
)


def _mutate(ask: Ask, what: str, value: int) -> Ask:
    if what == "nothing":
        return ask
    if what == "via":
        return Ask(**{**ask.__dict__, "via": "http" if ask.via == "deco" else "deco"})
    limits = {
        "tenant": 4,
        "namespace": len(NAMESPACES),
        "scope": len(SCOPES),
        "template": len(TEMPLATES),
        "topic": len(TOPICS),
    }
    changed = (getattr(ask, what) + 1 + value) % limits[what]
    return Ask(**{**ask.__dict__, what: changed})


@pytest.fixture(params=["vectorset", "flat"])
def index(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def flush(redis_url: str) -> Iterator[Callable[[], None]]:
    client = redis.Redis.from_url(redis_url)
    yield client.flushall
    client.close()


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    tenants=st.lists(tenant_ids, min_size=2, max_size=4),
    ops=operations,
)
def test_a_hit_is_always_the_callers_own(
    redis_url: str,
    index: str,
    flush: Callable[[], None],
    tenants: list[str],
    ops: list[Any],
) -> None:
    flush()
    history: list[Ask] = []
    hits = 0
    with ExitStack() as stack:
        h = Harness(redis_url, index, stack)
        for op in ops:
            if isinstance(op, Ask) or op[0] == "again":
                if isinstance(op, Ask):
                    ask = op
                elif history:
                    ask = _mutate(history[op[1] % len(history)], op[2], op[3])
                else:
                    continue
                history.append(ask)
                tenant = tenants[ask.tenant % len(tenants)]
                ns, scope = NAMESPACES[ask.namespace], SCOPES[ask.scope]
                prompt = TEMPLATES[ask.template].format(t=TOPICS[ask.topic])
                got, hit = h.call(tenant, ns, ask.via, scope, prompt)
                expected = h.world.made_for(ask.via, tenant, ns, scope, prompt)
                note(f"{ask} tenant={tenant[:40]!r} hit={hit}")
                assert got == expected, f"{'hit' if hit else 'miss'} served {got}, not {expected}"
                hits += hit
            elif op[0] == "invalidate":
                tenant_or_none = None if op[2] is None else tenants[op[2] % len(tenants)]
                h.invalidate(NAMESPACES[op[1]], tenant_or_none)
            else:
                h.cache.drain_sync()
    event(f"hits: {min(hits, 5)}{'+' if hits >= 5 else ''}")


def test_same_prompt_for_every_hostile_tenant_never_crosses(redis_url: str) -> None:
    """The deterministic core of the property: every hostile id, both entry points."""
    with ExitStack() as stack:
        h = Harness(redis_url, "vectorset", stack)
        prompt = TEMPLATES[0].format(t=TOPICS[0])
        paraphrase = TEMPLATES[1].format(t=TOPICS[0])
        for via in ("deco", "http"):
            for tenant in HOSTILE:
                got, hit = h.call(tenant, NAMESPACES[0], via, SCOPES[0], prompt)
                assert not hit and got["tenant"] == tenant and got["via"] == via
            h.cache.drain_sync()
            for tenant in HOSTILE:
                got, hit = h.call(tenant, NAMESPACES[0], via, SCOPES[0], paraphrase)
                # Blank tenants bypass both entry points (see Harness.call): no hit.
                cacheable = bool(tenant.strip())
                assert hit == cacheable and got["tenant"] == tenant and got["via"] == via
        blank = sum(1 for t in HOSTILE if not t.strip())
        assert h.calls == 2 * len(HOSTILE) + 2 * blank
