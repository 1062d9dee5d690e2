"""Do stores stall hits? Exact-hit latency while a writer adds vectors to a big index.

Same run, same Redis 8 server (started here on a free loopback port). A vector set of N
random 384-d vectors is built first. Then exact hits through ``@cached_llm`` are timed:

* idle: nobody writes;
* ``multi``: a writer (another process, as another worker would be) adds 50 vectors/s
  the way cachekit did before issue #12
  (``MULTI; VADD ... Q8; EXPIRE NX; EXPIRE GT; EXEC``: Redis runs the graph search on
  its main thread and serves nobody meanwhile);
* ``pipelined``: the same writer the way cachekit's store does it now (``VADD ... CAS Q8``
  and the EXPIRE pair pipelined, outside a transaction: the search runs on a thread).

    python benchmarks/store_stall.py               # N = 100k (builds for a few minutes)
    python benchmarks/store_stall.py --n 5000 --seconds 3   # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import redis.asyncio as aredis
from _report import machine, redis_version, versions, write_section

from cachekit import LLMCache, cached_llm
from cachekit._server import RedisServer

DIMS = 384
KEY = "bench:stall:vs"


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def build(r: aredis.Redis, n: int, rng: np.random.Generator) -> float:
    started = time.perf_counter()
    for lo in range(0, n, 500):
        pipe = r.pipeline(transaction=False)
        for i in range(lo, min(n, lo + 500)):
            v = rng.standard_normal(DIMS).astype("<f4")
            pipe.execute_command(
                "VADD", KEY, "FP32", (v / np.linalg.norm(v)).tobytes(), f"e{i}", "CAS", "Q8"
            )
        await pipe.execute()
    return time.perf_counter() - started


def writer(url: str, mode: str, stop: Any, made: Any, seed: int) -> None:
    """Another process (as another worker would be): 50 adds a second until ``stop``."""
    import redis

    r = redis.Redis.from_url(url)
    rng = np.random.default_rng(seed)
    while not stop.is_set():
        v = rng.standard_normal(DIMS).astype("<f4")
        blob = (v / np.linalg.norm(v)).tobytes()
        pipe = r.pipeline(transaction=(mode == "multi"))
        cas = () if mode == "multi" else ("CAS",)
        pipe.execute_command("VADD", KEY, "FP32", blob, f"w{mode}{seed}:{made.value}", *cas, "Q8")
        pipe.execute_command("EXPIRE", KEY, 86400, "NX")
        pipe.execute_command("EXPIRE", KEY, 86400, "GT")
        pipe.execute()
        made.value += 1
        stop.wait(0.02)
    r.close()


async def hits(ask: object, seconds: float) -> list[float]:
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        await ask("the exact question")  # type: ignore[operator]
        samples.append((time.perf_counter() - t) * 1e6)
    return samples


async def main(args: argparse.Namespace) -> str:
    rng = np.random.default_rng(12)
    with RedisServer() as server:
        r = aredis.Redis.from_url(server.url)
        built = await build(r, args.n, rng)
        cache = LLMCache.from_url(server.url)

        @cached_llm(namespace="stall", cache=cache)
        async def ask(prompt: str) -> str:
            return "answer"

        await ask("the exact question")
        await cache.drain()
        await hits(ask, 3.0)  # warm (the first seconds after the build are noisy)
        rows = []
        for n, mode in enumerate(["idle", "multi", "pipelined"] * args.rounds):
            stop, made = multiprocessing.Event(), multiprocessing.Value("i", 0)
            w = None
            if mode != "idle":
                w = multiprocessing.Process(
                    target=writer, args=(server.url, mode, stop, made, n), daemon=True
                )
                w.start()
            samples = await hits(ask, args.seconds)
            stop.set()
            if w is not None:
                w.join(10)
            rows.append((mode, samples, int(made.value)))
        card = await r.execute_command("VCARD", KEY)
        await cache.aclose()
        await r.aclose()
        version = redis_version()
    by: dict[str, list[float]] = {}
    writes: dict[str, int] = {}
    for mode, samples, made in rows:
        by.setdefault(mode, []).extend(samples)
        writes[mode] = writes.get(mode, 0) + made
    idle_p99 = pct(by["idle"], 0.99)
    total_s = args.seconds * args.rounds
    lines = [
        f"Machine: {machine()}; Redis {version}; {versions('redis', 'numpy')}.",
        f"Command: `{shlex.join(['python', 'benchmarks/store_stall.py', *sys.argv[1:]])}`. "
        f"Index: one vector set, N = {args.n:,} random {DIMS}-d vectors (Q8), built in "
        f"{built:.0f} s; {card:,} elements at the end. Hits: `@cached_llm` exact hits in a loop "
        f"on one asyncio task; {args.rounds} alternating rounds of {args.seconds:g} s per mode.",
        "",
        "| writer | adds/s | hits | median µs | p95 µs | p99 µs | p99 / idle p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode in ("idle", "multi", "pipelined"):
        s = by[mode]
        rate = writes[mode] / total_s
        lines.append(
            f"| {mode} | {rate:.0f} | {len(s):,} | {statistics.median(s):.0f} | {pct(s, 0.95):.0f} "
            f"| {pct(s, 0.99):.0f} | {pct(s, 0.99) / idle_p99:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    body = asyncio.run(main(args))
    print(body)
    if not args.no_write:
        write_section("Stores never stall hits: exact hits while a writer adds vectors", body)
