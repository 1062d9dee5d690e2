"""Plain helpers shared by several test modules (the fixtures are in conftest.py)."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import redis

from cachekit import Budgets, LLMCache
from cachekit._body import split_body
from cachekit.embedders import CallableEmbedder
from cachekit.verify import Verdict, VerifyScope, default_verifier

#: The ``make_cache`` fixture: ``make_cache(url=None, **LLMCache.from_url options)``.
MakeCache = Callable[..., LLMCache]

#: The machine running the tests may be loaded: tests about behaviour, not time budgets,
#: give every stage plenty of time (fail-open under tight budgets is tested elsewhere).
GENEROUS = Budgets(connect=10, lookup=10, embed=30, search=10, store=10, command=10, pool_wait=10)


def bow(texts: list[str]) -> np.ndarray:
    """Bag of words hashed into 64 dimensions: paraphrases sharing words are close."""
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            out[i, int(hashlib.sha256(word.encode()).hexdigest(), 16) % 64] += 1.0
        if not out[i].any():
            out[i, 0] = 1.0
    return out


def bow_embedder(**options: Any) -> CallableEmbedder:
    """:func:`bow` as an embedder (``model_id="test/bow64"``); ``options`` go to it."""
    return CallableEmbedder(bow, **{"dimensions": 64, "model_id": "test/bow64", **options})


def entry_keys(r: redis.Redis, namespace: str | None = None) -> list[bytes]:
    """The cache entries in Redis: of every namespace, or of ``namespace`` alone."""
    pattern = "ck:*:e:*" if namespace is None else f"ck:{{{namespace}:*}}:e:*"
    return list(r.scan_iter(match=pattern))


def body_key(entry_key: bytes | str) -> bytes:
    """The body key beside an entry hash (``ck:{ns:T}:e:<id>`` -> ``ck:{ns:T}:b:<id>``)."""
    key = entry_key.encode() if isinstance(entry_key, str) else entry_key
    head, sep, entry_id = key.rpartition(b":e:")
    assert sep, key
    return head + b":b:" + entry_id


def put_payload(r: redis.Redis, entry_key: bytes | str, payload: bytes | str) -> None:
    """Replace an entry's payload inside its body as "something else" would, keeping its
    prompt, earlier turns and TTL (``_schema``'s framing, written by hand)."""
    key = body_key(entry_key)
    parts = split_body(r.get(key) or b"")
    assert parts is not None, f"{key!r} holds no body"
    raw = payload.encode() if isinstance(payload, str) else payload
    head = b"%d,%d\n" % (len(parts.prompt), len(parts.history))
    r.set(key, head + parts.prompt + parts.history + raw, keepttl=True)


def assert_no_traceback(
    caplog: pytest.LogCaptureFixture, *, max_message: int | None = None
) -> None:
    """No log record carries a traceback (nor, given ``max_message``, a longer message)."""
    noisy = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not noisy, [r.getMessage()[:200] for r in noisy]
    if max_message is not None:
        assert all(len(r.getMessage()) < max_message for r in caplog.records)


def settle(cache: LLMCache) -> None:
    """Let background stores land, so the next call reads them back from Redis."""
    cache.drain_sync()
    time.sleep(0.05)  # the in-process single-flight forgets landed stores


#: A verifier scope with every field set (the default verifier does not read it).
VERIFY_SCOPE = VerifyScope(namespace="support", model="gpt-4o-mini", tenant="acme")


def verdict(cached: str, new: str, similarity: float = 0.95) -> Verdict:
    """The default verifier on serving ``cached``'s answer for ``new``."""
    return default_verifier().verify(new, cached, similarity, VERIFY_SCOPE)


def assert_rejected(cached: str, new: str, reason: str, detail: str) -> None:
    """The default verifier refuses a near-copy (cosine 0.97), naming the difference."""
    v = verdict(cached, new, 0.97)
    assert not v.accept, v
    assert (v.reason, v.detail) == (reason, detail), v
