"""What the hit verifier adds to a semantic hit through ``@cached_llm``, same run.

Two caches on one Redis 8 server (started here on a free loopback port unless
--redis-url), identical but for ``verifier=``: the default ``TextVerifier`` and None.
Prompts are realistic paraphrase pairs; the embedder is a lookup table of fixed
vectors (cosine 0.97 between each pair), so the embedding costs nothing and what is
measured is cachekit's own semantic hit path: exact miss, vector search, candidate read,
verification, alias write (the alias is deleted before each call so every call is a
semantic hit). Calls alternate between the two caches so machine noise hits both alike.

    python benchmarks/verify_overhead.py [--n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from _report import machine, redis_version, versions, write_section

from cachekit import LLMCache, cached_llm, last_result
from cachekit._server import RedisServer
from cachekit.embedders import CallableEmbedder

DIMS = 384
PAIRS = [
    (
        "How can I reset the password of my account if I no longer have access to the "
        "email address I signed up with?",
        "How do I reset the password of my account if I no longer have access to the "
        "email address I signed up with?",
    ),
    (
        "What is the best way to cancel my monthly subscription before the next billing "
        "date so that I am not charged again?",
        "What's the best way to cancel my monthly subscription before the next billing "
        "date so I am not charged again?",
    ),
    (
        "Can you explain the difference between a Roth IRA and a traditional IRA for "
        "someone who is just starting to save for retirement?",
        "Could you explain the difference between a Roth IRA and a traditional IRA for "
        "someone just starting to save for retirement?",
    ),
]


def table() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    out: dict[str, np.ndarray] = {}
    for a, b in PAIRS:
        base = rng.standard_normal(DIMS).astype(np.float32)
        base /= np.linalg.norm(base)
        noise = rng.standard_normal(DIMS).astype(np.float32)
        noise -= noise.dot(base) * base
        noise /= np.linalg.norm(noise)
        other = 0.97 * base + np.sqrt(1 - 0.97**2) * noise
        out[a], out[b] = base, other.astype(np.float32)
    return out


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


async def bench(url: str, n: int) -> dict[str, list[float]]:
    vectors = table()
    emb = CallableEmbedder(
        lambda texts: np.stack([vectors[t] for t in texts]), dimensions=DIMS, model_id="bench/t"
    )
    timings: dict[str, list[float]] = {"verified": [], "unverified": []}
    caches = {
        "verified": LLMCache.from_url(url, embedder=emb, background_stores=False),
        "unverified": LLMCache.from_url(url, embedder=emb, background_stores=False, verifier=None),
    }
    fns = {}
    for name, cache in caches.items():
        await cache.warmup()

        @cached_llm(namespace=f"bench-{name}", cache=cache, threshold=0.92)
        async def ask(prompt: str) -> str:
            return f"answer to {prompt}"

        fns[name] = ask
        for cached, _ in PAIRS:
            await ask(cached)
    raw = caches["verified"].redis
    for i in range(n):
        for name in ("verified", "unverified") if i % 2 else ("unverified", "verified"):
            _, paraphrase = PAIRS[i % len(PAIRS)]
            # Drop the alias the last hit wrote, so this call searches again.
            for key in await raw.keys(f"ck:{{bench-{name}:_}}:x:*"):
                await raw.delete(key)
            await fns[name](paraphrase)
            r = last_result()
            assert r is not None and r.status == "semantic", r
            if name == "verified":
                assert r.verdict == "accepted", r
            timings[name].append(r.latency_ms * 1000.0)
    for cache in caches.values():
        await cache.aclose()
    return timings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--redis-url")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    server = None
    url = args.redis_url
    if url is None:
        server = RedisServer().start()
        url = server.url
    try:
        t0 = time.perf_counter()
        res = asyncio.run(bench(url, args.n))
        took = time.perf_counter() - t0
        rv = redis_version()
    finally:
        if server is not None:
            server.stop()
    v, u = res["verified"], res["unverified"]
    mv, mu = statistics.median(v), statistics.median(u)
    body = f"""## Hit verifier overhead on the semantic hit path (`@cached_llm`)

- machine: {machine()}
- versions: Redis {rv}, {versions("redis", "numpy")}
- command: `python benchmarks/verify_overhead.py --n {args.n}` ({took:.0f} s)
- {args.n} semantic hits per variant, alternating, prompts of ~115 characters, a table
  embedder (no model time), vectorset index, one asyncio loop, Redis on loopback

| variant | median µs | p95 µs | median vs unverified |
|---|---:|---:|---:|
| `verifier=None` (baseline) | {mu:.0f} | {pct(u, 0.95):.0f} | 1.00× |
| default `TextVerifier` | {mv:.0f} | {pct(v, 0.95):.0f} | {mv / mu:.2f}× |

Added by verification: **{mv - mu:+.0f} µs** median, {pct(v, 0.95) - pct(u, 0.95):+.0f} µs p95
(`CacheResult.latency_ms`: cachekit's own time, lookup through alias write). With a real
embedder the semantic hit also pays the embedding (MiniLM, one torch thread: ~9 ms).
"""
    print(body)
    if not args.no_write:
        write_section("verify_overhead", body)


if __name__ == "__main__":
    main()
