"""The threshold sweep of ``cachekit tune``: precision, recall and hit rate per threshold,
the recommendation, the similarities of pairs, and the plot. Part of :mod:`cachekit._tune`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from ._attrs import pick_attrs

if TYPE_CHECKING:
    from ._tune_pairs import Pair
    from .embedders import Embedder

__all__ = [
    "MAX_RELIABLE_CI_WIDTH",
    "MIN_RELIABLE_PAIRS",
    "SweepRow",
    "embed_similarities",
    "plot_sweep",
    "recommend",
    "sweep",
    "thresholds_between",
    "verify_pairs",
    "wilson_interval",
]


@dataclass(frozen=True, slots=True)
class SweepRow:
    threshold: float
    accepted: int
    true_pos: int
    false_pos: int
    false_neg: int
    total: int

    @property
    def precision(self) -> float | None:
        return self.true_pos / self.accepted if self.accepted else None

    @property
    def recall(self) -> float | None:
        positives = self.true_pos + self.false_neg
        return self.true_pos / positives if positives else None

    @property
    def hit_rate(self) -> float:
        return self.accepted / self.total if self.total else 0.0

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None
        return 2 * p * r / (p + r)

    def to_dict(self) -> dict[str, Any]:
        return {
            **pick_attrs(self, "threshold", "accepted"),
            "true_positives": self.true_pos,
            "false_positives": self.false_pos,
            "false_negatives": self.false_neg,
            **pick_attrs(self, "precision", "recall", "hit_rate", "f1"),
        }


def thresholds_between(low: float, high: float, step: float) -> list[float]:
    """Candidate thresholds ``low, low+step, ..., high`` rounded to the step's decimals."""
    if not -1.0 <= low <= high <= 1.0:
        raise ValueError(f"need -1 <= min <= max <= 1, got {low}..{high}")
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    decimals = max(0, -math.floor(math.log10(step))) + 1
    count = math.floor((high - low) / step + 1e-9) + 1
    return [round(low + i * step, decimals) for i in range(count)]


def sweep(
    similarities: npt.ArrayLike,
    labels: npt.ArrayLike,
    thresholds: Iterable[float],
    verified: npt.ArrayLike | None = None,
) -> list[SweepRow]:
    """Precision/recall/hit rate of accepting ``similarity >= t`` for each ``t``, and,
    with ``verified`` (the hit verifier's decision per pair), only the pairs it accepts."""
    sims = np.asarray(similarities, dtype=np.float64)
    labs = np.asarray(labels, dtype=np.int8)
    if sims.shape != labs.shape:
        raise ValueError("similarities and labels differ in length")
    passed = np.ones(sims.shape, bool) if verified is None else np.asarray(verified, bool)
    positives = int(labs.sum())
    rows: list[SweepRow] = []
    for t in thresholds:
        # A tiny tolerance: float32 similarities of 0.9 are 0.8999999 and must count.
        accept = (sims >= t - 1e-6) & passed
        tp = int((accept & (labs == 1)).sum())
        fp = int((accept & (labs == 0)).sum())
        rows.append(
            SweepRow(
                threshold=float(t),
                accepted=tp + fp,
                true_pos=tp,
                false_pos=fp,
                false_neg=positives - tp,
                total=int(sims.size),
            )
        )
    return rows


def verify_pairs(pairs: Sequence[Pair], similarities: Sequence[float], verifier: Any) -> Any:
    """The hit verifier's decision for each pair (the cached prompt is ``text_b``)."""
    from .verify import VerifyScope

    scope = VerifyScope()
    return np.array(
        [
            verifier.verify(p.text_a, p.text_b, float(sim), scope).accept
            for p, sim in zip(pairs, similarities, strict=True)
        ],
        dtype=bool,
    )


#: Fewer labelled pairs than this and a recommended threshold is mostly noise: a handful
#: of pairs moves the measured precision by several points.
MIN_RELIABLE_PAIRS: Final = 200
#: A precision whose 95% interval is wider than this (hi - lo) is not a measurement yet.
MAX_RELIABLE_CI_WIDTH: Final = 0.10


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% with the default ``z``).

    Unlike the normal approximation it stays inside [0, 1] and is honest at 0/n and n/n,
    which is where a precision measured on few pairs usually sits.
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def recommend(rows: Sequence[SweepRow], target_precision: float) -> SweepRow | None:
    """The threshold to use for ``target_precision``, or None if none reaches it.

    The lowest threshold whose precision, and every higher one's, reaches the target
    (the most hits at that quality, robust to a lucky dip in the curve); then, among the
    thresholds that accept exactly the same pairs, the highest: on sparse labels a
    plateau can be wide, and its top keeps the largest margin to the rejected pairs
    below it at no cost in measured hits.
    """
    ordered = sorted(rows, key=lambda r: r.threshold, reverse=True)
    best: int | None = None
    for i, row in enumerate(ordered):
        p = row.precision
        if p is None:
            continue  # accepts nothing: no evidence either way
        if p + 1e-12 < target_precision:
            break
        best = i
    if best is None:
        return None
    while best > 0 and ordered[best - 1].accepted == ordered[best].accepted:
        best -= 1
    return ordered[best]


def embed_similarities(
    embedder: Embedder,
    pairs: Sequence[Pair],
    *,
    batch_size: int = 64,
    run: Callable[[Any], Any],
    progress: Callable[[int], None] | None = None,
) -> npt.NDArray[np.float64]:
    """Cosine similarity of each pair (known similarities are kept, the rest embedded).

    ``run`` drives one embed coroutine to completion (the CLI passes a loop's
    ``run_until_complete``); ``progress(n)`` is told of each batch of ``n`` texts.
    """
    todo = [i for i, p in enumerate(pairs) if p.similarity is None]
    sims = np.array([p.similarity if p.similarity is not None else np.nan for p in pairs])
    if not todo:
        return sims
    index: dict[str, int] = {}
    for i in todo:
        index.setdefault(pairs[i].text_a, len(index))
        index.setdefault(pairs[i].text_b, len(index))
    texts = list(index)
    vectors = np.empty((len(texts), embedder.dimensions), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        vectors[start : start + len(chunk)] = np.asarray(run(embedder.embed(chunk)))
        if progress is not None:
            progress(len(chunk))
    ia = np.fromiter((index[pairs[i].text_a] for i in todo), dtype=np.int64, count=len(todo))
    ib = np.fromiter((index[pairs[i].text_b] for i in todo), dtype=np.int64, count=len(todo))
    sims[todo] = np.einsum("ij,ij->i", vectors[ia], vectors[ib]).astype(np.float64)
    return sims


def plot_sweep(
    rows: Sequence[SweepRow],
    out: str | Path,
    *,
    target_precision: float | None,
    recommended: SweepRow | None,
    title: str,
    current: float | None = None,
) -> None:
    """Precision, recall and hit rate against the threshold, as a PNG (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")  # no display, no GUI toolkit: this runs on servers and in CI
    import matplotlib.pyplot as plt

    xs = [r.threshold for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=100)
    try:
        ax.plot(
            xs, [np.nan if r.precision is None else r.precision for r in rows], label="precision"
        )
        ax.plot(xs, [np.nan if r.recall is None else r.recall for r in rows], label="recall")
        ax.plot(xs, [r.hit_rate for r in rows], label="hit rate", linestyle="--")
        if target_precision is not None:
            ax.axhline(
                target_precision,
                color="grey",
                linewidth=0.8,
                linestyle=":",
                label=f"target precision {target_precision:.2f}",
            )
        if recommended is not None:
            ax.axvline(
                recommended.threshold,
                color="black",
                linewidth=1.2,
                label=f"recommended {recommended.threshold:.2f}",
            )
        if current is not None:
            ax.axvline(
                current, color="red", linewidth=1.0, linestyle="-.", label=f"current {current:.2f}"
            )
        ax.set_xlabel("threshold (cosine similarity)")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower left")
        fig.tight_layout()
        fig.savefig(str(out), format="png")
    finally:
        plt.close(fig)
