"""The quality page: where the similarities of what the cache served and refused fall,
and what the operator's labels say about the threshold and the verifier."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .._tune_near_misses import NearMiss
from .._tune_pairs import Pair
from .._tune_sweep import (
    MIN_RELIABLE_PAIRS,
    SweepRow,
    recommend,
    sweep,
    thresholds_between,
    verify_pairs,
    wilson_interval,
)
from ._review import Label

__all__ = ["Calibration", "Histogram", "calibrate", "histogram"]

KINDS: Final = ("hit", "near", "rejected")


@dataclass(slots=True)
class Histogram:
    low: float
    high: float
    width: float
    #: kind -> count per bin.
    counts: dict[str, list[int]]
    threshold: float | None
    total: int

    @property
    def bins(self) -> int:
        return len(next(iter(self.counts.values()))) if self.counts else 0

    @property
    def peak(self) -> int:
        per_bin = [sum(c[i] for c in self.counts.values()) for i in range(self.bins)]
        return max(per_bin, default=0)


def histogram(
    records: Sequence[NearMiss], width: float = 0.01, threshold: float | None = None
) -> Histogram:
    """Similarities by kind in bins of ``width`` (from the lowest seen, up to 1.0). The
    threshold drawn is ``threshold``, else the one most records were judged against."""
    sims = [r.similarity for r in records if math.isfinite(r.similarity)]
    thresholds = Counter(round(r.threshold, 4) for r in records if math.isfinite(r.threshold))
    if threshold is None and thresholds:
        threshold = thresholds.most_common(1)[0][0]
    # From the lowest similarity seen, or a bin under the threshold: it is always drawn.
    lowest = min([*sims, *([threshold - width] if threshold is not None else [])], default=0.8)
    low = max(-1.0, min(math.floor(lowest / width) * width, 1.0 - width))
    bins = max(1, round((1.0 - low) / width))
    counts = {kind: [0] * bins for kind in KINDS}
    for r in records:
        if not math.isfinite(r.similarity) or r.kind not in counts:
            continue
        i = min(bins - 1, max(0, int((r.similarity - low) / width)))
        counts[r.kind][i] += 1
    return Histogram(low, 1.0, width, counts, threshold, len(sims))


@dataclass(slots=True)
class Calibration:
    """What the labels say: precision of what was served, and the threshold / verifier
    setting they support (None while they are too few to say)."""

    labels: int
    same: int
    served: int
    served_same: int
    precision_ci: tuple[float, float] | None
    target_precision: float
    #: The threshold the labels support with the cache's verifier, or None.
    threshold: SweepRow | None
    #: The lowest verifier ``accept_at`` that keeps the target precision on the labels.
    accept_at: float | None
    reliable: bool
    rows: list[SweepRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return self.served_same / self.served if self.served else None


def calibrate(labels: Sequence[Label], verifier: Any, target_precision: float) -> Calibration:
    """Sweep the threshold over the labelled pairs (with ``verifier`` deciding too, as in
    the cache), and find the verifier's ``accept_at`` for ``target_precision``."""
    usable = [lab for lab in labels if math.isfinite(lab.similarity)]
    served = [lab for lab in usable if lab.kind == "hit"]
    served_same = sum(lab.label == "same" for lab in served)
    cal = Calibration(
        labels=len(usable),
        same=sum(lab.label == "same" for lab in usable),
        served=len(served),
        served_same=served_same,
        precision_ci=wilson_interval(served_same, len(served)) if served else None,
        target_precision=target_precision,
        threshold=None,
        accept_at=None,
        reliable=len(usable) >= MIN_RELIABLE_PAIRS,
    )
    if not usable:
        return cal
    y = [int(lab.label == "same") for lab in usable]
    pairs = [Pair(lab.prompt, lab.nearest, y[i], lab.similarity) for i, lab in enumerate(usable)]
    sims = [lab.similarity for lab in usable]
    verified = None if verifier is None else verify_pairs(pairs, sims, verifier)
    # Within [-1, 1] (a dot-product embedder can report 1.0001), at least one step wide.
    low = max(-1.0, min(0.99, math.floor(min(sims) * 100) / 100))
    cal.rows = sweep(sims, y, thresholds_between(low, 1.0, 0.01), verified)
    cal.threshold = recommend(cal.rows, target_precision)
    from ..verify import TextVerifier, VerifyScope

    if isinstance(verifier, TextVerifier):
        scope = VerifyScope()

        def score(a: str, b: str, sim: float) -> float:
            return verifier.verify(a, b, sim, scope).score

        cal.accept_at = _accept_at(pairs, score, target_precision)
    elif verifier is not None:
        cal.notes.append("the verifier is not a TextVerifier: no accept_at to suggest")
    kinds = {lab.kind for lab in usable}
    if "hit" in kinds and kinds - {"hit"}:
        cal.notes.append(
            "hits and misses are sampled at their own rates (review_sample, near_miss_sample): "
            "the sweep pools them as they were labelled, so with different rates its "
            "precision leans toward the kind sampled more"
        )
    if not cal.reliable:
        cal.notes.append(
            f"{len(usable)} labels: fewer than {MIN_RELIABLE_PAIRS}, so the suggestions move "
            "by several points with each new label"
        )
    return cal


def _accept_at(
    pairs: Sequence[Pair], scorer: Callable[[str, str, float], float], target: float
) -> float | None:
    """The lowest score cut whose accepted labelled pairs reach ``target`` precision (and
    every stricter cut's too)."""
    scored = []
    for p in pairs:
        s = scorer(p.text_a, p.text_b, float(p.similarity or 0.0))
        if math.isfinite(s):
            scored.append((float(s), p.label))
    if not scored:
        return None
    scored.sort(key=lambda sl: -sl[0])
    best: float | None = None
    same = n = 0
    i = 0
    while i < len(scored):
        # A cut accepts every pair at its score or above: judge whole groups of equal
        # scores, never a cut in the middle of one.
        score = scored[i][0]
        while i < len(scored) and scored[i][0] == score:
            same += int(scored[i][1] == 1)
            n += 1
            i += 1
        if same / n + 1e-12 < target:
            break
        best = score
    return None if best is None else min(0.999, max(0.001, best))
