"""Memory per cachekit entry, alone: no lookups, no timing, a few seconds per size.

Loads N entries through the real ``LLMCache.store()`` (vector set index, int8, the
default; a ~1 KB response; random unit vectors precomputed, so nothing is embedded) on a
Redis 8 started here, then reports (INFO used_memory after - before) / N and the mean
``MEMORY USAGE`` of each kind of key (``e`` entry hash, ``b`` entry body, ``x`` exact
pointer, ``vs`` vector set share per entry), whatever layout the imported cachekit writes.
Memory per entry is near-constant in N (the vector set's graph grows linearly, the key
dictionary by power-of-two rehash steps), so N = 20,000 stands for larger caches; the
full benchmark (semantic_lookup.py) measures 10k and 100k.

    python benchmarks/entry_memory.py                    # 384-d and 1536-d, N = 20,000
    python benchmarks/entry_memory.py --n 5000 --dims 384 --prompt-bytes 200

Prompts are QQP questions (read from --data, as semantic_lookup.py does: the entry hash
encoding depends on their length) or, with ``--prompt-bytes``, synthetic prompts of that
many bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import redis.asyncio as aredis

from cachekit import Budgets, LLMCache
from cachekit._codec import encode
from cachekit._entry import LookupOutcome
from cachekit._manifest import KeyManifest, build_manifest
from cachekit.embedders import CallableEmbedder

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
NAMESPACE = "bench"
TTL = 7 * 24 * 3600  # as semantic_lookup.py
RESPONSE_BYTES = 1024
SEED = 20240611


def response_text(i: int) -> str:
    """The ~1 KB response of semantic_lookup.py."""
    head = f"Answer {i}: "
    return (
        head + ("The quick brown fox jumps over the lazy dog. " * 30)[: RESPONSE_BYTES - len(head)]
    )


def prompts(n: int, data: Path, prompt_bytes: int | None) -> list[str]:
    if prompt_bytes is not None:
        filler = "Please explain, in plain words, how this works and why. " * 64
        return [(f"Q{i}: " + filler)[:prompt_bytes] for i in range(n)]
    path = data / "qqp" / "qqp_pairs.json"
    if not path.is_file():
        sys.exit(f"entry_memory: {path} not found; pass --data or --prompt-bytes")
    seen: dict[str, None] = {}
    for row in json.loads(path.read_text(encoding="utf-8")):
        seen.setdefault(str(row["text_a"]).strip(), None)
        if len(seen) >= n:
            break
    if len(seen) < n:
        sys.exit(f"entry_memory: only {len(seen)} distinct QQP prompts, asked for {n}")
    return list(seen)


def unit_vectors(n: int, dims: int) -> np.ndarray:
    x = np.random.default_rng(SEED).standard_normal((n, dims), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def manifest(text: str) -> KeyManifest:
    return build_manifest(
        NAMESPACE,
        None,
        {"prompt": text, "model": "gpt-4o-mini", "temperature": 0.0},
        function_id="benchmarks.semantic_lookup:answer",
    )


def key_kind(key: bytes) -> str:
    """``ck:{bench:_}:e:<id>`` -> ``e``; ``ck:{bench:_}:vs:<gen>:<scope>`` -> ``vs``."""
    rest = key.decode().partition("}:")[2]
    return rest.partition(":")[0] or rest


async def measure(url: str, dims: int, texts: list[str]) -> dict[str, Any]:
    n = len(texts)
    vectors = unit_vectors(n, dims)
    admin = aredis.Redis.from_url(url)
    await admin.flushall(asynchronous=False)
    await asyncio.sleep(0.2)

    async def never(texts: list[str]) -> np.ndarray:
        raise AssertionError("every store passes its vector: nothing is embedded")

    embedder = CallableEmbedder(never, dimensions=dims, model_id=f"random-unit-{dims}")
    budgets = Budgets(connect=30, lookup=60, embed=60, search=60, store=60, command=60)
    cache = LLMCache.from_url(
        url, embedder=embedder, index="vectorset", quantization="int8",
        default_ttl=TTL, budgets=budgets, max_connections=64,
    )  # fmt: skip
    try:
        await cache.connect()
        manifests = [manifest(t) for t in texts]
        base_outcome = await cache.prepare(manifests[0])
        before = int((await admin.info("memory"))["used_memory"])
        it = iter(range(n))
        t0 = time.perf_counter()

        async def worker() -> None:
            for i in it:
                outcome = LookupOutcome(
                    base_outcome.generation, base_outcome.epoch, vector=vectors[i]
                )
                stored = await cache.store(manifests[i], outcome, encode(response_text(i)), ttl=TTL)
                assert stored, "a store did not land"

        await asyncio.gather(*(worker() for _ in range(64)))
        load_s = time.perf_counter() - t0
        await asyncio.sleep(0.2)
        after = int((await admin.info("memory"))["used_memory"])
        sizes: dict[str, list[int]] = defaultdict(list)
        encodings: dict[str, set[str]] = defaultdict(set)
        keys = [k async for k in admin.scan_iter(match=f"ck:{{{NAMESPACE}:*", count=1000)]
        for lo in range(0, len(keys), 500):
            async with admin.pipeline(transaction=False) as pipe:
                for key in keys[lo : lo + 500]:
                    pipe.memory_usage(key, samples=0)
                    pipe.object("encoding", key)
                replies = await pipe.execute()
            for key, size, enc in zip(
                keys[lo : lo + 500], replies[::2], replies[1::2], strict=True
            ):
                sizes[key_kind(key)].append(int(size or 0))
                encodings[key_kind(key)].add(enc.decode() if isinstance(enc, bytes) else str(enc))
    finally:
        await cache.aclose()
        await admin.aclose()
    per_kind = {
        kind: {
            "keys": len(v),
            "mean_bytes": statistics.fmean(v),
            "per_entry": sum(v) / n,
            "encodings": sorted(encodings[kind]),
        }
        for kind, v in sorted(sizes.items())
    }
    return {
        "dims": dims,
        "n": n,
        "bytes_per_entry": (after - before) / n,
        "load_per_s": n / load_s,
        "kinds": per_kind,
    }


def summary(r: dict[str, Any]) -> str:
    parts = []
    for kind, k in r["kinds"].items():
        if k["keys"] >= r["n"] // 2:  # one key per entry: its mean size
            parts.append(f"{kind} {k['mean_bytes']:,.0f} ({'/'.join(k['encodings'])})")
        elif k["per_entry"] >= 1:  # shared keys (the vector set): their share per entry
            parts.append(f"{kind} {k['per_entry']:,.0f}/entry")
    return (
        f"{r['dims']:>5}-d N={r['n']:,}: {r['bytes_per_entry']:,.0f} B/entry "
        f"(INFO delta); MEMORY USAGE: {' + '.join(parts)}; {r['load_per_s']:,.0f} stores/s"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dims", type=int, nargs="+", default=[384, 1536])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--prompt-bytes", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    from cachekit._server import RedisServer

    texts = prompts(args.n, args.data, args.prompt_bytes)
    lengths = [len(t.encode()) for t in texts]
    print(
        f"prompts: mean {statistics.fmean(lengths):.0f} B, "
        f"{sum(x > 64 for x in lengths) / len(lengths):.0%} over 64 B",
        flush=True,
    )
    server = RedisServer().start()
    try:
        results = []
        for dims in args.dims:
            results.append(await measure(server.url, dims, texts))
            print(summary(results[-1]), flush=True)
    finally:
        server.stop()
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main())
